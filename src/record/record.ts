/**
 * @module record/record
 * The flow record in memory: what the engine hands to every mode (analyze, simulate, enforce). It is
 * written out (and read back) as a Suricata EVE object by `output/eve.ts`; that written shape is the
 * output contract, described by `schema/flow-record.schema.json`.
 */

export interface TlsInfo {
  sni: string | null;
  alpn: string[];
  /** Offered versions as names, e.g. ["TLS1.3","TLS1.2"]; from supported_versions or legacy_version. */
  versions: string[];
  ja4: string | null;
  /** encrypted_client_hello extension (0xfe0d) present. */
  ech: boolean;
}

export interface QuicInfo {
  /** Version as 0x-prefixed hex string, e.g. "0x00000001". */
  version: string;
  sni: string | null;
  alpn: string[];
}

export interface HttpInfo {
  hostname: string | null;
  method: string;
  url: string;
}

export interface DnsInfo {
  query: string;
  /** Query type as name ("A", "AAAA", "HTTPS", ...) or "TYPE<n>". */
  qtype: string;
}

export interface PolicyVerdict {
  rule_id: string | null;
  action: 'allow' | 'log' | 'block' | 'throttle';
}

/**
 * How an inline verdict is carried out on the wire (enforce/ takes it, output/eve writes it as
 * `chokepoint.verdict.enforcement`); here so both use one list without output/ importing enforce/.
 */
export type EnforcementName =
  | 'accept'
  | 'drop'
  | 'reset'
  | 'police-userspace'
  | 'police-kernel'
  | 'stall'
  | 'curtain'
  | 'degrade'
  | 'redirect'
  | 'rst-rewrite';

export interface FlowRecord {
  event_type: 'flow';
  flow_id: number;
  community_id: string;
  /** ISO 8601 of the first packet. */
  timestamp: string;
  pcap_filename?: string;
  proto: 'TCP' | 'UDP';
  src_ip: string;
  src_port: number;
  dest_ip: string;
  dest_port: number;
  app_proto: string | null;
  host: string | null;
  tls?: TlsInfo;
  quic?: QuicInfo;
  http?: HttpInfo;
  dns?: DnsInfo;
  anomalies: string[];
  pkts_toserver: number;
  pkts_toclient: number;
  bytes_toserver: number;
  bytes_toclient: number;
  /** Seconds from the first to the last packet seen. */
  duration: number;
  /** ISO 8601 of the last packet seen (same form as `timestamp`). */
  end?: string;
  /** Suricata's flow state: both directions seen → established; RST or both FINs → closed. */
  state?: FlowStateName;
  /** Why the flow ended (absent in snapshots of live flows, e.g. at an inline verdict). */
  reason?: FlowEndReason;
  policy?: PolicyVerdict;
  /**
   * The first client→server (subscriber side) packet that carried payload, by arrival: its payload
   * length and its first {@link FIRST_HEAD_BYTES} bytes as lowercase hex — what payload-length and
   * payload-byte rules (the 2022 QUIC rule) match on. Absent when the client sent no payload.
   */
  first_payload?: FirstPayload;
  /**
   * Live capture only: a periodic snapshot of a flow still running (`--flow-interval`), counters so
   * far; the flow's final record has no `partial`.
   */
  partial?: true;
}

/** How many leading bytes of the first client payload a record keeps (and payload rules can test). */
export const FIRST_HEAD_BYTES = 16;

export interface FirstPayload {
  /** Payload length (bytes after the TCP/UDP header) of the first client packet with payload. */
  len: number;
  /** Its first min(len, 16) bytes, lowercase hex (2 characters per byte). */
  head: string;
}

export type FlowStateName = 'new' | 'established' | 'closed';
/** Suricata's names: idle timeout, table eviction, end of input, a new TCP connection on a closed 5-tuple. */
export type FlowEndReason = 'timeout' | 'forced' | 'shutdown' | 'tcp_reuse';
