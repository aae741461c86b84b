/**
 * @module controller/longpoll.test
 * Bundle long-polls on a real server (127.0.0.1, embedded SQLite): a client that goes away releases
 * its waiter at once (listener, timer, count), not after `maxWaitS`; waiters are capped per token and
 * in total, one more is refused with 503 `ERR_TOO_MANY_WAITERS` naming the limit, and a freed slot
 * can be used again.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { needReference, freshDb, startTestController, type TestController } from './testutil.js';
import { BUNDLE_CHANNEL, type ControllerConfig } from './context.js';

const skip = needReference();
const ctls: TestController[] = [];
after(async () => {
  for (const t of ctls) await t.close().catch(() => {});
});

async function published(
  over: Partial<ControllerConfig>,
  log?: (msg: string) => void,
): Promise<{ t: TestController; etag: string }> {
  const { db, dataDir } = await freshDb('sqlite', null, 'unused');
  const t = await startTestController(
    db,
    dataDir,
    {
      authFailures: { max: 1000, windowMs: 60_000 },
      ...over,
    },
    true,
    log,
  );
  ctls.push(t);
  const v = await t.api('ed', 'POST', '/v1/versions', {
    policy: 'rules:\n  - id: b\n    action: block\n    match: {host: {suffix: [bad.example]}}\n',
  });
  assert.equal(v.status, 201, JSON.stringify(v.json));
  await t.api('alice', 'POST', `/v1/versions/${v.json.id}/approve`);
  await t.api('bob', 'POST', `/v1/versions/${v.json.id}/approve`);
  assert.equal((await t.api('alice', 'POST', `/v1/versions/${v.json.id}/publish`)).json.status, 'active');
  const etag = (await t.api('box1', 'GET', '/v1/bundle')).headers.get('etag')!;
  assert.match(etag, /^"\d+"$/);
  return { t, etag };
}

/** Resolves after a bundle listener was added / removed ('newListener' fires just before the add). */
function listenerEvent(t: TestController, which: 'newListener' | 'removeListener'): Promise<void> {
  const ev = t.run.ctx.events;
  return new Promise((resolve) => {
    const f = (name: string | symbol) => {
      if (name !== BUNDLE_CHANNEL) return;
      ev.off(which, f);
      setImmediate(resolve);
    };
    ev.on(which, f);
  });
}

/** Resolves after `n` bundle listeners were added / removed. */
function listenerEvents(
  t: TestController,
  which: 'newListener' | 'removeListener',
  n: number,
): Promise<void> {
  const ev = t.run.ctx.events;
  let seen = 0;
  return new Promise((resolve) => {
    const f = (name: string | symbol) => {
      if (name !== BUNDLE_CHANNEL || ++seen < n) return;
      ev.off(which, f);
      setImmediate(resolve);
    };
    ev.on(which, f);
  });
}

/** Start a long-poll that waits (resolves once its listener is registered). */
async function startPoll(
  t: TestController,
  etag: string,
  ac = new AbortController(),
): Promise<{ res: Promise<Response>; ac: AbortController }> {
  const registered = listenerEvent(t, 'newListener');
  const res = fetch(`${t.run.url}/v1/bundle?wait=120`, {
    headers: { authorization: `Bearer ${t.tokens.box1}`, 'if-none-match': etag },
    signal: ac.signal,
  });
  res.catch(() => {});
  await registered;
  return { res, ac };
}

test('a long-poll whose client goes away is released at once', { skip, timeout: 30_000 }, async () => {
  const { t, etag } = await published({});
  const ev = t.run.ctx.events;
  const p = await startPoll(t, etag);
  assert.equal(ev.listenerCount(BUNDLE_CHANNEL), 1);
  assert.equal(t.run.ctx.waiters, 1);
  const removed = listenerEvent(t, 'removeListener');
  p.ac.abort();
  // bounded: without the release the waiter would stay for the whole 120 s wait
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((r) => (timer = setTimeout(() => r('still waiting after 10 s'), 10_000)));
  const got = await Promise.race([removed.then(() => 'released'), late]);
  clearTimeout(timer);
  assert.equal(got, 'released');
  assert.equal(ev.listenerCount(BUNDLE_CHANNEL), 0);
  assert.equal(t.run.ctx.waiters, 0);
  assert.equal(t.run.ctx.waitersByToken.size, 0);
});

