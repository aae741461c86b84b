/**
 * @module controller/auth-shared.test
 * The failed-authentication limit over two controller replicas on one real PostgreSQL: failures
 * seen by either replica count together, so the client is refused on both after `max` failures
 * plus one per further replica — not after `max` on each.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backendSuites, reference, startTestController } from './testutil.js';
import { openDb } from './db.js';
import { startController, type RunningController } from './server.js';
import { DEFAULT_CONFIG } from './context.js';

const suites = backendSuites();

test('two replicas on PostgreSQL share the failed-authentication count', { skip: suites.skip('postgres') }, async () => {
  const over = { authFailures: { max: 4, windowMs: 60_000 } };
  const { db, dataDir, url } = await suites.freshDb('postgres', 'authshared');
  const a = await startTestController(db, dataDir, over);
  let b: RunningController | null = null;
  try {
    b = await startController(
      openDb({ databaseUrl: url! }),
      { ...DEFAULT_CONFIG, ...over, reference: await reference() },
      { host: '127.0.0.1', port: 0 },
    );
    const call = (base: string, token: string) =>
      fetch(base + '/v1/whoami', { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    const good = a.tokens.vera;
    assert.equal(await call(a.run.url, good), 200);
    assert.equal(await call(b.url, good), 200);
    // two failures on each replica: each replica alone has seen only half the limit
    for (const base of [a.run.url, a.run.url, b.url, b.url]) assert.equal(await call(base, 'cpt_wrong'), 401);
    // B saw the 4th failure in the shared count: it refuses even the good token
    assert.equal(await call(b.url, good), 429);
    // A has seen only 2 itself; its next failure meets the shared count and it refuses too
    assert.equal(await call(a.run.url, 'cpt_wrong'), 401);
    assert.equal(await call(a.run.url, good), 429);
  } finally {
    await b?.close();
    await a.close();
  }
}); // prettier-ignore
