/**
 * @module policy/lint
 * Static checks of a policy — what a human reviewer would miss:
 * - `emulation-substring` / `emulation-endswith` (error): a substring or label-less suffix pattern,
 *   with how many reference names it hits (well-known first);
 * - `short-pattern` (warning): such a pattern shorter than 6 characters;
 * - `public-suffix` (error; warning for the PSL's private section) and `single-label` (warning): a
 *   suffix/subdomains rule on a public suffix or a bare label;
 * - `protected-hit` (error): a block/throttle rule that matches a protected name or CIDR (from the
 *   policy or `--protected`), unless it has `protected_override` (then `protected-override`, info);
 * - `shadowed` (warning): every name of a rule is decided by other rules first; `overlap`
 *   (warning when the actions differ, else info): some are;
 * - `duplicate` (warning) and `redundant` (info): entries repeated or covered inside one rule;
 * - `empty-match` (warning), `expired` (warning), `disabled` (info), `no-provenance` (info);
 * - `blast-radius` (info): for every rule with name conditions, how many reference names it matches,
 *   with examples in reference order.
 */
import { parse as parseDomain } from 'tldts';
import { Matcher, compilePolicy } from './compile.js';
import { DomainTableBuilder, KIND_EXACT, KIND_SUFFIX, hostSpecificity, type HashKind } from './domains.js';
import { EMULATION_SPECIFICITY } from './automaton.js';
import { expiresAtMs } from './load.js';
import { isWithin, labelCount } from './names.js';
import { parseCidr, type Cidr } from './ip.js';
import type { MatchInput, Policy, RuleMatch, SourcePos } from './types.js';
import { collectPath } from './trie.js';
import type { Reference } from './reference.js';

export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  severity: Severity;
  code: string;
  rule_id: string | null;
  message: string;
  examples: string[];
  /** How many items the finding is about (names hit, entries duplicated, ...), when it counts. */
  count?: number;
  pos?: SourcePos | null;
}

export interface LintOptions {
  references?: Reference[];
  /** Extra protected names (exact), e.g. from `--protected FILE`. */
  protectedNames?: string[];
  now?: number;
  /** Examples per finding (default 10). */
  maxExamples?: number;
  /** Entries per rule examined for shadowing/overlap (default: all). */
  maxEntries?: number;
}

const SEVERITY_ORDER: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

function fmtCount(n: number): string {
  return n.toLocaleString('en');
}

function otherKey(m: RuleMatch): string {
  return JSON.stringify([
    m.dest_ip,
    m.src_ip,
    m.dest_port,
    m.proto,
    m.app_proto,
    m.alpn,
    m.ja4,
    m.quic_version,
    m.ech,
  ]);
}

function otherCount(m: RuleMatch): number {
  return [m.proto, m.dest_port, m.app_proto, m.alpn, m.ja4, m.quic_version, m.ech].filter((x) => x !== null)
    .length;
}

function hasNonHost(m: RuleMatch): boolean {
  return [m.dest_ip, m.src_ip, m.dest_port, m.proto, m.app_proto, m.alpn, m.ja4, m.quic_version, m.ech].some(
    (x) => x !== null,
  );
}

function cidrOverlap(a: Cidr, b: Cidr): boolean {
  if (a.v !== b.v) return false;
  const len = Math.min(a.len, b.len);
  if (a.v === 4 && b.v === 4) {
    if (len === 0) return true;
    const m = (0xffffffff << (32 - len)) >>> 0;
    return (a.addr & m) >>> 0 === (b.addr & m) >>> 0;
  }
  const aw = (a as Extract<Cidr, { v: 6 }>).w;
  const bw = (b as Extract<Cidr, { v: 6 }>).w;
  for (let i = 0; i < 4; i++) {
    const bits = Math.max(0, Math.min(32, len - 32 * i));
    if (bits === 0) break;
    const m = (0xffffffff << (32 - bits)) >>> 0;
    if ((aw[i] & m) >>> 0 !== (bw[i] & m) >>> 0) return false;
  }
  return true;
}

/** A matcher over every rule (enabled or not), indexed like policy.rules. */
function fullIndex(p: Policy): Matcher {
  return new Matcher(
    {
      ...p,
      protected: { exact: [], suffix: [], cidr: [] },
      rules: p.rules.map((r) => ({ ...r, enabled: true, expires: null })),
    },
    { now: 0 },
  );
}

