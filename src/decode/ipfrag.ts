/**
 * @module decode/ipfrag
 * Bounded IPv4/IPv6 fragment reassembly. Fragments are held per (src, dst, id, proto) until the datagram
 * is complete, then the payload is returned as one new buffer (allocation happens only for fragmented
 * datagrams). Bounds: at most `maxDatagrams` in progress, each at most 65,535 bytes, dropped after
 * `timeoutMs`; overlapping fragments: the first copy of a byte wins, and the first last fragment (MF=0)
 * fixes the datagram's length. Cost is linear in the bytes received (a count of bytes held below the
 * length, no rescans), so a flood of tiny fragments cannot make reassembly quadratic.
 */

interface Pending {
  key: string;
  data: Uint8Array;
  /** Byte coverage bitmap, one bit per byte. */
  have: Uint8Array;
  total: number; // -1 until the last fragment arrives
  /** Bytes held: all of them while `total` is unknown, then only those below `total`. */
  filled: number;
  firstSeen: number;
}

export class FragmentReassembler {
  private readonly pending = new Map<string, Pending>();
  dropped = 0;
  constructor(
    private readonly maxDatagrams = 256,
    private readonly timeoutMs = 30_000,
  ) {}

  /**
   * Add a fragment; returns the reassembled L4 payload when complete, else null.
   * `offset` in bytes, `more` the MF flag.
   */
  add(key: string, offset: number, more: boolean, frag: Uint8Array, nowMs: number): Uint8Array | null {
    if (offset + frag.length > 65535) {
      this.dropped++;
      return null;
    }
    let p = this.pending.get(key);
    if (!p) {
      if (this.pending.size >= this.maxDatagrams) this.expire(nowMs, true);
      p = {
        key,
        data: new Uint8Array(65535),
        have: new Uint8Array(8192),
        total: -1,
        filled: 0,
        firstSeen: nowMs,
      };
      this.pending.set(key, p);
    }
    const have = p.have;
    const data = p.data;
    const limit = p.total < 0 ? 65535 : p.total;
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
    if (!more && p.total < 0) {
      // the length is now known: count only the bytes held below it (once per datagram)
      p.total = offset + frag.length;
      filled = 0;
      for (let pos = 0; pos < p.total; pos++) if (have[pos >> 3] & (1 << (pos & 7))) filled++;
    }
    p.filled = filled;
    if (p.total < 0 || filled < p.total) return null;
    this.pending.delete(key);
    return p.data.slice(0, p.total);
  }

  expire(nowMs: number, force = false): void {
    for (const [k, p] of this.pending) {
      if (force || nowMs - p.firstSeen > this.timeoutMs) {
        this.pending.delete(k);
        this.dropped++;
        if (force) return;
      }
    }
  }

  get size(): number {
    return this.pending.size;
  }
}
