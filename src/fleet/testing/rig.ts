/**
 * @module fleet/testing/rig
 * Test rig for the fleet agent: a real controller (in-process, SQLite in a temp directory, on
 * 127.0.0.1, re-sign timer off so a test decides when bundles change), its root key, node and user
 * tokens; `publish` takes a name through the whole path (registry entry → version → two approvals →
 * publish → signed bundle); `forge` inserts a bundle the way an attacker with database or signing
 * access would; {@link CompilingTarget} is a reload target that compiles each version exactly as a
 * daemon worker does (policy-source compileVersion) and answers verdicts from it; {@link TestAgents}
 * stops a test's agents; {@link tamperNewFile} and {@link expectRefusal} are the refusal cases'
 * set-up and check.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- API answers are untyped JSON */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventEmitter } from 'node:events';
import { createToken } from '../../controller/auth.js';
import { BUNDLE_CHANNEL, DEFAULT_CONFIG } from '../../controller/context.js';
import { openDb, type Db, type SqliteDb } from '../../controller/db.js';
import { createRootKey, rotateSigningKey, signText } from '../../controller/keys.js';
import { startController, type RunningController } from '../../controller/server.js';
import { migrate } from '../../controller/schema.js';
import { reference } from '../../controller/testutil.js';
import { keyId, type Manifest } from '../../bundle/verify.js';
import { compileVersion, type PolicyVersion } from '../../enforce/policy-source.js';
import type { CompiledPolicy } from '../../policy/types.js';
import type { AgentOptions, FleetAgent, PolicyTarget } from '../agent.js';

