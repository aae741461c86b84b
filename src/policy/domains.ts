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
import { lowerCode } from './names.js';

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

export class DomainTableBuilder {
  /** Chunks of names sharing a (rule, kind): registry lists are added without copying. */
  private chunks: { names: readonly string[]; rule: number; kind: HashKind; owned: boolean }[] = [];
  private count = 0;

  /** Add a normalised name for `rule` with match kind `kind` (duplicates are merged at build). */
  add(name: string, rule: number, kind: HashKind): void {
    const last = this.chunks[this.chunks.length - 1];
    if (last && last.owned && last.rule === rule && last.kind === kind) (last.names as string[]).push(name);
    else this.chunks.push({ names: [name], rule, kind, owned: true });
    this.count++;
  }

  /** Add every (normalised) name of a list for `rule` with kind `kind`; the list is read, not copied. */
  addAll(names: readonly string[], rule: number, kind: HashKind): void {
    if (names.length === 0) return;
    this.chunks.push({ names, rule, kind, owned: false });
    this.count += names.length;
  }

  /** Number of (name, rule, kind) additions so far. */
  get size(): number {
    return this.count;
  }

  build(): DomainTable {
    const adds = this.count;
    let bits = 4;
    while (1 << bits < adds * 2) bits++;
    const size = 1 << bits;
    const mask = size - 1;
    const shift = 32 - bits;
    const slots = new Int32Array(size * SLOT);
    let fbits = 12;
    while (fbits < 24 && 1 << fbits < adds * 16) fbits++;
    const fshift = 32 - fbits;
    const filter = new Int32Array(1 << (fbits - 5));
    const hitRule = new Int32Array(adds);
    const hitKind = new Uint8Array(adds);
    const hitNext = new Int32Array(adds);
    const hitSpec = new Int32Array(adds);
    let totalTail = 0;
    for (const ch of this.chunks)
      for (const n of ch.names) if (n.length > INLINE) totalTail += n.length - INLINE;
    const tails = new Uint8Array(totalTail);
    let minLabels = 1 << 30;
    let maxLabels = 0;
    let maxLen = 0;
    let off = 0;
    let hits = 0;
    let entries = 0;
    for (const chunk of this.chunks) {
      const cnames = chunk.names;
      const kind = chunk.kind;
      const rule = chunk.rule;
      for (let ci = 0; ci < cnames.length; ci++) {
        const name = cnames[ci];
        const len = name.length;
        // hash (right to left) and label count in one pass
        let h = FNV_OFFSET;
        let labels = 1;
        for (let k = len - 1; k >= 0; k--) {
          const c = name.charCodeAt(k);
          if (c === 46) labels++;
          h = Math.imul(h ^ c, FNV_PRIME);
        }
        let s = Math.imul(h, 0x9e3779b1) >>> shift;
        let b = -1;
        for (;;) {
          const q = s * SLOT;
          const lf = slots[q + 1];
          if (lf === 0) break;
          if (slots[q] === h && (lf & 0xff) === len && slotEquals(slots, tails, q, name, 0, len)) {
            b = q;
            break;
          }
          s = (s + 1) & mask;
        }
        if (b < 0) {
          b = s * SLOT;
          slots[b] = h;
          slots[b + 1] = len;
          slots[b + 2] = -1;
          slots[b + 3] = off;
          for (let k = 0; k < len; k++) {
            const c = name.charCodeAt(k);
            if (k < INLINE) slots[b + 4 + (k >>> 2)] |= c << ((k & 3) << 3);
            else tails[off++] = c;
          }
          entries++;
          if (labels < minLabels) minLabels = labels;
          if (labels > maxLabels) maxLabels = labels;
          if (len > maxLen) maxLen = len;
          const fm = filterMix(h);
          filter[(fm >>> fshift) >>> 5] |= filterMask(fm);
        } else {
          let dup = false;
          for (let k = slots[b + 2]; k >= 0; k = hitNext[k])
            if (hitRule[k] === rule && hitKind[k] === kind) dup = true;
          if (dup) continue;
        }
        hitRule[hits] = rule;
        hitKind[hits] = kind;
        hitSpec[hits] = hostSpecificity(labels, kind as HashKind);
        hitNext[hits] = slots[b + 2];
        slots[b + 2] = hits;
        slots[b + 1] |= 1 << (8 + kind);
        hits++;
      }
    }
    // an entry with a single (rule, kind) keeps it in the slot: no second memory access on a hit;
    // the lists of the others are copied into compact arrays
    const cRule: number[] = [];
    const cKind: number[] = [];
    const cNext: number[] = [];
    const cSpec: number[] = [];
    for (let q = 0; q < slots.length; q += SLOT) {
      const k = slots[q + 2];
      if (slots[q + 1] === 0 || k < 0) continue;
      if (hitNext[k] < 0 && hitRule[k] < 1 << 28) {
        slots[q + 2] = -2 - ((hitRule[k] << 2) | hitKind[k]);
        continue;
      }
      let prev = -1;
      for (let e = k; e >= 0; e = hitNext[e]) {
        const idx = cRule.length;
        cRule.push(hitRule[e]);
        cKind.push(hitKind[e]);
        cSpec.push(hitSpec[e]);
        cNext.push(-1);
        if (prev < 0) slots[q + 2] = idx;
        else cNext[prev] = idx;
        prev = idx;
      }
    }
    this.chunks = [];
    this.count = 0;
    return new DomainTable(
      entries,
      slots,
      tails,
      filter,
      fshift,
      Int32Array.from(cRule),
      Uint8Array.from(cKind),
      Int32Array.from(cNext),
      Int32Array.from(cSpec),
      shift,
      entries ? minLabels : 1,
      maxLabels,
      maxLen,
    );
  }
}

