/**
 * @module policy/match-input
 * The one builder of the matcher's input ({@link MatchInput}) from what a flow says (its record):
 * `simulate` (records from a capture or a JSON-lines file) and the inline box (`enforce`, the record
 * of the engine's Flow at decision time) both call it, so a what-if run and the wire see the same
 * input for the same flow.
 *
 * `host` is the engine's normalised name (lowercase, no trailing dot). `raw_host` is the name as the
 * flow carried it, for `names.trailing_dot: literal` and the raw `endswith` / `substring` patterns:
 * the TLS or QUIC SNI exactly as sent (trailing dot and case kept); for HTTP and DNS the dissectors'
 * name (`http.hostname`: lowercased, port and one trailing dot removed; `dns.query`: presentation
 * form without the root dot); otherwise `host`.
 */
import type { FlowRecord } from '../record/record.js';
import type { MatchInput } from './types.js';

/**
 * Build the matcher input from a flow record. `trigger`: a name an inspection mode that does not
 * reassemble saw in one packet (`tspu-2021`: the SNI of the first TLS record), which replaces the
 * flow's name — `host` and `raw_host` are that name as sent, `app_proto` is `tls`.
 */
export function inputFromRecord(r: FlowRecord, trigger?: string): MatchInput {
  const tls = r.tls;
  const quic = r.quic;
  return {
    host: trigger ?? r.host,
    raw_host: trigger ?? tls?.sni ?? quic?.sni ?? r.http?.hostname ?? r.dns?.query ?? r.host,
    proto: r.proto,
    src_ip: r.src_ip,
    dest_ip: r.dest_ip,
    dest_port: r.dest_port,
    app_proto: trigger !== undefined ? 'tls' : r.app_proto,
    alpn: tls?.alpn ?? quic?.alpn ?? [],
    ja4: tls?.ja4 ?? null,
    quic_version: quic?.version ?? null,
    ech: tls?.ech ?? false,
    payload_len: r.first_payload?.len ?? null,
    payload_head: r.first_payload?.head ?? null,
  };
}
