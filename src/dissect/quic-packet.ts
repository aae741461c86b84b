/**
 * @module dissect/quic-packet
 * QUIC long-header parsing (RFC 9000 §17.2) and Initial packet protection (RFC 9001 §5): removing
 * header protection and opening the AES-128-GCM payload. Sealing lives apart, in gen/quic-protect,
 * so that generated packets check this parser rather than mirror it. Input bytes are never modified:
 * the header is copied (a few dozen bytes) before header protection is removed.
 *
 * Errors are returned as stable codes, never thrown:
 * - `quic_truncated`        the packet (or its Length field) runs past the datagram
 * - `quic_bad_cid_length`   a connection ID longer than 20 bytes (v1 invariant for known versions)
 * - `quic_bad_length`       the Length field is too small to hold a packet number and a sample
 * - `quic_decrypt_failed`   the AEAD tag does not verify with the keys tried
 */
import { createDecipheriv } from 'node:crypto';
import { headerProtectionMaskAt, packetNonce, type InitialKeys, type QuicVersionInfo } from './quic-keys.js';

/** A parsed long header. Offsets are absolute in the datagram. */
export interface LongHeader {
  /** Offset of the first byte. */
  start: number;
  version: number;
  /** Wire type bits (0..3); map with QuicVersionInfo.typeOf. */
  typeBits: number;
  dcid: Uint8Array;
  scid: Uint8Array;
  /** Initial only: the token (empty for others). */
  token: Uint8Array;
  /** Offset of the (protected) packet number. */
  pnOffset: number;
  /** Exclusive end of this packet (pnOffset + Length). */
  end: number;
}

const EMPTY = new Uint8Array(0);

/** Read a QUIC varint at `p`; returns -1 if it runs past `end`. Writes the next offset to out[0]. */
export function readVarint(d: Uint8Array, p: number, end: number, out: Int32Array | number[]): number {
  if (p >= end) return -1;
  const first = d[p];
  const len = 1 << (first >> 6);
  if (p + len > end) return -1;
  let v = first & 0x3f;
  for (let i = 1; i < len; i++) v = v * 256 + d[p + i];
  out[0] = p + len;
  return v;
}

/**
 * Parse the long header at `start` of a packet whose version uses the v1 layout (all supported
 * versions do). Returns a code on failure. Retry packets have no Length field: `end` is the
 * datagram end.
 */
export function parseLongHeader(d: Uint8Array, start: number, info: QuicVersionInfo): LongHeader | string {
  const n = d.length;
  if (start + 6 > n) return 'quic_truncated';
  const b0 = d[start];
  const version = ((d[start + 1] << 24) | (d[start + 2] << 16) | (d[start + 3] << 8) | d[start + 4]) >>> 0;
  const typeBits = (b0 >> 4) & 3;
  let p = start + 5;
  const dl = d[p++];
  if (dl > 20) return 'quic_bad_cid_length';
  if (p + dl + 1 > n) return 'quic_truncated';
  const dcid = d.subarray(p, p + dl);
  p += dl;
  const sl = d[p++];
  if (sl > 20) return 'quic_bad_cid_length';
  if (p + sl > n) return 'quic_truncated';
  const scid = d.subarray(p, p + sl);
  p += sl;
  const pt = info.typeOf[typeBits];
  let token: Uint8Array = EMPTY;
  const nx = [0];
  if (pt === 3 /* Retry */) {
    return { start, version, typeBits, dcid, scid, token, pnOffset: p, end: n };
  }
  if (pt === 0 /* Initial */) {
    const tl = readVarint(d, p, n, nx);
    if (tl < 0) return 'quic_truncated';
    p = nx[0];
    if (tl > n - p) return 'quic_truncated';
    token = d.subarray(p, p + tl);
    p += tl;
  }
  const len = readVarint(d, p, n, nx);
  if (len < 0) return 'quic_truncated';
  p = nx[0];
  if (len > n - p) return 'quic_truncated';
  return { start, version, typeBits, dcid, scid, token, pnOffset: p, end: p + len };
}

/** Result of opening one Initial packet. */
export interface OpenedPacket {
  pn: number;
  /** Decrypted frames (a fresh buffer). */
  payload: Buffer;
}

/**
 * Expand a truncated packet number (RFC 9000 §A.3) given the largest packet number seen so far
 * in this space (-1 if none).
 */
export function decodePacketNumber(largest: number, truncated: number, bits: number): number {
  const expected = largest + 1;
  const win = 2 ** bits;
  const hwin = win / 2;
  const candidate = Math.floor(expected / win) * win + truncated;
  if (candidate <= expected - hwin && candidate < 2 ** 62 - win) return candidate + win;
  if (candidate > expected + hwin && candidate >= win) return candidate - win;
  return candidate;
}

/**
 * Remove header protection and open the payload of the Initial packet `h` with `keys`.
 * Returns a code on failure (wrong keys show up as `quic_decrypt_failed`).
 */
export function openInitial(
  d: Uint8Array,
  h: LongHeader,
  keys: InitialKeys,
  largestPn: number,
): OpenedPacket | string {
  const sampleAt = h.pnOffset + 4;
  if (sampleAt + 16 > h.end) return 'quic_bad_length';
  const mask = headerProtectionMaskAt(keys.hp, d, sampleAt);
  const b0 = d[h.start] ^ (mask[0] & 0x0f);
  const pnLen = (b0 & 3) + 1;
  const payloadAt = h.pnOffset + pnLen;
  if (payloadAt + 16 > h.end) return 'quic_bad_length';
  const header = Buffer.from(d.subarray(h.start, payloadAt));
  header[0] = b0;
  let truncated = 0;
  for (let i = 0; i < pnLen; i++) {
    const off = h.pnOffset - h.start + i;
    header[off] ^= mask[1 + i];
    truncated = truncated * 256 + header[off];
  }
  const pn = decodePacketNumber(largestPn, truncated, pnLen * 8);
  try {
    const dec = createDecipheriv('aes-128-gcm', keys.key, packetNonce(keys.iv, pn));
    dec.setAAD(header);
    dec.setAuthTag(d.subarray(h.end - 16, h.end));
    const a = dec.update(d.subarray(payloadAt, h.end - 16));
    const b = dec.final();
    return { pn, payload: b.length === 0 ? a : Buffer.concat([a, b]) };
  } catch {
    return 'quic_decrypt_failed';
  }
}