test('long-poll waiters are capped per token with a clear 503', { skip, timeout: 30_000 }, async () => {
  const { t, etag } = await published({ maxWaiters: { total: 100, perToken: 2 } });
  const a = await startPoll(t, etag);
  const b = await startPoll(t, etag);
  const r = await t.api('box1', 'GET', '/v1/bundle?wait=120', undefined, { 'if-none-match': etag });
  assert.equal(r.status, 503);
  assert.equal(r.json.error.code, 'ERR_TOO_MANY_WAITERS');
  assert.match(r.json.error.message, /limit 2/);
  assert.equal(t.run.ctx.events.listenerCount(BUNDLE_CHANNEL), 2);
  // a plain fetch (no wait) is not a waiter and is still served
  assert.equal((await t.api('box1', 'GET', '/v1/bundle', undefined, { 'if-none-match': etag })).status, 304);
  // one leaves: its slot is free again
  const removed = listenerEvent(t, 'removeListener');
  a.ac.abort();
  await removed;
  const c = await startPoll(t, etag);
  assert.equal(t.run.ctx.waiters, 2);
  // a wake for a bundle that is not this node's (nothing newer for box1): both keep waiting, each
  // re-registering its listener, and the count stays exact
  const rearmed = listenerEvents(t, 'newListener', 2);
  t.run.ctx.events.emit(BUNDLE_CHANNEL, Number(etag.slice(1, -1)) + 1);
  await rearmed;
  assert.equal(t.run.ctx.waiters, 2);
  const gone = listenerEvents(t, 'removeListener', 2);
  b.ac.abort();
  c.ac.abort();
  await gone;
  assert.equal(t.run.ctx.waiters, 0);
  assert.equal(t.run.ctx.waitersByToken.size, 0);
});

test('long-poll waiters are capped in total', { skip, timeout: 30_000 }, async () => {
  const { t, etag } = await published({ maxWaiters: { total: 1, perToken: 8 } });
  const a = await startPoll(t, etag);
  const r = await t.api('box1', 'GET', '/v1/bundle?wait=120', undefined, { 'if-none-match': etag });
  assert.equal(r.status, 503);
  assert.match(r.json.error.message, /1 long-polls already waiting \(limit 1\)/);
  const removed = listenerEvent(t, 'removeListener');
  a.ac.abort();
  await removed;
  assert.equal(t.run.ctx.waiters, 0);
});

test(
  'closing the controller while long-polls wait: close() returns after their handlers, which read nothing more',
  { skip, timeout: 30_000 },
  async () => {
    const logs: string[] = [];
    const { t, etag } = await published({}, (m) => logs.push(m));
    const polls = [await startPoll(t, etag), await startPoll(t, etag)];
    assert.equal(t.run.ctx.waiters, 2);
    // every database call after close() has returned would be an error: count them
    let late = 0;
    let closed = false;
    const db = t.db as unknown as Record<string, (...a: unknown[]) => unknown>;
    for (const k of ['get', 'all', 'run'] as const) {
      const f = db[k];
      if (typeof f !== 'function') continue;
      db[k] = function (this: unknown, ...a: unknown[]) {
        if (closed) late++;
        return f.apply(this, a);
      };
    }
    await t.run.close();
    closed = true;
    await t.db.close();
    for (const p of polls)
      await p.res.then(
        () => {},
        () => {},
      ); // cut off by the close
    // what a woken handler would do next happens within a few turns of the event loop
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.equal(t.run.ctx.waiters, 0, 'every waiter released');
    assert.equal(late, 0, 'no database call after close() returned');
    assert.deepEqual(
      logs.filter((l) => l.startsWith('error')),
      [],
      'no request failed',
    );
    ctls.splice(ctls.indexOf(t), 1);
  },
);