export interface Rig {
  dir: string;
  db: Db;
  run: RunningController;
  port: number;
  url: string;
  tokens: Record<string, string>;
  rootPublicPem: string;
  rootPrivatePem: string;
  api(user: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>;
  /** Block `name` (suffix) in a new version, approved and published; resolves with the bundle number. */
  publish(name: string, action?: 'block' | 'throttle'): Promise<number>;
  /** Submit and approve a version blocking `name` without publishing it: its id. */
  approve(name: string): Promise<number>;
  /** Insert a bundle row built from the current manifest with `change` applied, signed by `key` (default: the active signing key). */
  forge(
    change: Partial<Manifest>,
    o?: { key?: string; keyid?: string; tamper?: (text: string) => string },
  ): Promise<number>;
  /** Stop the HTTP server (the database stays). */
  stop(): Promise<void>;
  /** Start it again on the same port. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startRig(): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'cp-fleet-'));
  const db = openDb({ dataDir: join(dir, 'data') });
  await migrate(db);
  const tokens: Record<string, string> = {};
  for (const u of [
    { name: 'ed', role: 'editor' as const },
    { name: 'alice', role: 'approver' as const },
    { name: 'bob', role: 'approver' as const },
    { name: 'root', role: 'admin' as const },
    { name: 'box', role: 'node' as const },
  ])
    tokens[u.name] = (await createToken(db, { ...u, actor: 'bootstrap' })).token;
  const rk = await createRootKey(join(dir, 'keys'));
  const rootPrivatePem = readFileSync(rk.privateFile, 'utf8');
  await rotateSigningKey(db, { rootPrivatePem, actor: 'bootstrap' });
  const config = { ...DEFAULT_CONFIG, reference: await reference() };
  let run = await startController(db, config, { host: '127.0.0.1', port: 0, resignEveryMs: 3_600_000 });
  const port = Number(new URL(run.url).port);
  let n = 0;
  const rig: Rig = {
    dir,
    db,
    get run() {
      return run;
    },
    port,
    url: run.url,
    tokens,
    rootPublicPem: readFileSync(rk.publicFile, 'utf8'),
    rootPrivatePem,
    async api(user, method, path, body) {
      const h: Record<string, string> = { authorization: `Bearer ${tokens[user]}` };
      if (body !== undefined) h['content-type'] = 'application/json';
      const r = await fetch(rig.url + path, {
        method,
        headers: h,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await r.text();
      return { status: r.status, json: text ? JSON.parse(text) : null };
    },
    async approve(name) {
      const e = await rig.api('ed', 'POST', '/v1/registry/entries', {
        kind: 'suffix',
        value: name,
        action: 'block',
        authority: 'Test court',
        reference: `case ${++n}`,
      });
      if (e.status !== 201) throw new Error(`registry add ${name}: ${JSON.stringify(e.json)}`);
      const v = await rig.api('ed', 'POST', '/v1/versions', { from_registry: true, note: `block ${name}` });
      if (v.status !== 201) throw new Error(`version: ${JSON.stringify(v.json)}`);
      for (const who of ['alice', 'bob']) {
        const a = await rig.api(who, 'POST', `/v1/versions/${v.json.id}/approve`);
        if (a.status !== 200) throw new Error(`approve: ${JSON.stringify(a.json)}`);
      }
      return v.json.id as number;
    },
    async publish(name) {
      const id = await rig.approve(name);
      const p = await rig.api('alice', 'POST', `/v1/versions/${id}/publish`);
      if (p.status !== 200) throw new Error(`publish: ${JSON.stringify(p.json)}`);
      const b = await db.get<{ n: number }>('SELECT MAX(version) AS n FROM bundles');
      return Number(b!.n);
    },
    async forge(change, o = {}) {
      const cur = await db.get<{ manifest: string; policy_version: number; trust_version: number }>(
        'SELECT manifest, policy_version, trust_version FROM bundles ORDER BY version DESC LIMIT 1',
      );
      const key = await db.get<{ keyid: string; private_key: string }>(
        "SELECT keyid, private_key FROM signing_keys WHERE status = 'active' ORDER BY created_at DESC LIMIT 1",
      );
      const m = { ...(JSON.parse(cur!.manifest) as Manifest), ...change };
      if (change.version === undefined) m.version = (JSON.parse(cur!.manifest) as Manifest).version + 1;
      const keyid = o.keyid ?? key!.keyid;
      m.signing_keyid = keyid;
      const text = JSON.stringify(m);
      const sig = signText(o.key ?? key!.private_key, text);
      await db.run(
        'INSERT INTO bundles (version, policy_version, kind, manifest, signature, keyid, trust_version, created_at, expires_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)',
        [m.version, cur!.policy_version, m.kind, o.tamper ? o.tamper(text) : text, sig, keyid, cur!.trust_version,
          Date.now(), Date.parse(m.expires)], // prettier-ignore
      );
      // wake the long-polls as a publish does
      setImmediate(() => (db as SqliteDb).emit(BUNDLE_CHANNEL, String(m.version)));
      return m.version;
    },
    async stop() {
      await run.close();
    },
    async restart() {
      run = await startController(db, config, { host: '127.0.0.1', port, resignEveryMs: 3_600_000 });
    },
    async close() {
      await run.close().catch(() => undefined);
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return rig;
}

/** A fresh Ed25519 key the root never certified: [private PEM, key id]. */
export function strangerKey(): [string, string] {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return [privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), keyId(publicKey)];
}

/** Reload target that compiles every version as a daemon worker does and answers verdicts from it. */
export class CompilingTarget implements PolicyTarget {
  active!: PolicyVersion;
  private policy!: CompiledPolicy;
  readonly applied: string[] = [];
  static async start(v: PolicyVersion): Promise<CompilingTarget> {
    const t = new CompilingTarget();
    await t.apply(v, 'start');
    return t;
  }
  async apply(v: PolicyVersion, why: string): Promise<boolean> {
    this.policy = await compileVersion(v);
    this.active = v;
    this.applied.push(why);
    return true;
  }
  verdict(host: string): string {
    return this.policy.match({
      host,
      proto: 'TCP',
      src_ip: '10.1.0.2',
      dest_ip: '198.51.100.7',
      dest_port: 443,
      app_proto: 'tls',
    }).action;
  }
}

/**
 * Resolves with the first `event` payload for which `pred` holds; rejects after `ms`. When `signal`
 * aborts first, the wait is cancelled: its timer and listener go and it stays pending (a test that
 * already failed does not wait out the timeout, nor get a late rejection).
 */
export function nextEvent<T = unknown>(
  em: EventEmitter,
  event: string,
  pred: (v: T) => boolean = () => true,
  ms = 20_000,
  signal?: AbortSignal,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(t);
      em.off(event, on);
      signal?.removeEventListener('abort', done);
    };
    const on = (v: T): void => {
      if (!pred(v)) return;
      done();
      resolve(v);
    };
    const t = setTimeout(() => {
      done();
      reject(new Error(`timeout waiting for '${event}'`));
    }, ms);
    if (signal?.aborted) return done();
    signal?.addEventListener('abort', done);
    em.on(event, on);
  });
}