interface Hit {
  rule: number;
  spec: number;
  /** The rule entry that matched (name or pattern) and its kind. */
  entry: string;
  kind: string;
}

const KIND_NAMES = ['exact', 'suffix', 'subdomains', 'substring', 'endswith'];

function hitsFor(ix: Matcher, name: string): Hit[] {
  const out: Hit[] = [];
  for (const h of ix.domains.collect(name))
    out.push({
      rule: h.rule,
      spec: hostSpecificity(labelCount(h.name), h.kind),
      entry: h.name,
      kind: KIND_NAMES[h.kind],
    });
  for (const h of ix.patterns.collect(name))
    out.push({ rule: h.rule, spec: EMULATION_SPECIFICITY, entry: h.pattern, kind: KIND_NAMES[h.kind] });
  return out;
}

export function lintPolicy(p: Policy, opts: LintOptions = {}): Finding[] {
  const now = opts.now ?? Date.now();
  const K = opts.maxExamples ?? 10;
  const maxEntries = opts.maxEntries ?? Infinity;
  const refs = opts.references ?? [];
  const findings: Finding[] = [];
  const add = (f: Finding) => findings.push(f);
  const rules = p.rules;
  const ix = fullIndex(p);

  // which rules are in force (for shadowing)
  const inForce = rules.map((r) => r.enabled && (r.expires === null || expiresAtMs(r.expires) > now));

  // ---- per-rule simple checks
  for (const r of rules) {
    const pos = r.pos;
    if (!r.enabled)
      add({
        severity: 'info',
        code: 'disabled',
        rule_id: r.id,
        message: `rule is disabled (enabled: false)`,
        examples: [],
        pos,
      });
    if (r.expires !== null && expiresAtMs(r.expires) <= now)
      add({
        severity: 'warning',
        code: 'expired',
        rule_id: r.id,
        message: `rule expired (expires: ${r.expires}); it is not enforced — remove it or extend it`,
        examples: [],
        pos,
      });
    if ((r.action === 'block' || r.action === 'throttle') && !r.provenance)
      add({
        severity: 'info',
        code: 'no-provenance',
        rule_id: r.id,
        message: `${r.action} rule has no provenance (authority, reference, decided, source)`,
        examples: [],
        pos,
      });
    const m = r.match;
    const h = m.host;
    const empties: string[] = [];
    if (
      h &&
      h.exact.length + h.suffix.length + h.subdomains.length + h.substring.length + h.endswith.length === 0
    )
      empties.push('host');
    if (m.dest_ip && m.dest_ip.length === 0) empties.push('dest_ip');
    if (m.src_ip && m.src_ip.length === 0) empties.push('src_ip');
    if (empties.length)
      add({
        severity: 'warning',
        code: 'empty-match',
        rule_id: r.id,
        message: `${empties.join(', ')} condition has no entries: the rule can never match`,
        examples: [],
        pos,
      });
    // entries listed twice in the rule (addresses here, names below), reported as one finding
    const dups: string[] = [];
    let dupCount = 0;
    const countDuplicates = (kind: string, list: readonly string[]): void => {
      const seen = new Set<string>();
      for (const c of list) {
        if (seen.has(c)) {
          dupCount++;
          if (dups.length < K) dups.push(`${kind}: ${c}`);
        } else seen.add(c);
      }
    };
    const reportDuplicates = (): void => {
      if (dupCount)
        add({
          severity: 'warning',
          code: 'duplicate',
          rule_id: r.id,
          message: `${fmtCount(dupCount)} entr${dupCount === 1 ? 'y appears' : 'ies appear'} more than once`,
          examples: dups,
          count: dupCount,
          pos,
        });
    };
    for (const k of ['dest_ip', 'src_ip'] as const) {
      const list = m[k];
      if (list) countDuplicates(k, list);
    }
    if (!h) {
      reportDuplicates();
      continue;
    }
    for (const kind of ['substring', 'endswith'] as const) {
      for (const pat of h[kind]) {
        if (pat.length < 6)
          add({
            severity: 'warning',
            code: 'short-pattern',
            rule_id: r.id,
            message: `${kind} pattern '${pat}' is only ${pat.length} characters long`,
            examples: [],
            pos,
          });
      }
    }
    // public suffixes
    const ps: { name: string; kind: string; icann: boolean; single: boolean }[] = [];
    for (const kind of ['suffix', 'subdomains'] as const) {
      for (const n of h[kind]) {
        if (n.includes('.') && !mayBePublicSuffix(n)) continue;
        const d = parseDomain(n, { allowPrivateDomains: true });
        if (d.domain !== null && d.domain !== undefined) continue;
        ps.push({
          name: n,
          kind,
          icann: d.isIcann === true,
          single: !n.includes('.') && d.isIcann !== true && d.isPrivate !== true,
        });
      }
    }
    const icann = ps.filter((x) => x.icann);
    const priv = ps.filter((x) => !x.icann && !x.single);
    const single = ps.filter((x) => x.single);
    if (icann.length)
      add({
        severity: 'error',
        code: 'public-suffix',
        rule_id: r.id,
        message: `${icann.length} suffix/subdomains entr${icann.length === 1 ? 'y is a public suffix' : 'ies are public suffixes'} (ICANN section of the Public Suffix List): every domain registered under ${icann.length === 1 ? 'it' : 'them'} would match`,
        examples: icann.slice(0, K).map((x) => `${x.kind}: ${x.name}`),
        count: icann.length,
        pos,
      });
    if (priv.length)
      add({
        severity: 'warning',
        code: 'public-suffix',
        rule_id: r.id,
        message: `${priv.length} suffix/subdomains entr${priv.length === 1 ? 'y is a' : 'ies are'} shared-hosting suffix${priv.length === 1 ? '' : 'es'} (private section of the Public Suffix List): it covers every customer site under ${priv.length === 1 ? 'it' : 'them'}`,
        examples: priv.slice(0, K).map((x) => `${x.kind}: ${x.name}`),
        count: priv.length,
        pos,
      });
    if (single.length)
      add({
        severity: 'warning',
        code: 'single-label',
        rule_id: r.id,
        message: `${single.length} suffix/subdomains entr${single.length === 1 ? 'y is' : 'ies are'} a single label`,
        examples: single.slice(0, K).map((x) => `${x.kind}: ${x.name}`),
        count: single.length,
        pos,
      });
    // duplicates and redundant entries inside the rule
    for (const kind of ['exact', 'suffix', 'subdomains', 'substring', 'endswith'] as const)
      countDuplicates(kind, h[kind]);
    reportDuplicates();
    const suffixes = new Set(h.suffix);
    const covered = (n: string, strict: boolean): string | null => {
      // a strictly-higher suffix entry in the same rule covers n
      let i = strict ? n.indexOf('.') : 0;
      let cur = strict ? (i < 0 ? null : n.slice(i + 1)) : n;
      while (cur) {
        if (suffixes.has(cur)) return cur;
        i = cur.indexOf('.');
        cur = i < 0 ? null : cur.slice(i + 1);
      }
      return null;
    };
    const red: string[] = [];
    let redCount = 0;
    for (const n of h.exact) {
      const c = covered(n, false);
      if (c) {
        redCount++;
        if (red.length < K) red.push(`exact ${n} (covered by suffix ${c})`);
      }
    }
    for (const n of h.suffix) {
      const c = covered(n, true);
      if (c) {
        redCount++;
        if (red.length < K) red.push(`suffix ${n} (covered by suffix ${c})`);
      }
    }
    for (const n of h.subdomains) {
      const c = covered(n, false);
      if (c) {
        redCount++;
        if (red.length < K) red.push(`subdomains ${n} (covered by suffix ${c})`);
      }
    }
    if (redCount)
      add({
        severity: 'info',
        code: 'redundant',
        rule_id: r.id,
        message: `${fmtCount(redCount)} entr${redCount === 1 ? 'y is' : 'ies are'} already covered by a suffix entry of the same rule`,
        examples: red,
        count: redCount,
        pos,
      });
  }

  // ---- protected names and CIDRs
  lintProtected(p, ix, opts.protectedNames ?? [], K, add);

  // ---- shadowing and overlap (name rules)
  lintShadowing(p, ix, inForce, K, maxEntries, add);

  // ---- shadowing and overlap (address rules)
  lintAddressShadowing(p, ix, inForce, K, add);

  // ---- blast radius and emulation patterns against references
  lintBlast(p, ix, refs, K, add);
  lintFlowRadius(p, refs, now, add);

  findings.sort(
    (a, b) =>
      SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] || (a.pos?.line ?? 0) - (b.pos?.line ?? 0),
  );
  return findings;
}

