/**
 * @module policy/trie
 * Binary prefix tries for IPv4 (32-bit) and IPv6 (128-bit) addresses. Each node may carry a list of
 * rule indices (the rules whose CIDR ends at that node). A lookup walks from the root along the
 * address bits and reports every rule on the path with its prefix length, so the caller sees all
 * matching prefixes, longest last. Built in a growable typed array, then laid out depth-first.
 */

export class PrefixTrieBuilder {
  /** Per node 3 ints while building: left, right (node index or -1), rule list head (or -1). */
  private t = new Int32Array(3 * 1024).fill(-1);
  private n = 1;
  private listRule: number[] = [];
  private listNext: number[] = [];

  private newNode(): number {
    if ((this.n + 1) * 3 > this.t.length) {
      const bigger = new Int32Array(this.t.length * 2).fill(-1);
      bigger.set(this.t);
      this.t = bigger;
    }
    return this.n++;
  }

  /** Insert a prefix given as 32-bit words (most significant first). */
  insert(words: ArrayLike<number>, len: number, rule: number): void {
    let node = 0;
    for (let b = 0; b < len; b++) {
      const bit = (words[b >>> 5] >>> (31 - (b & 31))) & 1;
      let next = this.t[node * 3 + bit];
      if (next < 0) {
        next = this.newNode();
        this.t[node * 3 + bit] = next;
      }
      node = next;
    }
    const t = this.t;
    for (let e = t[node * 3 + 2]; e >= 0; e = this.listNext[e]) if (this.listRule[e] === rule) return;
    this.listRule.push(rule);
    this.listNext.push(t[node * 3 + 2]);
    t[node * 3 + 2] = this.listRule.length - 1;
  }

  get size(): number {
    return this.n;
  }

  /** Freeze. `jump16`: also build the 2^16-entry first-level table (for 32-bit tries). */
  build(jump16 = false): PrefixTrie {
    const n = this.n;
    const t = this.t;
    // depth-first preorder layout: a node's first child follows it in memory, so the single-child
    // chains below a prefix share cache lines and a walk touches few lines
    const pos = new Int32Array(n);
    const stack: number[] = [0];
    let next = 0;
    while (stack.length) {
      const v = stack.pop()!;
      pos[v] = next++;
      if (t[v * 3 + 1] >= 0) stack.push(t[v * 3 + 1]);
      if (t[v * 3] >= 0) stack.push(t[v * 3]);
    }
    const nodes = new Int32Array(n * 3);
    for (let i = 0; i < n; i++) {
      const p = pos[i] * 3;
      nodes[p] = t[i * 3] < 0 ? -1 : pos[t[i * 3]] * 3;
      nodes[p + 1] = t[i * 3 + 1] < 0 ? -1 : pos[t[i * 3 + 1]] * 3;
      nodes[p + 2] = t[i * 3 + 2];
    }
    let jump: Int32Array | null = null;
    let short: Uint8Array | null = null;
    let bits: Int32Array | null = null;
    if (jump16 && this.listRule.length > 0) {
      jump = new Int32Array(1 << 16).fill(-1);
      short = new Uint8Array(1 << 16);
      const j = jump;
      const sh = short;
      const fill = (node: number, depth: number, prefix: number, hasShort: number): void => {
        if (depth === 16) {
          j[prefix] = node;
          sh[prefix] = hasShort;
          return;
        }
        const hs = hasShort | (nodes[node + 2] >= 0 ? 1 : 0);
        for (let bit = 0; bit < 2; bit++) {
          const child = nodes[node + bit];
          const p = prefix * 2 + bit;
          if (child >= 0) fill(child, depth + 1, p, hs);
          else if (hs) {
            const span = 1 << (15 - depth);
            sh.fill(1, p * span, (p + 1) * span);
          }
        }
      };
      fill(0, 0, 0, 0);
      bits = presence20(nodes);
    }
    return new PrefixTrie(
      nodes,
      Int32Array.from(this.listRule),
      Int32Array.from(this.listNext),
      jump,
      short,
      bits,
    );
  }
}

