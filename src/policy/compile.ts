/**
 * @module policy/compile
 * Compile a {@link Policy} into an immutable matcher. Built once, off the hot path; `match()` then does
 * no allocation in the common case (ASCII names, valid addresses) and returns one of the Decision
 * objects preallocated per rule.
 *
 * Indexes: one label-walk hash table for every exact/suffix/subdomains name of every rule, one
 * Aho-Corasick automaton for substring/endswith patterns, and longest-prefix tries for destination and
 * source CIDRs (IPv4 and IPv6; IPv4-mapped IPv6 addresses are matched as IPv4). A lookup marks, per
 * rule, which indexed conditions matched (generation stamps, no clearing) and how specifically; rules
 * with none of these conditions are checked every time. Then every candidate's remaining conditions are
 * checked and the winner is chosen by precedence:
 *   1. higher `priority`;
 *   2. more specific match: host (more labels; exact > subdomains > suffix > substring/endswith),
 *      then destination prefix length, then source prefix length, then number of other conditions;
 *   3. earlier in the file.
 * A block/throttle rule never applies to a protected flow (name in `protected`, or either address in a
 * protected CIDR) unless it carries `protected_override`; the next candidate is considered instead, and
 * when none is left the flow is allowed with rule_id '$protected'.
 */
import { domainToASCII } from 'node:url';
import { DomainTable, DomainTableBuilder, KIND_EXACT, KIND_SUBDOMAINS, KIND_SUFFIX } from './domains.js';
import { KIND_ENDSWITH, KIND_SUBSTRING, PatternAutomaton, PatternAutomatonBuilder } from './automaton.js';
import { PrefixTrie, PrefixTrieBuilder } from './trie.js';
import { parseCidr, parseV4Fast, parseV6Fast, v6CoversMapped } from './ip.js';
import { expiresAtMs } from './load.js';
import {
  PROTECTED_RULE_ID,
  type CompiledPolicy,
  type Decision,
  type DefaultAction,
  type Inspection,
  type MatchInput,
  type Policy,
  type Rule,
} from './types.js';

const NEED_HOST = 1;
const NEED_DST = 2;
const NEED_SRC = 4;

export interface CompileOptions {
  /** Rules whose `expires` is at or before this instant (ms) are left out. Default: Date.now(). */
  now?: number;
}

/** The lookup indexes of a compiled policy (what the compiled registry file carries: policy/compiled). */
export interface MatcherIndexes {
  domains: DomainTable;
  patterns: PatternAutomaton;
  dst4: PrefixTrie;
  dst6: PrefixTrie;
  src4: PrefixTrie;
  src6: PrefixTrie;
  exc4: PrefixTrie;
  exc6: PrefixTrie;
  /** Prefixes added per kind of index (0: that index is skipped). */
  dstCount: number;
  srcCount: number;
  excCount: number;
  /** Whether any protected name or prefix is in the indexes (pseudo-rule P = number of rules). */
  hasProt: boolean;
}

/**
 * Indexes built earlier (a compiled registry file) and the `order` of each rule they number, in index
 * order: the rules in force when they were built. A rule among them that has expired since is dead
 * (never a candidate); the policy's lists may be empty, the indexes hold their entries.
 */
export interface Prebuilt {
  indexes: MatcherIndexes;
  orders: readonly number[];
}

class IpIndex {
  readonly b4 = new PrefixTrieBuilder();
  readonly b6 = new PrefixTrieBuilder();
  count = 0;
  add(text: string, rule: number): void {
    const c = parseCidr(text, true);
    if (typeof c === 'string') throw new Error(`invalid CIDR '${text}' reached the compiler: ${c}`);
    this.count++;
    if (c.v === 4) this.b4.insert([c.addr], c.len, rule);
    else {
      this.b6.insert(c.w, c.len, rule);
      if (v6CoversMapped(c)) this.b4.insert([0], 0, rule);
    }
  }
}

