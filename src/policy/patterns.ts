/**
 * @module policy/patterns
 * Which decisions came through a collateral-prone match type: a rule entry matched by substring or
 * endswith (the 2021 `*t.co*` / `*twitter.com` forms) rather than by an exact name or a
 * domain-and-subdomains entry. Built once per compiled policy from its rules' match types; asked
 * once per decided flow (not per packet).
 */
import type { CompiledPolicy, Decision } from './types.js';

interface RuleNames {
  exact: Set<string>;
  /** Suffix entries (name and below) and subdomain entries (below only), as `.name`. */
  below: string[];
  suffix: Set<string>;
}

export class PatternIndex {
  /** Rules with a substring/endswith entry: how their other (non-pattern) names match. */
  private readonly rules = new Map<string, RuleNames>();

  constructor(p: CompiledPolicy) {
    for (const r of p.policy.rules) {
      const h = r.match.host;
      if (!h || (h.substring.length === 0 && h.endswith.length === 0)) continue;
      this.rules.set(r.id, {
        exact: new Set(h.exact),
        suffix: new Set(h.suffix),
        below: [...h.suffix, ...h.subdomains].map((s) => `.${s}`),
      });
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
    if (d.action === 'allow' || d.rule_id === null || host === null) return false;
    const r = this.rules.get(d.rule_id);
    if (!r) return false;
    const n = host.toLowerCase().replace(/\.$/, '');
    if (r.exact.has(n) || r.suffix.has(n)) return false;
    for (const b of r.below) if (n.endsWith(b)) return false;
    return true;
  }
}
