/**
 * @module fleet/scenario2021.test
 * The March 2021 scenario end to end in a lab (root; issue 11's first acceptance item): three real
 * boxes — `chokepoint enforce --controller …` on NFQUEUE, each forwarding for the clients of its own
 * sub—box—net lab, one labelled `tier=canary` — follow a real controller (in this process, embedded
 * SQLite, reached from each box namespace through a Unix-socket relay: loopback only). The clients
 * keep opening TLS connections to reddit.com, www.microsoft.com, t.co and example.org.
 *
 * 1. A good version goes through every stage of a rollout (shadow on all → canary → 50 % → all) and
 *    is active on all three; the boxes, started with the default `--status-every` (30 s), report at
 *    the plan's 5 s while they hold a stage or shadow bundle.
 * 2. A `*t.co*` throttle version, approved with an admin override, starts its rollout (canary → 50 %
 *    → all; analysis interval 5 s, threshold 2, the documented lab defaults). The canary throttles
 *    reddit.com and www.microsoft.com; the analysis fails on pattern_flows and rolls back
 *    automatically; the other boxes' EVE logs never show a throttle verdict; the audit log tells the
 *    story in order; a reddit.com download started under the bad version recovers its speed after
 *    the rollback. The time from the first collateral flow (its EVE timestamp) to the rollback is
 *    printed (a figure for docs/FLEET.md and BENCHMARKS.md, not an assertion).
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- API answers are untyped JSON, checked field by field */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import type { Server } from 'node:net';
import { freshDb, startTestController, TOP10K, type TestController } from '../controller/testutil.js';
import { MAIN_JS, readEve, setupInlineLab, sleep, type InlineLab } from '../enforce/testing/harness.js';
import { startRelay } from '../lab/relay.js';
import { haveTool, havePath, isRoot, need } from '../testutil/require.js';

const RELAY_JS = fileURLToPath(new URL('../lab/relay.js', import.meta.url));
const CLIENTS_JS = fileURLToPath(new URL('./testing/tls-clients.js', import.meta.url));
const NAMES = ['reddit.com', 'www.microsoft.com', 't.co', 'example.org'];
const COLLATERAL = ['reddit.com', 'www.microsoft.com'];

const SKIP = need(
  isRoot() && haveTool('conntrack') && havePath(TOP10K),
  'needs root (network namespaces, NFQUEUE, iptables), conntrack (Debian conntrack) and the shared corpus reference list',
);

const HEAD = 'version: 1\ndefault: allow\ninspection: {mode: normal, hold_ms: 1000}\nrules:\n';
const blockRule = (names: string[]) =>
  `  - id: block-list\n    action: block\n    match: {host: {suffix: [${names.join(', ')}]}}\n    provenance: {authority: Lab court}\n`;
const TCO_RULE =
  '  - id: tco\n    action: throttle\n    rate: 256kbit\n    burst: 8KB\n    match: {host: {substring: [t.co]}}\n';

const analysis = { interval_s: 5, threshold: 2 };
const GOOD_PLAN = {
  stages: [
    { name: 'shadow', mode: 'shadow', select: 'all', bake_s: 15, analysis },
    { name: 'canary', select: { labels: { tier: 'canary' } }, bake_s: 15, analysis },
    { name: '50%', select: { percent: 50 }, bake_s: 15, analysis },
    { name: 'all', select: 'all', bake_s: 15, analysis },
  ],
};
const TCO_PLAN = {
  stages: [
    { name: 'canary', select: { labels: { tier: 'canary' } }, bake_s: 120, analysis },
    { name: '50%', select: { percent: 50 }, bake_s: 120, analysis },
    { name: 'all', select: 'all', bake_s: 120, analysis },
  ],
};

/** A child's output, line by line, with the time each line arrived. */
class Watched {
  lines: { t: number; s: string }[] = [];
  private tail = '';
  constructor(readonly child: ChildProcess) {
    const on = (d: Buffer): void => {
      const parts = (this.tail + d.toString()).split('\n');
      this.tail = parts.pop() ?? '';
      const t = Date.now();
      for (const s of parts) this.lines.push({ t, s });
    };
    child.stdout?.on('data', on);
    child.stderr?.on('data', on);
  }
  /** Arrival time of the first line matching `re` after `from` (ms), or null. */
  at(re: RegExp, from = 0): number | null {
    return this.lines.find((l) => l.t >= from && re.test(l.s))?.t ?? null;
  }
  async wait(re: RegExp, ms: number, from = 0): Promise<number> {
    const end = Date.now() + ms;
    for (;;) {
      const t = this.at(re, from);
      if (t !== null) return t;
      if (this.child.exitCode !== null || Date.now() > end)
        throw new Error(
          `no line ${re} (${this.child.exitCode !== null ? `exited ${this.child.exitCode}` : 'timeout'}): …${this.text().slice(-2000)}`,
        );
      await sleep(100);
    }
  }
  text(): string {
    return this.lines.map((l) => l.s).join('\n');
  }
}