function freezeDecision(d: Decision): Decision {
  return Object.freeze(d);
}

function decisionOf(rule_id: string | null, a: DefaultAction): Decision {
  const d: Decision = { rule_id, action: a.action };
  if (a.action === 'block') {
    d.method = a.method ?? 'rst';
    if (a.block) d.block = Object.freeze({ ...a.block });
  }
  if (a.action === 'throttle') {
    d.rate_bps = a.rate_bps;
    d.burst_bytes = a.burst_bytes;
  }
  return freezeDecision(d);
}

function isRestrictive(a: string): boolean {
  return a === 'block' || a === 'throttle';
}

export class Matcher implements CompiledPolicy {
  readonly policy: Policy;
  readonly inspection: Readonly<Inspection>;
  /** The rules in force (enabled, not expired). */
  readonly rules: readonly Rule[];
  /** `order` of every rule the indexes number (index order; a superset of `rules` when prebuilt). */
  readonly ruleOrders: readonly number[];
  readonly expiresAt: number | null;
  readonly defaultDecision: Decision;
  readonly protectedDecision: Decision;
  private readonly decisions: Decision[];

  // per-rule static data
  private readonly priority: Int32Array;
  private readonly need: Uint8Array;
  private readonly otherSpec: Int32Array;
  private readonly restrictive: Uint8Array;
  private readonly override: Uint8Array;
  private readonly proto: (string | null)[];
  private readonly portFrom: (Int32Array | null)[];
  private readonly portTo: (Int32Array | null)[];
  private readonly appProto: (string[] | null)[];
  private readonly alpn: (string[] | null)[];
  private readonly ja4: (string[] | null)[];
  private readonly quic: (number[] | null)[];
  private readonly ech: Int8Array;
  private readonly lenFrom: (Int32Array | null)[];
  private readonly lenTo: (Int32Array | null)[];
  /** Per rule: character offsets into the payload head (2 per byte) and the hex expected there. */
  private readonly payOff: (Int32Array | null)[];
  private readonly payHex: (string[] | null)[];
  /** Per rule: 1 when it has except_dest_ip (checked through the exc tries). */
  private readonly hasExcept: Uint8Array;
  private readonly always: Int32Array;
  /** Per indexed rule: 0 when it expired after the prebuilt indexes were made (never a candidate). */
  private readonly live: Uint8Array;

  // indexes
  readonly indexes: MatcherIndexes;
  readonly domains: DomainTable;
  readonly patterns: PatternAutomaton;
  readonly dst4: PrefixTrie;
  readonly dst6: PrefixTrie;
  readonly src4: PrefixTrie;
  readonly src6: PrefixTrie;
  readonly exc4: PrefixTrie;
  readonly exc6: PrefixTrie;
  private readonly hasExc: boolean;
  private readonly hasHost: boolean;
  private readonly hasDst: boolean;
  private readonly hasSrc: boolean;
  private readonly literalDot: boolean;

  /** Pseudo-rule index under which protected names/CIDRs are stored in the same indexes. */
  private readonly P: number;
  private readonly hasProt: boolean;

  // scratch (single-threaded use)
  private gen = 0;
  private readonly stampHost: Int32Array;
  private readonly specHost: Int32Array;
  private readonly stampDst: Int32Array;
  private readonly specDst: Int32Array;
  private readonly stampSrc: Int32Array;
  private readonly specSrc: Int32Array;
  private readonly stampExc: Int32Array;
  private readonly specExc: Int32Array;
  private readonly touch: Int32Array;
  private readonly cand: Int32Array;
  private readonly w6 = new Uint32Array(4);
  private readonly g6 = new Uint16Array(8);

