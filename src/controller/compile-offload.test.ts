/**
 * @module controller/compile-offload.test
 * A bundle's compiled registry is compiled before the bundle's transaction and, for large text, in a
 * worker thread: while a compile is held at a known point, the controller (file-backed SQLite, whose
 * transactions hold the one connection) answers reads and takes writes; the published bundle then
 * lists the compiled file; content that does not compile is tried once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { needReference, approvedVersion, freshDb, startTestController } from './testutil.js';
import { compiledFor, compileSettings, compileStats } from './compiled.js';
import { sha256 } from './content.js';
import { SqliteDb } from './db.js';

const POLICY = `rules:
  - id: block-example
    action: block
    match: {host: {suffix: [blocked.example]}}
    provenance: {authority: test}
`;

test(
  'a bundle registry compiles outside the transaction, in a worker: the controller answers meanwhile',
  { skip: needReference(), timeout: 60_000 },
  async () => {
    const { db, dataDir } = await freshDb('sqlite', null, 'compile-offload');
    const t = await startTestController(db, dataDir);
    const saved = { ...compileSettings };
    let open: () => void = () => {};
    let publish: Promise<unknown> = Promise.resolve();
    try {
      const id = await approvedVersion(t, POLICY);
      compileSettings.offThreadChars = 0; // this small policy goes to the worker too
      let entered!: () => void;
      const inCompile = new Promise<void>((r) => (entered = r));
      const gate = new Promise<void>((r) => (open = r));
      const txOpen: boolean[] = [];
      let calls = 0;
      compileSettings.beforeCompile = async () => {
        calls++;
        txOpen.push((db as unknown as { inTx: boolean }).inTx);
        entered();
        await gate;
      };
      const before = { ...compileStats };
      const published = t.api('alice', 'POST', `/v1/versions/${id}/publish`);
      publish = published;
      await inCompile;
      assert.deepEqual(txOpen, [false], 'no transaction is open while the compile runs');
      // held in the compile: a read through the API and a write through the same SQLite handle get
      // through (inside the publish transaction both would wait for it, and this test would hang)
      assert.ok(db instanceof SqliteDb);
      const list = await t.api('alice', 'GET', '/v1/versions');
      assert.equal(list.status, 200);
      await db.run('CREATE TABLE IF NOT EXISTS compile_offload_probe (n INTEGER)');
      await db.run('INSERT INTO compile_offload_probe (n) VALUES (1)');
      open();
      const p = await published;
      assert.equal(p.status, 200, JSON.stringify(p.json));
      assert.equal(p.json.status, 'active');
      assert.equal(calls, 1, 'compiled once: the bundle found the result');
      assert.equal(compileStats.offThread, before.offThread + 1, 'in a worker thread');
      const b = await t.api('box1', 'GET', '/v1/bundle');
      assert.equal(b.status, 200);
      const m = JSON.parse(b.json.manifest) as { compiled?: { name: string; sha256: string } };
      assert.equal(m.compiled?.name, 'registry.compiled');
      const blob = await t.api('box1', 'GET', `/v1/blobs/${m.compiled!.sha256}`);
      assert.equal(blob.status, 200);
    } finally {
      open();
      await publish.catch(() => {});
      Object.assign(compileSettings, saved);
      await t.close();
    }
  },
);

test(
  'content that does not compile is compiled once, not again on every rollout tick',
  { skip: needReference() },
  async () => {
    const { db, dataDir } = await freshDb('sqlite', null, 'compile-failed');
    const t = await startTestController(db, dataDir);
    try {
      const text = Buffer.from('rules:\n  - id: [not, a, string]\n');
      const h = sha256(text);
      await db.run('INSERT INTO blobs (sha256, size, data) VALUES ($1, $2, $3)', [h, text.length, text]);
      const files = [{ name: 'p.yaml', sha256: h, size: text.length }];
      const before = compileStats.compiles;
      assert.equal(await compiledFor(db, 'p.yaml', files), null);
      assert.equal(await compiledFor(db, 'p.yaml', files), null);
      assert.equal(compileStats.compiles, before + 1);
    } finally {
      await t.close();
    }
  },
);
