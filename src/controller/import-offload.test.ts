/**
 * @module controller/import-offload.test
 * The SQLite import worker: `SqliteDb.hold` lets read-only queries through at once and makes writes
 * wait for the release; a real import in a worker thread (file-backed SQLite) completes while the
 * controller keeps taking status reports (writes) and answering reads, with every entry in place;
 * a status report while the handle is held is answered at once and stored at the release.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- API answers are untyped JSON */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteDb } from './db.js';
import { needReference, freshDb, startTestController } from './testutil.js';
import { offloadStats } from './import-offload.js';
import { MAX_DEFERRED, writeStatus } from './status-write.js';

test('SqliteDb.hold: reads answer from the last committed state at once, writes wait for the release', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cp-hold-'));
  const db = new SqliteDb(join(dir, 'x.db'));
  try {
    await db.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a')");
    const release = await db.hold();
    const order: string[] = [];
    const read = db.get<{ v: string }>('SELECT v FROM t WHERE k = $1', [1]).then((r) => {
      order.push('read');
      return r;
    });
    const write = db.run('UPDATE t SET v = $1 WHERE k = 1', ['b']).then((n) => {
      order.push('write');
      return n;
    });
    assert.deepEqual(await read, { v: 'a' });
    // the write is still queued behind the hold: let every pending callback run first
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, ['read']);
    release();
    assert.equal(await write, 1);
    assert.deepEqual(order, ['read', 'write']);
    assert.deepEqual(await db.get('SELECT v FROM t WHERE k = 1'), { v: 'b' });
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'an import runs in a worker thread while status reports and reads go on; every entry lands',
  { skip: needReference() },
  async () => {
    const { db, dataDir } = await freshDb('sqlite', null, 'offload');
    const t = await startTestController(db, dataDir, { importChunk: 2000 });
    try {
      const before = offloadStats.workers;
      const N = 30_000;
      const names = Array.from({ length: N }, (_, i) => `w${i}.offload.example`).join('\n') + '\n';
      const up = t.api('ed', 'POST', '/v1/registry/import?format=domains&source=big&filename=big.txt', names);
      let reports = 0;
      let done: any = null;
      void up.then((r) => (done = r));
      // reports and reads keep being answered while the import runs (bounded: at most 2,000 rounds)
      for (let i = 0; i < 2000 && !done; i++) {
        const st = await t.api('box1', 'POST', '/v1/status', { node: 'n1', active_version: null });
        assert.equal(st.status, 200);
        reports++;
        const who = await t.api('vera', 'GET', '/v1/nodes');
        assert.equal(who.status, 200);
      }
      const r = await up;
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.added, N);
      assert.equal(offloadStats.workers, before + 1, 'the import ran in a worker thread');
      assert.ok(reports >= 1);
      const n = await t.db.get<{ n: number }>(
        "SELECT COUNT(*) AS n FROM entries WHERE source = 'big' AND status = 'active'",
      );
      assert.equal(Number(n!.n), N);
      // a bad line is refused from the worker with the file position, and nothing changes
      const bad = await t.api(
        'ed',
        'POST',
        '/v1/registry/import?format=domains&source=big&filename=bad.txt',
        'a.example\nnot a name\n',
      );
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error.field, 'bad.txt:2:1');
      const m = await t.db.get<{ n: number }>(
        "SELECT COUNT(*) AS n FROM entries WHERE source = 'big' AND status = 'active'",
      );
      assert.equal(Number(m!.n), N);
    } finally {
      await t.close();
    }
  },
);

test(
  'a status report while the handle is held (an import applying) is answered at once and written at the release',
  { skip: needReference() },
  async () => {
    const { db, dataDir } = await freshDb('sqlite', null, 'deferred');
    const t = await startTestController(db, dataDir);
    try {
      const release = await (t.db as SqliteDb).hold();
      const a = await t.api('box1', 'POST', '/v1/status', { node: 'held-n', active_version: 3 });
      assert.equal(a.status, 200);
      assert.equal(a.json.deferred, true);
      // a later report of the same node replaces the first; reads are answered meanwhile
      const b = await t.api('box1', 'POST', '/v1/status', { node: 'held-n', active_version: 4 });
      assert.equal(b.json.deferred, true);
      const during = await t.api('vera', 'GET', '/v1/nodes');
      assert.equal(during.status, 200);
      assert.equal(
        during.json.nodes.find((n: any) => n.name === 'held-n'),
        undefined,
        'not written while held',
      );
      release();
      await new Promise((r) => setImmediate(r));
      const row = await t.db.get<{ active_version: number }>(
        'SELECT active_version FROM nodes WHERE name = $1',
        ['held-n'],
      );
      assert.equal(Number(row?.active_version), 4);
      // and with nothing held, a report is written before the answer
      const c = await t.api('box1', 'POST', '/v1/status', { node: 'held-n', active_version: 5 });
      assert.equal(c.json.deferred, undefined);
      const now = await t.db.get<{ active_version: number }>(
        'SELECT active_version FROM nodes WHERE name = $1',
        ['held-n'],
      );
      assert.equal(Number(now?.active_version), 5);
    } finally {
      await t.close();
    }
  },
);

test(
  'deferred reports are capped: past MAX_DEFERRED distinct nodes a report waits for the release',
  { skip: needReference() },
  async () => {
    const { db, dataDir } = await freshDb('sqlite', null, 'defcap');
    const t = await startTestController(db, dataDir);
    try {
      const vals = (n: string) => ['{}', 1, null, null, '[]', '{}', Date.now(), null, n, null];
      const release = await (t.db as SqliteDb).hold();
      for (let i = 0; i < MAX_DEFERRED; i++)
        assert.equal(await writeStatus(t.db, `n${i}`, vals(`n${i}`)), false);
      // a known node still replaces its deferred row; a new one waits
      assert.equal(await writeStatus(t.db, 'n0', vals('n0')), false);
      let over: boolean | null = null;
      const p = writeStatus(t.db, 'one-too-many', vals('one-too-many')).then((x) => (over = x));
      await new Promise((r) => setImmediate(r));
      assert.equal(over, null, 'waits while held');
      release();
      assert.equal(await p, true);
      await new Promise((r) => setImmediate(r));
      const n = await t.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM nodes');
      assert.equal(Number(n!.n), MAX_DEFERRED + 1);
    } finally {
      await t.close();
    }
  },
);