/** Cheap pre-check before asking tldts: a name with ≥ 3 labels whose last two are not a known 2-level suffix form is rarely a PSL entry — but the PSL has deep private entries, so only skip ≥ 5 labels. */
function mayBePublicSuffix(n: string): boolean {
  return labelCount(n) < 5;
}

function lintProtected(p: Policy, ix: Matcher, extra: string[], K: number, add: (f: Finding) => void): void {
  const rules = p.rules;
  const protExact = [...p.protected.exact, ...extra];
  const protSuffix = p.protected.suffix;
  const hitsByRule = new Map<number, Set<string>>();
  const note = (r: number, what: string) => {
    let s = hitsByRule.get(r);
    if (!s) hitsByRule.set(r, (s = new Set()));
    s.add(what);
  };
  // rule patterns that match a protected name (or, for protected suffixes, everything below it)
  for (const n of protExact) for (const h of hitsFor(ix, n)) note(h.rule, n);
  for (const n of protSuffix) {
    for (const h of hitsFor(ix, n)) note(h.rule, n);
    for (const h of hitsFor(ix, `*.${n}`)) note(h.rule, `*.${n}`);
  }
  // rule entries that lie inside a protected suffix
  if (protSuffix.length) {
    const pb = new DomainTableBuilder();
    for (const n of protSuffix) pb.add(n, 0, KIND_SUFFIX);
    const pt = pb.build();
    rules.forEach((r, i) => {
      const h = r.match.host;
      if (!h) return;
      for (const n of [...h.exact, ...h.suffix, ...h.subdomains]) {
        const c = pt.collect(n);
        if (c.length) note(i, `${n} (under protected ${c[0].name})`);
      }
    });
  }
  // CIDR overlaps
  const protCidrs = p.protected.cidr
    .map((c) => parseCidr(c, true))
    .filter((c): c is Cidr => typeof c !== 'string');
  if (protCidrs.length) {
    rules.forEach((r, i) => {
      for (const k of ['dest_ip', 'src_ip'] as const) {
        for (const text of r.match[k] ?? []) {
          const c = parseCidr(text, true);
          if (typeof c === 'string') continue;
          const o = protCidrs.findIndex((pc) => cidrOverlap(pc, c));
          if (o >= 0) note(i, `${k} ${text} (overlaps protected ${p.protected.cidr[o]})`);
        }
      }
    });
  }
  for (const [ri, names] of [...hitsByRule.entries()].sort((a, b) => a[0] - b[0])) {
    const r = rules[ri];
    if (r.action !== 'block' && r.action !== 'throttle') continue;
    const list = [...names];
    if (r.protected_override)
      add({
        severity: 'info',
        code: 'protected-override',
        rule_id: r.id,
        message: `${r.action} rule touches ${list.length} protected name(s)/address(es), allowed by protected_override (reason: ${r.protected_override.reason})`,
        examples: list.slice(0, K),
        count: list.length,
        pos: r.pos,
      });
    else
      add({
        severity: 'error',
        code: 'protected-hit',
        rule_id: r.id,
        message: `${r.action} rule matches ${list.length} protected name(s)/address(es); the engine will not apply it to them — narrow the rule, or add protected_override: {reason: ...}`,
        examples: list.slice(0, K),
        count: list.length,
        pos: r.pos,
      });
  }
}