/** Ints per slot: hash, length | kinds << 8, hit list head (or -2 - (rule << 2 | kind) for a single
 *  hit, -1 none), offset of the name's tail, then the first 16 name bytes packed in 4 ints. */
const SLOT = 8;
const INLINE = 16;

/** Compare the entry in slot q with host[start, start+len) (ASCII case folded). */
function slotEquals(
  slots: Int32Array,
  tails: Uint8Array,
  q: number,
  host: string,
  start: number,
  len: number,
): boolean {
  const n = len < INLINE ? len : INLINE;
  for (let k = 0; k < n; k++) {
    let c = host.charCodeAt(start + k);
    if (c >= 65 && c <= 90) c += 32;
    if (((slots[q + 4 + (k >>> 2)] >>> ((k & 3) << 3)) & 255) !== c) return false;
  }
  if (len > INLINE) {
    const off = slots[q + 3] - INLINE;
    for (let k = INLINE; k < len; k++) {
      let c = host.charCodeAt(start + k);
      if (c >= 65 && c <= 90) c += 32;
      if (tails[off + k] !== c) return false;
    }
  }
  return true;
}

/** Presence filter, ~16 bits per name (at most 2^24 bits): most suffixes of a host are in no rule, and
 *  the filter answers "no" from cache instead of the table from memory. Blocked: each name sets two
 *  bits of one 32-bit word (one memory access per probe; ~1.5% false positives at 16 bits per name,
 *  where one bit per name gave ~6%). */
function filterMix(h: number): number {
  return Math.imul(h ^ (h >>> 16), 0x85ebca6b);
}
function filterMask(m: number): number {
  return (1 << (m & 31)) | (1 << ((m >>> 5) & 31));
}

/** The arrays and figures of a {@link DomainTable} (what a compiled registry file stores). */
export interface DomainTableParts {
  size: number;
  slots: Int32Array;
  tails: Uint8Array;
  filter: Int32Array;
  fshift: number;
  hitRule: Int32Array;
  hitKind: Uint8Array;
  hitNext: Int32Array;
  hitSpec: Int32Array;
  shift: number;
  minLabels: number;
  maxLabels: number;
  maxLen: number;
}

function intIn(v: number, lo: number, hi: number): boolean {
  return Number.isInteger(v) && v >= lo && v <= hi;
}

export class DomainTable {
  private readonly mask: number;

