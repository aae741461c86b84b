/**
 * @module decode/ipfrag
 * Bounded IPv4/IPv6 fragment reassembly. Fragments are held per (IP version, src, dst, id, proto) until
 * the datagram is complete, then the payload is returned as one new buffer (allocation happens only
 * for fragmented datagrams).
 *
 * Keys are integers: a hash of the words, chained, compared exactly on hit (no string is built per
 * fragment). Storage per datagram grows by doubling up to the highest byte seen (data + a bitmap of one
 * bit per byte), so a flood of first fragments with fresh IDs costs a few hundred bytes each, not 64 KiB;
 * the entries of ended datagrams with small storage are reused, so such a flood allocates nothing.
 * Bounds: at most `maxDatagrams` in progress (the oldest is dropped for a new one, counted
 * `ipfrag_evicted`), each at most 65,535 bytes (`ipfrag_too_large`), dropped after `timeoutMs`
 * (`ipfrag_timeout`); the codes go to the `count` callback (the decoder's anomaly counters).
 * Overlapping fragments: the first copy of a byte wins, and the first last fragment (MF=0) fixes the
 * datagram's length. Cost is linear in the bytes received (a count of bytes held below the length, no
 * rescans), so a flood of tiny fragments cannot make reassembly quadratic.
 */

const MAX_DATAGRAM = 65535;

class Pending {
  /** Hash-chain link. */
  next: Pending | null = null;
  /** Age list (oldest first). */
  older: Pending | null = null;
  newer: Pending | null = null;
  /** src words 0..3, dst words 4..7. */
  readonly addr = new Uint32Array(8);
  data: Uint8Array = EMPTY;
  /** Byte coverage bitmap, one bit per byte of `data`. */
  have: Uint8Array = EMPTY;
  total = -1; // -1 until the last fragment arrives
  /** Bytes held: all of them while `total` is unknown, then only those below `total`. */
  filled = 0;
  /** Highest byte end held. */
  maxEnd = 0;
  constructor(
    public hash: number,
    public ver: number,
    public id: number,
    public proto: number,
    public firstSeen: number,
  ) {}
}

/** Ended datagrams whose storage is at most this big are kept for reuse (a flood allocates nothing). */
const REUSE_MAX = 2048;

const EMPTY = new Uint8Array(0);

function mix(h: number, x: number): number {
  h = Math.imul(h ^ x, 0x9e3779b1);
  return (h ^ (h >>> 15)) | 0;
}

export class FragmentReassembler {
  private readonly pending = new Map<number, Pending>();
  private oldest: Pending | null = null;
  private newest: Pending | null = null;
  private count_ = 0;
  private readonly free: Pending[] = [];
  dropped = 0;
  constructor(
    private readonly maxDatagrams = 256,
    private readonly timeoutMs = 30_000,
    private readonly count: (code: string) => void = () => {},
  ) {}