function lintShadowing(
  p: Policy,
  ix: Matcher,
  inForce: boolean[],
  K: number,
  maxEntries: number,
  add: (f: Finding) => void,
): void {
  const rules = p.rules;
  const keys = rules.map((r) => otherKey(r.match));
  const others = rules.map((r) => otherCount(r.match));
  const free = rules.map((r) => !hasNonHost(r.match));
  // Does some in-force rule q ≠ r decide `probe` before r (whose own spec there is `rspec`)?
  // Only rules whose non-name conditions are absent or identical to r's count (they cover all of r's flows).
  const winner = (ri: number, probe: string, rspec: number, kinds: (k: string) => boolean): number => {
    const r = rules[ri];
    let best = -1;
    for (const h of hitsFor(ix, probe)) {
      const q = h.rule;
      if (q === ri || !inForce[q] || !kinds(h.kind)) continue;
      if (!(free[q] || keys[q] === keys[ri])) continue;
      const qr = rules[q];
      const qo = free[q] ? 0 : others[q];
      const wins =
        qr.priority > r.priority ||
        (qr.priority === r.priority &&
          (h.spec > rspec || (h.spec === rspec && (qo > others[ri] || (qo === others[ri] && q < ri)))));
      if (wins) best = q;
    }
    return best;
  };
  const anyKind = () => true;
  const notExact = (k: string) => k !== 'exact';
  rules.forEach((r, ri) => {
    const h = r.match.host;
    if (!h || !inForce[ri]) return;
    let total = 0;
    let lost = 0;
    const byWinner = new Map<number, string[]>();
    const lose = (q: number, what: string) => {
      lost++;
      let l = byWinner.get(q);
      if (!l) byWinner.set(q, (l = []));
      if (l.length < K) l.push(what);
    };
    for (const n of h.exact) {
      if (total >= maxEntries) break;
      total++;
      const q = winner(ri, n, hostSpecificity(labelCount(n), KIND_EXACT as HashKind), anyKind);
      if (q >= 0) lose(q, n);
    }
    for (const n of h.suffix) {
      if (total >= maxEntries) break;
      total++;
      const spec = hostSpecificity(labelCount(n), 1);
      const q1 = winner(ri, n, spec, anyKind);
      const q2 = q1 >= 0 ? winner(ri, `*.${n}`, spec, notExact) : -1;
      if (q1 >= 0 && q2 >= 0) lose(q2, `suffix ${n}`);
    }
    for (const n of h.subdomains) {
      if (total >= maxEntries) break;
      total++;
      const q = winner(ri, `*.${n}`, hostSpecificity(labelCount(n), 2), notExact);
      if (q >= 0) lose(q, `subdomains ${n}`);
    }
    const patterns = h.substring.length + h.endswith.length;
    if (!lost) return;
    const winners = [...byWinner.keys()].map((q) => rules[q]);
    const examples = [...byWinner.entries()]
      .flatMap(([q, l]) => l.map((x) => `${x} → ${rules[q].id}`))
      .slice(0, K);
    if (lost === total && patterns === 0) {
      add({
        severity: 'warning',
        code: 'shadowed',
        rule_id: r.id,
        message: `rule never applies: all ${fmtCount(total)} of its entries are decided first by ${winners.map((w) => `'${w.id}'`).join(', ')} (priority, specificity, then order)`,
        examples,
        count: lost,
        pos: r.pos,
      });
    } else {
      const differ = winners.some((w) => w.action !== r.action);
      add({
        severity: differ ? 'warning' : 'info',
        code: 'overlap',
        rule_id: r.id,
        message: `${fmtCount(lost)} of ${fmtCount(total)} entries are decided first by ${winners.map((w) => `'${w.id}' (${w.action})`).join(', ')}${differ ? ' with a different action' : ''}`,
        examples,
        count: lost,
        pos: r.pos,
      });
    }
  });
}

