/**
 * @module controller/testutil
 * Test helpers: a real PostgreSQL server started for the test run (Debian `postgresql`: initdb +
 * pg_ctl as the `postgres` user, in a temp directory, on a free 127.0.0.1 port, with its socket in
 * that directory; stopped and removed afterwards), a fresh database per suite, and a controller
 * started on 127.0.0.1 with bootstrap tokens for every role; {@link backendSuites}, the PostgreSQL
 * set-up of a file whose suites run on both backends. Under `CI=true` a missing prerequisite is an
 * error, not a skip.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- API answers are untyped JSON, checked field by field */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { repoRoot } from '../policy/clitest.js';
import { readNamesFile } from '../policy/reference.js';
import { createToken, type Role } from './auth.js';
import type { Envelope } from './bundles.js';
import { DEFAULT_CONFIG, type ControllerConfig } from './context.js';
import { openDb, type Db } from './db.js';
import { createRootKey, rotateSigningKey } from './keys.js';
import { readFileSync } from 'node:fs';
import { startController, type RunningController } from './server.js';
import { migrate } from './schema.js';
import { havePath, need } from '../testutil/require.js';

export const TOP10K = join(repoRoot(), '..', 'shared', 'corpus', 'reference', 'top10k.txt');

function pgBin(): string | null {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  for (const v of readdirSync(base).sort().reverse()) {
    const b = join(base, v, 'bin');
    if (existsSync(join(b, 'initdb')) && existsSync(join(b, 'pg_ctl'))) return b;
  }
  return null;
}

