/**
 * The fleet agent against a real controller (in-process, SQLite, real sockets on 127.0.0.1): pull +
 * activate, every refusal (tampered file, bad signature, unknown and revoked keys, expired, rollback),
 * expiry of the active bundle under both options, controller unreachable at start and down mid-run,
 * restart from the state directory. The reload target compiles each version as a daemon worker does;
 * the inline test (inline.test.ts) drives the real daemon on NFQUEUE.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import client from 'prom-client';
import { rotateSigningKey } from '../controller/keys.js';
import { resignIfDue } from '../controller/bundles.js';
import { FleetAgent, type AgentOptions, type OnExpired } from './agent.js';
import {
  agentOptions,
  CompilingTarget,
  expectRefusal,
  startRig,
  strangerKey,
  tamperNewFile,
  TestAgents,
  type Rig,
} from './testing/rig.js';

interface Report {
  active_version: number | null;
  counters: Record<string, number>;
}

interface Box {
  agent: FleetAgent;
  target: CompilingTarget;
  reg: client.Registry;
  logs: string[];
}

/** A test's rig and its agents (stopped, with their pending waits, by `live.close()` in its finally). */
interface T {
  rig: Rig;
  live: TestAgents;
}

async function setUp(): Promise<T> {
  return { rig: await startRig(), live: new TestAgents() };
}

async function tearDown(t: T): Promise<void> {
  await t.live.close();
  await t.rig.close();
}

function newAgent(
  { rig, live }: T,
  state: string,
  over: Partial<AgentOptions> = {},
): { agent: FleetAgent; reg: client.Registry; logs: string[] } {
  const reg = new client.Registry();
  const logs: string[] = [];
  const agent = live.add(
    new FleetAgent(
      agentOptions(rig, {
        node: 'box-a',
        labels: { tier: 'canary', region: 'north' },
        stateDir: state,
        registry: reg,
        log: (m) => logs.push(m),
        ...over,
      }),
    ),
  );
  return { agent, reg, logs };
}

