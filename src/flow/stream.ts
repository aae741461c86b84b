/**
 * @module flow/stream
 * Reassembles the first bytes of one TCP direction, in sequence order, up to an inspection budget.
 *
 * Choices (deliberate, documented in docs/ARCHITECTURE.md):
 * - Base sequence: SYN's seq + 1 when the SYN was seen; otherwise the lowest sequence seen before any
 *   byte was handed out (a flow picked up mid-stream, or whose first data segments arrive out of order).
 *   Such a rebase moves the held bytes and bumps `epoch`, so a resumable dissector knows to start over;
 *   at most {@link MAX_REBASES} rebases happen (after that earlier data is trimmed like old data), so a
 *   descending-sequence storm cannot make the copies quadratic.
 * - Out-of-order segments are stored at their offset and become visible when the gap fills.
 * - Retransmissions and overlaps: the first copy of each byte wins (later copies are ignored and,
 *   when they differ, flagged `tcp_overlap_mismatch`). The inspected bytes are thus the bytes that
 *   arrived first, which is also what an inline box forwards first. One exception: held bytes that are
 *   all zero are replaced by a later, different copy (zero padding counted as payload by a wrong IP
 *   length, seen in the wild before a ClientHello sent at the same sequence number).
 * - Bytes beyond the budget are not buffered (the engine stops inspecting at the budget).
 *
 * Cost: which offsets are held is one bit per byte (no interval list), so a segment costs O(its length)
 * whatever the number or order of earlier segments — a storm of tiny out-of-order segments is linear in
 * the bytes received — and the contiguous prefix only ever advances (amortised O(budget) per stream).
 * Memory: one data buffer that grows by doubling up to the budget plus a bitmap of budget/8 bytes,
 * both given back (`dispose`) by the engine when inspection ends and reused by later assemblers.
 * `held` reports the bytes allocated, for the engine's global reassembly cap.
 */

const SEQ_MOD = 0x1_0000_0000;
const EMPTY = new Uint8Array(0);

/** Rebases (an earlier segment before anything was seen, no SYN) allowed per stream. */
export const MAX_REBASES = 8;

/**
 * Buffers of disposed assemblers, by size, for the next ones (per thread, at most POOL_MAX bytes): a
 * stream of hellos that each need reassembly then allocates nothing, instead of leaving tens of KB of
 * external garbage per flow for the collector.
 */
const POOL_MAX = 2 << 20;
const pool = new Map<number, Uint8Array[]>();
let pooled = 0;

function take(size: number, zero: boolean): Uint8Array {
  const l = pool.get(size);
  const b = l !== undefined ? l.pop() : undefined;
  if (b === undefined) return new Uint8Array(size);
  pooled -= size;
  if (zero) b.fill(0);
  return b;
}

function give(b: Uint8Array): void {
  if (b.length === 0 || pooled + b.length > POOL_MAX) return;
  let l = pool.get(b.length);
  if (l === undefined) pool.set(b.length, (l = []));
  l.push(b);
  pooled += b.length;
}

export class StreamAssembler {
  /** Sequence number of stream offset 0; -1 while unknown. */
  base = -1;
  synSeen = false;
  buf: Uint8Array;
  /** One bit per stream offset held. */
  private have: Uint8Array = EMPTY;
  /** Exclusive end of the highest held byte. */
  private maxEnd = 0;
  /** Bytes held (first copies). */
  private stored = 0;
  private rebases = 0;
  /** Length of the contiguous prefix available from offset 0. */
  contig = 0;
  /** Bumped on each rebase: stream offsets seen before it no longer hold the same bytes. */
  epoch = 0;
  overlapMismatch = false;
  /** Held zero bytes were replaced by different data (see `fill`). */
  zeroReplaced = false;
  /** Bytes offered beyond the budget. */
  overflow = false;
  /** Steps taken (bytes copied, compared or skipped by `contig`): a count for linearity tests. */
  steps = 0;

  constructor(readonly budget: number) {
    this.buf = EMPTY;
  }

  /** Called on the SYN of this direction. */
  syn(seq: number): void {
    if (this.contig === 0 && this.stored === 0) {
      this.base = (seq + 1) % SEQ_MOD;
      this.synSeen = true;
    }
  }

