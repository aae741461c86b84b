/**
 * @module controller/analysis.test
 * Rollout analysis and plan validation on hand-written box reports (the traffic contract): a good
 * version passes; an admin-overridden `*t.co*` version fails on pattern_flows with the collateral
 * names listed (the analysis is never told about the override or the diff); no report, a report for
 * another version, or a window without flows is `no_data` and fails; shadow stages compare the shadow
 * side with the active side; the consecutive-failure threshold; plan errors name the field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyze, judge, type Traffic } from './analysis.js';
import { DEFAULT_LIMITS, defaultPlan, parsePlan } from './rollout-plan.js';
import { ApiError } from './errors.js';

function traffic(o: Partial<Traffic> & { block?: number; throttle?: number }): Traffic {
  const flows = o.flows ?? 1000;
  const block = o.block ?? 10;
  const throttle = o.throttle ?? 0;
  return {
    since: o.since ?? '2026-12-02T14:00:00.000Z',
    policy_version: o.policy_version ?? 2,
    shadow_version: o.shadow_version ?? null,
    flows,
    by_action: { allow: flows - block - throttle, log: 0, block, throttle },
    pattern_flows: o.pattern_flows ?? 0,
    pattern_top: o.pattern_top ?? [],
    protected_hits: o.protected_hits ?? 0,
    fail_open: o.fail_open ?? 0,
    worker_restarts: o.worker_restarts ?? 0,
    shadow: o.shadow ?? null,
  };
}
const base = traffic({ policy_version: 1, flows: 5000, block: 50 });

test('a good version (same block share, no pattern hits) passes every metric', () => {
  const s = analyze({
    node: 'box-a',
    mode: 'enforce',
    version: 2,
    limits: DEFAULT_LIMITS,
    baseline: base,
    prev: null,
    now: traffic({ flows: 400, block: 5 }),
  });
  assert.deepEqual(
    s.map((x) => [x.metric, x.pass]),
    [
      ['blocked_share', true],
      ['pattern_flows', true],
      ['protected_hits', true],
      ['fail_open', true],
      ['worker_restarts', true],
    ],
  );
  assert.equal(s[0].value, 1.25);
  assert.equal(s[0].baseline, 1);
});

test('an overridden *t.co* throttle fails on pattern_flows and names the collateral; blocked share too', () => {
  const prev = traffic({ flows: 100, block: 1, throttle: 20, pattern_flows: 20 });
  const now = traffic({
    flows: 300,
    block: 3,
    throttle: 80,
    pattern_flows: 80,
    pattern_top: [
      { name: 'reddit.com', rule_id: 'tco', action: 'throttle', count: 50 },
      { name: 'www.microsoft.com', rule_id: 'tco', action: 'throttle', count: 30 },
    ],
  });
  const s = analyze({
    node: 'box-a',
    mode: 'enforce',
    version: 2,
    limits: DEFAULT_LIMITS,
    baseline: base,
    prev,
    now,
  });
  const pf = s.find((x) => x.metric === 'pattern_flows')!;
  assert.equal(pf.pass, false);
  assert.equal(pf.value, 60, 'the window between the two reports: 80 - 20');
  assert.equal(pf.baseline, 0);
  assert.deepEqual(pf.names, ['reddit.com', 'www.microsoft.com']);
  const bs = s.find((x) => x.metric === 'blocked_share')!;
  assert.equal(bs.value, 31, '(2 + 60) of 200 flows');
  assert.equal(bs.pass, false);
});

test('a name already matched through a pattern under the baseline is not new; its rate is expected', () => {
  const b = traffic({
    policy_version: 1,
    flows: 1000,
    pattern_flows: 10,
    pattern_top: [{ name: 'x.t.co', count: 10 }],
  });
  const s = analyze({
    node: 'n',
    mode: 'enforce',
    version: 2,
    limits: { ...DEFAULT_LIMITS, pattern_flows: 1 },
    baseline: b,
    prev: null,
    now: traffic({ flows: 500, pattern_flows: 5, pattern_top: [{ name: 'x.t.co', count: 5 }] }),
  });
  const pf = s.find((x) => x.metric === 'pattern_flows')!;
  assert.equal(pf.baseline, 5);
  assert.equal(pf.pass, true);
  assert.equal(pf.names, undefined);
});

test('no data fails: no report, a report of another version, a window without new flows', () => {
  const common = { node: 'n', mode: 'enforce' as const, version: 2, limits: DEFAULT_LIMITS, baseline: base };
  for (const [why, prev, now] of [
    ['no report', null, null],
    ['still on the old version', null, traffic({ policy_version: 1 })],
    ['no new flows', traffic({ flows: 300 }), traffic({ flows: 300 })],
  ] as const) {
    const s = analyze({ ...common, prev, now });
    assert.deepEqual(
      s.map((x) => [x.metric, x.pass]),
      [['no_data', false]],
      why,
    );
  }
  // a restart of the counters (new since) is a fresh window, not a negative one
  const s = analyze({
    ...common,
    prev: traffic({ flows: 900, since: '2026-12-02T13:00:00.000Z' }),
    now: traffic({ flows: 50, block: 0 }),
  });
  assert.equal(s[0].metric, 'blocked_share');
  assert.equal(s[0].value, 0);
});

test('shadow stage: the shadow side against the active side of the same flows', () => {
  const now = traffic({
    policy_version: 1,
    shadow_version: 2,
    flows: 200,
    block: 2,
    shadow: {
      flows: 200,
      by_action: { allow: 150, log: 0, block: 2, throttle: 48 },
      pattern_flows: 48,
      pattern_top: [{ name: 'reddit.com', count: 48 }],
      protected_hits: 3,
      changed: [
        {
          rule_id: 'tco',
          from: 'allow',
          to: 'throttle',
          flows: 48,
          top: [{ name: 'reddit.com', count: 48 }],
        },
        { rule_id: 'old', from: 'block', to: 'allow', flows: 5, top: [] },
      ],
    },
  });
  const s = analyze({
    node: 'n',
    mode: 'shadow',
    version: 2,
    limits: DEFAULT_LIMITS,
    baseline: null,
    prev: null,
    now,
  });
  assert.deepEqual(
    s.map((x) => [x.metric, x.value, x.baseline, x.pass]),
    [
      ['blocked_share', 25, 1, false],
      ['pattern_flows', 48, 0, false],
      ['protected_hits', 3, 0, false],
      // 48 of 200 flows would change to throttle (the change to allow does not count)
      ['changed_share', 24, 0, false],
    ],
  );
  const noShadow = analyze({
    node: 'n',
    mode: 'shadow',
    version: 2,
    limits: DEFAULT_LIMITS,
    baseline: null,
    prev: null,
    now: traffic({ policy_version: 1 }),
  });
  assert.equal(noShadow[0].metric, 'no_data');
});

test('judge: a metric fails the box after `threshold` consecutive failing samples; a pass resets', () => {
  const st = new Map<string, number>();
  const f = { node: 'n', metric: 'pattern_flows', value: 3, baseline: 0, threshold: 0, pass: false };
  const p = { ...f, value: 0, pass: true };
  assert.equal(judge(st, [f], 2), null);
  assert.equal(judge(st, [p], 2), null);
  assert.equal(judge(st, [f], 2), null);
  assert.deepEqual(judge(st, [f], 2), f);
});

test('plan: defaults, YAML text, errors naming the field, hostile input', () => {
  const d = defaultPlan();
  assert.deepEqual(
    d.stages.map((s) => [s.name, s.mode, s.analysis.interval_s, s.analysis.threshold]),
    [
      ['shadow', 'shadow', 5, 2],
      ['canary', 'enforce', 5, 2],
      ['10%', 'enforce', 5, 2],
      ['50%', 'enforce', 5, 2],
      ['all', 'enforce', 5, 2],
    ],
  );
  const p = parsePlan(`stages:
  - name: canary
    select: {labels: {tier: canary}}
    bake_s: 10
    analysis: {interval_s: 1, threshold: 3, limits: {pattern_flows: 2}}
`);
  assert.equal(p.stages[0].analysis.limits.pattern_flows, 2);
  assert.equal(p.stages[0].analysis.limits.protected_hits, 0);
  const bad = (input: unknown, re: RegExp) =>
    assert.throws(
      () => parsePlan(input),
      (e: unknown) => e instanceof ApiError && e.code === 'ERR_PLAN' && re.test(e.message),
      String(re),
    );
  bad({}, /^plan: plan: missing required key 'stages'/);
  bad({ stages: [] }, /stages: must NOT have fewer than 1 items/);
  bad({ stages: [{ name: 'a', select: 'all', bake_s: -1 }] }, /stages\[0\]\.bake_s: must be >= 0/);
  bad(
    { stages: [{ name: 'a', select: 'all', bake_s: 1, analysis: { threshold: 0 } }] },
    /stages\[0\]\.analysis\.threshold/,
  );
  bad({ stages: [{ name: 'a', select: { percent: 0 }, bake_s: 1 }] }, /stages\[0\]\.select: must be "all"/);
  bad({ stages: [{ name: 'a', select: 'all', bake_s: 1, bake: 3 }] }, /stages\[0\]: unknown key 'bake'/);
  bad(
    { stages: [{ name: 'a', select: 'all', bake_s: 1, analysis: { limits: { colateral: 1 } } }] },
    /stages\[0\]\.analysis\.limits: unknown key 'colateral'/,
  );
  bad(
    {
      stages: [
        { name: 'a', select: 'all', bake_s: 1 },
        { name: 'a', select: 'all', bake_s: 1 },
      ],
    },
    /stages\[1\]\.name: 'a' repeated/,
  );
  bad('stages: [\n', /not YAML or JSON/);
  // an alias bomb is refused, not expanded
  const bomb =
    'a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nstages: [*c,*c,*c]\n';
  bad(bomb, /not YAML or JSON: Excessive alias count/);
});