/** The arrays of a {@link PrefixTrie} (what a compiled registry file stores). */
export interface PrefixTrieParts {
  nodes: Int32Array;
  listRule: Int32Array;
  listNext: Int32Array;
  jump: Int32Array | null;
  short: Uint8Array | null;
  bits20: Int32Array | null;
}

/**
 * One bit per /20 block of IPv4 space (2^20 bits, 128 KiB: stays in cache): set when some prefix of
 * the trie contains an address of the block (a prefix of ≤ 20 bits sets every block it covers, a
 * longer one its own block). A clear bit means no prefix matches any address of the block, so most
 * addresses in no rule are answered without touching the jump table or the nodes in memory.
 */
function presence20(nodes: Int32Array): Int32Array {
  const n = nodes.length / 3;
  // preorder layout: children come after their parent, so one backward pass sees children first
  const has = new Uint8Array(n);
  for (let v = n - 1; v >= 0; v--) {
    const p = v * 3;
    has[v] =
      nodes[p + 2] >= 0 ||
      (nodes[p] >= 0 && has[nodes[p] / 3] === 1) ||
      (nodes[p + 1] >= 0 && has[nodes[p + 1] / 3] === 1)
        ? 1
        : 0;
  }
  const bits = new Int32Array(1 << 15);
  const fill = (node: number, depth: number, prefix: number): void => {
    if (has[node / 3] === 0) return;
    if (depth === 20 || nodes[node + 2] >= 0) {
      const from = prefix * (1 << (20 - depth));
      const to = from + (1 << (20 - depth));
      for (let b = from; b < to; b++) bits[b >>> 5] |= 1 << (b & 31);
      return;
    }
    for (let bit = 0; bit < 2; bit++)
      if (nodes[node + bit] >= 0) fill(nodes[node + bit], depth + 1, prefix * 2 + bit);
  };
  fill(0, 0, 0);
  return bits;
}

export class PrefixTrie {
  /**
   * Rebuild a trie from stored parts, checking that every child and jump is a node offset inside
   * `nodes`, every rule list stays inside the list arrays and only goes backward (no cycle), and
   * every rule number is ≤ `maxRule`. Throws Error(reason).
   */
  static fromParts(p: PrefixTrieParts, maxRule: number): PrefixTrie {
    const nodes = p.nodes;
    const N = nodes.length;
    if (N < 3 || N % 3 !== 0) throw new Error(`trie of ${N} ints`);
    const L = p.listRule.length;
    if (p.listNext.length !== L) throw new Error('rule list arrays of different lengths');
    const okNode = (x: number): boolean => x === -1 || (x >= 0 && x < N && x % 3 === 0);
    for (let i = 0; i < N; i += 3) {
      if (!okNode(nodes[i]) || !okNode(nodes[i + 1])) throw new Error(`node ${i / 3}: child out of range`);
      const h = nodes[i + 2];
      if (h < -1 || h >= L) throw new Error(`node ${i / 3}: rule list out of range`);
    }
    for (let e = 0; e < L; e++) {
      const nx = p.listNext[e];
      if (nx < -1 || nx >= e) throw new Error(`rule list entry ${e}: link out of order`);
      if (p.listRule[e] < 0 || p.listRule[e] > maxRule) throw new Error(`rule list entry ${e}: bad rule`);
    }
    if ((p.jump === null) !== (p.short === null)) throw new Error('jump table without its flags');
    if (p.jump !== null) {
      if (p.jump.length !== 1 << 16 || p.short!.length !== 1 << 16) throw new Error('jump table size');
      for (let k = 0; k < 1 << 16; k++)
        if (!okNode(p.jump[k])) throw new Error(`jump ${k}: node out of range`);
    }
    let bits = p.bits20;
    if (bits !== null) {
      if (p.jump === null) throw new Error('presence bitmap without a jump table');
      if (bits.length !== 1 << 15) throw new Error('presence bitmap size');
    } else if (p.jump !== null) bits = presence20(nodes); // a file written without it
    return new PrefixTrie(nodes, p.listRule, p.listNext, p.jump, p.short, bits);
  }

