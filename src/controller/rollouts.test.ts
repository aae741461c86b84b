/**
 * @module controller/rollouts.test
 * Staged rollouts end to end over real sockets, on SQLite and on a real PostgreSQL the test starts:
 * three simulated boxes (node tokens, `GET /v1/bundle` verified with the no-rollback check, status
 * reports with `traffic` counters over HTTP, as a box does) follow the controller's orchestrator. A
 * good version passes every stage and becomes the fleet version; an admin-overridden `*t.co*`
 * throttle fails the canary analysis on pattern_flows and is rolled back automatically (audit rows in
 * order, version failed, the other boxes never took it); a canary that stops reporting fails on
 * no_data; pause / resume / abort.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- API answers are untyped JSON, checked field by field */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  approvedVersion,
  backendSuites,
  envelopeOf,
  reference,
  startTestController,
  type TestController,
} from './testutil.js';
import { verifyBundle } from './bundles.js';
import { allOn, SimBox, startBoxes } from './testing/sim-box.js';
import { openDb } from './db.js';
import { startController, type RunningController } from './server.js';
import { DEFAULT_CONFIG } from './context.js';

const suites = backendSuites();

const block = (names: string[]) => `rules:
  - id: block-list
    action: block
    match: {host: {suffix: [${names.join(', ')}]}}
    provenance: {authority: test}
`;
const TCO = `rules:
  - id: tco
    action: throttle
    rate: 128kbit
    match: {host: {substring: [t.co]}}
`;
/** The traffic mix every simulated box sees, per report. */
const MIX = ['reddit.com', 'www.microsoft.com', 't.co', 'bad.example', 'example.org', 'news.example'];

/** A shadow stage on every box, then a canary and the rest, enforced. */
const SHADOW_PLAN = (bake: number, threshold = 2) => ({
  stages: [
    { name: 'shadow', mode: 'shadow', select: 'all', bake_s: bake, analysis: { interval_s: 0.5, threshold } },
    {
      name: 'canary',
      select: { labels: { tier: 'canary' } },
      bake_s: bake,
      analysis: { interval_s: 0.5, threshold: 2 },
    },
    { name: 'all', select: 'all', bake_s: bake, analysis: { interval_s: 0.5, threshold: 2 } },
  ],
});

const PLAN = (bake: number) => ({
  stages: [
    {
      name: 'canary',
      select: { labels: { tier: 'canary' } },
      bake_s: bake,
      analysis: { interval_s: 0.5, threshold: 2 },
    },
    { name: '50%', select: { percent: 50 }, bake_s: bake, analysis: { interval_s: 0.5, threshold: 2 } },
    { name: 'all', select: 'all', bake_s: bake, analysis: { interval_s: 0.5, threshold: 2 } },
  ],
});

