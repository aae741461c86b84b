/**
 * @module policy/automaton
 * Aho-Corasick automaton for the emulation-only match types: `substring` (pattern anywhere in the
 * name, the 2021 `*t.co*` behaviour) and `endswith` (name ends with the pattern, *no* label boundary,
 * the 2021 `*twitter.com` behaviour). One pass over the name finds every pattern occurrence; transitions
 * are a dense table over a 40-symbol alphabet (a-z, 0-9, '-', '.', '_', other), ASCII case folded.
 */
import { lowerCode } from './names.js';

export const KIND_SUBSTRING = 3;
export const KIND_ENDSWITH = 4;
export type EmulationKind = 3 | 4;

const SYMBOLS = 40;
const SYM = new Uint8Array(128);
for (let c = 97; c <= 122; c++) SYM[c] = c - 96;
for (let c = 48; c <= 57; c++) SYM[c] = 27 + c - 48;
SYM[45] = 37;
SYM[46] = 38;
SYM[95] = 39;

/** Specificity of an emulation-kind match: below every label-based match. */
export const EMULATION_SPECIFICITY = 1;

export class PatternAutomatonBuilder {
  private patterns: { text: string; rule: number; kind: EmulationKind }[] = [];

  add(text: string, rule: number, kind: EmulationKind): void {
    if (this.patterns.some((p) => p.text === text && p.rule === rule && p.kind === kind)) return;
    this.patterns.push({ text, rule, kind });
  }

  get size(): number {
    return this.patterns.length;
  }

  build(): PatternAutomaton {
    const go: number[][] = [new Array<number>(SYMBOLS).fill(-1)];
    const own: number[][] = [[]];
    this.patterns.forEach((p, pi) => {
      let s = 0;
      for (let i = 0; i < p.text.length; i++) {
        const c = lowerCode(p.text.charCodeAt(i));
        const sym = c < 128 ? SYM[c] : 0;
        if (go[s][sym] < 0) {
          go[s][sym] = go.length;
          go.push(new Array<number>(SYMBOLS).fill(-1));
          own.push([]);
        }
        s = go[s][sym];
      }
      own[s].push(pi);
    });
    const n = go.length;
    const fail = new Array<number>(n).fill(0);
    const out: number[][] = own.map((o) => o.slice());
    const queue: number[] = [];
    for (let a = 0; a < SYMBOLS; a++) {
      const t = go[0][a];
      if (t < 0) go[0][a] = 0;
      else {
        fail[t] = 0;
        queue.push(t);
      }
    }
    for (let qi = 0; qi < queue.length; qi++) {
      const s = queue[qi];
      out[s].push(...out[fail[s]]);
      for (let a = 0; a < SYMBOLS; a++) {
        const t = go[s][a];
        if (t < 0) go[s][a] = go[fail[s]][a];
        else {
          fail[t] = go[fail[s]][a];
          queue.push(t);
        }
      }
    }
    // symbol 0 ("other") never appears in a pattern: it always leads back to the root.
    const table = new Int32Array(n * SYMBOLS);
    for (let s = 0; s < n; s++)
      for (let a = 0; a < SYMBOLS; a++) table[s * SYMBOLS + a] = a === 0 ? 0 : go[s][a];
    const outStart = new Int32Array(n + 1);
    const flat: number[] = [];
    for (let s = 0; s < n; s++) {
      outStart[s] = flat.length;
      flat.push(...out[s]);
    }
    outStart[n] = flat.length;
    const outRule = Int32Array.from(flat, (pi) => this.patterns[pi].rule);
    const outKind = Uint8Array.from(flat, (pi) => this.patterns[pi].kind);
    return new PatternAutomaton(table, outStart, outRule, outKind, this.patterns.slice());
  }
}

/** The arrays of a {@link PatternAutomaton} (what a compiled registry file stores). */
export interface PatternAutomatonParts {
  table: Int32Array;
  outStart: Int32Array;
  outRule: Int32Array;
  outKind: Uint8Array;
  patterns: readonly { text: string; rule: number; kind: EmulationKind }[];
}