/**
 * The agents and event waits of one test. `add` registers an agent as it is made; `next` is
 * {@link nextEvent} bound to this test; `close` (first thing in the test's `finally`, before the rig
 * closes) cancels the waits still pending and stops every agent (stop is idempotent). An agent left
 * running after a failed expectation retries a closed controller for ever and holds the test file
 * open; with `close` a failure fails the test at once.
 */
export class TestAgents {
  private readonly agents = new Set<{ stop(): Promise<void> }>();
  private readonly ac = new AbortController();
  add<A extends { stop(): Promise<void> }>(agent: A): A {
    this.agents.add(agent);
    return agent;
  }
  next<T = unknown>(em: EventEmitter, event: string, pred?: (v: T) => boolean, ms?: number): Promise<T> {
    return nextEvent(em, event, pred, ms, this.ac.signal);
  }
  async close(): Promise<void> {
    this.ac.abort();
    const all = [...this.agents];
    this.agents.clear();
    await Promise.all(all.map((a) => a.stop()));
  }
}

/**
 * Changes one byte of a list file that policy version `to` has and version `from` has not, in the
 * controller's blob store (what someone with database access would do); resolves with a function
 * that puts the original back.
 */
export async function tamperNewFile(rig: Rig, from: number, to: number): Promise<() => Promise<void>> {
  const files = async (v: number) =>
    JSON.parse(
      (await rig.db.get<{ files: string }>('SELECT files FROM versions WHERE id = $1', [v]))!.files,
    ) as {
      sha256: string;
    }[];
  const old = new Set((await files(from)).map((f) => f.sha256));
  const victim = (await files(to)).find((f) => !old.has(f.sha256))!.sha256;
  const orig = Buffer.from(
    (await rig.db.get<{ data: Buffer }>('SELECT data FROM blobs WHERE sha256 = $1', [victim]))!.data,
  );
  const bad = Buffer.from(orig);
  bad[bad.length - 2] ^= 0x01;
  await rig.db.run('UPDATE blobs SET data = $1 WHERE sha256 = $2', [bad, victim]);
  return async () => {
    await rig.db.run('UPDATE blobs SET data = $1 WHERE sha256 = $2', [orig, victim]);
  };
}

/** The payload of an agent's 'refused' event. */
export interface Refusal {
  reason: string;
  message: string;
  bundle: number;
}

/**
 * Waits (bounded, cancelled by `live.close()`) for the agent's next refusal around `trigger` (what
 * makes the agent meet the bad bundle), then checks it: the reason is `reason`, the agent still holds
 * bundle `held`, and `target` applied nothing. Resolves with the refusal.
 */
export async function expectRefusal(
  live: TestAgents,
  agent: FleetAgent,
  target: { applied: string[] },
  reason: string,
  held: number,
  trigger: () => unknown,
): Promise<Refusal> {
  const applied = target.applied.length;
  const refused = live.next<Refusal>(agent, 'refused');
  await trigger();
  const r = await refused;
  assert.equal(r.reason, reason, r.message);
  assert.equal(agent.activeBundle, held, 'stays on its version');
  assert.equal(target.applied.length, applied, 'nothing applied');
  return r;
}

/**
 * Options of an agent talking to `rig` as the node token `box`: long-polls of 5 s, status every 60 s
 * (a test asks for reports or holds a bundle that sets the pace), retries 50–200 ms, bootstrap
 * bounded at 2 s; `over` names the node, state directory, registry, log and anything else.
 */
export function agentOptions(
  rig: Rig,
  over: Partial<AgentOptions> & Pick<AgentOptions, 'node' | 'stateDir' | 'registry' | 'log'>,
): AgentOptions {
  return {
    controller: rig.url,
    token: rig.tokens.box,
    rootPublicPem: rig.rootPublicPem,
    waitS: 5,
    statusEveryMs: 60_000,
    retryMinMs: 50,
    retryMaxMs: 200,
    bootstrapTimeoutMs: 2000,
    ...over,
  };
}