/** Address-only rules (dest_ip, no host): prefixes decided first by other rules. */
function lintAddressShadowing(
  p: Policy,
  ix: Matcher,
  inForce: boolean[],
  K: number,
  add: (f: Finding) => void,
): void {
  const rules = p.rules;
  const keyNoDst = (m: RuleMatch) =>
    JSON.stringify([m.src_ip, m.dest_port, m.proto, m.app_proto, m.alpn, m.ja4, m.quic_version, m.ech]);
  const eligible = rules.map((r) => r.match.host === null && r.match.dest_ip !== null);
  const keys = rules.map((r) => keyNoDst(r.match));
  // prefixes covered by a shorter prefix of the same rule (any rule with dest_ip)
  rules.forEach((r, ri) => {
    const list = r.match.dest_ip;
    if (!list || list.length < 2) return;
    let n = 0;
    const ex: string[] = [];
    for (const text of list) {
      const c = parseCidr(text, true);
      if (typeof c === 'string' || c.len === 0) continue;
      const path = collectPath(c.v === 4 ? ix.dst4 : ix.dst6, c.v === 4 ? [c.addr] : c.w, c.len - 1);
      const outer = path.find((h) => h.rule === ri && h.len < c.len);
      if (outer) {
        n++;
        if (ex.length < K) ex.push(`${text} (inside a /${outer.len} of the same rule)`);
      }
    }
    if (n)
      add({
        severity: 'info',
        code: 'redundant',
        rule_id: r.id,
        message: `${fmtCount(n)} dest_ip prefix(es) already covered by a shorter prefix of the same rule`,
        examples: ex,
        count: n,
        pos: r.pos,
      });
  });
  rules.forEach((r, ri) => {
    if (!eligible[ri] || !inForce[ri] || r.match.dest_ip!.length === 0) return;
    let lost = 0;
    const byWinner = new Map<number, string[]>();
    for (const text of r.match.dest_ip!) {
      const c = parseCidr(text, true);
      if (typeof c === 'string') continue;
      const words = c.v === 4 ? [c.addr] : c.w;
      const path = collectPath(c.v === 4 ? ix.dst4 : ix.dst6, words, c.len);
      let best = -1;
      for (const h of path) {
        const q = h.rule;
        if (q === ri || !inForce[q] || !eligible[q] || keys[q] !== keys[ri]) continue;
        const qr = rules[q];
        // q's prefix contains r's; q wins with a higher priority, or the same prefix earlier in the file
        if (qr.priority > r.priority || (qr.priority === r.priority && h.len === c.len && q < ri)) best = q;
      }
      if (best >= 0) {
        lost++;
        const l = byWinner.get(best) ?? [];
        if (l.length < K) l.push(`${text} → ${rules[best].id}`);
        byWinner.set(best, l);
      }
    }
    if (!lost) return;
    const winners = [...byWinner.keys()].map((q) => rules[q]);
    const examples = [...byWinner.values()].flat().slice(0, K);
    const total = r.match.dest_ip!.length;
    if (lost === total)
      add({
        severity: 'warning',
        code: 'shadowed',
        rule_id: r.id,
        message: `rule never applies: all ${fmtCount(total)} of its prefixes are decided first by ${winners.map((w) => `'${w.id}'`).join(', ')}`,
        examples,
        count: lost,
        pos: r.pos,
      });
    else {
      const differ = winners.some((w) => w.action !== r.action);
      add({
        severity: differ ? 'warning' : 'info',
        code: 'overlap',
        rule_id: r.id,
        message: `${fmtCount(lost)} of ${fmtCount(total)} prefixes are decided first by ${winners.map((w) => `'${w.id}' (${w.action})`).join(', ')}${differ ? ' with a different action' : ''}`,
        examples,
        count: lost,
        pos: r.pos,
      });
    }
  });
}

