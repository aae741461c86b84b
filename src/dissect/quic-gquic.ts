/**
 * @module dissect/quic-gquic
 * Google QUIC (gQUIC, versions Q024–Q046) client hellos: these versions carry no TLS. The client's
 * first packets hold a plaintext "CHLO" handshake message (a tag/value map, little-endian) in a
 * STREAM frame of stream 1, after a 12-byte message-authentication hash; the server name is the
 * value of the `SNI\0` tag, the user agent that of `UAID`.
 *
 * Packet formats recognised (client→server, version present):
 * - Q024–Q043 public header: flags without bit 0x80, version flag 0x01 and 8-byte connection ID
 *   flag 0x08; the version follows the CID at bytes 9..12 ("Q0nn").
 * - Q044–Q046: IETF-invariant long header (0xc0 bits) with the version "Q04n" at bytes 1..4.
 * Q050 and T05x use encrypted Initials and are handled (T05x) or not (Q050) by
 * {@link module:dissect/quic}.
 *
 * Rather than walking gQUIC's version-specific frame encodings, the parser looks for the "CHLO"
 * tag after the header and validates the tag table that must follow it (entry count, end offsets
 * non-decreasing and inside the message); the first table that validates is used. A CHLO whose
 * SNI value lies beyond this datagram (a hello spanning packets) gives `need-more`.
 *
 * Codes: `gquic_no_chlo` (error: a versioned client packet without a usable CHLO),
 * `gquic_bad_chlo` (anomaly: a CHLO tag table that did not validate was skipped).
 */

export type GquicResult =
  | { status: 'done'; version: number; sni: string | null; uaid: string | null; anomalies: string[] }
  | { status: 'need-more' }
  | { status: 'not-mine' }
  | { status: 'error'; anomaly: string };

const NOT_MINE: GquicResult = Object.freeze({ status: 'not-mine' });
const NEED_MORE: GquicResult = Object.freeze({ status: 'need-more' });

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * The gQUIC version (e.g. 0x51303433 for "Q043") of a client packet that carries one, or 0.
 * Q024–Q043 only in a public header, Q044–Q046 only in a long header. Allocation-free.
 */
export function gquicVersion(d: Uint8Array): number {
  if (d.length < 13) return 0;
  const b0 = d[0];
  let p: number;
  if ((b0 & 0x80) === 0) {
    if ((b0 & 0x09) !== 0x09) return 0; // version flag + 8-byte CID
    p = 9;
  } else {
    if ((b0 & 0xc0) !== 0xc0) return 0;
    p = 1;
  }
  if (d[p] !== 0x51 || d[p + 1] !== 0x30 || !isDigit(d[p + 2]) || !isDigit(d[p + 3])) return 0;
  const n = (d[p + 2] - 0x30) * 10 + (d[p + 3] - 0x30);
  if (n < 24 || n > 46 || (p === 1) !== n >= 44) return 0;
  return ((d[p] << 24) | (d[p + 1] << 16) | (d[p + 2] << 8) | d[p + 3]) >>> 0;
}

const T_SNI = 0x534e4900; // "SNI\0"
const T_UAID = 0x55414944; // "UAID"

function u32be(d: Uint8Array, p: number): number {
  return ((d[p] << 24) | (d[p + 1] << 16) | (d[p + 2] << 8) | d[p + 3]) >>> 0;
}
function u32le(d: Uint8Array, p: number): number {
  return (d[p] | (d[p + 1] << 8) | (d[p + 2] << 16) | (d[p + 3] << 24)) >>> 0;
}
function latin1(d: Uint8Array, s: number, e: number): string {
  let out = '';
  for (let i = s; i < e; i++) out += String.fromCharCode(d[i]);
  return out;
}

/** Find and read the CHLO of one client datagram. Never throws. */
export function parseGquicChlo(d: Uint8Array): GquicResult {
  const version = gquicVersion(d);
  if (version === 0) return NOT_MINE;
  const anomalies: string[] = [];
  const n = d.length;
  // 'C' 'H' 'L' 'O' after the version field
  for (let p = 13; p + 8 <= n; p++) {
    if (d[p] !== 0x43 || d[p + 1] !== 0x48 || d[p + 2] !== 0x4c || d[p + 3] !== 0x4f) continue;
    const count = d[p + 4] | (d[p + 5] << 8);
    const table = p + 8;
    const values = table + count * 8;
    if (count === 0 || count > 128 || values > n) {
      if (!anomalies.includes('gquic_bad_chlo')) anomalies.push('gquic_bad_chlo');
      continue;
    }
    let prev = 0;
    let ok = true;
    let sni: [number, number] | null = null;
    let uaid: [number, number] | null = null;
    for (let i = 0; i < count; i++) {
      const tag = u32be(d, table + i * 8);
      const end = u32le(d, table + i * 8 + 4);
      if (end < prev || end > 65536) {
        ok = false;
        break;
      }
      if (tag === T_SNI) sni = [prev, end];
      else if (tag === T_UAID) uaid = [prev, end];
      prev = end;
    }
    if (!ok) {
      if (!anomalies.includes('gquic_bad_chlo')) anomalies.push('gquic_bad_chlo');
      continue;
    }
    const avail = n - values;
    if ((sni && sni[1] > avail) || (uaid && uaid[1] > avail)) return NEED_MORE;
    return {
      status: 'done',
      version,
      sni: sni ? latin1(d, values + sni[0], values + sni[1]) : null,
      uaid: uaid ? latin1(d, values + uaid[0], values + uaid[1]) : null,
      anomalies,
    };
  }
  return { status: 'error', anomaly: 'gquic_no_chlo' };
}
