/**
 * @module util/bytes
 * The one bounded cursor over a Uint8Array view: big-endian reads (network protocols), little-endian
 * reads (`u16le`, `u32le`: capture file headers), byte search (`find`) and skips. Every read checks
 * bounds first and throws {@link TruncatedError} without advancing, so a failed read never leaves the
 * reader half-advanced. Sub-readers are views (`subarray`), never copies. Used by the dissectors
 * (TLS, QUIC, DNS, HTTP) and the capture reader.
 */
import { TruncatedError } from './errors.js';

export class ByteReader {
  /** Current absolute offset into `buf`. */
  pos: number;
  /** Exclusive absolute end. */
  end: number;
  buf: Uint8Array;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  /** Point this reader at another view (a hot path reuses one reader instead of allocating one). */
  reset(buf: Uint8Array, start = 0, end = buf.length): this {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    return this;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.end) throw new TruncatedError(n, this.end - this.pos);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }

  u16(): number {
    this.need(2);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 2;
    return (b[p] << 8) | b[p + 1];
  }

  u24(): number {
    this.need(3);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 3;
    return (b[p] << 16) | (b[p + 1] << 8) | b[p + 2];
  }

  u32(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return ((b[p] << 24) >>> 0) + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]);
  }

  /** Little-endian 16-bit (capture file headers). */
  u16le(): number {
    this.need(2);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 2;
    return b[p] | (b[p + 1] << 8);
  }

  /** Little-endian unsigned 32-bit. */
  u32le(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return ((b[p + 3] << 24) >>> 0) + ((b[p + 2] << 16) | (b[p + 1] << 8) | b[p]);
  }

  /** Little-endian signed 32-bit. */
  i32le(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return (b[p + 3] << 24) | (b[p + 2] << 16) | (b[p + 1] << 8) | b[p];
  }

  /** Big-endian signed 32-bit. */
  i32(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3];
  }

  /** Unsigned 16/32-bit in the given byte order (`le` true: little-endian). */
  u16o(le: boolean): number {
    return le ? this.u16le() : this.u16();
  }

  u32o(le: boolean): number {
    return le ? this.u32le() : this.u32();
  }

  /**
   * Absolute offset of the first byte `v` in [from, end) — `from` defaults to `pos`, and is clamped to
   * [pos, end] — or -1. Does not advance. A plain loop: the builtin indexOf's per-call cost dominated
   * on short lines (HTTP heads of thousands of header lines).
   */
  find(v: number, from = this.pos): number {
    const b = this.buf;
    const e = this.end;
    for (let i = from < this.pos ? this.pos : from; i < e; i++) if (b[i] === v) return i;
    return -1;
  }

  /** The byte at `pos` without advancing, or -1 at the end. */
  peek(): number {
    return this.pos < this.end ? this.buf[this.pos] : -1;
  }

  /** Move to absolute offset `p`, which must lie in [pos, end] (forward only). */
  seek(p: number): void {
    this.need(p - this.pos);
    this.pos = p;
  }

  /** QUIC variable-length integer (RFC 9000 §16). Values above 2^53 are rejected as truncated-safe numbers. */
  varint(): number {
    this.need(1);
    const first = this.buf[this.pos];
    const len = 1 << (first >> 6);
    this.need(len);
    let v = first & 0x3f;
    for (let i = 1; i < len; i++) v = v * 256 + this.buf[this.pos + i];
    this.pos += len;
    return v;
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }

  /** A view of the next n bytes (no copy). */
  bytes(n: number): Uint8Array {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** A reader over the next n bytes; this reader advances past them. */
  sub(n: number): ByteReader {
    this.need(n);
    const r = new ByteReader(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }

  /** A reader over a u8/u16/u24 length-prefixed block. Atomic: nothing advances on truncation. */
  vec(lenBytes: 1 | 2 | 3): ByteReader {
    const start = this.pos;
    const n = lenBytes === 1 ? this.u8() : lenBytes === 2 ? this.u16() : this.u24();
    try {
      return this.sub(n);
    } catch (e) {
      this.pos = start;
      throw e;
    }
  }
}

/** ASCII decode of a byte range without intermediate arrays; for names (short strings), not bulk data. */
export function ascii(buf: Uint8Array, start = 0, end = buf.length): string {
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(buf[i]);
  return s;
}

/** Lowercased ASCII decode (A-Z only). */
export function asciiLower(buf: Uint8Array, start = 0, end = buf.length): string {
  let s = '';
  for (let i = start; i < end; i++) {
    const c = buf[i];
    s += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c | 0x20 : c);
  }
  return s;
}

export function hex(buf: Uint8Array): string {
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('hex');
}