function lintBlast(p: Policy, ix: Matcher, refs: Reference[], K: number, add: (f: Finding) => void): void {
  const rules = p.rules;
  // per rule, per emulation pattern: counts and examples
  const hostRules = rules.map((r, i) => (r.match.host ? i : -1)).filter((i) => i >= 0);
  if (refs.length === 0) {
    for (const i of hostRules) {
      const h = rules[i].match.host!;
      for (const kind of ['substring', 'endswith'] as const)
        for (const pat of h[kind])
          add({
            severity: 'error',
            code: `emulation-${kind}`,
            rule_id: rules[i].id,
            message: `${kind} pattern '${pat}' ${kind === 'substring' ? 'matches every name that contains it anywhere' : 'matches every name ending in it, across label boundaries'} (emulation only; the 2021 collateral-damage behaviour). Run with --reference to see what it hits; use exact/suffix/subdomains`,
            examples: [],
            pos: rules[i].pos,
          });
    }
    return;
  }
  const refTotal = refs.reduce((a, r) => a + r.names.length, 0);
  const refDesc = refs.map((r) => r.source).join(', ');
  const ruleCount = new Map<number, number>();
  const ruleEx = new Map<number, string[]>();
  const patCount = new Map<string, number>();
  const patEx = new Map<string, string[]>();
  const seenName = new Set<string>();
  for (const ref of refs) {
    for (const n of ref.names) {
      if (seenName.has(n)) continue;
      seenName.add(n);
      const hits = hitsFor(ix, n);
      if (!hits.length) continue;
      const ruleSeen = new Set<number>();
      for (const h of hits) {
        if (!ruleSeen.has(h.rule)) {
          ruleSeen.add(h.rule);
          ruleCount.set(h.rule, (ruleCount.get(h.rule) ?? 0) + 1);
          const ex = ruleEx.get(h.rule) ?? [];
          if (ex.length < K) ex.push(n);
          ruleEx.set(h.rule, ex);
        }
        if (h.kind === 'substring' || h.kind === 'endswith') {
          const key = `${h.rule}\u0000${h.kind}\u0000${h.entry}`;
          if ((patEx.get(key) ?? []).includes(n)) continue;
          patCount.set(key, (patCount.get(key) ?? 0) + 1);
          const ex = patEx.get(key) ?? [];
          if (ex.length < K) ex.push(n);
          patEx.set(key, ex);
        }
      }
    }
  }
  const total = seenName.size;
  for (const i of hostRules) {
    const r = rules[i];
    const h = r.match.host!;
    for (const kind of ['substring', 'endswith'] as const) {
      for (const pat of h[kind]) {
        const key = `${i}\u0000${kind}\u0000${pat}`;
        const c = patCount.get(key) ?? 0;
        add({
          severity: 'error',
          code: `emulation-${kind}`,
          rule_id: r.id,
          message: `${kind} pattern '${pat}' matches ${fmtCount(c)} of ${fmtCount(total)} reference names (${((100 * c) / Math.max(1, total)).toFixed(2)}%)${c ? ', most popular first' : ''}: ${kind === 'substring' ? 'anything containing it' : 'anything ending in it, across label boundaries'} (emulation only; use exact/suffix/subdomains)`,
          examples: patEx.get(key) ?? [],
          count: c,
          pos: r.pos,
        });
      }
    }
    const c = ruleCount.get(i) ?? 0;
    add({
      severity: 'info',
      code: 'blast-radius',
      rule_id: r.id,
      message: `${r.action}: matches ${fmtCount(c)} of ${fmtCount(total)} reference names (${((100 * c) / Math.max(1, total)).toFixed(2)}%) from ${refDesc}${hasNonHost(r.match) ? ' (name conditions only; the rule has other conditions too)' : ''}`,
      examples: ruleEx.get(i) ?? [],
      count: c,
      pos: r.pos,
    });
  }
  void refTotal;
  void isWithin;
}