  constructor(policy: Policy, opts: CompileOptions = {}, prebuilt: Prebuilt | null = null) {
    const now = opts.now ?? Date.now();
    this.policy = policy;
    this.inspection = Object.freeze({ ...policy.inspection });
    this.literalDot = policy.names.trailing_dot === 'literal';
    let nextExpiry: number | null = null;
    const rules: Rule[] = [];
    const live: number[] = [];
    const inForce = (r: Rule): boolean => {
      if (!r.enabled) return false;
      if (r.expires === null) return true;
      const t = expiresAtMs(r.expires);
      if (t <= now) return false;
      if (nextExpiry === null || t < nextExpiry) nextExpiry = t;
      return true;
    };
    if (prebuilt === null) {
      for (const r of policy.rules)
        if (inForce(r)) {
          rules.push(r);
          live.push(1);
        }
    } else {
      for (const o of prebuilt.orders) {
        const r = policy.rules[o];
        if (r === undefined || r.order !== o || !r.enabled)
          throw new Error(`the indexes number rule #${o}, which the policy does not have (enabled)`);
        rules.push(r);
        live.push(inForce(r) ? 1 : 0);
      }
    }
    this.rules = rules.filter((_, i) => live[i] === 1);
    this.ruleOrders = rules.map((r) => r.order);
    this.live = Uint8Array.from(live);
    this.expiresAt = nextExpiry;
    const n = rules.length;
    this.priority = new Int32Array(n);
    this.need = new Uint8Array(n);
    this.otherSpec = new Int32Array(n);
    this.restrictive = new Uint8Array(n);
    this.override = new Uint8Array(n);
    this.ech = new Int8Array(n);
    this.proto = [];
    this.portFrom = [];
    this.portTo = [];
    this.appProto = [];
    this.alpn = [];
    this.ja4 = [];
    this.quic = [];
    this.lenFrom = [];
    this.lenTo = [];
    this.payOff = [];
    this.payHex = [];
    this.hasExcept = new Uint8Array(n);
    this.decisions = [];
    const dom = new DomainTableBuilder();
    const pat = new PatternAutomatonBuilder();
    const dst = new IpIndex();
    const src = new IpIndex();
    const exc = new IpIndex();
    const always: number[] = [];
    for (let i = 0; i < n; i++) {
      const r = rules[i];
      const m = r.match;
      this.priority[i] = r.priority;
      this.restrictive[i] = isRestrictive(r.action) ? 1 : 0;
      this.override[i] = r.protected_override ? 1 : 0;
      this.decisions.push(decisionOf(r.id, r));
      let need = 0;
      if (m.host) {
        need |= NEED_HOST;
      }
      if (m.host && prebuilt === null) {
        dom.addAll(m.host.exact, i, KIND_EXACT);
        dom.addAll(m.host.suffix, i, KIND_SUFFIX);
        dom.addAll(m.host.subdomains, i, KIND_SUBDOMAINS);
        for (const x of m.host.substring) pat.add(x, i, KIND_SUBSTRING);
        for (const x of m.host.endswith) pat.add(x, i, KIND_ENDSWITH);
      }
      if (m.dest_ip) {
        need |= NEED_DST;
        if (prebuilt === null) for (const c of m.dest_ip) dst.add(c, i);
      }
      if (m.src_ip) {
        need |= NEED_SRC;
        if (prebuilt === null) for (const c of m.src_ip) src.add(c, i);
      }
      this.need[i] = need;
      if (need === 0) always.push(i);
      let other = 0;
      this.proto.push(m.proto);
      if (m.proto) other++;
      if (m.dest_port) {
        other++;
        this.portFrom.push(Int32Array.from(m.dest_port, (p) => p.from));
        this.portTo.push(Int32Array.from(m.dest_port, (p) => p.to));
      } else {
        this.portFrom.push(null);
        this.portTo.push(null);
      }
      this.appProto.push(m.app_proto);
      if (m.app_proto) other++;
      this.alpn.push(m.alpn);
      if (m.alpn) other++;
      this.ja4.push(m.ja4);
      if (m.ja4) other++;
      this.quic.push(m.quic_version);
      if (m.quic_version) other++;
      this.ech[i] = m.ech === null ? -1 : m.ech ? 1 : 0;
      if (m.ech !== null) other++;
      if (m.payload_len) {
        other++;
        this.lenFrom.push(Int32Array.from(m.payload_len, (p) => p.from));
        this.lenTo.push(Int32Array.from(m.payload_len, (p) => p.to));
      } else {
        this.lenFrom.push(null);
        this.lenTo.push(null);
      }
      if (m.payload) {
        other++;
        this.payOff.push(Int32Array.from(m.payload, (b) => b.offset * 2));
        this.payHex.push(m.payload.map((b) => b.hex));
      } else {
        this.payOff.push(null);
        this.payHex.push(null);
      }
      if (m.except_dest_ip) {
        this.hasExcept[i] = 1;
        if (prebuilt === null) for (const c of m.except_dest_ip) exc.add(c, i);
      }
      this.otherSpec[i] = other > 15 ? 15 : other;
    }
    // protected names and CIDRs share the indexes, under pseudo-rule n
    const P = n;
    this.P = P;
    let ix: MatcherIndexes;
    if (prebuilt === null) {
      dom.addAll(policy.protected.exact, P, KIND_EXACT);
      dom.addAll(policy.protected.suffix, P, KIND_SUFFIX);
      for (const cidr of policy.protected.cidr) {
        dst.add(cidr, P);
        src.add(cidr, P);
      }
      ix = {
        domains: dom.build(),
        patterns: pat.build(),
        dst4: dst.b4.build(true),
        dst6: dst.b6.build(),
        src4: src.b4.build(true),
        src6: src.b6.build(),
        exc4: exc.b4.build(true),
        exc6: exc.b6.build(),
        dstCount: dst.count,
        srcCount: src.count,
        excCount: exc.count,
        hasProt:
          policy.protected.exact.length + policy.protected.suffix.length + policy.protected.cidr.length > 0,
      };
    } else ix = prebuilt.indexes;
    this.indexes = ix;
    this.hasProt = ix.hasProt;
    this.always = Int32Array.from(always);
    this.domains = ix.domains;
    this.patterns = ix.patterns;
    this.dst4 = ix.dst4;
    this.dst6 = ix.dst6;
    this.src4 = ix.src4;
    this.src6 = ix.src6;
    this.exc4 = ix.exc4;
    this.exc6 = ix.exc6;
    this.hasExc = ix.excCount > 0;
    this.hasHost = this.domains.size > 0 || !this.patterns.empty;
    this.hasDst = ix.dstCount > 0;
    this.hasSrc = ix.srcCount > 0;

    this.defaultDecision = decisionOf(null, policy.default);
    this.protectedDecision = freezeDecision({ rule_id: PROTECTED_RULE_ID, action: 'allow' });
    this.stampHost = new Int32Array(n + 1);
    this.specHost = new Int32Array(n + 1);
    this.stampDst = new Int32Array(n + 1);
    this.specDst = new Int32Array(n + 1);
    this.stampSrc = new Int32Array(n + 1);
    this.specSrc = new Int32Array(n + 1);
    this.stampExc = new Int32Array(n + 1);
    this.specExc = new Int32Array(n + 1);
    this.touch = new Int32Array(n + 1);
    this.cand = new Int32Array(n + 2);
    Object.freeze(this.decisions);
  }

