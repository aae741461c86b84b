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
  private names: string[] = [];
  private rules: number[] = [];
  private kinds: number[] = [];

  /** Add a normalised name for `rule` with match kind `kind` (duplicates are merged at build). */
  add(name: string, rule: number, kind: HashKind): void {
    this.names.push(name);
    this.rules.push(rule);
    this.kinds.push(kind);
  }

  /** Number of (name, rule, kind) additions so far. */
  get size(): number {
    return this.names.length;
  }

  build(): DomainTable {
    const adds = this.names.length;
    let bits = 4;
    while (1 << bits < adds * 2) bits++;
    const size = 1 << bits;
    const mask = size - 1;
    const shift = 32 - bits;
    const slots = new Int32Array(size * 4);
    let fbits = 12;
    while (fbits < 24 && 1 << fbits < adds * 16) fbits++;
    const fshift = 32 - fbits;
    const filter = new Int32Array(1 << (fbits - 5));
    const hitRule = new Int32Array(adds);
    const hitKind = new Uint8Array(adds);
    const hitNext = new Int32Array(adds);
    const hitSpec = new Int32Array(adds);
    let totalLen = 0;
    for (let i = 0; i < adds; i++) totalLen += this.names[i].length;
    let bytes = new Uint8Array(totalLen);
    let minLabels = 1 << 30;
    let maxLabels = 0;
    let maxLen = 0;
    let off = 0;
    let hits = 0;
    let entries = 0;
    for (let i = 0; i < adds; i++) {
      const name = this.names[i];
      const len = name.length;
      const h = hashName(name);
      let s = Math.imul(h, 0x9e3779b1) >>> shift;
      let b = -1;
      for (;;) {
        const q = s << 2;
        const lf = slots[q + 2];
        if (lf === 0) break;
        if (slots[q] === h && (lf & 0xff) === len) {
          const o = slots[q + 1];
          let k = 0;
          while (k < len && bytes[o + k] === name.charCodeAt(k)) k++;
          if (k === len) {
            b = q;
            break;
          }
        }
        s = (s + 1) & mask;
      }
      const labels = labelCount(name);
      const kind = this.kinds[i];
      const rule = this.rules[i];
      if (b < 0) {
        b = s << 2;
        for (let k = 0; k < len; k++) bytes[off + k] = name.charCodeAt(k);
        slots[b] = h;
        slots[b + 1] = off;
        slots[b + 2] = len;
        slots[b + 3] = -1;
        off += len;
        entries++;
        if (labels < minLabels) minLabels = labels;
        if (labels > maxLabels) maxLabels = labels;
        if (len > maxLen) maxLen = len;
        const fb = filterBit(h, fshift);
        filter[fb >>> 5] |= 1 << (fb & 31);
      } else {
        let dup = false;
        for (let k = slots[b + 3]; k >= 0; k = hitNext[k]) if (hitRule[k] === rule && hitKind[k] === kind) dup = true;
        if (dup) continue;
      }
      hitRule[hits] = rule;
      hitKind[hits] = kind;
      hitSpec[hits] = hostSpecificity(labels, kind as HashKind);
      hitNext[hits] = slots[b + 3];
      slots[b + 3] = hits;
      slots[b + 2] |= 1 << (8 + kind);
      hits++;
    }
    if (off < bytes.length) bytes = bytes.slice(0, off);
    this.names = [];
    this.rules = [];
    this.kinds = [];
    return new DomainTable(entries, slots, bytes, filter, fshift, hitRule.slice(0, hits), hitKind.slice(0, hits), hitNext.slice(0, hits), hitSpec.slice(0, hits), shift, entries ? minLabels : 1, maxLabels, maxLen);
  }
}

/** Presence filter, ~16 bits per name (at most 2^24 bits): most suffixes of a host are in no rule, and
 *  the filter answers "no" from cache instead of the table from memory. */
function filterBit(h: number, fshift: number): number {
  return Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> fshift;
}

