/**
 * @module flow/stream
 * Reassembles the first bytes of one TCP direction, in sequence order, up to an inspection budget.
 *
 * Choices (deliberate, documented in docs/ARCHITECTURE.md):
 * - Base sequence: SYN's seq + 1 when the SYN was seen; otherwise the lowest sequence seen before any
 *   byte was handed out (a flow picked up mid-stream, or whose first data segments arrive out of order).
 * - Out-of-order segments are stored at their offset and become visible when the gap fills.
 * - Retransmissions and overlaps: the first copy of each byte wins (later copies are ignored and,
 *   when they differ, flagged `tcp_overlap_mismatch`). The inspected bytes are thus the bytes that
 *   arrived first, which is also what an inline box forwards first. One exception: held bytes that are
 *   all zero are replaced by a later, different copy (zero padding counted as payload by a wrong IP
 *   length, seen in the wild before a ClientHello sent at the same sequence number).
 * - Bytes beyond the budget are not buffered (the engine stops inspecting at the budget).
 * Memory: one buffer that grows by doubling up to the budget, freed by the engine when inspection ends.
 */

const SEQ_MOD = 0x1_0000_0000;
const EMPTY = new Uint8Array(0);

export class StreamAssembler {
  /** Sequence number of stream offset 0; -1 while unknown. */
  base = -1;
  synSeen = false;
  buf: Uint8Array;
  /** Sorted, disjoint filled intervals [start, end) in stream offsets, flattened pairs. */
  private iv: number[] = [];
  /** Length of the contiguous prefix available from offset 0. */
  contig = 0;
  overlapMismatch = false;
  /** Held zero bytes were replaced by different data (see `fill`). */
  zeroReplaced = false;
  /** Bytes offered beyond the budget. */
  overflow = false;

  constructor(readonly budget: number) {
    this.buf = EMPTY;
  }

  /** Called on the SYN of this direction. */
  syn(seq: number): void {
    if (this.contig === 0 && this.iv.length === 0) {
      this.base = (seq + 1) % SEQ_MOD;
      this.synSeen = true;
    }
  }

  /**
   * Add a segment's payload. Returns true when the contiguous prefix grew.
   */
  add(seq: number, data: Uint8Array, off: number, len: number): boolean {
    if (len <= 0) return false;
    if (this.base < 0) this.base = seq;
    let rel = seq - this.base;
    if (rel > SEQ_MOD / 2) rel -= SEQ_MOD;
    else if (rel < -SEQ_MOD / 2) rel += SEQ_MOD;
    if (rel < 0) {
      if (!this.synSeen && rel > -this.budget) {
        this.rebase(-rel);
        rel = 0;
      } else {
        // data before the stream start (old retransmission): keep only the part at or after 0
        if (rel + len <= 0) return false;
        off -= rel;
        len += rel;
        rel = 0;
      }
    }
    if (rel >= this.budget) {
      this.overflow = true;
      return false;
    }
    let end = rel + len;
    if (end > this.budget) {
      this.overflow = true;
      end = this.budget;
    }
    this.reserve(end);
    const before = this.contig;
    this.fill(rel, end, data, off - rel);
    return this.contig > before;
  }

  /** Whether any byte has been stored. */
  hasData(): boolean {
    return this.iv.length > 0;
  }

  /** Contiguous bytes available now (a view). */
  view(): Uint8Array {
    return this.buf.subarray(0, this.contig);
  }

  private reserve(n: number): void {
    if (n <= this.buf.length) return;
    let size = Math.max(this.buf.length, 2048);
    while (size < n) size *= 2;
    const nb = new Uint8Array(Math.min(size, this.budget));
    nb.set(this.buf.subarray(0, this.maxEnd()));
    this.buf = nb;
  }

  private maxEnd(): number {
    return this.iv.length ? this.iv[this.iv.length - 1] : 0;
  }

  private rebase(shift: number): void {
    this.base = (this.base - shift + SEQ_MOD) % SEQ_MOD;
    const end = Math.min(this.maxEnd() + shift, this.budget);
    this.reserve(end);
    this.buf.copyWithin(shift, 0, end - shift);
    const iv = this.iv;
    for (let i = 0; i < iv.length; i++) iv[i] = Math.min(iv[i] + shift, this.budget);
    this.contig = iv.length && iv[0] === 0 ? iv[1] : 0;
  }

  /** Write bytes [s, e) where not yet filled (first copy wins) and merge intervals. `delta` maps stream offset → data index. */
  private fill(s: number, e: number, data: Uint8Array, delta: number): void {
    const iv = this.iv;
    const buf = this.buf;
    let cur = s;
    let i = 0;
    while (i < iv.length && iv[i + 1] <= cur) i += 2;
    while (cur < e) {
      const gapEnd = i < iv.length ? Math.min(iv[i], e) : e;
      if (cur < gapEnd) {
        buf.set(data.subarray(cur + delta, gapEnd + delta), cur);
        cur = gapEnd;
      }
      if (cur >= e) break;
      // overlap with [iv[i], iv[i+1])
      const ovEnd = Math.min(iv[i + 1], e);
      let zeros = true;
      let differs = false;
      for (let k = cur; k < ovEnd; k++) {
        if (buf[k] !== 0) zeros = false;
        if (buf[k] !== data[k + delta]) differs = true;
      }
      if (differs) {
        if (zeros) {
          // zero bytes already held are padding mistaken for payload (e.g. a short ACK padded to the
          // Ethernet minimum with a wrong IP length): the real data replaces them
          buf.set(data.subarray(cur + delta, ovEnd + delta), cur);
          this.zeroReplaced = true;
        } else this.overlapMismatch = true;
      }
      cur = ovEnd;
      i += 2;
    }
    // merge [s, e) into intervals
    let lo = 0;
    while (lo < iv.length && iv[lo + 1] < s) lo += 2;
    let hi = lo;
    let ns = s;
    let ne = e;
    while (hi < iv.length && iv[hi] <= e) {
      ns = Math.min(ns, iv[hi]);
      ne = Math.max(ne, iv[hi + 1]);
      hi += 2;
    }
    iv.splice(lo, hi - lo, ns, ne);
    this.contig = iv[0] === 0 ? iv[1] : 0;
  }
}
