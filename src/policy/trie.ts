/**
 * @module policy/trie
 * Binary prefix tries for IPv4 (32-bit) and IPv6 (128-bit) addresses. Each node may carry a list of
 * rule indices (the rules whose CIDR ends at that node). A lookup walks from the root along the
 * address bits and reports every rule on the path with its prefix length, so the caller sees all
 * matching prefixes, longest last. Built with growable arrays, then frozen into typed arrays.
 */

export class PrefixTrieBuilder {
  private left: number[] = [-1];
  private right: number[] = [-1];
  private head: number[] = [-1];
  private listRule: number[] = [];
  private listNext: number[] = [];

  /** Insert a prefix given as 32-bit words (most significant first). */
  insert(words: ArrayLike<number>, len: number, rule: number): void {
    let node = 0;
    for (let b = 0; b < len; b++) {
      const w = words[b >>> 5];
      const bit = (w >>> (31 - (b & 31))) & 1;
      const arr = bit ? this.right : this.left;
      let next = arr[node];
      if (next < 0) {
        next = this.left.length;
        this.left.push(-1);
        this.right.push(-1);
        this.head.push(-1);
        arr[node] = next;
      }
      node = next;
    }
    for (let e = this.head[node]; e >= 0; e = this.listNext[e]) if (this.listRule[e] === rule) return;
    this.listRule.push(rule);
    this.listNext.push(this.head[node]);
    this.head[node] = this.listRule.length - 1;
  }

  get size(): number {
    return this.left.length;
  }

  build(): PrefixTrie {
    return new PrefixTrie(Int32Array.from(this.left), Int32Array.from(this.right), Int32Array.from(this.head), Int32Array.from(this.listRule), Int32Array.from(this.listNext));
  }
}

export class PrefixTrie {
  constructor(
    readonly left: Int32Array,
    readonly right: Int32Array,
    readonly head: Int32Array,
    readonly listRule: Int32Array,
    readonly listNext: Int32Array,
  ) {}

  get empty(): boolean {
    return this.listRule.length === 0;
  }

  /**
   * Walk the path of a 32-bit address; for each rule on it set stamp[rule] = gen and spec[rule] =
   * prefix length + 1 (longest wins). Rules seen for the first time in this lookup (touch[rule] !==
   * gen) are appended to `cand` (cand[0] holds the count).
   */
  walk32(addr: number, stamp: Int32Array, spec: Int32Array, gen: number, touch: Int32Array, cand: Int32Array): void {
    const left = this.left;
    const right = this.right;
    const head = this.head;
    let node = 0;
    let depth = 0;
    for (;;) {
      const h = head[node];
      if (h >= 0) this.mark(h, depth, stamp, spec, gen, touch, cand);
      if (depth === 32) return;
      node = (addr >>> (31 - depth)) & 1 ? right[node] : left[node];
      if (node < 0) return;
      depth++;
    }
  }

  /** As {@link walk32} for a 128-bit address given as 4 words. */
  walk128(w: Uint32Array, stamp: Int32Array, spec: Int32Array, gen: number, touch: Int32Array, cand: Int32Array): void {
    const left = this.left;
    const right = this.right;
    const head = this.head;
    let node = 0;
    let depth = 0;
    for (;;) {
      const h = head[node];
      if (h >= 0) this.mark(h, depth, stamp, spec, gen, touch, cand);
      if (depth === 128) return;
      node = (w[depth >>> 5] >>> (31 - (depth & 31))) & 1 ? right[node] : left[node];
      if (node < 0) return;
      depth++;
    }
  }

  private mark(h: number, depth: number, stamp: Int32Array, spec: Int32Array, gen: number, touch: Int32Array, cand: Int32Array): void {
    const listRule = this.listRule;
    const listNext = this.listNext;
    for (let e = h; e >= 0; e = listNext[e]) {
      const r = listRule[e];
      stamp[r] = gen;
      spec[r] = depth + 1;
      if (touch[r] !== gen) {
        touch[r] = gen;
        cand[++cand[0]] = r;
      }
    }
  }

  /** All (rule, prefix length) pairs on the path of a 32-bit address (offline use: lint). */
  collect32(addr: number): { rule: number; len: number }[] {
    const out: { rule: number; len: number }[] = [];
    let node = 0;
    for (let depth = 0; ; depth++) {
      for (let e = this.head[node]; e >= 0; e = this.listNext[e]) out.push({ rule: this.listRule[e], len: depth });
      if (depth === 32) break;
      node = (addr >>> (31 - depth)) & 1 ? this.right[node] : this.left[node];
      if (node < 0) break;
    }
    return out;
  }
}
