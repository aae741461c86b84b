/**
 * @module controller/analysis
 * Rollout analysis of one box: the box's `traffic` counters under the version being rolled out,
 * compared with the same box's own baseline (its counters under the previous version, or, in a
 * shadow stage, the active side of the same report). One sample covers the window between two reports
 * (counters are cumulative since `since`, so a sample is a difference). Metrics, each with a limit
 * from the plan: the share of new flows blocked or throttled (percentage points above baseline),
 * flows given a non-allow action through substring/endswith patterns above what the baseline rate
 * predicts (the collateral signal: it depends neither on the version's diff nor on an override),
 * protected names hit, fail-open events, worker restarts; in a shadow stage, instead of the last two,
 * `changed_share`: the share of the window's flows whose verdict would change to block or throttle
 * (from `shadow.changed[]`), limited like blocked_share. No report on the version for longer than
 * the grace ({@link graceMs}), or a report with no new flows, is the metric `no_data`, and fails.
 */
import type { Limits } from './rollout-plan.js';

export interface ActionCounts {
  allow: number;
  log: number;
  block: number;
  throttle: number;
}
export interface PatternTop {
  name: string;
  rule_id?: string | null;
  action?: string;
  count: number;
}
export interface SideCounters {
  flows: number;
  by_action: ActionCounts;
  pattern_flows: number;
  pattern_top: PatternTop[];
  protected_hits: number;
}
/** The `traffic` field of a box status report (BRIEF contract 2). */
export interface Traffic extends SideCounters {
  since: string;
  policy_version: number;
  shadow_version: number | null;
  fail_open: number;
  worker_restarts: number;
  shadow: (SideCounters & { changed?: unknown[] }) | null;
  /** how often the box sends its status report (seconds; absent from older boxes) */
  report_every_s?: number;
}

export interface Sample {
  node: string;
  metric: string;
  value: number;
  baseline: number;
  threshold: number;
  pass: boolean;
  /** names newly matched through patterns in this window (evidence for the audit entry) */
  names?: string[];
}

const nonAllow = (a: ActionCounts) => a.block + a.throttle;
const share = (n: number, d: number) => (d > 0 ? (100 * n) / d : 0);
function diff(a: SideCounters, b: SideCounters | null): SideCounters {
  if (!b) return a;
  return {
    flows: a.flows - b.flows,
    by_action: {
      allow: a.by_action.allow - b.by_action.allow,
      log: a.by_action.log - b.by_action.log,
      block: a.by_action.block - b.by_action.block,
      throttle: a.by_action.throttle - b.by_action.throttle,
    },
    pattern_flows: a.pattern_flows - b.pattern_flows,
    pattern_top: a.pattern_top,
    protected_hits: a.protected_hits - b.protected_hits,
  };
}
/** The same box's earlier report is comparable when it counts the same (active, shadow) pair since the same time. */
function sameWindow(a: Traffic, b: Traffic | null): b is Traffic {
  return (
    !!b &&
    b.since === a.since &&
    b.policy_version === a.policy_version &&
    b.shadow_version === a.shadow_version
  );
}

export interface AnalyzeInput {
  node: string;
  mode: 'shadow' | 'enforce';
  /** the controller version id under test */
  version: number;
  limits: Limits;
  /** the box's counters under the previous version (enforce stages); ignored in shadow stages */
  baseline: Traffic | null;
  /** the report at the start of the window (same version), or null: the window starts at `since` */
  prev: Traffic | null;
  /** the latest report in the window, or null when the box did not report */
  now: Traffic | null;
}

/**
 * How long a box may go without a report on the version before its silence is `no_data`: three
 * analysis intervals, or three of the box's own report intervals when it reports less often (a box
 * reporting every 30 s is not silent between two 5 s samples; its window is simply longer).
 */
export function graceMs(intervalS: number, last: Traffic | null): number {
  const every = typeof last?.report_every_s === 'number' && last.report_every_s > 0 ? last.report_every_s : 0;
  return 3000 * Math.max(intervalS, every);
}