async function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const done = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
  await done;
  clearTimeout(t);
}

interface Box {
  name: string;
  tier: string;
  il: InlineLab;
  enforce: Watched;
}

const fileSize = (f: string): number => (existsSync(f) ? statSync(f).size : 0);
const eveMs = (e: Record<string, unknown>): number => Date.parse(String(e.timestamp));
const verdicts = (il: InlineLab, names: string[], action: string) =>
  readEve(il).filter((e: any) => names.includes(String(e.host)) && e.verdict?.action === action) as any[];

test(
  'the 2021 scenario: a good version through every stage on three boxes; an overridden *t.co* version rolled back from the canary',
  { skip: SKIP, timeout: 900_000 },
  async (t) => {
    const note = (s: string): void => t.diagnostic(s);
    const { db, dataDir } = await freshDb('sqlite', null, 'scenario2021');
    const ctl: TestController = await startTestController(db, dataDir);
    const dir = mkdtempSync(join(tmpdir(), 'cp-s21-'));
    const sock = join(dir, 'ctl.sock');
    let hostRelay: Server | null = null;
    const boxes: Box[] = [];
    const running: ChildProcess[] = [];
    const spawn = (il: InlineLab, ns: 'sub' | 'box', cmd: string[]): Watched => {
      const w = new Watched(il.lab.spawn(ns, cmd));
      running.push(w.child);
      return w;
    };
    const api = async (who: string, method: string, path: string, body?: unknown, ok = [200, 201]) => {
      const r = await ctl.api(who, method, path, body);
      assert.ok(ok.includes(r.status), `${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`);
      return r.json;
    };
    const version = async (text: string, override?: string): Promise<number> => {
      const v = await api('ed', 'POST', '/v1/versions', { policy: text, filename: 'policy.yaml' });
      if (override) await api('root', 'POST', `/v1/versions/${v.id}/override`, { reason: override });
      await api('alice', 'POST', `/v1/versions/${v.id}/approve`);
      const a = await api('bob', 'POST', `/v1/versions/${v.id}/approve`);
      assert.equal(a.status, 'approved', JSON.stringify(a));
      return Number(v.id);
    };
    const nodes = async (): Promise<any[]> => (await api('vera', 'GET', '/v1/nodes')).nodes;
    const rollout = async (id: number): Promise<any> => api('vera', 'GET', `/v1/rollouts/${id}`);
    try {
      hostRelay = await startRelay(
        { path: sock },
        { host: '127.0.0.1', port: Number(new URL(ctl.run.url).port) },
      );
      const trust = join(dir, 'root.pub');
      writeFileSync(trust, ctl.rootPublicPem);

      const v1 = await version(HEAD + blockRule(['bad.example']));
      await api('alice', 'POST', `/v1/versions/${v1}/publish`);

      // ---- the lab: three sub—box—net triples, a box each, clients behind each
      const tag = String(process.pid % 10000);
      for (const [name, tier] of [
        ['box-a', 'canary'],
        ['box-b', 'main'],
        ['box-c', 'main'],
      ] as const) {
        const il = await setupInlineLab(`s21${name.slice(-1)}${tag}`, HEAD + '  []\n');
        const box: Box = { name, tier, il, enforce: null as unknown as Watched };
        boxes.push(box);
        const tok = await api('root', 'POST', '/v1/tokens', { name, role: 'node' });
        const relay = spawn(il, 'box', [process.execPath, RELAY_JS, '127.0.0.1:8443', sock]);
        await relay.wait(/relay listening/, 10_000);
        // defaults for --status-every (30 s) and --poll-wait (60 s): the cadence under test
        box.enforce = spawn(il, 'box', [process.execPath, MAIN_JS, 'enforce', '--controller', 'http://127.0.0.1:8443',
          '--token', tok.token, '--trust', trust, '--node', name, '--labels', `tier=${tier}`,
          '--state', join(il.dir, 'state'), '--eve', il.eve, '--chain', il.chain, '--queues', String(il.queue)]); // prettier-ignore
        await box.enforce.wait(/bound/, 60_000);
        spawn(il, 'sub', [process.execPath, CLIENTS_JS, il.server, '1000', ...NAMES]);
      }
      // every box enforces v1 and has reported traffic under it (the rollout baseline)
      for (const end = Date.now() + 120_000; ; ) {
        const ns = await nodes();
        const ready = boxes.every((b) => {
          const n = ns.find((x) => x.name === b.name);
          return n?.traffic?.policy_version === v1 && n.traffic.flows > 0;
        });
        if (ready) break;
        assert.ok(Date.now() < end, `boxes not reporting under v1: ${JSON.stringify(ns.map((n) => [n.name, n.traffic]))}`);
        await sleep(500);
      } // prettier-ignore

      // ---- 1. a good version through every stage
      const v2 = await version(HEAD + blockRule(['bad.example', 'gone.example']));
      const good = await api('alice', 'POST', '/v1/rollouts', { version_id: v2, plan: GOOD_PLAN });
      const goodStart = Date.now();
      // watch the fleet view meanwhile: each node's distinct reports while it holds a rollout bundle
      const reports = new Map<string, { seen: { at: number; bundle: number }[]; every: Set<number> }>();
      let r: any;
      for (const end = Date.now() + 400_000; ;) {
        r = await rollout(good.id);
        const held = new Set<number>(r.stages.map((s: any) => s.bundle).filter((x: any) => x !== null));
        for (const n of await nodes()) {
          if (!held.has(n.active_version) || !n.traffic) continue;
          const e = reports.get(n.name) ?? { seen: [], every: new Set<number>() };
          const last = e.seen[e.seen.length - 1];
          if (last?.at !== n.last_seen) e.seen.push({ at: n.last_seen, bundle: n.active_version });
          e.every.add(n.traffic.report_every_s);
          reports.set(n.name, e);
        }
        if (r.state !== 'running') break;
        assert.ok(Date.now() < end, `good rollout still running at stage ${r.stage}`);
        await sleep(250);
      }
      assert.equal(r.state, 'succeeded', JSON.stringify(r.samples.filter((s: any) => !s.pass).slice(-6)));
      assert.deepEqual(
        r.stages.map((s: any) => [s.name, s.state, s.nodes]),
        [
          ['shadow', 'passed', ['box-a', 'box-b', 'box-c']],
          ['canary', 'passed', ['box-a']],
          ['50%', 'passed', ['box-a', 'box-b']],
          ['all', 'passed', ['box-a', 'box-b', 'box-c']],
        ],
      );
      const audit1 = (await api('vera', 'GET', '/v1/audit?limit=5000')).rows as any[];
      const complete = audit1.find(
        (x) => x.action === 'rollout.complete' && x.target === `rollout:${good.id}`,
      );
      assert.ok(complete, 'rollout.complete audited');
      const fleet = (await api('vera', 'GET', '/v1/versions?status=active')).versions[0];
      assert.equal(Number(fleet.id), v2);
      const pubBundle = Number(fleet.bundle_version);
      const applied: number[] = [];
      for (const b of boxes)
        applied.push(await b.enforce.wait(new RegExp(`bundle ${pubBundle} \\(policy version ${v2}, publish\\) active`), 60_000)); // prettier-ignore
      // stage entry → the stage's boxes log the stage bundle active
      const stageMs: string[] = [];
      for (const [i, s] of r.stages.entries()) {
        const entered = audit1.find(
          (x) =>
            x.action === 'rollout.stage' &&
            x.target === `rollout:${good.id}` &&
            JSON.parse(x.after).stage === i,
        );
        const fresh = i === 0 ? s.nodes : s.nodes.filter((n: string) => !r.stages[i - 1].nodes.includes(n) || r.stages[i - 1].mode === 'shadow'); // prettier-ignore
        const ts = fresh.map(
          (n: string) =>
            boxes.find((b) => b.name === n)!.enforce.at(new RegExp(`bundle ${s.bundle} \\(`), goodStart) ??
            NaN,
        );
        stageMs.push(`${s.name} ${Math.max(...ts) - Number(entered.at)} ms`);
      }
      note(`good version ${v2}: rollout ${good.id} shadow→canary→50%→all succeeded in ${((Number(complete.at) - goodStart) / 1000).toFixed(1)} s (bake 15 s each); stage entry → its boxes active: ${stageMs.join(', ')}; rollout.complete → publish bundle ${pubBundle} active on all three: ${Math.max(...applied) - Number(complete.at)} ms`); // prettier-ignore
      // the report cadence: a box holding a stage/shadow bundle announces and keeps 5 s, not its 30 s
      for (const b of boxes) {
        const e = reports.get(b.name);
        assert.ok(e, `${b.name} seen on a rollout bundle`);
        assert.deepEqual([...e.every], [5], `${b.name} report_every_s on a rollout bundle`);
        // gaps between two reports on the same rollout bundle (a change of bundle reports at once)
        const gaps = e.seen
          .slice(1)
          .flatMap((x, i) => (x.bundle === e.seen[i].bundle ? [x.at - e.seen[i].at] : []));
        note(`${b.name}: ${e.seen.length} reports seen on rollout bundles, gaps ${gaps.map((g) => (g / 1000).toFixed(1)).join(' ')} s`); // prettier-ignore
      }
      for (const [i, s] of r.stages.entries())
        for (const n of s.nodes) {
          const mine = r.samples.filter((x: any) => x.stage === i && x.node === n && x.metric !== 'no_data');
          const at = new Set(mine.map((x: any) => x.at));
          assert.ok(at.size >= 2, `stage ${s.name}: ${n} analysed on ≥ 2 reports of its own (${at.size})`);
        }
      for (const b of boxes) {
        const bad = verdicts(b.il, NAMES, 'throttle');
        assert.equal(bad.length, 0, `${b.name}: nothing throttled under v1/v2`);
      }

      // ---- 2. the *t.co* version
      const tcoText = HEAD + blockRule(['bad.example', 'gone.example']) + TCO_RULE;
      const tco = await version(tcoText, 'lab emulation of the March 2021 rule');
      const ro = await api('alice', 'POST', '/v1/rollouts', { version_id: tco, plan: TCO_PLAN });
      const tcoStart = Date.now();
      const canary = boxes[0];
      const stageAt = await canary.enforce.wait(
        new RegExp(`\\(policy version ${tco}, stage\\) active`),
        60_000,
      );
      // a long reddit.com download under the bad version
      const out = join(canary.il.dir, 'reddit.bin');
      const total = 8_000_000;
      const dl = canary.il.lab.exec(
        'sub',
        ['curl', '-sk', '--resolve', `reddit.com:443:${canary.il.server}`, '-o', out, '--max-time', '240',
          `https://reddit.com/bytes/${total}`],
        { timeoutMs: 250_000 },
      ); // prettier-ignore
      const sizes: { t: number; n: number }[] = [];
      let done: any;
      for (const end = Date.now() + 240_000; ;) {
        sizes.push({ t: Date.now(), n: fileSize(out) });
        done = await rollout(ro.id);
        if (done.state !== 'running') break;
        assert.ok(Date.now() < end, `t.co rollout still running at stage ${done.stage}`);
        await sleep(200);
      }
      assert.equal(done.state, 'rolled_back', JSON.stringify(done));
      assert.match(done.reason, /analysis failed at stage canary: (pattern_flows|blocked_share) on box-a/);
      assert.equal((await api('vera', 'GET', `/v1/versions/${tco}`)).status, 'failed');
      assert.equal((await api('vera', 'GET', `/v1/versions/${v2}`)).status, 'active');
      const audit = (await api('vera', 'GET', '/v1/audit?limit=5000')).rows as any[];
      const first = audit.find((x) => x.target === `version:${tco}`).seq;
      const story = audit.filter(
        (x) => x.seq >= first && (x.target === `version:${tco}` || x.target === `rollout:${ro.id}` || x.action.startsWith('bundle.')),
      ); // prettier-ignore
      note(`audit: ${story.map((x) => `${x.action}(${x.actor})`).join(' → ')}`);
      assert.deepEqual(
        story.map((x) => x.action),
        [
          'version.create',
          'version.submit',
          'version.override',
          'version.approve',
          'version.approve',
          'rollout.start',
          'bundle.stage',
          'rollout.stage',
          'rollout.analysis_failed',
          'rollout.rollback',
          'bundle.rollback',
        ],
      );
      const failedRow = JSON.parse(story.find((x) => x.action === 'rollout.analysis_failed').after);
      assert.equal(failedRow.node, 'box-a');
      const rollbackRow = story.find((x) => x.action === 'rollout.rollback');
      const rbBundle = Number(JSON.parse(story.find((x) => x.action === 'bundle.rollback').after).bundle);
      assert.ok(rbBundle > 0, JSON.stringify(story.at(-1)));
      // the canary enforces the rollback bundle (a new, higher bundle of v2) and re-decides
      const rbActive = await canary.enforce.wait(
        new RegExp(`bundle ${rbBundle} \\(policy version ${v2}, rollback\\) active`),
        60_000,
      );
      await canary.enforce.wait(/re-decided \d+ connection/, 30_000, rbActive - 1000);
      // the download: throttled before, fast after
      const r2 = await dl;
      const dlEnd = Date.now();
      assert.equal(r2.code, 0, `the download completes: ${r2.stderr}`);
      assert.equal(fileSize(out), total);
      const at = (tm: number) => sizes.filter((s) => s.t <= tm).at(-1) ?? { t: tm, n: 0 };
      const a0 = sizes.find((s) => s.n > 40_000) ?? sizes[0];
      const a1 = at(Number(rollbackRow.at));
      const before = ((a1.n - a0.n) * 1000) / Math.max(1, a1.t - a0.t);
      const rb = at(rbActive);
      const afterRate = ((total - rb.n) * 1000) / Math.max(1, dlEnd - rb.t);
      note(`reddit.com download: ${Math.round(before)} B/s under the t.co version, ${Math.round(afterRate)} B/s from the rollback to its end (${total} bytes)`); // prettier-ignore
      assert.ok(before < 64_000, `throttled at 256 kbit/s: ${Math.round(before)} B/s`);
      assert.ok(
        afterRate > 5 * before,
        `recovered: ${Math.round(afterRate)} B/s vs ${Math.round(before)} B/s`,
      );

      // EVE: collateral on the canary, nothing on the others
      const coll = verdicts(canary.il, COLLATERAL, 'throttle');
      assert.ok(
        COLLATERAL.every((n) => coll.some((e) => e.host === n)),
        `canary throttled ${COLLATERAL.join(', ')}: ${coll.length} verdicts`,
      );
      const firstColl = Math.min(...coll.map(eveMs));
      const backToAllow = verdicts(canary.il, COLLATERAL, 'allow')
        .map(eveMs)
        .filter((x) => x > firstColl)
        .sort((x, y) => x - y);
      const allowAgain = backToAllow.find((x) => x >= rbActive - 1000) ?? NaN;
      for (const b of boxes.slice(1)) {
        const bad = verdicts(b.il, NAMES, 'throttle');
        assert.equal(
          bad.length,
          0,
          `${b.name} never enforced the t.co version: ${JSON.stringify(bad[0]?.eve)}`,
        );
        assert.ok(!b.enforce.at(new RegExp(`policy version ${tco}`)), `${b.name} never took the version`);
      }
      // the collateral signal itself: pattern_flows failed on the canary, naming the lab's collateral
      // (the names come from the box's report, not from the version's diff or its override)
      const pf = done.samples.filter(
        (x: any) => x.metric === 'pattern_flows' && !x.pass && x.node === 'box-a',
      );
      assert.ok(pf.length >= 1, JSON.stringify(done.samples.filter((x: any) => !x.pass)));
      for (const n of COLLATERAL)
        assert.ok(
          pf.some((x: any) => x.names?.includes(n)),
          `pattern_flows names ${n}: ${JSON.stringify(pf)}`,
        );
      assert.ok(
        done.samples.every((x: any) => x.node === 'box-a'),
        'only the canary was analysed (the other boxes never took the version)',
      );
      note(`t.co version ${tco}: stage bundle active on the canary ${stageAt - tcoStart} ms after rollout start; first collateral flow (EVE) → audit rollout.rollback ${Number(rollbackRow.at) - firstColl} ms, → canary logs rollback bundle ${rbBundle} active ${rbActive - firstColl} ms, → first allow verdict for reddit.com/www.microsoft.com after it ${allowAgain - firstColl} ms; failing metric ${failedRow.metric} = ${failedRow.value} (limit +${failedRow.threshold}); pattern_flows names ${[...new Set(pf.flatMap((x: any) => x.names))].join(', ')}`); // prettier-ignore
    } finally {
      for (const c of running) await stop(c).catch(() => undefined);
      for (const b of boxes) await b.il.close().catch(() => undefined);
      hostRelay?.close();
      await ctl.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