for (const backend of ['sqlite', 'postgres'] as const) {
  const skip = suites.skip(backend);
  describe(`rollouts on ${backend}`, { skip }, () => {
    let t: TestController;
    const boxes: SimBox[] = [];
    const model = { tco: new Set<number>(), blocked: new Map<number, string[]>() };
    before(async () => {
      t = await suites.controller(backend, 'ro');
    });
    after(async () => {
      for (const b of boxes) b.stop();
      await t?.close();
    });

    const version = (text: string, override?: string) => approvedVersion(t, text, override);
    async function until(id: number, states: string[], ms = 40_000): Promise<any> {
      const end = Date.now() + ms;
      for (;;) {
        const r = (await t.api('vera', 'GET', `/v1/rollouts/${id}`)).json;
        if (states.includes(r.state)) return r;
        if (Date.now() > end)
          assert.fail(
            `rollout ${id} still ${r.state} (stage ${r.stage}): ${JSON.stringify(r.samples?.slice(-6))}`,
          );
        await new Promise((res) => setTimeout(res, 100));
      }
    }

    test('a good version passes every stage and becomes the fleet version', async () => {
      const v1 = await version(block(['bad.example']));
      model.blocked.set(v1, ['bad.example']);
      assert.equal((await t.api('alice', 'POST', `/v1/versions/${v1}/publish`)).json.status, 'active');
      const fleet = [
        ['box-a', { tier: 'canary' }],
        ['box-b', { tier: 'main' }],
        ['box-c', { tier: 'main' }],
      ] as const;
      await startBoxes(t, fleet, model, MIX, boxes);
      // every box reported a baseline under v1
      await allOn(boxes, v1);
      const v2 = await version(block(['bad.example', 'gone.example']));
      model.blocked.set(v2, ['bad.example', 'gone.example']);
      const bad = await t.api('alice', 'POST', '/v1/rollouts', {
        version_id: v2,
        plan: { stages: [{ name: 'x', select: 'all' }] },
      });
      assert.equal(bad.status, 400);
      assert.match(bad.json.error.message, /stages\[0\]: missing required key 'bake_s'/);
      assert.equal((await t.api('ed', 'POST', '/v1/rollouts', { version_id: v2 })).status, 403);
      const r = await t.api('alice', 'POST', '/v1/rollouts', { version_id: v2, plan: PLAN(1.5) });
      assert.equal(r.status, 201, JSON.stringify(r.json));
      const done = await until(r.json.id, ['succeeded', 'rolled_back', 'aborted']);
      assert.equal(done.state, 'succeeded', JSON.stringify(done.samples.filter((s: any) => !s.pass)));
      assert.deepEqual(
        done.stages.map((s: any) => [s.name, s.state, s.nodes]),
        [
          ['canary', 'passed', ['box-a']],
          ['50%', 'passed', ['box-a', 'box-b']],
          ['all', 'passed', ['box-a', 'box-b', 'box-c']],
        ],
      );
      assert.ok(done.samples.length >= 3 * 5);
      assert.equal((await t.api('vera', 'GET', `/v1/versions/${v2}`)).json.status, 'active');
      assert.equal((await t.api('vera', 'GET', `/v1/versions/${v1}`)).json.status, 'superseded');
      const m = verifyBundle(envelopeOf((await t.api('box1', 'GET', '/v1/bundle')).json), t.rootPublicPem);
      assert.equal(m.policy_version, v2);
      assert.equal(m.kind, 'publish');
      for (const b of boxes) {
        const end = Date.now() + 10_000;
        while (b.bundle !== m.version && Date.now() < end) await new Promise((res) => setTimeout(res, 50));
        assert.equal(b.policy, v2, b.name);
      }
      const nodes = (await t.api('vera', 'GET', '/v1/nodes')).json.nodes;
      assert.ok(nodes.every((n: any) => n.intended_version === m.version));
    });

    test('an overridden *t.co* version fails the canary analysis and is rolled back automatically', async () => {
      const v2 = Number((await t.api('vera', 'GET', '/v1/versions?status=active')).json.versions[0].id);
      const tco = await version(TCO, 'lab emulation of the 2021 rule');
      model.tco.add(tco);
      const before = boxes.map((b) => b.bundle);
      const r = await t.api('alice', 'POST', '/v1/rollouts', { version_id: tco, plan: PLAN(30) });
      assert.equal(r.status, 201, JSON.stringify(r.json));
      const done = await until(r.json.id, ['succeeded', 'rolled_back', 'aborted']);
      assert.equal(done.state, 'rolled_back');
      assert.match(done.reason, /analysis failed at stage canary: (pattern_flows|blocked_share) on box-a/);
      assert.equal((await t.api('vera', 'GET', `/v1/versions/${tco}`)).json.status, 'failed');
      assert.equal((await t.api('vera', 'GET', `/v1/versions/${v2}`)).json.status, 'active');
      const pf = done.samples.filter((s: any) => s.metric === 'pattern_flows' && !s.pass);
      assert.ok(pf.length >= 2);
      assert.ok(pf[0].names.includes('reddit.com') && pf[0].names.includes('www.microsoft.com'));
      // audit rows in order
      const rows = (await t.api('vera', 'GET', '/v1/audit?limit=5000')).json.rows;
      const mine = rows
        .filter(
          (x: any) =>
            x.target === `rollout:${r.json.id}` ||
            (x.action === 'bundle.rollback' &&
              x.seq > rows.find((y: any) => y.target === `rollout:${r.json.id}`).seq),
        )
        .map((x: any) => x.action);
      assert.deepEqual(mine, [
        'rollout.start',
        'rollout.stage',
        'rollout.analysis_failed',
        'rollout.rollback',
        'bundle.rollback',
      ]);
      const af = rows.find(
        (x: any) => x.action === 'rollout.analysis_failed' && x.target === `rollout:${r.json.id}`,
      );
      assert.equal(JSON.parse(af.after).node, 'box-a');
      // the canary is back on v2 through a higher bundle; the others never took the version
      const m = verifyBundle(envelopeOf((await t.api('box1', 'GET', '/v1/bundle')).json), t.rootPublicPem);
      assert.equal(m.kind, 'rollback');
      assert.equal(m.policy_version, v2);
      const end = Date.now() + 10_000;
      while (boxes[0].bundle !== m.version && Date.now() < end)
        await new Promise((res) => setTimeout(res, 50));
      assert.equal(boxes[0].policy, v2);
      assert.ok(boxes[0].seen.has(tco), 'the canary did take the version');
      assert.ok(!boxes[1].seen.has(tco) && !boxes[2].seen.has(tco), 'the other boxes never did');
      boxes.forEach((b, i) => assert.ok(b.bundle > before[i] || i > 0));
    });

    test('an overridden *t.co* version fails in the shadow stage: version failed, nothing enforced, GET /v1/versions/:id/shadow', async () => {
      const active = Number((await t.api('vera', 'GET', '/v1/versions?status=active')).json.versions[0].id);
      const tco = await version(TCO + '# the shadow run\n', 'lab emulation of the 2021 rule');
      model.tco.add(tco);
      const before = boxes.map((b) => b.bundle);
      // threshold 6 at 0.5 s: the stage runs ≥ 3 s, long enough to read the aggregated shadow results
      const r = await t.api('alice', 'POST', '/v1/rollouts', { version_id: tco, plan: SHADOW_PLAN(30, 6) });
      assert.equal(r.status, 201, JSON.stringify(r.json));
      let sh: any = null;
      for (const end = Date.now() + 20_000; Date.now() < end;) {
        sh = (await t.api('vera', 'GET', `/v1/versions/${tco}/shadow`)).json;
        if (sh.nodes.length === 3 && sh.changed.length) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      assert.deepEqual(
        sh.nodes.map((n: any) => n.node),
        ['box-a', 'box-b', 'box-c'],
        JSON.stringify(sh),
      );
      assert.ok(sh.diff, 'the offline diff is beside the shadow results');
      // by hand: of MIX, reddit.com, www.microsoft.com and t.co contain "t.co" (allow → throttle); the
      // version has no block-list, so bad.example would no longer be blocked (block → allow)
      assert.equal(sh.changed.length, 2, JSON.stringify(sh.changed));
      const un = sh.changed[1];
      assert.deepEqual([un.rule_id, un.from, un.to], ['block-list', 'block', 'allow']);
      assert.deepEqual(
        un.top.map((x: any) => x.name),
        ['bad.example'],
      );
      const ch = sh.changed[0];
      assert.deepEqual([ch.rule_id, ch.from, ch.to], ['tco', 'allow', 'throttle']);
      assert.deepEqual(ch.top.map((x: any) => x.name).sort(), ['reddit.com', 't.co', 'www.microsoft.com']);
      assert.equal(new Set(ch.top.map((x: any) => x.count)).size, 1, 'each name once per report per box');
      assert.equal(ch.flows, 3 * ch.top[0].count);
      assert.equal(sh.shadow.throttle, ch.flows);
      assert.equal(sh.active.throttle, 0);
      assert.equal(sh.active.block, un.flows);
      assert.equal(un.flows * 3, ch.flows);
      assert.equal(sh.shadow.flows, sh.active.flows);
      assert.equal(sh.shadow.flows, 2 * ch.flows, '3 of the 6 names of each report');

      const done = await until(r.json.id, ['succeeded', 'rolled_back', 'aborted', 'failed']);
      assert.equal(done.state, 'failed', JSON.stringify(done));
      assert.match(
        done.reason,
        /analysis failed at stage shadow: (pattern_flows|blocked_share|changed_share) on box-[abc]/,
      );
      assert.equal(done.stages[0].state, 'failed');
      assert.equal(done.stages[1].state, 'pending');
      assert.equal((await t.api('vera', 'GET', `/v1/versions/${tco}`)).json.status, 'failed');
      assert.equal((await t.api('vera', 'GET', `/v1/versions/${active}`)).json.status, 'active');
      const rows = (await t.api('vera', 'GET', '/v1/audit?limit=5000')).json.rows;
      const start = rows.find((y: any) => y.target === `rollout:${r.json.id}`).seq;
      const mine = rows
        .filter(
          (x: any) =>
            x.target === `rollout:${r.json.id}` || (x.action.startsWith('bundle.') && x.seq > start),
        )
        .map((x: any) => x.action);
      assert.deepEqual(mine, [
        'rollout.start',
        'bundle.shadow',
        'rollout.stage',
        'rollout.analysis_failed',
        'rollout.fail',
        'bundle.resign',
      ]);
      const af = JSON.parse(
        rows.find((x: any) => x.action === 'rollout.analysis_failed' && x.target === `rollout:${r.json.id}`)
          .after,
      );
      assert.match(af.metric, /^(pattern_flows|blocked_share|changed_share)$/);
      // every box evaluated the version in shadow, none enforced it, all are back on the fleet bundle
      const m = verifyBundle(envelopeOf((await t.api('box1', 'GET', '/v1/bundle')).json), t.rootPublicPem);
      assert.equal(m.kind, 'resign');
      assert.equal(m.policy_version, active);
      assert.ok(!m.shadow);
      for (const [i, b] of boxes.entries()) {
        const end = Date.now() + 10_000;
        while (b.bundle !== m.version && Date.now() < end) await new Promise((res) => setTimeout(res, 50));
        assert.equal(b.bundle, m.version, b.name);
        assert.ok(b.bundle > before[i]);
        assert.equal(b.shadowV, null, b.name);
        assert.ok(b.shadowSeen.has(tco), `${b.name} evaluated the version in shadow`);
        assert.ok(!b.seen.has(tco), `${b.name} never enforced it`);
      }
    });

    test('a good version passes the shadow stage, then the enforced stages', async () => {
      const v = await version(block(['bad.example', 'shadowok.example']));
      model.blocked.set(v, ['bad.example', 'shadowok.example']);
      const r = await t.api('alice', 'POST', '/v1/rollouts', { version_id: v, plan: SHADOW_PLAN(1.5) });
      assert.equal(r.status, 201, JSON.stringify(r.json));
      const done = await until(r.json.id, ['succeeded', 'rolled_back', 'aborted', 'failed']);
      assert.equal(done.state, 'succeeded', JSON.stringify(done.samples.filter((s: any) => !s.pass)));
      assert.deepEqual(
        done.stages.map((s: any) => [s.name, s.mode, s.state, s.nodes]),
        [
          ['shadow', 'shadow', 'passed', ['box-a', 'box-b', 'box-c']],
          ['canary', 'enforce', 'passed', ['box-a']],
          ['all', 'enforce', 'passed', ['box-a', 'box-b', 'box-c']],
        ],
      );
      const shadowMetrics = new Set(done.samples.filter((s: any) => s.stage === 0).map((s: any) => s.metric));
      assert.deepEqual([...shadowMetrics].sort(), [
        'blocked_share',
        'changed_share',
        'pattern_flows',
        'protected_hits',
      ]);
      assert.equal((await t.api('vera', 'GET', `/v1/versions/${v}`)).json.status, 'active');
      const m = verifyBundle(envelopeOf((await t.api('box1', 'GET', '/v1/bundle')).json), t.rootPublicPem);
      assert.equal(m.kind, 'publish');
      assert.equal(m.policy_version, v);
      for (const b of boxes) {
        const end = Date.now() + 10_000;
        while (b.bundle !== m.version && Date.now() < end) await new Promise((res) => setTimeout(res, 50));
        assert.equal(b.policy, v, b.name);
        assert.ok(b.shadowSeen.has(v), `${b.name} evaluated the version in shadow first`);
      }
    });

    test('a canary that stops reporting fails on no_data', async () => {
      const v = await version(block(['bad.example', 'old.example']));
      model.blocked.set(v, ['bad.example', 'old.example']);
      boxes[0].stop();
      const r = await t.api('alice', 'POST', '/v1/rollouts', { version_id: v, plan: PLAN(30) });
      const done = await until(r.json.id, ['succeeded', 'rolled_back', 'aborted']);
      assert.equal(done.state, 'rolled_back');
      assert.match(done.reason, /no_data on box-a/);
      boxes[0].stopped = false;
      boxes[0].start();
    });

    test('a canary reporting less often than the analysis interval is sampled per report, not failed on no_data', async () => {
      // a real box reports every 30 s by default; here every 2 s against a 0.5 s interval
      const v = await version(block(['bad.example', 'slow.example']));
      model.blocked.set(v, ['bad.example', 'slow.example']);
      const b = boxes[0];
      b.periodMs = 2000;
      b.announce = true;
      try {
        // the baseline report must carry the box's cadence
        const end = Date.now() + 10_000;
        let seen: any = null;
        while (Date.now() < end) {
          seen = (await t.api('vera', 'GET', '/v1/nodes')).json.nodes.find((n: any) => n.name === b.name);
          if (seen?.traffic?.report_every_s === 2) break;
          await new Promise((res) => setTimeout(res, 100));
        }
        assert.equal(seen?.traffic?.report_every_s, 2);
        const plan = {
          stages: [
            {
              name: 'canary',
              select: { labels: { tier: 'canary' } },
              bake_s: 5,
              analysis: { interval_s: 0.5, threshold: 2 },
            },
          ],
        };
        const r = await t.api('alice', 'POST', '/v1/rollouts', { version_id: v, plan });
        assert.equal(r.status, 201, JSON.stringify(r.json));
        const done = await until(r.json.id, ['succeeded', 'rolled_back', 'aborted']);
        assert.equal(done.state, 'succeeded', JSON.stringify(done.samples.filter((s: any) => !s.pass)));
        assert.equal(done.samples.filter((s: any) => s.metric === 'no_data').length, 0);
        // one sample set per report, not per interval: 5 s of bake at 2 s a report
        const windows = new Set(done.samples.map((s: any) => s.at));
        assert.ok(windows.size >= 2 && windows.size <= 5, `${windows.size} windows`);
        // the stage bundle asked its boxes for a report every interval
        assert.deepEqual(b.rolloutSections.at(-1), { id: r.json.id, stage: 0, report_every_s: 0.5 });
      } finally {
        b.periodMs = 150;
        b.announce = false;
      }
    });

    test('pause holds the stage, resume continues, abort gives the canary the old content back', async () => {
      const v = await version(block(['bad.example', 'paused.example']));
      model.blocked.set(v, ['bad.example', 'paused.example']);
      const r = await t.api('alice', 'POST', '/v1/rollouts', { version_id: v, plan: PLAN(2) });
      const id = r.json.id;
      assert.equal((await t.api('alice', 'POST', `/v1/rollouts/${id}/pause`)).json.state, 'paused');
      assert.equal((await t.api('alice', 'POST', `/v1/rollouts/${id}/pause`)).status, 409);
      await new Promise((res) => setTimeout(res, 3000)); // longer than the bake: a paused rollout must not move
      const p = (await t.api('vera', 'GET', `/v1/rollouts/${id}`)).json;
      assert.equal(p.state, 'paused');
      assert.equal(p.stage, 0);
      assert.equal((await t.api('alice', 'POST', `/v1/rollouts/${id}/resume`)).json.state, 'running');
      const end = Date.now() + 20_000;
      while ((await t.api('vera', 'GET', `/v1/rollouts/${id}`)).json.stage < 1 && Date.now() < end)
        await new Promise((res) => setTimeout(res, 100));
      const a = await t.api('alice', 'POST', `/v1/rollouts/${id}/abort`);
      assert.equal(a.json.state, 'aborted');
      assert.equal(
        (await t.api('vera', 'GET', `/v1/versions/${v}`)).json.status,
        'approved',
        'abort is not a verdict',
      );
      const m = verifyBundle(envelopeOf((await t.api('box1', 'GET', '/v1/bundle')).json), t.rootPublicPem);
      assert.equal(m.kind, 'rollback');
      assert.notEqual(m.policy_version, v);
    });

    test('an emergency stop during a rollout reaches the canary too and ends the rollout', async () => {
      const v = await version(block(['bad.example', 'stop.example']));
      model.blocked.set(v, ['bad.example', 'stop.example']);
      const r = await t.api('alice', 'POST', '/v1/rollouts', { version_id: v, plan: PLAN(30) });
      assert.equal(r.status, 201, JSON.stringify(r.json));
      const e0 = Date.now() + 20_000;
      while (boxes[0].policy !== v && Date.now() < e0) await new Promise((res) => setTimeout(res, 50));
      assert.equal(boxes[0].policy, v, 'the canary took the version');
      const stop = await t.api('alice', 'POST', '/v1/emergency-stop', { reason: 'test' });
      assert.equal(stop.status, 200, JSON.stringify(stop.json));
      for (const b of boxes) {
        const e = Date.now() + 10_000;
        while (b.bundle !== stop.json.bundle_version && Date.now() < e)
          await new Promise((res) => setTimeout(res, 50));
        assert.equal(b.policy, stop.json.id, `${b.name} runs the allow-all version`);
      }
      const ro = (await t.api('vera', 'GET', `/v1/rollouts/${r.json.id}`)).json;
      assert.equal(ro.state, 'aborted');
      assert.match(ro.reason, /emergency stop: test/);
    });
  });
}

describe(
  'rollout failover on postgres: the replica orchestrating dies, another continues',
  { skip: suites.skip('postgres') },
  () => {
    test('kill replica A mid-rollout; replica B finishes it', async () => {
      const { db, dataDir, url } = await suites.freshDb('postgres', 'rofail');
      const a = await startTestController(db, dataDir);
      const dbB = openDb({ databaseUrl: url! });
      let b: RunningController | null = null;
      const boxes: SimBox[] = [];
      try {
        b = await startController(
          dbB,
          { ...DEFAULT_CONFIG, reference: await reference() },
          { host: '127.0.0.1', port: 0 },
        );
        const model = { tco: new Set<number>(), blocked: new Map<number, string[]>() };
        const mk = async (text: string) => {
          const v = await a.api('ed', 'POST', '/v1/versions', { policy: text, filename: 'p.yaml' });
          await a.api('alice', 'POST', `/v1/versions/${v.json.id}/approve`);
          await a.api('bob', 'POST', `/v1/versions/${v.json.id}/approve`);
          model.blocked.set(Number(v.json.id), ['bad.example']);
          return Number(v.json.id);
        };
        const v1 = await mk(block(['bad.example']));
        await a.api('alice', 'POST', `/v1/versions/${v1}/publish`);
        const fleet = [
          ['box-a', { tier: 'canary' }],
          ['box-b', { tier: 'main' }],
        ] as const;
        await startBoxes(a, fleet, model, MIX, boxes, b.url); // the boxes talk to replica B throughout
        await allOn(boxes, v1);
        const v2 = await mk(block(['bad.example', 'gone.example']));
        const r = await a.api('alice', 'POST', '/v1/rollouts', { version_id: v2, plan: PLAN(2) });
        assert.equal(r.status, 201);
        // wait until the canary took the version, then kill replica A
        await allOn([boxes[0]], v2);
        await a.close();
        const end = Date.now() + 40_000;
        let state = '';
        for (;;) {
          const res = await fetch(`${b.url}/v1/rollouts/${r.json.id}`, {
            headers: { authorization: `Bearer ${a.tokens.vera}` },
          });
          state = ((await res.json()) as { state: string }).state;
          if (state !== 'running' || Date.now() > end) break;
          await new Promise((res2) => setTimeout(res2, 100));
        }
        assert.equal(state, 'succeeded');
        await allOn(boxes, v2);
      } finally {
        for (const x of boxes) x.stop();
        await b?.close();
        await dbB.close();
        await a.close().catch(() => {});
      }
    });
  },
);

describe(
  'PostgreSQL restarted during a rollout: nothing lost, the rollout resumes',
  { skip: suites.skip('postgres') },
  () => {
    test('the server restarted between two stages; the rollout ends succeeded, every sample and audit row kept; long-polls woken again', async () => {
      const { db, dataDir } = await suites.freshDb('postgres', 'rorestart');
      const t = await startTestController(db, dataDir);
      const boxes: SimBox[] = [];
      const model = { tco: new Set<number>(), blocked: new Map<number, string[]>() };
      try {
        const mk = async (names: string[]) => {
          const v = await t.api('ed', 'POST', '/v1/versions', { policy: block(names), filename: 'p.yaml' });
          await t.api('alice', 'POST', `/v1/versions/${v.json.id}/approve`);
          await t.api('bob', 'POST', `/v1/versions/${v.json.id}/approve`);
          model.blocked.set(Number(v.json.id), names);
          return Number(v.json.id);
        };
        const v1 = await mk(['bad.example']);
        await t.api('alice', 'POST', `/v1/versions/${v1}/publish`);
        const toks: Record<string, string> = {};
        for (const [name, labels] of [
          ['box-a', { tier: 'canary' }],
          ['box-b', { tier: 'main' }],
          ['box-c', { tier: 'main' }],
        ] as const) {
          toks[name] = (await t.api('root', 'POST', '/v1/tokens', { name, role: 'node' })).json.token;
          const x = new SimBox(t, name, labels, toks[name], model, MIX);
          boxes.push(x);
          x.start();
        }
        await allOn(boxes, v1);
        const v2 = await mk(['bad.example', 'gone.example']);
        const r = await t.api('alice', 'POST', '/v1/rollouts', { version_id: v2, plan: PLAN(2) });
        assert.equal(r.status, 201, JSON.stringify(r.json));
        const get = async () => (await t.api('vera', 'GET', `/v1/rollouts/${r.json.id}`)).json;
        // the canary stage passed and the 50 % stage runs: take what is stored so far
        for (const end = Date.now() + 40_000; ;) {
          const ro = await get();
          if (ro.stage >= 1 && ro.samples.some((s: any) => s.stage === 1)) break;
          assert.ok(ro.state === 'running' && Date.now() < end, JSON.stringify(ro));
          await new Promise((res) => setTimeout(res, 50));
        }
        const before = await get();
        const auditBefore = (await t.api('vera', 'GET', '/v1/audit?limit=5000')).json.rows;
        // a long-poll for box-c across the restart: box-c's next bundle is its stage bundle, signed
        // when the rollout enters the last stage after the restart; only a notification received
        // after the restart (the listening connection re-opened) answers with it — on its timeout
        // the poll would answer with the final fleet bundle instead
        assert.equal(before.stages[2].started, null, 'the last stage has not started yet');
        const have = boxes[2].bundle;
        const poll = fetch(`${t.run.url}/v1/bundle?wait=60`, {
          headers: { authorization: `Bearer ${toks['box-c']}`, 'if-none-match': `"${have}"` },
        });
        // the poll is waiting (its first read done) before the server goes down
        for (const end = Date.now() + 10_000; t.run.ctx.waitersByToken.size === 0;) {
          assert.ok(Date.now() < end, 'the long-poll is waiting');
          await new Promise((res) => setTimeout(res, 10));
        }
        await suites.pg()!.restart(3000);
        let done: any;
        for (const end = Date.now() + 60_000; ;) {
          const res = await t.api('vera', 'GET', `/v1/rollouts/${r.json.id}`);
          if (res.status === 200 && res.json.state !== 'running') {
            done = res.json;
            break;
          }
          assert.ok(Date.now() < end, `rollout not finished after the restart: ${JSON.stringify(res.json)}`);
          await new Promise((res2) => setTimeout(res2, 100));
        }
        assert.equal(done.state, 'succeeded', JSON.stringify(done.samples.filter((s: any) => !s.pass)));
        assert.deepEqual(
          done.stages.map((s: any) => s.state),
          ['passed', 'passed', 'passed'],
        );
        // nothing lost: every sample and audit row stored before the restart is still there, unchanged,
        // and the rollout went on sampling after it
        assert.deepEqual(done.samples.slice(0, before.samples.length), before.samples);
        assert.ok(
          done.samples.some((s: any) => s.stage === 2),
          'sampled the last stage after the restart',
        );
        const auditAfter = (await t.api('vera', 'GET', '/v1/audit?limit=5000')).json.rows;
        assert.deepEqual(auditAfter.slice(0, auditBefore.length), auditBefore);
        const mine = auditAfter
          .filter((x: any) => x.target === `rollout:${r.json.id}`)
          .map((x: any) => x.action);
        assert.deepEqual(mine, [
          'rollout.start',
          'rollout.stage',
          'rollout.stage',
          'rollout.stage',
          'rollout.complete',
        ]);
        const ver = (await t.api('vera', 'GET', '/v1/audit/verify')).json;
        assert.equal(ver.ok, true, JSON.stringify(ver));
        // the long-poll was answered by the notification of box-c's stage bundle
        const p = await poll;
        assert.equal(p.status, 200, p.status === 200 ? '' : await p.text());
        const m = verifyBundle(envelopeOf(await p.json()), t.rootPublicPem, { minVersion: have + 1 });
        assert.equal(m.kind, 'stage', `answered with bundle ${m.version} (${m.kind})`);
        assert.equal(m.version, done.stages[2].bundle, "the rollout's stage bundle");
        await allOn(boxes, v2);
      } finally {
        for (const x of boxes) x.stop();
        await t.close();
      }
    });
  },
);