/** Bootstrap, start the target on that version, run; resolves after the first status report. */
async function startBox(t: T, state: string, over: Partial<AgentOptions> = {}, until?: number): Promise<Box> {
  const { agent, reg, logs } = newAgent(t, state, over);
  const target = await CompilingTarget.start(await agent.bootstrap());
  const reported = t.live.next<Report>(
    agent,
    'reported',
    (r) => until === undefined || r.active_version === until,
  );
  agent.run(target);
  await reported;
  return { agent, target, reg, logs };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- API answers are untyped JSON
async function node(rig: Rig, name = 'box-a'): Promise<Record<string, any>> {
  const r = await rig.api('root', 'GET', '/v1/nodes');
  return r.json.nodes.find((n: { name: string }) => n.name === name);
}

function metric(text: string, line: string): boolean {
  return text.split('\n').includes(line);
}

test('happy path: pull, verify, activate, report; a new publish reaches the box by long-poll', async () => {
  const t = await setUp();
  const { rig, live } = t;
  const state = mkdtempSync(join(tmpdir(), 'cp-fleet-state-'));
  try {
    const b1 = await rig.publish('bad.example');
    const box = await startBox(t, state);
    assert.equal(box.agent.activeBundle, b1);
    assert.equal(box.target.verdict('www.bad.example'), 'block');
    assert.equal(box.target.verdict('good.example'), 'allow');
    let n = await node(rig);
    assert.equal(n.active_version, b1);
    assert.deepEqual(n.labels, { tier: 'canary', region: 'north' });
    assert.ok(n.last_activation && n.last_download);

    const activated = live.next(box.agent, 'activated', (v) => v === b1 + 1);
    const reported = live.next<Report>(box.agent, 'reported', (r) => r.active_version === b1 + 1);
    const b2 = await rig.publish('worse.example');
    assert.equal(b2, b1 + 1);
    await activated;
    await reported;
    assert.equal(box.target.verdict('a.worse.example'), 'block');
    assert.equal(box.target.verdict('www.bad.example'), 'block');
    assert.equal(box.target.applied.at(-1), `bundle ${b2}`);
    assert.ok(box.target.active.path.startsWith('/chokepoint-bundle/'), 'not the operator policy path');
    n = await node(rig);
    assert.equal(n.active_version, b2);
    assert.equal(n.drift, false);
    assert.equal(n.counters.bundles_activated, 2);
    const text = await box.reg.metrics();
    assert.ok(metric(text, `chokepoint_fleet_bundle_version ${b2}`), text);
    assert.ok(metric(text, 'chokepoint_fleet_bundles_activated_total 2'), text);
    const saved = JSON.parse(readFileSync(join(state, 'bundle.json'), 'utf8'));
    assert.equal(JSON.parse(saved.envelope.manifest).version, b2);
    await box.agent.stop();
  } finally {
    await tearDown(t);
    rmSync(state, { recursive: true, force: true });
  }
});

test('refusals: tampered file, bad signature, unknown key, expired, revoked key, rollback — each leaves the box on its version and says why', async () => {
  const t = await setUp();
  const { rig, live } = t;
  const state = mkdtempSync(join(tmpdir(), 'cp-fleet-state-'));
  /** Start a box from the state directory and expect the served bundle refused with `reason`. */
  const expectRefused = async (reason: string, held: number, stillBlocked: string, notBlocked: string) => {
    const { agent, reg, logs } = newAgent(t, state);
    const target = await CompilingTarget.start(await agent.bootstrap());
    assert.equal(agent.counters.started_from_state, 1);
    const reported = live.next<Report>(agent, 'reported', (r) => r.counters.bundles_refused > 0);
    await expectRefusal(live, agent, target, reason, held, () => agent.run(target));
    await reported;
    assert.equal(target.applied.length, 1, 'nothing applied');
    assert.equal(target.verdict(stillBlocked), 'block');
    assert.equal(target.verdict(notBlocked), 'allow');
    const n = await node(rig);
    assert.equal(n.active_version, held);
    assert.equal(n.errors.at(-1).reason, reason, JSON.stringify(n.errors));
    assert.equal(n.counters[`refused_${reason}`], 1);
    assert.ok(metric(await reg.metrics(), `chokepoint_fleet_bundles_refused_total{reason="${reason}"} 1`));
    assert.ok(
      logs.some((l) => l.includes(`refused (${reason})`)),
      logs.join('\n'),
    );
    await agent.stop();
  };
  try {
    const b1 = await rig.publish('bad.example');
    const first = await startBox(t, state);
    await first.agent.stop();

    // one byte of a list file changed in the controller's storage
    const v2 = await rig.approve('worse.example');
    const restore = await tamperNewFile(rig, 1, v2);
    assert.equal((await rig.api('alice', 'POST', `/v1/versions/${v2}/publish`)).status, 200);
    await expectRefused('file', b1, 'www.bad.example', 'a.worse.example');
    await restore();
    const b2 = b1 + 1;

    // the manifest edited after signing
    let f = await rig.forge({}, { tamper: (t) => t.replace(/"author":"[^"]*"/, '"author":"mallory"') });
    await expectRefused('signature', b1, 'www.bad.example', 'a.worse.example');
    await rig.db.run('DELETE FROM bundles WHERE version = $1', [f]);

    // signed by a key the root never certified
    const [strangerPem, strangerId] = strangerKey();
    f = await rig.forge({}, { key: strangerPem, keyid: strangerId });
    await expectRefused('key_unknown', b1, 'www.bad.example', 'a.worse.example');
    await rig.db.run('DELETE FROM bundles WHERE version = $1', [f]);

    // validly signed, but already expired (the freeze attack: a stale bundle served on)
    f = await rig.forge({ expires: new Date(Date.now() - 1000).toISOString() });
    await expectRefused('expired', b1, 'www.bad.example', 'a.worse.example');
    await rig.db.run('DELETE FROM bundles WHERE version = $1', [f]);

    // the signing key that signed bundle b2 is revoked by the root
    const keyid = (await rig.db.get<{ keyid: string }>('SELECT keyid FROM bundles WHERE version = $1', [b2]))!
      .keyid;
    await rotateSigningKey(rig.db, { rootPrivatePem: rig.rootPrivatePem, actor: 'test', revoke: [keyid] });
    await expectRefused('key_revoked', b1, 'www.bad.example', 'a.worse.example');

    // positive control: the controller re-signs with the new key → accepted
    const b3 = await resignIfDue(rig.run.ctx);
    assert.equal(b3, b2 + 1);
    const box = await startBox(t, state, {}, b3!);
    assert.equal(box.agent.activeBundle, b3, box.logs.join('\n'));
    assert.equal(box.target.verdict('a.worse.example'), 'block');
    await box.agent.stop();

    // rollback: the box holds b4; the controller (restored from an old backup) serves b3 again
    const b4 = await rig.forge({});
    const box4 = await startBox(t, state, {}, b4);
    assert.equal(box4.agent.activeBundle, b4);
    await box4.agent.stop();
    await rig.db.run('DELETE FROM bundles WHERE version = $1', [b4]);
    await expectRefused('rollback', b4, 'a.worse.example', 'good.example');
  } finally {
    await tearDown(t);
    rmSync(state, { recursive: true, force: true });
  }
});

for (const mode of ['keep', 'fail-open'] as OnExpired[]) {
  test(`the active bundle expires (--on-expired ${mode}); a valid bundle clears the alarm`, async () => {
    const t = await setUp();
    const { rig, live } = t;
    const state = mkdtempSync(join(tmpdir(), 'cp-fleet-state-'));
    try {
      await rig.publish('bad.example');
      const box = await startBox(t, state, { onExpired: mode });
      const short = live.next(box.agent, 'activated', (v) => v === 2);
      const expired = live.next(box.agent, 'expired');
      const reported = live.next<Report>(box.agent, 'reported', (r) => r.counters.expired === 1);
      await rig.forge({ expires: new Date(Date.now() + 1500).toISOString() });
      await short;
      assert.equal(box.target.verdict('www.bad.example'), 'block');
      await expired;
      await reported;
      const text = await box.reg.metrics();
      assert.ok(metric(text, 'chokepoint_fleet_bundle_expired 1'), text);
      const n = await node(rig);
      assert.equal(n.errors.at(-1).code, 'ERR_BUNDLE_EXPIRED');
      assert.equal(n.counters.expired, 1);
      if (mode === 'keep') {
        assert.equal(box.target.verdict('www.bad.example'), 'block', 'keeps enforcing');
        assert.equal(n.counters.failed_open, 0);
      } else {
        // the allow-all version is applied through the same reload
        assert.ok(box.target.active.path.endsWith('fail-open.json'));
        assert.equal(box.target.verdict('www.bad.example'), 'allow', 'fails open');
        assert.ok(metric(await box.reg.metrics(), 'chokepoint_fleet_failed_open 1'));
        assert.equal(n.counters.failed_open, 1);
      }
      assert.equal(box.agent.activeBundle, 2);
      const fresh = live.next(box.agent, 'activated', (v) => v === 3);
      await rig.forge({ expires: new Date(Date.now() + 86_400_000).toISOString() });
      await fresh;
      assert.equal(box.target.verdict('www.bad.example'), 'block');
      assert.ok(metric(await box.reg.metrics(), 'chokepoint_fleet_bundle_expired 0'));
      assert.equal((box.agent.status().counters as Record<string, number>).failed_open, 0);
      await box.agent.stop();
    } finally {
      await tearDown(t);
      rmSync(state, { recursive: true, force: true });
    }
  });
}

test('controller down mid-run, unreachable at start, back again: keeps enforcing, starts from last-known-good, converges', async () => {
  const t = await setUp();
  const { rig, live } = t;
  const state = mkdtempSync(join(tmpdir(), 'cp-fleet-state-'));
  const empty = mkdtempSync(join(tmpdir(), 'cp-fleet-empty-'));
  try {
    const b1 = await rig.publish('bad.example');
    const a = await startBox(t, state);
    const err = live.next(a.agent, 'download-error');
    await rig.stop();
    await err;
    assert.equal(a.agent.activeBundle, b1);
    assert.equal(a.target.verdict('www.bad.example'), 'block', 'keeps enforcing');
    await a.agent.stop();

    // a box restarted while the controller is down: its last-known-good
    const { agent, reg } = newAgent(t, state);
    const v = await agent.bootstrap();
    const target = await CompilingTarget.start(v);
    assert.equal(agent.counters.started_from_state, 1);
    const err2 = live.next(agent, 'download-error');
    agent.run(target);
    await err2;
    assert.equal(agent.activeBundle, b1);
    assert.equal(target.verdict('www.bad.example'), 'block');
    assert.ok((await reg.metrics()).includes('chokepoint_fleet_download_errors_total'));

    // a new box with no state cannot start without a controller: a clear error
    const lone = newAgent(t, empty, { bootstrapTimeoutMs: 300 }).agent;
    await assert.rejects(
      lone.bootstrap(),
      (e: Error & { code?: string }) => e.code === 'ERR_FLEET_NO_BUNDLE',
    );

    // controller back, a new version: the box converges
    await rig.restart();
    const act = live.next(agent, 'activated', (x) => x === b1 + 1);
    const rep = live.next<Report>(agent, 'reported', (r) => r.active_version === b1 + 1);
    await rig.publish('worse.example');
    await act;
    await rep;
    assert.equal(target.verdict('a.worse.example'), 'block');
    assert.equal((await node(rig)).active_version, b1 + 1);
    await agent.stop();

    // a state directory edited on disk is refused, not used; the box falls back to the controller
    const saved = JSON.parse(readFileSync(join(state, 'bundle.json'), 'utf8'));
    const m = JSON.parse(saved.envelope.manifest);
    const blob = join(state, 'blobs', m.files[0].sha256);
    assert.ok(existsSync(blob));
    const data = readFileSync(blob);
    data[0] ^= 0x20;
    writeFileSync(blob, data);
    const c = newAgent(t, state);
    await c.agent.bootstrap();
    assert.equal(c.agent.counters.started_from_state, 0);
    assert.match(JSON.stringify(c.agent.status().errors), /stored bundle refused/);
  } finally {
    await tearDown(t);
    rmSync(state, { recursive: true, force: true });
    rmSync(empty, { recursive: true, force: true });
  }
});

test('compiled registry in the bundle: applied from the compiled file (decisions as the text), tampered or foreign compiled file refused, a bundle without one still works', async () => {
  const t = await setUp();
  const { rig, live } = t;
  const state = mkdtempSync(join(tmpdir(), 'cp-fleet-state-'));
  const hosts = ['www.bad.example', 'bad.example', 'good.example', 'a.worse.example', 'worse.example'];
  const manifestOf = async (b: number) =>
    JSON.parse(
      (await rig.db.get<{ manifest: string }>('SELECT manifest FROM bundles WHERE version = $1', [b]))!
        .manifest,
    ) as import('../bundle/verify.js').Manifest;
  /** The verdicts of the version compiled from its text alone (no compiled bytes). */
  const textVerdicts = async (v: import('../enforce/policy-source.js').PolicyVersion) => {
    const text = await CompilingTarget.start({ ...v, compiled: null });
    return hosts.map((h) => text.verdict(h));
  };
  try {
    const b1 = await rig.publish('bad.example');
    const m1 = await manifestOf(b1);
    assert.ok(m1.compiled, 'the controller lists the compiled file');
    assert.equal(m1.compiled.name, 'registry.compiled');
    const blob = await rig.db.get<{ data: Buffer }>('SELECT data FROM blobs WHERE sha256 = $1', [
      m1.compiled.sha256,
    ]);
    assert.equal(blob!.data.length, m1.compiled.size);
    assert.equal(Buffer.from(blob!.data).toString('latin1', 0, 8), 'CHKPREG\0');
    const box = await startBox(t, state);
    assert.equal(box.agent.activeBundle, b1);
    const c = box.target.active.compiled;
    assert.ok(c && c.buffer instanceof SharedArrayBuffer, 'the version carries the compiled bytes');
    assert.ok(Buffer.from(c).equals(Buffer.from(blob!.data)), 'exactly the bundle file');
    assert.deepEqual(
      hosts.map((h) => box.target.verdict(h)),
      await textVerdicts(box.target.active),
    );
    assert.deepEqual(
      hosts.map((h) => box.target.verdict(h)),
      ['block', 'block', 'allow', 'allow', 'allow'],
    );
    await box.agent.stop();

    // one byte of the compiled file changed in the controller's storage
    const b2 = await rig.publish('worse.example');
    const m2 = await manifestOf(b2);
    const orig = Buffer.from(
      (await rig.db.get<{ data: Buffer }>('SELECT data FROM blobs WHERE sha256 = $1', [m2.compiled!.sha256]))!
        .data,
    );
    const bad = Buffer.from(orig);
    bad[bad.length - 3] ^= 0x01;
    await rig.db.run('UPDATE blobs SET data = $1 WHERE sha256 = $2', [bad, m2.compiled!.sha256]);
    const a = newAgent(t, state);
    const target = await CompilingTarget.start(await a.agent.bootstrap());
    const r = await expectRefusal(live, a.agent, target, 'file', b1, () => a.agent.run(target));
    assert.match(r.message, /compiled registry\.compiled: content hash does not match the manifest/);
    await a.agent.stop();
    await rig.db.run('UPDATE blobs SET data = $1 WHERE sha256 = $2', [orig, m2.compiled!.sha256]);
    await rig.db.run('DELETE FROM bundles WHERE version = $1', [b2]);

    // a validly signed manifest whose compiled file was made from other files (b1's)
    const f = await rig.forge({ compiled: m1.compiled, files: m2.files, main: m2.main, version: b2 });
    const a2 = newAgent(t, state);
    const t2 = await CompilingTarget.start(await a2.agent.bootstrap());
    const r2 = await expectRefusal(live, a2.agent, t2, 'file', b1, () => a2.agent.run(t2));
    assert.match(r2.message, /compiled registry: not compiled from this bundle's files/);
    await a2.agent.stop();
    await rig.db.run('DELETE FROM bundles WHERE version = $1', [f]);

    // an older bundle, without a compiled file: the text is compiled, as before
    const old = await rig.forge({ ...m2, compiled: undefined, version: b2 });
    const box3 = await startBox(t, state, {}, old);
    assert.equal(box3.agent.activeBundle, old);
    // compiled on the box from the text (once, for its workers): not the controller's file
    const c3 = box3.target.active.compiled;
    assert.ok(c3 && !Buffer.from(c3).equals(orig), 'sealed from the text on the box');
    assert.deepEqual(
      hosts.map((h) => box3.target.verdict(h)),
      ['block', 'block', 'allow', 'block', 'block'],
    );
    await box3.agent.stop();
  } finally {
    await tearDown(t);
    rmSync(state, { recursive: true, force: true });
  }
});