export class DomainTable {
  private readonly mask: number;
  constructor(
    readonly size: number,
    /** Per slot 4 ints: hash, offset of the name in `bytes`, length | flags << 8 (0 = empty), head of the hit list. */
    private readonly slots: Int32Array,
    private readonly bytes: Uint8Array,
    private readonly filter: Int32Array,
    private readonly fshift: number,
    readonly hitRule: Int32Array,
    readonly hitKind: Uint8Array,
    private readonly hitNext: Int32Array,
    private readonly hitSpec: Int32Array,
    private readonly shift: number,
    /** Fewest / most labels and longest name of any entry: the walk skips or stops outside them. */
    private readonly minLabels: number,
    private readonly maxLabels: number,
    private readonly maxLen: number,
  ) {
    this.mask = (slots.length >>> 2) - 1;
  }

  /** Slot index*4 of the suffix host[start, end) with hash h, or -1. */
  private probe(h: number, host: string, start: number, end: number): number {
    const fb = filterBit(h, this.fshift);
    if ((this.filter[fb >>> 5] & (1 << (fb & 31))) === 0) return -1;
    const slots = this.slots;
    const bytes = this.bytes;
    const len = end - start;
    let s = Math.imul(h, 0x9e3779b1) >>> this.shift;
    for (;;) {
      const b = s << 2;
      const lf = slots[b + 2];
      if (lf === 0) return -1;
      if (slots[b] === h && (lf & 0xff) === len) {
        const off = slots[b + 1];
        let k = 0;
        while (k < len && bytes[off + k] === lowerCode(host.charCodeAt(start + k))) k++;
        if (k === len) return b;
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
    const minLabels = this.minLabels;
    const maxLabels = this.maxLabels;
    const stop = end - this.maxLen;
    let h = FNV_OFFSET;
    let labels = 0;
    for (let i = end - 1; i >= 0; i--) {
      if (i < stop) return true; // longer than any entry
      let c = host.charCodeAt(i);
      if (c > 127) return false;
      if (c >= 65 && c <= 90) c += 32;
      h = Math.imul(h ^ c, FNV_PRIME);
      if (i !== 0 && host.charCodeAt(i - 1) !== 46) continue;
      if (++labels < minLabels) continue;
      const b = this.probe(h, host, i, end);
      // whole host: exact + suffix; proper suffix: suffix + subdomains
      if (b >= 0) this.hit(b, i === 0 ? 3 : 6, stamp, spec, gen, touch, cand);
      if (labels >= maxLabels) return true;
    }
    return true;
  }

  private hit(b: number, allow: number, stamp: Int32Array, spec: Int32Array, gen: number, touch: Int32Array, cand: Int32Array): void {
    if (((this.slots[b + 2] >>> 8) & allow) === 0) return;
    for (let k = this.slots[b + 3]; k >= 0; k = this.hitNext[k]) {
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

  private nameAt(b: number): string {
    const off = this.slots[b + 1];
    const len = this.slots[b + 2] & 0xff;
    let s = '';
    for (let k = 0; k < len; k++) s += String.fromCharCode(this.bytes[off + k]);
    return s;
  }

  /** Every (rule, kind, matched name) for a normalised name (offline use: lint, blast radius). */
  collect(name: string): { rule: number; kind: HashKind; name: string }[] {
    const out: { rule: number; kind: HashKind; name: string }[] = [];
    let h = FNV_OFFSET;
    for (let i = name.length - 1; i >= 0; i--) {
      h = Math.imul(h ^ lowerCode(name.charCodeAt(i)), FNV_PRIME);
      if (i === 0 || name.charCodeAt(i - 1) === 46) {
        const b = this.probe(h, name, i, name.length);
        if (b < 0) continue;
        const allow = i === 0 ? 3 : 6;
        for (let k = this.slots[b + 3]; k >= 0; k = this.hitNext[k]) {
          if (((1 << this.hitKind[k]) & allow) === 0) continue;
          out.push({ rule: this.hitRule[k], kind: this.hitKind[k] as HashKind, name: this.nameAt(b) });
        }
      }
    }
    return out;
  }
}