/** One sample per metric for one box and one window. */
export function analyze(i: AnalyzeInput): Sample[] {
  const { node, limits } = i;
  const s = (
    metric: string,
    value: number,
    baseline: number,
    threshold: number,
    names?: string[],
  ): Sample => ({
    node,
    metric,
    value: Math.round(value * 1000) / 1000,
    baseline: Math.round(baseline * 1000) / 1000,
    threshold,
    pass: value - baseline <= threshold,
    ...(names && names.length ? { names } : {}),
  });
  const t = i.now;
  const onVersion =
    t && (i.mode === 'shadow' ? t.shadow_version === i.version && t.shadow : t.policy_version === i.version);
  const prev = t && sameWindow(t, i.prev) ? i.prev : null;
  if (!t || !onVersion)
    return [{ node, metric: 'no_data', value: 0, baseline: 0, threshold: 1, pass: false }];

  let cur: SideCounters;
  let base: SideCounters;
  if (i.mode === 'shadow') {
    // the shadow side against the active side of the same flows
    cur = diff(t.shadow!, prev?.shadow ?? null);
    base = diff(t, prev);
  } else {
    cur = diff(t, prev);
    base = i.baseline ?? {
      flows: 0,
      by_action: { allow: 0, log: 0, block: 0, throttle: 0 },
      pattern_flows: 0,
      pattern_top: [],
      protected_hits: 0,
    };
  }
  if (cur.flows <= 0) return [{ node, metric: 'no_data', value: 0, baseline: 0, threshold: 1, pass: false }];
  const baseNames = new Set(base.pattern_top.filter((p) => p.count > 0).map((p) => p.name));
  const newNames = cur.pattern_top.filter((p) => p.count > 0 && !baseNames.has(p.name)).map((p) => p.name);
  // what the baseline's rates predict for this window's number of flows
  const expect = (n: number) => (base.flows > 0 ? (n / base.flows) * cur.flows : 0);
  const out = [
    s(
      'blocked_share',
      share(nonAllow(cur.by_action), cur.flows),
      share(nonAllow(base.by_action), base.flows),
      limits.blocked_share_pp,
    ),
    s('pattern_flows', cur.pattern_flows, expect(base.pattern_flows), limits.pattern_flows, newNames),
    s('protected_hits', cur.protected_hits, expect(base.protected_hits), limits.protected_hits),
  ];
  if (i.mode === 'shadow') {
    // flows whose verdict would change to block/throttle, as a share of the window's flows
    const toBlock = (x: Traffic | null) =>
      ((x?.shadow?.changed ?? []) as { to?: string; flows?: number }[])
        .filter((c) => c.to === 'block' || c.to === 'throttle')
        .reduce((a, c) => a + (typeof c.flows === 'number' ? c.flows : 0), 0);
    out.push(s('changed_share', share(toBlock(t) - toBlock(prev), cur.flows), 0, limits.blocked_share_pp));
  } else {
    const fo = prev ? t.fail_open - prev.fail_open : t.fail_open;
    const wr = prev ? t.worker_restarts - prev.worker_restarts : t.worker_restarts;
    out.push(s('fail_open', fo, 0, limits.fail_open), s('worker_restarts', wr, 0, limits.worker_restarts));
  }
  return out;
}

/**
 * Consecutive-failure tracking: a box fails its analysis when the same metric failed in `threshold`
 * consecutive samples. `streak` is updated in place; returns the failing sample, or null.
 */
export function judge(streak: Map<string, number>, samples: Sample[], threshold: number): Sample | null {
  let failed: Sample | null = null;
  const seen = new Set<string>();
  for (const x of samples) {
    const k = `${x.node}\u0000${x.metric}`;
    seen.add(k);
    const n = x.pass ? 0 : (streak.get(k) ?? 0) + 1;
    streak.set(k, n);
    if (n >= threshold && !failed) failed = x;
  }
  // a metric absent from this sample (e.g. no_data after real data) breaks its streak
  for (const k of streak.keys())
    if (!seen.has(k) && samples.some((x) => k.startsWith(x.node + '\u0000'))) streak.set(k, 0);
  return failed;
}
