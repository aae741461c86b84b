/**
 * @module enforce/metrics.test
 * The box's /metrics as Prometheus expects it: the registry is filled (every per-queue slot non-zero,
 * verdicts, fail-open, reload attempts), served over loopback by `EnforceMetrics.listen`, and the body
 * is checked by Debian's `promtool check metrics` — any complaint fails. The names served and the names
 * documented in docs/ENFORCE.md must agree. No NFQUEUE is needed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { EnforceMetrics } from './metrics.js';
import { newCounters, N_COUNTERS } from './counters.js';
import { assertPromtoolClean, promtoolCheck } from '../testutil/promtool.js';
import { haveTool, need } from '../testutil/require.js';

const SKIP = need(haveTool('promtool'), 'promtool missing (Debian package prometheus)');

async function served(): Promise<string> {
  const m = new EnforceMetrics();
  for (const q of [0, 1]) {
    const c = newCounters();
    for (let i = 0; i < N_COUNTERS; i++) c[i] = 10 * (q + 1) + i;
    m.addQueue(q, c);
  }
  m.addRuleCounts([
    ['block\u0000rkn-list', 3],
    ['throttle\u0000twitter-2021-fixed', 2],
    ['allow\u0000', 7],
  ]);
  const side = {
    flows: 9,
    by_action: { allow: 5, log: 1, block: 2, throttle: 1 },
    pattern_flows: 1,
    pattern_top: [{ name: 'microsoft.com', rule_id: 'tco', action: 'throttle' as const, count: 1 }],
    protected_hits: 1,
  };
  m.trafficSource = () => ({
    since: '2026-12-02T10:00:00.000Z',
    id: 'p',
    active_id: 'a',
    shadow_id: 's',
    active: side,
    shadow: {
      ...side,
      changed: [
        { rule_id: 'tco', from: 'allow', to: 'throttle', flows: 4, top: [{ name: 'reddit.com', count: 4 }] },
      ],
    },
    fail_open: 0,
    worker_restarts: 0,
  });
  m.failOpen.inc({ reason: 'worker_exit' });
  m.reloads.inc({ result: 'ok' });
  m.reloads.inc({ result: 'invalid' });
  const port = await m.listen('127.0.0.1:0');
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    return await res.text();
  } finally {
    m.close();
  }
}

test('promtool check metrics finds nothing to complain about in /metrics', { skip: SKIP }, async () => {
  const text = await served();
  assert.match(text, /chokepoint_packets_total\{queue="1"\} 20/);
  // queue 1 holds 20 + slot: cutDrop 24, degradeDrop 25, residualHits 26, residualEvicted 27,
  // redirectSent 28, rstRewritten 29, icmpDrop 30 (docs/ENFORCE.md counters)
  assert.match(text, /chokepoint_block_cut_total\{queue="1"\} 44$/m);
  assert.match(text, /chokepoint_degrade_dropped_packets_total\{queue="1"\} 45$/m);
  assert.match(text, /chokepoint_residual_hits_total\{queue="1"\} 46$/m);
  assert.match(text, /chokepoint_residual_evicted_total\{queue="1"\} 47$/m);
  assert.match(text, /chokepoint_redirects_sent_total\{queue="1"\} 48$/m);
  assert.match(text, /chokepoint_rst_rewritten_total\{queue="1"\} 49$/m);
  assert.match(text, /chokepoint_icmp_dropped_packets_total\{queue="1"\} 50$/m);
  assert.match(text, /chokepoint_verdicts_total\{action="allow",rule="\(default\)"\} 7/);
  assert.match(text, /chokepoint_traffic_flows\{policy="shadow",action="block"\} 2/);
  assert.match(text, /chokepoint_traffic_shadow_changed_flows\{rule="tco",from="allow",to="throttle"\} 4/);
  assert.doesNotMatch(text, /reddit\.com/, 'no name in a label');
  await assertPromtoolClean(text);
});

test('promtoolCheck reports what promtool complains about (the check can fail)', { skip: SKIP }, async () => {
  const bad =
    '# HELP chokepoint_hold_ms Hold time\n# TYPE chokepoint_hold_ms gauge\nchokepoint_hold_ms 3\n' +
    '# HELP chokepoint_verdicts Verdicts\n# TYPE chokepoint_verdicts counter\nchokepoint_verdicts 1\n';
  const r = await promtoolCheck(bad);
  assert.notEqual(r.code, 0);
  assert.ok(
    r.problems.some((p) => /chokepoint_hold_ms.*abbreviated units/.test(p)),
    r.problems.join('\n'),
  );
  assert.ok(
    r.problems.some((p) => /chokepoint_verdicts.*_total/.test(p)),
    r.problems.join('\n'),
  );
  await assert.rejects(assertPromtoolClean(bad), /promtool check metrics/);
});

test('every served metric is documented in docs/ENFORCE.md and every documented one is served', async () => {
  const text = await served();
  const servedNames = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
  const doc = readFileSync(new URL('../../../docs/ENFORCE.md', import.meta.url), 'utf8');
  const sec = doc.slice(doc.indexOf('- **Metrics**'), doc.indexOf('Renamed in this release'));
  assert.ok(sec.length > 100, 'metrics section found in docs/ENFORCE.md');
  const documented = new Set([...sec.matchAll(/`(chokepoint_[a-z_]+)/g)].map((m) => m[1]));
  assert.deepEqual([...servedNames].sort(), [...documented].sort());
});