export class PatternAutomaton {
  /**
   * Rebuild an automaton from stored parts, checking that every transition is a state, the output
   * ranges are in order and inside the output arrays, and rules are ≤ `maxRule`. Throws Error(reason).
   */
  static fromParts(p: PatternAutomatonParts, maxRule: number): PatternAutomaton {
    const S = p.table.length / SYMBOLS;
    if (!Number.isInteger(S) || S < 1) throw new Error(`transition table of ${p.table.length} ints`);
    for (let i = 0; i < p.table.length; i++)
      if (p.table[i] < 0 || p.table[i] >= S) throw new Error(`transition ${i}: no such state`);
    const O = p.outRule.length;
    if (p.outKind.length !== O || p.outStart.length !== S + 1)
      throw new Error('output arrays of wrong length');
    if (p.outStart[0] !== 0 || p.outStart[S] !== O) throw new Error('output ranges do not cover the outputs');
    for (let s = 0; s < S; s++)
      if (p.outStart[s + 1] < p.outStart[s]) throw new Error(`state ${s}: output range`);
    for (let k = 0; k < O; k++)
      if (
        p.outRule[k] < 0 ||
        p.outRule[k] > maxRule ||
        (p.outKind[k] !== KIND_SUBSTRING && p.outKind[k] !== KIND_ENDSWITH)
      )
        throw new Error(`output ${k}: bad rule/kind`);
    if (!Array.isArray(p.patterns)) throw new Error('patterns is not a list');
    for (const x of p.patterns)
      if (
        typeof x?.text !== 'string' ||
        !Number.isInteger(x.rule) ||
        x.rule < 0 ||
        x.rule > maxRule ||
        (x.kind !== KIND_SUBSTRING && x.kind !== KIND_ENDSWITH)
      )
        throw new Error('bad pattern entry');
    return new PatternAutomaton(p.table, p.outStart, p.outRule, p.outKind, p.patterns);
  }

  /** The stored form (arrays shared, not copied). */
  parts(): PatternAutomatonParts {
    return {
      table: this.table,
      outStart: this.outStart,
      outRule: this.outRule,
      outKind: this.outKind,
      patterns: this.patterns,
    };
  }

  constructor(
    private readonly table: Int32Array,
    private readonly outStart: Int32Array,
    private readonly outRule: Int32Array,
    private readonly outKind: Uint8Array,
    readonly patterns: readonly { text: string; rule: number; kind: EmulationKind }[],
  ) {}

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  /** Scan `name` whole; mark rules like PrefixTrie.walk32 with spec EMULATION_SPECIFICITY. */
  walk(
    name: string,
    stamp: Int32Array,
    spec: Int32Array,
    gen: number,
    touch: Int32Array,
    cand: Int32Array,
  ): void {
    const table = this.table;
    const outStart = this.outStart;
    const n = name.length;
    let s = 0;
    for (let i = 0; i < n; i++) {
      const c = lowerCode(name.charCodeAt(i));
      s = table[s * SYMBOLS + (c < 128 ? SYM[c] : 0)];
      const a = outStart[s];
      const b = outStart[s + 1];
      for (let k = a; k < b; k++) {
        if (this.outKind[k] === KIND_ENDSWITH && i !== n - 1) continue;
        const r = this.outRule[k];
        if (stamp[r] !== gen) {
          stamp[r] = gen;
          spec[r] = EMULATION_SPECIFICITY;
        }
        if (touch[r] !== gen) {
          touch[r] = gen;
          cand[++cand[0]] = r;
        }
      }
    }
  }

  /** Every (rule, kind, pattern) that matches `name` (offline use). */
  collect(name: string): { rule: number; kind: EmulationKind; pattern: string }[] {
    const out: { rule: number; kind: EmulationKind; pattern: string }[] = [];
    const lname = name.toLowerCase();
    for (const p of this.patterns) {
      if (p.kind === KIND_SUBSTRING ? lname.includes(p.text) : lname.endsWith(p.text))
        out.push({ rule: p.rule, kind: p.kind, pattern: p.text });
    }
    return out;
  }
}