/** Share of a capture's / flow log's flows at or above which a payload rule's radius is a warning. */
export const FLOW_RADIUS_WARN = 0.01;

/**
 * `flow-radius`: for every rule with payload conditions (`payload_len`, `payload`), the share of the
 * reference flows (captures, flow logs) its own conditions match — that rule alone, through the one
 * matcher, without precedence or protection. A warning at ≥ {@link FLOW_RADIUS_WARN} (1 %) of the
 * flows (e.g. the 2022 QUIC rule matches all QUIC v1 traffic), info below.
 */
function lintFlowRadius(p: Policy, refs: Reference[], now: number, add: (f: Finding) => void): void {
  const flows: MatchInput[] = [];
  const sources: string[] = [];
  for (const r of refs)
    if (r.flows) {
      for (const f of r.flows) flows.push(f);
      sources.push(r.source);
    }
  if (!sources.length) return;
  for (const r of p.rules) {
    if (!r.enabled || (!r.match.payload_len && !r.match.payload)) continue;
    const alone = compilePolicy(
      { ...p, default: { action: 'allow' }, protected: { exact: [], suffix: [], cidr: [] }, rules: [r] },
      { now },
    );
    let c = 0;
    for (const f of flows) if (alone.match(f).rule_id === r.id) c++;
    const share = c / Math.max(1, flows.length);
    add({
      severity: share >= FLOW_RADIUS_WARN ? 'warning' : 'info',
      code: 'flow-radius',
      rule_id: r.id,
      message: `${r.action}: matches ${fmtCount(c)} of ${fmtCount(flows.length)} flows (${(100 * share).toFixed(2)}%) in ${sources.join(', ')}${share >= FLOW_RADIUS_WARN ? ': a payload rule this wide hits whole protocols (e.g. every QUIC v1 connection), not one service' : ''}`,
      examples: [],
      count: c,
      pos: r.pos,
    });
  }
}

/** Human-readable report. */
export function formatFindings(findings: Finding[], policyFile: string): string {
  const lines: string[] = [];
  for (const f of findings) {
    const where = f.pos ? `${f.pos.file}:${f.pos.line}:${f.pos.column}` : policyFile;
    lines.push(`${where}: ${f.severity} [${f.code}]${f.rule_id ? ` rule '${f.rule_id}'` : ''}: ${f.message}`);
    if (f.examples.length)
      lines.push(
        `    e.g. ${f.examples.join(', ')}${f.count !== undefined && f.count > f.examples.length ? `, … (${fmtCount(f.count - f.examples.length)} more)` : ''}`,
      );
  }
  const n = (s: Severity) => findings.filter((f) => f.severity === s).length;
  lines.push(`${n('error')} error(s), ${n('warning')} warning(s), ${n('info')} info`);
  return lines.join('\n') + '\n';
}