  /** Bytes allocated by this assembler (data buffer + bitmap). */
  get held(): number {
    return this.buf.length + this.have.length;
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
      if (!this.synSeen && rel > -this.budget && this.rebases < MAX_REBASES) {
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
    return this.stored > 0;
  }

  /** Contiguous bytes available now (a view). */
  view(): Uint8Array {
    return this.buf.subarray(0, this.contig);
  }

  private reserve(n: number): void {
    if (n <= this.buf.length) return;
    let size = Math.max(this.buf.length, 2048);
    while (size < n) size *= 2;
    size = Math.min(size, this.budget);
    const nb = take(size, false);
    nb.set(this.buf.subarray(0, this.maxEnd));
    give(this.buf);
    this.buf = nb;
    const nh = take((size + 7) >> 3, true);
    nh.set(this.have);
    give(this.have);
    this.have = nh;
  }

  /**
   * Give the buffers back for reuse; the assembler is empty afterwards. Views handed out by `view()`
   * must not be used after this (the engine disposes only when inspection is over).
   */
  dispose(): void {
    give(this.buf);
    give(this.have);
    this.buf = EMPTY;
    this.have = EMPTY;
    this.maxEnd = this.contig = this.stored = 0;
  }

  private rebase(shift: number): void {
    this.rebases++;
    this.epoch++;
    this.base = (this.base - shift + SEQ_MOD) % SEQ_MOD;
    const end = Math.min(this.maxEnd + shift, this.budget);
    this.reserve(end);
    const oldEnd = end - shift; // held bytes that still fit
    this.buf.copyWithin(shift, 0, oldEnd > 0 ? oldEnd : 0);
    const old = this.have;
    const nh = take(old.length, true);
    let stored = 0;
    for (let i = 0; i < oldEnd; i++) {
      if (old[i >> 3] & (1 << (i & 7))) {
        const j = i + shift;
        nh[j >> 3] |= 1 << (j & 7);
        stored++;
      }
    }
    give(old);
    this.have = nh;
    this.stored = stored;
    this.maxEnd = oldEnd > 0 ? end : 0;
    this.contig = 0;
    this.advance();
  }

  /** Move `contig` forward over held bytes. */
  private advance(): void {
    const have = this.have;
    const lim = this.maxEnd;
    let c = this.contig;
    const c0 = c;
    while (c < lim) {
      if ((c & 7) === 0 && c + 8 <= lim && have[c >> 3] === 0xff) {
        c += 8;
        continue;
      }
      if ((have[c >> 3] & (1 << (c & 7))) === 0) break;
      c++;
    }
    this.steps += c - c0 + 1;
    this.contig = c;
  }

  /** Mark [s, e) held. */
  private mark(s: number, e: number): void {
    const have = this.have;
    let i = s;
    while (i < e && (i & 7) !== 0) {
      have[i >> 3] |= 1 << (i & 7);
      i++;
    }
    const full = e & ~7;
    if (i < full) {
      have.fill(0xff, i >> 3, full >> 3);
      i = full;
    }
    while (i < e) {
      have[i >> 3] |= 1 << (i & 7);
      i++;
    }
  }

  /** Write bytes [s, e) where not yet held (first copy wins). `delta` maps stream offset → data index. */
  private fill(s: number, e: number, data: Uint8Array, delta: number): void {
    const buf = this.buf;
    if (s >= this.maxEnd) {
      // beyond everything held (the common in-order case): one copy, one bit range
      buf.set(data.subarray(s + delta, e + delta), s);
      this.mark(s, e);
      this.stored += e - s;
      this.maxEnd = e;
      this.steps += e - s;
    } else {
      const have = this.have;
      let i = s;
      while (i < e) {
        if ((have[i >> 3] & (1 << (i & 7))) === 0) {
          // a run of missing bytes
          let j = i + 1;
          while (j < e && (have[j >> 3] & (1 << (j & 7))) === 0) j++;
          buf.set(data.subarray(i + delta, j + delta), i);
          this.mark(i, j);
          this.stored += j - i;
          i = j;
        } else {
          // a run of held bytes: compare
          let j = i;
          let zeros = true;
          let differs = false;
          while (j < e && (have[j >> 3] & (1 << (j & 7))) !== 0) {
            const b = buf[j];
            if (b !== 0) zeros = false;
            if (b !== data[j + delta]) differs = true;
            j++;
          }
          if (differs) {
            if (zeros) {
              // zero bytes already held are padding mistaken for payload (e.g. a short ACK padded to
              // the Ethernet minimum with a wrong IP length): the real data replaces them
              buf.set(data.subarray(i + delta, j + delta), i);
              this.zeroReplaced = true;
            } else this.overlapMismatch = true;
          }
          i = j;
        }
      }
      this.steps += e - s;
      if (e > this.maxEnd) this.maxEnd = e;
    }
    if (s <= this.contig) this.advance();
  }
}