  get ruleCount(): number {
    return this.rules.length;
  }

  private nextGen(): number {
    if (this.gen >= 0x7ffffff0) {
      this.gen = 0;
      this.stampHost.fill(0);
      this.stampDst.fill(0);
      this.stampSrc.fill(0);
      this.stampExc.fill(0);
      this.touch.fill(0);
    }
    return ++this.gen;
  }

  /** Mark rules whose host conditions match. */
  private matchHost(input: MatchInput, gen: number): void {
    const host = input.host;
    if (host === null || host === undefined) return;
    const raw = input.raw_host ?? host;
    if (this.domains.size > 0) {
      const h = this.literalDot ? raw : host;
      let end = h.length;
      if (!this.literalDot && end > 0 && h.charCodeAt(end - 1) === 46) end--;
      if (end > 0 && !this.domains.walk(h, end, this.stampHost, this.specHost, gen, this.touch, this.cand)) {
        // non-ASCII name: compare its punycode form
        const a = domainToASCII(h.slice(0, end));
        if (a) this.domains.walk(a, a.length, this.stampHost, this.specHost, gen, this.touch, this.cand);
      }
    }
    if (!this.patterns.empty)
      this.patterns.walk(raw, this.stampHost, this.specHost, gen, this.touch, this.cand);
  }