  /**
   * Add a fragment of datagram (ver, src, dst, id, proto); returns the reassembled L4 payload when
   * complete, else null. `offset` in bytes, `more` the MF flag. `src`/`dst` are 4 words each (IPv4 in
   * word 3); `proto` is 0 for IPv6 (its id is 32 bits and unique per pair).
   */
  add(
    ver: number,
    src: Uint32Array,
    dst: Uint32Array,
    id: number,
    proto: number,
    offset: number,
    more: boolean,
    frag: Uint8Array,
    nowMs: number,
  ): Uint8Array | null {
    const end = offset + frag.length;
    if (end > MAX_DATAGRAM) {
      this.dropped++;
      this.count('ipfrag_too_large');
      return null;
    }
    let h = mix(mix(ver, id), proto);
    for (let i = 0; i < 4; i++) h = mix(mix(h, src[i]), dst[i]);
    let p = this.pending.get(h) ?? null;
    while (p !== null) {
      const a = p.addr;
      if (
        p.id === id &&
        p.ver === ver &&
        p.proto === proto &&
        a[3] === src[3] &&
        a[7] === dst[3] &&
        a[0] === src[0] &&
        a[1] === src[1] &&
        a[2] === src[2] &&
        a[4] === dst[0] &&
        a[5] === dst[1] &&
        a[6] === dst[2]
      )
        break;
      p = p.next;
    }
    if (p === null) {
      if (this.count_ >= this.maxDatagrams) {
        // full: drop the oldest datagram in progress
        this.drop(this.oldest!);
        this.count('ipfrag_evicted');
      }
      p = this.free.pop() ?? null;
      if (p !== null) {
        p.hash = h;
        p.ver = ver;
        p.id = id;
        p.proto = proto;
        p.firstSeen = nowMs;
        p.have.fill(0);
        p.total = -1;
        p.filled = 0;
        p.maxEnd = 0;
      } else p = new Pending(h, ver, id, proto, nowMs);
      p.addr.set(src, 0);
      p.addr.set(dst, 4);
      p.next = this.pending.get(h) ?? null;
      this.pending.set(h, p);
      p.older = this.newest;
      if (this.newest) this.newest.newer = p;
      else this.oldest = p;
      this.newest = p;
      this.count_++;
    }
    this.reserve(p, end);
    const have = p.have;
    const data = p.data;
    const limit = p.total < 0 ? MAX_DATAGRAM : p.total;
    let filled = p.filled;
    for (let i = 0; i < frag.length; i++) {
      const pos = offset + i;
      const bit = 1 << (pos & 7);
      if ((have[pos >> 3] & bit) === 0) {
        data[pos] = frag[i];
        have[pos >> 3] |= bit;
        if (pos < limit) filled++;
      }
    }
    if (end > p.maxEnd) p.maxEnd = end;
    if (!more && p.total < 0) {
      // the length is now known: count only the bytes held below it (once per datagram)
      p.total = end;
      filled = 0;
      const lim = Math.min(p.total, p.maxEnd);
      for (let pos = 0; pos < lim; pos++) if (have[pos >> 3] & (1 << (pos & 7))) filled++;
    }
    p.filled = filled;
    if (p.total < 0 || filled < p.total) return null;
    this.unlink(p);
    const whole = p.data.slice(0, p.total);
    this.recycle(p);
    return whole;
  }

  private recycle(p: Pending): void {
    if (p.data.length <= REUSE_MAX && this.free.length < this.maxDatagrams) this.free.push(p);
  }

  /** Grow a datagram's storage (doubling, from 256 bytes) to hold `n` bytes. */
  private reserve(p: Pending, n: number): void {
    if (n <= p.data.length) return;
    let size = Math.max(256, p.data.length);
    while (size < n) size *= 2;
    if (size > MAX_DATAGRAM) size = MAX_DATAGRAM;
    const d = new Uint8Array(size);
    d.set(p.data);
    const h = new Uint8Array((size + 7) >> 3);
    h.set(p.have);
    p.data = d;
    p.have = h;
  }

  private unlink(p: Pending): void {
    // hash chain
    let cur = this.pending.get(p.hash) ?? null;
    let prev: Pending | null = null;
    while (cur !== null && cur !== p) {
      prev = cur;
      cur = cur.next;
    }
    if (cur !== null) {
      if (prev) prev.next = p.next;
      else if (p.next) this.pending.set(p.hash, p.next);
      else this.pending.delete(p.hash);
    }
    // age list
    if (p.older) p.older.newer = p.newer;
    else this.oldest = p.newer;
    if (p.newer) p.newer.older = p.older;
    else this.newest = p.older;
    p.older = p.newer = p.next = null;
    this.count_--;
  }

  private drop(p: Pending): void {
    this.unlink(p);
    this.dropped++;
    this.recycle(p);
  }

  /** Drop datagrams older than the timeout (oldest first: O(dropped)). */
  expire(nowMs: number): void {
    while (this.oldest !== null && nowMs - this.oldest.firstSeen > this.timeoutMs) {
      this.drop(this.oldest);
      this.count('ipfrag_timeout');
    }
  }

  get size(): number {
    return this.count_;
  }

  /** Bytes allocated for datagrams in progress (O(datagrams); for tests and diagnostics). */
  get heldBytes(): number {
    let n = 0;
    for (let p = this.oldest; p !== null; p = p.newer) n += p.data.length + p.have.length;
    return n;
  }
}
