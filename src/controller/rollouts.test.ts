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
  freshDb,
  pgUnavailable,
  startPostgres,
  startTestController,
  type PgServer,
  type TestController,
} from './testutil.js';
import { verifyBundle, type Envelope } from './bundles.js';
import { openDb } from './db.js';
import { startController, type RunningController } from './server.js';
import { DEFAULT_CONFIG } from './context.js';
import { reference } from './testutil.js';

const CI = process.env.CI === 'true';
const PG_WHY = pgUnavailable();
let pgs: PgServer | null = null;
let dbSeq = 0;
before(async () => {
  if (!PG_WHY) pgs = await startPostgres();
});
after(() => pgs?.stop());

test('PostgreSQL prerequisites', { skip: !CI && PG_WHY ? PG_WHY : false }, () => {
  assert.equal(PG_WHY, null, `PostgreSQL tests cannot run: ${PG_WHY}`);
});

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

const env = (j: any): Envelope => ({
  manifest: j.manifest,
  signature: j.signature,
  keyid: j.keyid,
  trust: j.trust,
});

/**
 * A simulated box: pulls its bundle, refuses a lower one, and reports counters computed by its own
 * model of the two test policies (not by the controller's code): names under a blocked suffix are
 * blocked by an exact/suffix rule; names containing "t.co" under the *t.co* version are throttled
 * through a substring pattern.
 */
