/**
 * @module dissect/quic-crypto-assembler
 * Reassembles the Initial-level CRYPTO stream (RFC 9000 §19.6) from frames that arrive in any
 * order, possibly overlapping, into one contiguous buffer bounded by `max` bytes.
 *
 * Overlaps: the first copy of a byte wins. A later frame only fills the holes it covers; if it
 * disagrees with bytes already held, the caller is told (`mismatch`) so it can record an anomaly
 * (a retransmission must carry identical bytes; a difference suggests an injection attempt, and
 * keeping the first copy matches what a receiver that already consumed the bytes would see).
 *
 * Cost is linear in the bytes received: a bit map (one bit per stream byte) records which
 * offsets are filled, and the contiguous prefix only ever advances. Storage grows by doubling up
 * to `max` (so at most max + max/8 bytes); nothing is allocated per frame.
 */

export class CryptoAssembler {
  private buf: Uint8Array = new Uint8Array(0);
  private have: Uint8Array = new Uint8Array(0);
  /** Length of the contiguous prefix starting at offset 0. */
  contiguous = 0;
  /** Set when an overlapping frame carried different bytes than the first copy. */
  mismatch = false;
  /** Total bytes accepted (first copies only). */
  stored = 0;

  constructor(readonly max: number) {}

  /** Bytes allocated (data + bitmap). */
  get held(): number {
    return this.buf.length + this.have.length;
  }

  private ensure(n: number): void {
    if (n <= this.buf.length) return;
    let cap = Math.max(2048, this.buf.length);
    while (cap < n) cap *= 2;
    if (cap > this.max) cap = this.max;
    const b = new Uint8Array(cap);
    b.set(this.buf);
    const h = new Uint8Array((cap + 7) >> 3);
    h.set(this.have);
    this.buf = b;
    this.have = h;
  }

  /** Add `data` (a view) at stream `offset`. Returns false if bytes at or beyond `max` were dropped. */
  add(offset: number, data: Uint8Array): boolean {
    let end = offset + data.length;
    let res = true;
    if (end > this.max) {
      end = this.max;
      res = false;
    }
    if (offset >= end) return res;
    this.ensure(end);
    const buf = this.buf;
    const have = this.have;
    for (let i = offset; i < end; i++) {
      const v = data[i - offset];
      const bit = 1 << (i & 7);
      if ((have[i >> 3] & bit) === 0) {
        have[i >> 3] |= bit;
        buf[i] = v;
        this.stored++;
      } else if (buf[i] !== v) this.mismatch = true;
    }
    let c = this.contiguous;
    const cap = this.buf.length;
    while (c < cap && (have[c >> 3] & (1 << (c & 7))) !== 0) c++;
    this.contiguous = c;
    return res;
  }

  /** View of the contiguous prefix [0, contiguous). */
  prefix(): Uint8Array {
    return this.buf.subarray(0, this.contiguous);
  }
}
