/**
 * @module controller/crash.test
 * A real `chokepoint controller serve` process killed (SIGKILL, at a point inside the import's
 * staging phase set by CHOKEPOINT_TEST_CRASH_AFTER_CHUNKS) while a bulk import runs, then restarted on
 * the same storage: everything committed before is there, the interrupted import changed nothing and
 * is marked `interrupted`, and re-running it gives the state of one uninterrupted run. SQLite and
 * PostgreSQL.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createToken } from './auth.js';
import { openDb } from './db.js';
import { migrate } from './schema.js';
import { Client, ClientError } from './client.js';
import { serveProcess } from './proc.js';
import { needReference, pgUnavailable, startPostgres, TOP10K, type PgServer } from './testutil.js';

const CI = process.env.CI === 'true';
const PG_WHY = pgUnavailable();
let pgs: PgServer | null = null;
before(async () => {
  if (!PG_WHY) pgs = await startPostgres();
});
after(() => pgs?.stop());

for (const backend of ['sqlite', 'postgres'] as const) {
  const skip = needReference() || (backend === 'postgres' && PG_WHY ? (CI ? false : PG_WHY) : false);
  describe(`crash during import (${backend})`, { skip }, () => {
    test('killed mid-import and restarted: nothing committed is lost, nothing half-written survives', async () => {
      if (backend === 'postgres' && PG_WHY) assert.fail(`PostgreSQL: ${PG_WHY}`);
      const dir = mkdtempSync(join(tmpdir(), 'ctl-crash-'));
      try {
        const store =
          backend === 'sqlite'
            ? ['--data', join(dir, 'data')]
            : ['--database', await pgs!.createDatabase(`crash${process.pid}`)];
        const db = openDb(backend === 'sqlite' ? { dataDir: join(dir, 'data') } : { databaseUrl: store[1] });
        await migrate(db);
        const ed = (await createToken(db, { name: 'ed', role: 'editor', actor: 'test' })).token;
        await db.close();
        // 45,000 names = 3 staging chunks of 20,000; the process dies after the second (the small import has one chunk)
        const names = Array.from({ length: 45_000 }, (_, i) => `n${i}.crash.example`);
        writeFileSync(join(dir, 'big.txt'), names.join('\n') + '\n');
        const base = ['--reference', TOP10K, ...store];
        let srv = await serveProcess(base, { CHOKEPOINT_TEST_CRASH_AFTER_CHUNKS: '2' });
        let c = new Client(srv.url, ed);
        const kept = await c.call('POST', '/v1/registry/entries', {
          kind: 'exact',
          value: 'committed.example',
          action: 'block',
          authority: 'A',
        });
        const small = join(dir, 'small.txt');
        writeFileSync(small, 'one.example\ntwo.example\n');
        await c.upload('/v1/registry/import?format=domains&source=feed', small);
        await assert.rejects(
          c.upload('/v1/registry/import?format=domains&source=feed', join(dir, 'big.txt')),
          (e: unknown) => e instanceof ClientError,
        );
        assert.equal(await srv.exited, -1, 'the controller died (SIGKILL)');
        srv = await serveProcess(base);
        try {
          c = new Client(srv.url, ed);
          const act = async () =>
            (await c.call('GET', '/v1/registry/entries?status=active&limit=1000')).entries
              .map((e: { value: string }) => e.value)
              .sort();
          assert.deepEqual(await act(), ['committed.example', 'one.example', 'two.example']);
          assert.equal((await c.call('GET', `/v1/registry/entries/${kept.id}`)).authority, 'A');
          const r = await c.upload('/v1/registry/import?format=domains&source=feed', join(dir, 'big.txt'));
          assert.deepEqual([r.added, r.retired], [45_000, 2]);
          const all = await c.call('GET', '/v1/registry/entries?status=active&q=crash.example&limit=1');
          assert.ok(all.entries.length === 1);
          const audit = await new Client(srv.url, ed).call('GET', '/v1/registry/entries?status=retired');
          assert.deepEqual(audit.entries.map((e: { value: string }) => e.value).sort(), [
            'one.example',
            'two.example',
          ]);
        } finally {
          await srv.stop();
        }
        // the interrupted import is on record
        const db2 = openDb(backend === 'sqlite' ? { dataDir: join(dir, 'data') } : { databaseUrl: store[1] });
        const st = await db2.all<{ status: string }>('SELECT status FROM imports ORDER BY started_at');
        await db2.close();
        assert.deepEqual(
          st.map((x) => x.status),
          ['done', 'interrupted', 'done'],
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