  /** The stored form (arrays shared, not copied). */
  parts(): PrefixTrieParts {
    return {
      nodes: this.nodes,
      listRule: this.listRule,
      listNext: this.listNext,
      jump: this.jump,
      short: this.short,
      bits20: this.bits20,
    };
  }

  constructor(
    /** Per node 3 ints: left child, right child (node index * 3, or -1), head of the rule list (or -1). */
    readonly nodes: Int32Array,
    readonly listRule: Int32Array,
    readonly listNext: Int32Array,
    /** Node at depth 16 for each top-16-bit value (or -1), and whether a shorter prefix is on the way. */
    private readonly jump: Int32Array | null = null,
    private readonly short: Uint8Array | null = null,
    /** IPv4 tries: the /20 presence bitmap (see presence20), or null. */
    private readonly bits20: Int32Array | null = null,
  ) {}

  get empty(): boolean {
    return this.listRule.length === 0;
  }

  /**
   * Walk the path of a 32-bit address; for each rule on it set stamp[rule] = gen and spec[rule] =
   * prefix length + 1 (longest wins). Rules seen for the first time in this lookup (touch[rule] !==
   * gen) are appended to `cand` (cand[0] holds the count).
   */
  walk32(
    addr: number,
    stamp: Int32Array,
    spec: Int32Array,
    gen: number,
    touch: Int32Array,
    cand: Int32Array,
  ): void {
    const nodes = this.nodes;
    let node = 0;
    let depth = 0;
    const bits = this.bits20;
    if (bits !== null && (bits[addr >>> 17] & (1 << ((addr >>> 12) & 31))) === 0) return;
    if (this.jump !== null) {
      const top = addr >>> 16;
      if (this.short![top] === 0) {
        node = this.jump[top];
        if (node < 0) return;
        depth = 16;
      }
    }
    for (;;) {
      const h = nodes[node + 2];
      if (h >= 0) this.mark(h, depth, stamp, spec, gen, touch, cand);
      if (depth === 32) return;
      node = nodes[node + ((addr >>> (31 - depth)) & 1)];
      if (node < 0) return;
      depth++;
    }
  }

  /** As {@link walk32} for a 128-bit address given as 4 words. */
  walk128(
    w: Uint32Array,
    stamp: Int32Array,
    spec: Int32Array,
    gen: number,
    touch: Int32Array,
    cand: Int32Array,
  ): void {
    const nodes = this.nodes;
    let node = 0;
    let depth = 0;
    for (;;) {
      const h = nodes[node + 2];
      if (h >= 0) this.mark(h, depth, stamp, spec, gen, touch, cand);
      if (depth === 128) return;
      node = nodes[node + ((w[depth >>> 5] >>> (31 - (depth & 31))) & 1)];
      if (node < 0) return;
      depth++;
    }
  }

  private mark(
    h: number,
    depth: number,
    stamp: Int32Array,
    spec: Int32Array,
    gen: number,
    touch: Int32Array,
    cand: Int32Array,
  ): void {
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
}

/** Every (rule, prefix length) on the path of `words` down to depth `maxDepth` (offline use: lint). */
export function collectPath(
  t: PrefixTrie,
  words: ArrayLike<number>,
  maxDepth: number,
): { rule: number; len: number }[] {
  const out: { rule: number; len: number }[] = [];
  let node = 0;
  for (let depth = 0; ; depth++) {
    for (let e = t.nodes[node + 2]; e >= 0; e = t.listNext[e]) out.push({ rule: t.listRule[e], len: depth });
    if (depth === maxDepth) break;
    node = t.nodes[node + ((words[depth >>> 5] >>> (31 - (depth & 31))) & 1)];
    if (node < 0) break;
  }
  return out;
}