  /**
   * Rebuild a table from stored parts, checking every offset and link so that no lookup can read
   * out of bounds or loop: a table of 2^k slots with at least one empty slot (probing ends), hit lists
   * that only go forward, rule numbers ≤ `maxRule`, name tails inside `tails`. Throws Error(reason).
   */
  static fromParts(p: DomainTableParts, maxRule: number): DomainTable {
    const nslots = p.slots.length / SLOT;
    const bits = Math.log2(nslots);
    if (!Number.isInteger(bits) || bits < 1 || bits > 30)
      throw new Error(`slot table of ${p.slots.length} ints`);
    if (p.shift !== 32 - bits) throw new Error(`hash shift ${p.shift} for 2^${bits} slots`);
    const fbits = Math.log2(p.filter.length) + 5;
    if (!Number.isInteger(fbits) || fbits < 5 || fbits > 31 || p.fshift !== 32 - fbits)
      throw new Error(`filter of ${p.filter.length} words with shift ${p.fshift}`);
    const L = p.hitRule.length;
    if (p.hitKind.length !== L || p.hitNext.length !== L || p.hitSpec.length !== L)
      throw new Error('hit arrays of different lengths');
    if (!intIn(p.minLabels, 1, 255) || !intIn(p.maxLabels, 0, 255) || !intIn(p.maxLen, 0, 255))
      throw new Error('label / length bounds out of range');
    if (!intIn(p.size, 0, nslots - 1)) throw new Error(`entry count ${p.size}`);
    const slots = p.slots;
    const tl = p.tails.length;
    let empty = 0;
    let used = 0;
    for (let q = 0; q < slots.length; q += SLOT) {
      const lf = slots[q + 1];
      if (lf === 0) {
        empty++;
        continue;
      }
      used++;
      const len = lf & 0xff;
      if (lf >>> 11 !== 0 || len === 0) throw new Error(`slot ${q / SLOT}: bad length/kinds word`);
      const head = slots[q + 2];
      if (head < -1) {
        const code = -2 - head;
        if (code >>> 2 > maxRule || (code & 3) > 2) throw new Error(`slot ${q / SLOT}: bad rule`);
      } else if (head >= L) throw new Error(`slot ${q / SLOT}: hit list out of range`);
      if (len > INLINE) {
        const off = slots[q + 3];
        if (off < 0 || off + len - INLINE > tl) throw new Error(`slot ${q / SLOT}: name tail out of range`);
      }
    }
    if (empty === 0) throw new Error('slot table has no empty slot');
    if (used !== p.size) throw new Error(`${used} slots used, header says ${p.size}`);
    for (let k = 0; k < L; k++) {
      const nx = p.hitNext[k];
      if (nx !== -1 && (nx <= k || nx >= L)) throw new Error(`hit ${k}: link out of order`);
      if (p.hitRule[k] < 0 || p.hitRule[k] > maxRule || p.hitKind[k] > 2)
        throw new Error(`hit ${k}: bad rule/kind`);
    }
    return new DomainTable(
      p.size,
      p.slots,
      p.tails,
      p.filter,
      p.fshift,
      p.hitRule,
      p.hitKind,
      p.hitNext,
      p.hitSpec,
      p.shift,
      p.minLabels,
      p.maxLabels,
      p.maxLen,
    );
  }

  /** The stored form (arrays shared, not copied). */
  parts(): DomainTableParts {
    return {
      size: this.size,
      slots: this.slots,
      tails: this.tails,
      filter: this.filter,
      fshift: this.fshift,
      hitRule: this.hitRule,
      hitKind: this.hitKind,
      hitNext: this.hitNext,
      hitSpec: this.hitSpec,
      shift: this.shift,
      minLabels: this.minLabels,
      maxLabels: this.maxLabels,
      maxLen: this.maxLen,
    };
  }

  constructor(
    readonly size: number,
    /** SLOT ints per slot (see SLOT). */
    private readonly slots: Int32Array,
    /** Name bytes beyond the first 16. */
    private readonly tails: Uint8Array,
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
    this.mask = slots.length / SLOT - 1;
  }

