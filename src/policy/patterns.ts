/**
 * @module policy/patterns
 * Which decisions came through a collateral-prone match type: a rule entry matched by substring or
 * endswith (the 2021 `*t.co*` / `*twitter.com` forms) rather than by an exact name or a
 * domain-and-subdomains entry. Built once per compiled policy from the matcher's own indexes (the
 * pattern automaton says which rules have pattern entries; the label-walk table whether a host is
 * also one of that rule's names), so a matcher loaded from a compiled registry file — whose policy
 * object carries no list entries — answers like one compiled from the text. Asked once per decided
 * flow (not per packet).
 */
import { domainToASCII } from 'node:url';
import { Matcher } from './compile.js';
import type { CompiledPolicy, Decision } from './types.js';

export class PatternIndex {
  /** Rule id → the matcher's index of that rule, for rules with a substring/endswith entry. */
  private readonly rules = new Map<string, number>();
  private readonly m: Matcher | null;
  private readonly stamp: Int32Array;
  private readonly spec: Int32Array;
  private readonly touch: Int32Array;
  private readonly cand: Int32Array;
  private gen = 0;

  constructor(p: CompiledPolicy) {
    this.m = p instanceof Matcher ? p : null;
    const n = this.m ? this.m.ruleOrders.length : 0;
    this.stamp = new Int32Array(n + 1);
    this.spec = new Int32Array(n + 1);
    this.touch = new Int32Array(n + 1);
    this.cand = new Int32Array(n + 2);
    if (!this.m) return;
    const orders = this.m.ruleOrders;
    for (const pat of this.m.patterns.patterns) {
      const r = p.policy.rules[orders[pat.rule]];
      if (r !== undefined) this.rules.set(r.id, pat.rule);
    }
  }

  /** Whether the policy has any pattern rule at all (a cheap skip). */
  get empty(): boolean {
    return this.rules.size === 0;
  }

  /**
   * The decision is non-allow and its rule has pattern entries, and `host` is not matched by one of
   * that rule's exact / suffix / subdomain entries: the flow was caught by the pattern.
   */
  viaPattern(d: Decision, host: string | null): boolean {
    if (d.action === 'allow' || d.rule_id === null || host === null || this.m === null) return false;
    const r = this.rules.get(d.rule_id);
    if (r === undefined) return false;
    let end = host.length;
    if (end > 0 && host.charCodeAt(end - 1) === 46) end--;
    if (end === 0) return true;
    if (++this.gen > 0x7ffffff0) {
      this.gen = 1;
      this.stamp.fill(0);
      this.touch.fill(0);
    }
    this.cand[0] = 0;
    const dom = this.m.domains;
    if (!dom.walk(host, end, this.stamp, this.spec, this.gen, this.touch, this.cand)) {
      const a = domainToASCII(host.slice(0, end)); // non-ASCII: its punycode form, as the matcher does
      if (a) dom.walk(a, a.length, this.stamp, this.spec, this.gen, this.touch, this.cand);
    }
    return this.stamp[r] !== this.gen;
  }
}