class Box {
  bundle = 0;
  policy = 0;
  seen = new Set<number>();
  stopped = false;
  private since = new Date().toISOString();
  private c = { flows: 0, block: 0, throttle: 0, pattern: 0, top: new Map<string, number>() };
  private timer: NodeJS.Timeout | null = null;
  constructor(
    private t: TestController,
    readonly name: string,
    readonly labels: Record<string, string>,
    private token: string,
    private model: { tco: Set<number>; blocked: Map<number, string[]> },
  ) {}
  /** where the box talks to (another replica's URL in the failover test) */
  url: string | null = null;
  private async call(method: string, path: string, body?: unknown) {
    const r = await fetch((this.url ?? this.t.run.url) + path, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
        ...(method === 'GET' && this.bundle ? { 'if-none-match': `"${this.bundle}"` } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: r.status, json: r.status === 200 ? await r.json() : null };
  }
  async once(): Promise<void> {
    const b = await this.call('GET', '/v1/bundle');
    if (b.status === 200) {
      const m = verifyBundle(env(b.json), this.t.rootPublicPem, { minVersion: this.bundle + 1 });
      this.bundle = m.version;
      if (m.policy_version !== this.policy) {
        this.policy = m.policy_version;
        this.seen.add(this.policy);
        this.since = new Date().toISOString();
        this.c = { flows: 0, block: 0, throttle: 0, pattern: 0, top: new Map() };
      }
    }
    for (const n of MIX) {
      this.c.flows++;
      if (this.model.tco.has(this.policy) && n.includes('t.co')) {
        this.c.throttle++;
        this.c.pattern++;
        this.c.top.set(n, (this.c.top.get(n) ?? 0) + 1);
      } else if ((this.model.blocked.get(this.policy) ?? []).some((s) => n === s || n.endsWith('.' + s)))
        this.c.block++;
    }
    const c = this.c;
    await this.call('POST', '/v1/status', {
      node: this.name,
      labels: this.labels,
      active_version: this.bundle,
      errors: [],
      traffic: {
        since: this.since,
        policy_version: this.policy,
        shadow_version: null,
        flows: c.flows,
        by_action: { allow: c.flows - c.block - c.throttle, log: 0, block: c.block, throttle: c.throttle },
        pattern_flows: c.pattern,
        pattern_top: [...c.top].map(([name, count]) => ({ name, rule_id: 'tco', action: 'throttle', count })),
        protected_hits: 0,
        fail_open: 0,
        worker_restarts: 0,
        shadow: null,
      },
    });
  }
  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.once()
        .catch(() => {})
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, 150);
        });
    };
    loop();
  }
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}

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
  const skip = backend === 'postgres' && PG_WHY ? (CI ? false : PG_WHY) : false;
  describe(`rollouts on ${backend}`, { skip }, () => {
    let t: TestController;
    const boxes: Box[] = [];
    const model = { tco: new Set<number>(), blocked: new Map<number, string[]>() };
    before(async () => {
      const { db, dataDir } = await freshDb(backend, pgs, `ro${process.pid}_${++dbSeq}`);
      t = await startTestController(db, dataDir);
    });
    after(async () => {
      for (const b of boxes) b.stop();
      await t?.close();
    });

    async function version(text: string, override?: string): Promise<number> {
      const v = await t.api('ed', 'POST', '/v1/versions', { policy: text, filename: 'p.yaml' });
      assert.equal(v.status, 201, JSON.stringify(v.json));
      if (override)
        assert.equal(
          (await t.api('root', 'POST', `/v1/versions/${v.json.id}/override`, { reason: override })).status,
          200,
        );
      assert.equal((await t.api('alice', 'POST', `/v1/versions/${v.json.id}/approve`)).status, 200);
      const a = await t.api('bob', 'POST', `/v1/versions/${v.json.id}/approve`);
      assert.equal(a.json.status, 'approved', JSON.stringify(a.json));
      return Number(v.json.id);
    }
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
      for (const [name, labels] of [
        ['box-a', { tier: 'canary' }],
        ['box-b', { tier: 'main' }],
        ['box-c', { tier: 'main' }],
      ] as const) {
        const tok = await t.api('root', 'POST', '/v1/tokens', { name, role: 'node' });
        assert.equal(tok.status, 201, JSON.stringify(tok.json));
        const b = new Box(t, name, labels, tok.json.token, model);
        boxes.push(b);
        b.start();
      }
      // every box reported a baseline under v1
      for (const b of boxes) while (b.policy !== v1) await new Promise((r) => setTimeout(r, 50));
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
      const m = verifyBundle(env((await t.api('box1', 'GET', '/v1/bundle')).json), t.rootPublicPem);
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
      const m = verifyBundle(env((await t.api('box1', 'GET', '/v1/bundle')).json), t.rootPublicPem);
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
      const m = verifyBundle(env((await t.api('box1', 'GET', '/v1/bundle')).json), t.rootPublicPem);
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
  { skip: PG_WHY ? (CI ? false : PG_WHY) : false },
  () => {
    test('kill replica A mid-rollout; replica B finishes it', async () => {
      const { db, dataDir, url } = await freshDb('postgres', pgs, `rofail${process.pid}_${++dbSeq}`);
      const a = await startTestController(db, dataDir);
      const dbB = openDb({ databaseUrl: url! });
      let b: RunningController | null = null;
      const boxes: Box[] = [];
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
        for (const [name, labels] of [
          ['box-a', { tier: 'canary' }],
          ['box-b', { tier: 'main' }],
        ] as const) {
          const tok = await a.api('root', 'POST', '/v1/tokens', { name, role: 'node' });
          const x = new Box(a, name, labels, tok.json.token, model);
          x.url = b.url; // the boxes talk to replica B throughout
          boxes.push(x);
          x.start();
        }
        for (const x of boxes) while (x.policy !== v1) await new Promise((r) => setTimeout(r, 50));
        const v2 = await mk(block(['bad.example', 'gone.example']));
        const r = await a.api('alice', 'POST', '/v1/rollouts', { version_id: v2, plan: PLAN(2) });
        assert.equal(r.status, 201);
        // wait until the canary took the version, then kill replica A
        while (boxes[0].policy !== v2) await new Promise((res) => setTimeout(res, 50));
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
        for (const x of boxes) {
          const e2 = Date.now() + 10_000;
          while (x.policy !== v2 && Date.now() < e2) await new Promise((res) => setTimeout(res, 50));
          assert.equal(x.policy, v2, x.name);
        }
      } finally {
        for (const x of boxes) x.stop();
        await b?.close();
        await dbB.close();
        await a.close().catch(() => {});
      }
    });
  },
);