  /** Mark rules whose address conditions match (dst or src tries); an invalid address matches nothing. */
  private matchIp(
    ip: string,
    t4: PrefixTrie,
    t6: PrefixTrie,
    stamp: Int32Array,
    spec: Int32Array,
    gen: number,
  ): void {
    if (typeof ip !== 'string') return;
    const v4 = parseV4Fast(ip);
    if (v4 >= 0) {
      t4.walk32(v4, stamp, spec, gen, this.touch, this.cand);
      return;
    }
    const w = this.w6;
    if (!parseV6Fast(ip, w, this.g6)) return;
    if (w[0] === 0 && w[1] === 0 && w[2] === 0xffff) t4.walk32(w[3], stamp, spec, gen, this.touch, this.cand);
    else t6.walk128(w, stamp, spec, gen, this.touch, this.cand);
  }

  /** Whether rule r's non-indexed conditions hold. */
  private others(r: number, input: MatchInput): boolean {
    const proto = this.proto[r];
    if (proto !== null && proto !== input.proto) return false;
    const pf = this.portFrom[r];
    if (pf !== null) {
      const pt = this.portTo[r]!;
      const port = input.dest_port;
      let ok = false;
      for (let k = 0; k < pf.length; k++) {
        if (port >= pf[k] && port <= pt[k]) {
          ok = true;
          break;
        }
      }
      if (!ok) return false;
    }
    const ap = this.appProto[r];
    if (ap !== null) {
      const v = input.app_proto;
      if (v === null || v === undefined || !inListCi(ap, v)) return false;
    }
    const al = this.alpn[r];
    if (al !== null) {
      const offered = input.alpn;
      if (!offered) return false;
      let ok = false;
      for (let k = 0; k < offered.length && !ok; k++) if (al.includes(offered[k])) ok = true;
      if (!ok) return false;
    }
    const j = this.ja4[r];
    if (j !== null) {
      const v = input.ja4;
      if (!v || !inListCi(j, v)) return false;
    }
    const q = this.quic[r];
    if (q !== null) {
      const v = input.quic_version;
      if (!v) return false;
      const n = parseHex(v);
      if (n < 0 || !q.includes(n)) return false;
    }
    const e = this.ech[r];
    if (e >= 0 && (input.ech === true ? 1 : 0) !== e) return false;
    const lf = this.lenFrom[r];
    if (lf !== null) {
      const lt = this.lenTo[r]!;
      const len = input.payload_len;
      if (len === null || len === undefined) return false;
      let ok = false;
      for (let k = 0; k < lf.length; k++) {
        if (len >= lf[k] && len <= lt[k]) {
          ok = true;
          break;
        }
      }
      if (!ok) return false;
    }
    const po = this.payOff[r];
    if (po !== null) {
      const head = input.payload_head;
      if (head === null || head === undefined) return false;
      const ph = this.payHex[r]!;
      for (let k = 0; k < po.length; k++) {
        const want = ph[k];
        const at = po[k];
        if (at + want.length > head.length) return false;
        for (let c = 0; c < want.length; c++)
          if ((head.charCodeAt(at + c) | 32) !== want.charCodeAt(c)) return false;
      }
    }
    return true;
  }

