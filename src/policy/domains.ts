/**
 * @module policy/domains
 * Label-walk hash table for exact / suffix / subdomains name matching at registry scale.
 *
 * Every distinct rule name is one entry in an open-addressing table keyed by a hash computed over the
 * name's characters from right to left. A lookup walks the host once from its last character to its
 * first, updating the same hash; at each label boundary (start of host or just after a '.') the hash of
 * that suffix of the host is complete and is probed. So `a.b.example.com` probes `com`,
 * `example.com`, `b.example.com`, `a.b.example.com` with no substring allocation, and a hit is verified
 * by comparing characters in place (ASCII case folded on the fly).
 *
 * An entry hit at the whole host applies its `exact` and `suffix` rules; a hit at a proper suffix
 * applies its `suffix` and `subdomains` rules. That is the label-boundary rule: `twitter.com` as a
 * suffix never matches `throttletwitter.com`, because `twitter.com` is not a suffix starting at a label.
 */
import { labelCount, lowerCode } from './names.js';

export const KIND_EXACT = 0;
export const KIND_SUFFIX = 1;
export const KIND_SUBDOMAINS = 2;
export type HashKind = 0 | 1 | 2;

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;
const KIND_BONUS = [3, 1, 2];

/** Specificity of a hash-kind match: more labels first, then exact > subdomains > suffix. */
export function hostSpecificity(labels: number, kind: HashKind): number {
  return labels * 4 + KIND_BONUS[kind];
}

function hashName(name: string): number {
  let h = FNV_OFFSET;
  for (let i = name.length - 1; i >= 0; i--) h = Math.imul(h ^ name.charCodeAt(i), FNV_PRIME);
  return h;
}

export class DomainTableBuilder {
  private index = new Map<string, number>();
  private names: string[] = [];
  private hitRule: number[] = [];
  private hitKind: number[] = [];
  private hitNext: number[] = [];
  private head: number[] = [];

  /** Add a normalised name for `rule` with match kind `kind` (duplicates are ignored). */
  add(name: string, rule: number, kind: HashKind): void {
    let e = this.index.get(name);
    if (e === undefined) {
      e = this.names.length;
      this.index.set(name, e);
      this.names.push(name);
      this.head.push(-1);
    }
    for (let h = this.head[e]; h >= 0; h = this.hitNext[h]) if (this.hitRule[h] === rule && this.hitKind[h] === kind) return;
    this.hitRule.push(rule);
    this.hitKind.push(kind);
    this.hitNext.push(this.head[e]);
    this.head[e] = this.hitRule.length - 1;
  }

  get size(): number {
    return this.names.length;
  }

  build(): DomainTable {
    const n = this.names.length;
    let bits = 4;
    while (1 << bits < n * 2) bits++;
    const slots = new Int32Array(1 << bits);
    const hashes = new Int32Array(n);
    const flags = new Uint8Array(n);
    const hitSpec = new Int32Array(this.hitRule.length);
    const mask = (1 << bits) - 1;
    const shift = 32 - bits;
    for (let e = 0; e < n; e++) {
      const name = this.names[e];
      const h = hashName(name);
      hashes[e] = h;
      const labels = labelCount(name);
      for (let k = this.head[e]; k >= 0; k = this.hitNext[k]) {
        flags[e] |= 1 << this.hitKind[k];
        hitSpec[k] = hostSpecificity(labels, this.hitKind[k] as HashKind);
      }
      let s = Math.imul(h, 0x9e3779b1) >>> shift;
      while (slots[s] !== 0) s = (s + 1) & mask;
      slots[s] = e + 1;
    }
    this.index.clear();
    return new DomainTable(this.names, slots, hashes, flags, Int32Array.from(this.head), Int32Array.from(this.hitRule), Uint8Array.from(this.hitKind), Int32Array.from(this.hitNext), hitSpec, shift);
  }
}

export class DomainTable {
  private readonly mask: number;
  constructor(
    readonly names: string[],
    private readonly slots: Int32Array,
    private readonly hashes: Int32Array,
    /** Per entry: bit k set when some rule uses the name with kind k. */
    private readonly flags: Uint8Array,
    private readonly head: Int32Array,
    readonly hitRule: Int32Array,
    readonly hitKind: Uint8Array,
    private readonly hitNext: Int32Array,
    private readonly hitSpec: Int32Array,
    private readonly shift: number,
  ) {
    this.mask = slots.length - 1;
  }

  get size(): number {
    return this.names.length;
  }

  /** Entry index of a suffix host[start, end) (already lowercase-comparable), or -1. */
  private probe(h: number, host: string, start: number, end: number): number {
    const slots = this.slots;
    const len = end - start;
    let s = Math.imul(h, 0x9e3779b1) >>> this.shift;
    for (;;) {
      const v = slots[s];
      if (v === 0) return -1;
      const e = v - 1;
      if (this.hashes[e] === h) {
        const name = this.names[e];
        if (name.length === len) {
          let k = 0;
          while (k < len && name.charCodeAt(k) === lowerCode(host.charCodeAt(start + k))) k++;
          if (k === len) return e;
        }
      }
      s = (s + 1) & this.mask;
    }
  }

  /**
   * Match host[0, end) (ASCII case-insensitive). Marks matching rules like PrefixTrie.walk32 (spec =
   * best host specificity). Returns false, having marked nothing, when the host has a non-ASCII
   * character (the caller converts it to punycode and calls again).
   */
  walk(host: string, end: number, stamp: Int32Array, spec: Int32Array, gen: number, touch: Int32Array, cand: Int32Array): boolean {
    let h = FNV_OFFSET;
    for (let i = end - 1; i >= 0; i--) {
      const c = host.charCodeAt(i);
      if (c > 127) return false;
      h = Math.imul(h ^ lowerCode(c), FNV_PRIME);
      if (i === 0 || host.charCodeAt(i - 1) === 46) {
        const e = this.probe(h, host, i, end);
        if (e < 0) continue;
        // whole host: exact + suffix; proper suffix: suffix + subdomains
        const allow = i === 0 ? 3 : 6;
        if ((this.flags[e] & allow) === 0) continue;
        for (let k = this.head[e]; k >= 0; k = this.hitNext[k]) {
          if (((1 << this.hitKind[k]) & allow) === 0) continue;
          const r = this.hitRule[k];
          const sp = this.hitSpec[k];
          if (stamp[r] !== gen) {
            stamp[r] = gen;
            spec[r] = sp;
          } else if (sp > spec[r]) spec[r] = sp;
          if (touch[r] !== gen) {
            touch[r] = gen;
            cand[++cand[0]] = r;
          }
        }
      }
    }
    return true;
  }

  /** Every (rule, kind, matched name) for a normalised name (offline use: lint, blast radius). */
  collect(name: string): { rule: number; kind: HashKind; name: string }[] {
    const out: { rule: number; kind: HashKind; name: string }[] = [];
    let h = FNV_OFFSET;
    for (let i = name.length - 1; i >= 0; i--) {
      h = Math.imul(h ^ lowerCode(name.charCodeAt(i)), FNV_PRIME);
      if (i === 0 || name.charCodeAt(i - 1) === 46) {
        const e = this.probe(h, name, i, name.length);
        if (e < 0) continue;
        const allow = i === 0 ? 3 : 6;
        for (let k = this.head[e]; k >= 0; k = this.hitNext[k]) {
          if (((1 << this.hitKind[k]) & allow) === 0) continue;
          out.push({ rule: this.hitRule[k], kind: this.hitKind[k] as HashKind, name: this.names[e] });
        }
      }
    }
    return out;
  }
}