  /** Slot offset of the suffix host[start, end) with hash h, or -1. */
  private probe(h: number, host: string, start: number, end: number): number {
    const fm = filterMix(h);
    const want = filterMask(fm);
    if ((this.filter[(fm >>> this.fshift) >>> 5] & want) !== want) return -1;
    const slots = this.slots;
    const len = end - start;
    let s = Math.imul(h, 0x9e3779b1) >>> this.shift;
    for (;;) {
      const b = s * SLOT;
      const lf = slots[b + 1];
      if (lf === 0) return -1;
      if (slots[b] === h && (lf & 0xff) === len && slotEquals(slots, this.tails, b, host, start, len))
        return b;
      s = (s + 1) & this.mask;
    }
  }

  /**
   * Match host[0, end) (ASCII case-insensitive). Marks matching rules like PrefixTrie.walk32 (spec =
   * best host specificity). Returns false, having marked nothing, when the host has a non-ASCII
   * character (the caller converts it to punycode and calls again).
   */
  walk(
    host: string,
    end: number,
    stamp: Int32Array,
    spec: Int32Array,
    gen: number,
    touch: Int32Array,
    cand: Int32Array,
  ): boolean {
    const minLabels = this.minLabels;
    const maxLabels = this.maxLabels;
    // a suffix host[j, end) with j < stop is longer than any entry
    const stop = end - this.maxLen;
    let h = FNV_OFFSET;
    let labels = 0;
    // Right to left; at each '.' the hash of the suffix after it is complete, at the start the whole.
    for (let i = end - 1; ; i--) {
      if (i + 1 < stop) return true;
      if (i < 0) {
        if (++labels >= minLabels) {
          const b = this.probe(h, host, 0, end);
          if (b >= 0) this.hit(b, 3, labels, stamp, spec, gen, touch, cand); // whole host: exact + suffix
        }
        return true;
      }
      let c = host.charCodeAt(i);
      if (c === 46) {
        if (++labels >= minLabels) {
          const b = this.probe(h, host, i + 1, end);
          if (b >= 0) this.hit(b, 6, labels, stamp, spec, gen, touch, cand); // proper suffix: suffix + subdomains
        }
        if (labels >= maxLabels) return true;
      } else if (c > 127) return false;
      else if (c >= 65 && c <= 90) c += 32;
      h = Math.imul(h ^ c, FNV_PRIME);
    }
  }

  private hit(
    b: number,
    allow: number,
    labels: number,
    stamp: Int32Array,
    spec: Int32Array,
    gen: number,
    touch: Int32Array,
    cand: Int32Array,
  ): void {
    const slots = this.slots;
    if (((slots[b + 1] >>> 8) & allow) === 0) return;
    const head = slots[b + 2];
    if (head < -1) {
      // single hit stored in the slot
      const code = -2 - head;
      const r = code >>> 2;
      const kind = code & 3;
      const sp = labels * 4 + (kind === 0 ? 3 : kind);
      if (stamp[r] !== gen) {
        stamp[r] = gen;
        spec[r] = sp;
      } else if (sp > spec[r]) spec[r] = sp;
      if (touch[r] !== gen) {
        touch[r] = gen;
        cand[++cand[0]] = r;
      }
      return;
    }
    for (let k = head; k >= 0; k = this.hitNext[k]) {
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

  /** (rule, kind) pairs of the entry in slot b. */
  private hitsOf(b: number): [number, HashKind][] {
    const head = this.slots[b + 2];
    if (head < -1) {
      const code = -2 - head;
      return [[code >>> 2, (code & 3) as HashKind]];
    }
    const out: [number, HashKind][] = [];
    for (let k = head; k >= 0; k = this.hitNext[k]) out.push([this.hitRule[k], this.hitKind[k] as HashKind]);
    return out;
  }

  private nameAt(b: number): string {
    const len = this.slots[b + 1] & 0xff;
    let s = '';
    for (let k = 0; k < len; k++)
      s += String.fromCharCode(
        k < INLINE
          ? (this.slots[b + 4 + (k >>> 2)] >>> ((k & 3) << 3)) & 255
          : this.tails[this.slots[b + 3] - INLINE + k],
      );
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
        for (const [rule, kind] of this.hitsOf(b)) {
          if (((1 << kind) & allow) === 0) continue;
          out.push({ rule, kind, name: this.nameAt(b) });
        }
      }
    }
    return out;
  }
}