/** Why PostgreSQL tests cannot run here, or null when they can. Under CI=true the caller fails. */
export function pgUnavailable(): string | null {
  if (!pgBin()) return 'PostgreSQL server binaries not found (Debian package postgresql)';
  if (process.getuid?.() !== 0) return 'starting PostgreSQL as the postgres user needs root (runuser)';
  try {
    execFileSync('id', ['postgres'], { stdio: 'ignore' });
  } catch {
    return 'no postgres user (Debian package postgresql)';
  }
  return null;
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

export interface PgServer {
  url(db?: string): string;
  createDatabase(name: string): Promise<string>;
  /** Stop immediately (a crash, for restart tests) or cleanly. */
  stop(): void;
  /**
   * Restart the server in place: stop it (`pg_ctl -m fast`: every connection is cut, committed data
   * stays), keep it down for `downMs`, start it again on the same port and data directory.
   */
  restart(downMs?: number): Promise<void>;
}

export async function startPostgres(): Promise<PgServer> {
  const why = pgUnavailable();
  if (why) throw new Error(why);
  const bin = pgBin()!;
  const dir = mkdtempSync(join(tmpdir(), 'chokepoint-pg-'));
  chownSync(
    dir,
    Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
    Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
  );
  const data = join(dir, 'data');
  const asPg = (cmd: string, args: string[]) =>
    execFileSync('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: dir,
    });
  asPg('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const start = () =>
    asPg('pg_ctl', [
      '-D',
      data,
      '-w',
      '-t',
      '60',
      '-l',
      join(dir, 'log'),
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`,
      'start',
    ]);
  start();
  let stopped = false;
  // a test process that exits without its after() hook still stops its server
  process.once('exit', () => srv.stop());
  const srv: PgServer = {
    url: (db = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${db}`,
    async createDatabase(name: string) {
      const c = new pg.Client({ connectionString: srv.url() });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      return srv.url(name);
    },
    async restart(downMs = 0) {
      if (stopped) throw new Error('PostgreSQL test server already stopped');
      asPg('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
      await new Promise((r) => setTimeout(r, downMs));
      start();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        asPg('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  return srv;
}

export const ROLES_FOR_TESTS: { name: string; role: Role }[] = [
  { name: 'vera', role: 'viewer' },
  { name: 'ed', role: 'editor' },
  { name: 'ed2', role: 'editor' },
  { name: 'alice', role: 'approver' },
  { name: 'bob', role: 'approver' },
  { name: 'root', role: 'admin' },
  { name: 'box1', role: 'node' },
];

export interface TestController {
  run: RunningController;
  db: Db;
  tokens: Record<string, string>;
  rootPublicPem: string;
  rootPrivatePem: string;
  keyDir: string;
  /** Call the API as a user (or with no token: null). */
  api(
    user: string | null,
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; json: any; headers: Headers }>;
  close(): Promise<void>;
}

/**
 * The `skip` option of a test that starts a controller: the controllers of the tests lint against
 * the shared corpus's reference list ({@link TOP10K}); without it the test skips saying so, and
 * under CI=true it fails naming it (testutil/require).
 */
export function needReference(): string | false {
  return need(
    havePath(TOP10K),
    `reference list absent: ${TOP10K} (the shared corpus next to the repository; the controller tests lint against it)`,
  );
}

let refCache: ControllerConfig['reference'] | null = null;
export async function reference(): Promise<ControllerConfig['reference']> {
  if (!refCache) {
    if (!existsSync(TOP10K)) throw new Error(`reference list missing: ${TOP10K} (the shared corpus)`);
    refCache = await readNamesFile(TOP10K);
  }
  return refCache;
}

/** A database for a backend: SQLite in a temp dir, or a new database on the shared PostgreSQL. */
export async function freshDb(
  backend: 'sqlite' | 'postgres',
  pgs: PgServer | null,
  name: string,
): Promise<{ db: Db; url: string | null; dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'chokepoint-ctl-test-'));
  if (backend === 'sqlite') return { db: openDb({ dataDir }), url: null, dataDir };
  const url = await pgs!.createDatabase(name);
  return { db: openDb({ databaseUrl: url }), url, dataDir };
}

export async function startTestController(
  db: Db,
  dataDir: string,
  over: Partial<ControllerConfig> = {},
  withKeys = true,
  log?: (msg: string) => void,
): Promise<TestController> {
  await migrate(db);
  const tokens: Record<string, string> = {};
  for (const u of ROLES_FOR_TESTS)
    tokens[u.name] = (await createToken(db, { ...u, actor: 'bootstrap' })).token;
  const keyDir = join(dataDir, 'keys');
  const rk = await createRootKey(keyDir);
  const rootPrivatePem = readFileSync(rk.privateFile, 'utf8');
  if (withKeys) await rotateSigningKey(db, { rootPrivatePem, actor: 'bootstrap' });
  const run = await startController(
    db,
    { ...DEFAULT_CONFIG, reference: await reference(), ...over },
    { host: '127.0.0.1', port: 0, log },
  );
  const api: TestController['api'] = async (user, method, path, body, headers = {}) => {
    const h: Record<string, string> = { ...headers };
    if (user) h.authorization = `Bearer ${tokens[user] ?? user}`;
    let payload: string | Uint8Array | undefined;
    if (body instanceof Uint8Array || typeof body === 'string') payload = body;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      h['content-type'] = 'application/json';
    }
    const r = await fetch(run.url + path, { method, headers: h, body: payload });
    const text = await r.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: r.status, json, headers: r.headers };
  };
  return {
    run,
    db,
    tokens,
    rootPublicPem: readFileSync(rk.publicFile, 'utf8'),
    rootPrivatePem,
    keyDir,
    api,
    async close() {
      await run.close();
      await db.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A test's view of a signed bundle answer (`GET /v1/bundle` JSON) as the envelope the verifier takes. */
export function envelopeOf(j: any): Envelope {
  return { manifest: j.manifest, signature: j.signature, keyid: j.keyid, trust: j.trust };
}

export type Backend = 'sqlite' | 'postgres';

/** What {@link backendSuites} gives a test file whose suites run on SQLite and on PostgreSQL. */
export interface BackendSuites {
  /** Why PostgreSQL cannot run here, or null. */
  readonly why: string | null;
  /** The `skip` option of a suite on `backend`: PostgreSQL missing skips it, except under CI=true. */
  skip(backend: Backend): string | false;
  /** A fresh database on `backend` (PostgreSQL: named `<prefix><pid>_<n>`). */
  freshDb(backend: Backend, prefix: string): ReturnType<typeof freshDb>;
  /** A fresh database and a controller on it ({@link startTestController}). */
  controller(
    backend: Backend,
    prefix: string,
    over?: Partial<ControllerConfig>,
    withKeys?: boolean,
  ): Promise<TestController>;
  /** The PostgreSQL server the suites share (null before `before` ran, or without PostgreSQL). */
  pg(): PgServer | null;
}

/**
 * The PostgreSQL part of a test file that runs its suites on both backends. Call once at the file's
 * top level: it registers a `before` that starts the file's PostgreSQL server (when it can run
 * here), an `after` that stops it, and the 'PostgreSQL prerequisites' test, which fails under
 * CI=true when PostgreSQL cannot run (and is skipped with the reason otherwise).
 */
export function backendSuites(): BackendSuites {
  const why = pgUnavailable();
  const ci = process.env.CI === 'true';
  let pgs: PgServer | null = null;
  let seq = 0;
  before(async () => {
    if (!why) pgs = await startPostgres();
  });
  after(() => pgs?.stop());
  test('PostgreSQL prerequisites', { skip: !ci && why ? why : false }, () => {
    assert.equal(why, null, `PostgreSQL tests cannot run: ${why}`);
  });
  const fresh = (backend: Backend, prefix: string) =>
    freshDb(backend, pgs, `${prefix}${process.pid}_${++seq}`);
  return {
    why,
    skip: (backend) => needReference() || (backend === 'postgres' && why ? (ci ? false : why) : false),
    freshDb: fresh,
    async controller(backend, prefix, over = {}, withKeys = true) {
      const { db, dataDir } = await fresh(backend, prefix);
      return startTestController(db, dataDir, over, withKeys);
    },
    pg: () => pgs,
  };
}

/**
 * Submit `policy` as a new version (as `ed`), optionally admin-overridden with `override` as the
 * reason (lint warnings), approved by `alice` and `bob`; resolves with its id. Asserts each step.
 */
export async function approvedVersion(t: TestController, policy: string, override?: string): Promise<number> {
  const v = await t.api('ed', 'POST', '/v1/versions', { policy, filename: 'p.yaml' });
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