  /** Run the index lookups for a flow; returns the generation whose stamps mark the matches. */
  private mark(input: MatchInput): number {
    const gen = this.nextGen();
    this.cand[0] = 0;
    if (this.hasHost) this.matchHost(input, gen);
    if (this.hasDst) this.matchIp(input.dest_ip, this.dst4, this.dst6, this.stampDst, this.specDst, gen);
    if (this.hasSrc) this.matchIp(input.src_ip, this.src4, this.src6, this.stampSrc, this.specSrc, gen);
    if (this.hasExc) this.matchIp(input.dest_ip, this.exc4, this.exc6, this.stampExc, this.specExc, gen);
    return gen;
  }

  private protectedAt(gen: number): boolean {
    const P = this.P;
    return (
      this.hasProt && (this.stampHost[P] === gen || this.stampDst[P] === gen || this.stampSrc[P] === gen)
    );
  }

  /** Whether the flow touches a protected name or address (either side). */
  isProtected(input: MatchInput): boolean {
    return this.protectedAt(this.mark(input));
  }

  match(input: MatchInput): Decision {
    const gen = this.mark(input);
    const cand = this.cand;
    const P = this.P;
    let best = -1;
    let bestPrio = 0;
    let bestSpec = 0;
    let skipped = false;
    const total = cand[0];
    const always = this.always;
    for (let k = 1 - always.length; k <= total; k++) {
      const r = k <= 0 ? always[-k] : cand[k];
      if (r === P || this.live[r] === 0) continue;
      const need = this.need[r];
      if ((need & NEED_HOST) !== 0 && this.stampHost[r] !== gen) continue;
      if ((need & NEED_DST) !== 0 && this.stampDst[r] !== gen) continue;
      if ((need & NEED_SRC) !== 0 && this.stampSrc[r] !== gen) continue;
      if (this.hasExcept[r] === 1 && this.stampExc[r] === gen) continue;
      const prio = this.priority[r];
      if (best >= 0 && prio < bestPrio) continue;
      const spec =
        ((((need & NEED_HOST) !== 0 ? this.specHost[r] : 0) * 256 +
          ((need & NEED_DST) !== 0 ? this.specDst[r] : 0)) *
          256 +
          ((need & NEED_SRC) !== 0 ? this.specSrc[r] : 0)) *
          16 +
        this.otherSpec[r];
      if (best >= 0 && prio === bestPrio && (spec < bestSpec || (spec === bestSpec && r > best))) continue;
      if (this.otherSpec[r] !== 0 && !this.others(r, input)) continue;
      if (this.restrictive[r] === 1 && this.override[r] === 0) {
        if (this.protectedAt(gen)) {
          skipped = true;
          continue;
        }
      }
      best = r;
      bestPrio = prio;
      bestSpec = spec;
    }
    if (best >= 0) return this.decisions[best];
    if (skipped) return this.protectedDecision;
    if (isRestrictive(this.defaultDecision.action)) {
      if (this.protectedAt(gen)) return this.protectedDecision;
    }
    return this.defaultDecision;
  }

  /** The decision object of a rule (by id), for tests and tools. */
  decisionOf(id: string): Decision | undefined {
    const i = this.decisions.findIndex((d) => d.rule_id === id);
    return i >= 0 && this.live[i] === 1 ? this.decisions[i] : undefined;
  }
}

function inListCi(list: string[], v: string): boolean {
  for (let i = 0; i < list.length; i++) {
    const s = list[i];
    if (s === v) return true;
    if (s.length === v.length && s === v.toLowerCase()) return true;
  }
  return false;
}

function parseHex(s: string): number {
  let i = 0;
  if (s.length > 2 && s.charCodeAt(0) === 48 && (s.charCodeAt(1) | 32) === 120) i = 2;
  if (s.length - i > 8 || s.length === i) return -1;
  let v = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i) | 32;
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/** Compile a policy (immutable result). */
export function compilePolicy(p: Policy, opts: CompileOptions = {}): Matcher {
  return new Matcher(p, opts);
}
