/**
 * @module engine/record-build
 * Builds the {@link FlowRecord} of a flow (once per flow: strings and hashes are made here, not per packet).
 */
import type { Flow } from '../flow/flow.js';
import type { FlowEndReason, FlowRecord } from '../record/record.js';
import { addrToBytes, addrToString } from '../output/address.js';
import { communityId } from '../output/community-id.js';

/** The last whole second formatted (flows end in time order, so most records share it). */
let lastSec = NaN;
let lastPrefix = '';

/** ISO 8601 with microseconds, UTC. */
export function isoMicro(tsMs: number): string {
  if (!Number.isFinite(tsMs) || tsMs < 0 || tsMs > 253402300799999) tsMs = 0;
  let ms = Math.floor(tsMs);
  // round, not floor: sec*1000 + us/1000 is inexact in a double (ulp ~0.24 µs near 1.7e12 ms), so flooring
  // turned about half of all microsecond timestamps into the microsecond before
  let micro = Math.round((tsMs - ms) * 1000);
  if (micro >= 1000) {
    ms += 1;
    micro -= 1000;
  }
  const sec = Math.floor(ms / 1000);
  if (sec !== lastSec) {
    lastSec = sec;
    lastPrefix = new Date(sec * 1000).toISOString().slice(0, -4); // ...ss.
  }
  const frac = (ms - sec * 1000) * 1000 + micro; // microseconds within the second
  return lastPrefix + String(frac).padStart(6, '0') + 'Z';
}

/** Scratch copies of a flow's client and server address words (records are built synchronously). */
const W_CLI = new Uint32Array(4);
const W_SRV = new Uint32Array(4);
/** Scratch bytes of the two addresses, for the community ID (IPv4, IPv6). */
const B4_CLI = new Uint8Array(4);
const B4_SRV = new Uint8Array(4);
const B16_CLI = new Uint8Array(16);
const B16_SRV = new Uint8Array(16);

export function buildRecord(f: Flow, pcapFilename?: string, reason?: FlowEndReason): FlowRecord {
  const a = f.addr;
  for (let i = 0; i < 4; i++) {
    W_CLI[i] = a[i];
    W_SRV[i] = a[4 + i];
  }
  const v4 = f.ipVer === 4;
  const src = addrToBytes(f.ipVer, W_CLI, v4 ? B4_CLI : B16_CLI);
  const dst = addrToBytes(f.ipVer, W_SRV, v4 ? B4_SRV : B16_SRV);
  // Every record has one hidden class: each key is set here, in output order, absent ones to
  // `undefined` (JSON.stringify and the EVE writers skip them). Keys added afterwards, or a spread,
  // gave the writers a new map per protocol mix, and with it megamorphic loads and deopts.
  const rec: FlowRecord = {
    event_type: 'flow',
    flow_id: f.id,
    community_id: communityId(src, f.cport, dst, f.sport, f.proto),
    timestamp: isoMicro(f.firstMs),
    pcap_filename: pcapFilename,
    proto: f.proto === 6 ? 'TCP' : 'UDP',
    src_ip: addrToString(f.ipVer, W_CLI),
    src_port: f.cport,
    dest_ip: addrToString(f.ipVer, W_SRV),
    dest_port: f.sport,
    app_proto: f.appProto,
    host: f.host,
    anomalies: f.anomalies ? [...f.anomalies] : [],
    pkts_toserver: f.pktsToServer,
    pkts_toclient: f.pktsToClient,
    bytes_toserver: f.bytesToServer,
    bytes_toclient: f.bytesToClient,
    duration: Math.round(f.lastMs - f.firstMs) / 1000,
    end: isoMicro(f.lastMs),
    state: f.closed ? 'closed' : f.pktsToServer > 0 && f.pktsToClient > 0 ? 'established' : 'new',
    reason,
    first_payload: f.firstLen >= 0 ? { len: f.firstLen, head: f.firstHead } : undefined,
    tls: f.tls ?? undefined,
    quic: f.quic ?? undefined,
    http: f.http ?? undefined,
    dns: f.dns ?? undefined,
    policy: undefined,
    partial: undefined,
  };
  return rec;
}
