/**
 * @module flow/table
 * Bidirectional flow table keyed by an integer hash of the unordered 5-tuple, with chained buckets in a
 * power-of-two array (doubled when the flows outnumber the buckets) and exact comparison on hit (no
 * string keys). An array, not a Map: a table at its cap inserts and deletes on every new flow, and a
 * Map's backing store is reallocated as deletions pile up — garbage that a flow flood turned into
 * tens of MiB of old generation. Flows sit on one of three idle lists
 * (TCP, UDP, closed), each ordered by last activity, so expiry is O(expired). A hard cap on flows evicts
 * the least recently active flow.
 */
import { Flow } from './flow.js';
import type { Packet } from '../decode/packet.js';

export const LIST_TCP = 0;
export const LIST_UDP = 1;
export const LIST_CLOSED = 2;

class IdleList {
  head: Flow | null = null;
  tail: Flow | null = null;
  count = 0;
}

function mix(h: number, x: number): number {
  h = Math.imul(h ^ x, 0x9e3779b1);
  return (h ^ (h >>> 15)) | 0;
}

/**
 * Symmetric hash: the same for both directions of a flow. `seed` is chosen per process by the engine
 * (random unless a test fixes it), so an opponent cannot precompute 5-tuples that share a chain.
 */
export function flowHash(p: Packet, seed = 0x2545f491): number {
  let a = seed ^ p.proto;
  let b = a;
  const s = p.src;
  const d = p.dst;
  for (let i = 0; i < 4; i++) {
    a = mix(a, s[i]);
    b = mix(b, d[i]);
  }
  a = mix(a, p.sport);
  b = mix(b, p.dport);
  // order-independent combination
  return (Math.imul(a ^ b, 0x85ebca6b) + (a + b)) | 0;
}

export class FlowTable {
  private buckets: (Flow | null)[] = new Array<Flow | null>(1024).fill(null);
  private mask = 1023;
  readonly lists = [new IdleList(), new IdleList(), new IdleList()];
  size = 0;

  /** Bucket of a flow hash (its high bits folded in: the low bits alone choose the bucket). */
  private slot(hash: number): number {
    return (hash ^ (hash >>> 16)) & this.mask;
  }

  /** Find the flow of `p`; sets `toServer` to the packet's direction. */
  lookup(p: Packet, hash: number): Flow | null {
    let f = this.buckets[this.slot(hash)];
    while (f) {
      if (f.hash === hash && f.proto === p.proto && f.ipVer === p.ipVer) {
        const a = f.addr;
        if (f.cport === p.sport && f.sport === p.dport && eq(a, 0, p.src) && eq(a, 4, p.dst)) {
          this.toServer = true;
          return f;
        }
        if (f.cport === p.dport && f.sport === p.sport && eq(a, 0, p.dst) && eq(a, 4, p.src)) {
          this.toServer = false;
          return f;
        }
      }
      f = f.next;
    }
    return null;
  }

  toServer = true;

  insert(f: Flow): void {
    if (this.size >= this.buckets.length) this.grow();
    const i = this.slot(f.hash);
    f.next = this.buckets[i];
    this.buckets[i] = f;
    this.size++;
  }

  remove(f: Flow): void {
    this.unlink(f);
    const i = this.slot(f.hash);
    let cur = this.buckets[i];
    let prev: Flow | null = null;
    while (cur && cur !== f) {
      prev = cur;
      cur = cur.next;
    }
    if (!cur) return;
    if (prev) prev.next = f.next;
    else this.buckets[i] = f.next;
    f.next = null;
    this.size--;
  }

  /** Double the buckets and relink every flow (O(flows), only when the table outgrows them). */
  private grow(): void {
    const old = this.buckets;
    this.buckets = new Array<Flow | null>(old.length * 2).fill(null);
    this.mask = this.buckets.length - 1;
    for (let j = 0; j < old.length; j++) {
      let f = old[j];
      while (f) {
        const n = f.next;
        const i = this.slot(f.hash);
        f.next = this.buckets[i];
        this.buckets[i] = f;
        f = n;
      }
    }
  }

  /** Move f to the tail of idle list `li` (most recent). */
  touch(f: Flow, li: number): void {
    const L = this.lists[li];
    if (f.list === li && L.tail === f) return;
    this.unlink(f);
    f.list = li;
    f.prev_ = L.tail;
    f.next_ = null;
    if (L.tail) L.tail.next_ = f;
    else L.head = f;
    L.tail = f;
    L.count++;
  }

  private unlink(f: Flow): void {
    if (f.list < 0) return;
    const L = this.lists[f.list];
    if (f.prev_) f.prev_.next_ = f.next_;
    else L.head = f.next_;
    if (f.next_) f.next_.prev_ = f.prev_;
    else L.tail = f.prev_;
    f.prev_ = f.next_ = null;
    f.list = -1;
    L.count--;
  }

  /** The least recently active flow over all lists. */
  oldest(): Flow | null {
    let best: Flow | null = null;
    for (const L of this.lists) if (L.head && (!best || L.head.lastMs < best.lastMs)) best = L.head;
    return best;
  }

  /** Every flow, in no particular order (for the final flush). */
  *all(): IterableIterator<Flow> {
    for (const L of this.lists) {
      let f = L.head;
      while (f) {
        const n = f.next_;
        yield f;
        f = n;
      }
    }
  }
}

function eq(a: Uint32Array, o: number, b: Uint32Array): boolean {
  return a[o + 3] === b[3] && a[o + 2] === b[2] && a[o + 1] === b[1] && a[o] === b[0];
}
