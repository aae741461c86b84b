/**
 * @module controller/metrics.test
 * The controller's `/metrics` on a real server (127.0.0.1, embedded SQLite): any valid token may read
 * it, the text passes Debian's `promtool check metrics`, labels carry route templates (never raw paths,
 * tokens or names), and the values follow what the test did: requests counted per route and status,
 * auth failures by reason, the bundle version gauge equal to the published version the box API
 * serves, boxes split by whether they run it, audit rows equal to the rows the audit API returns,
 * long-poll waiters while one waits. Two controllers in one process keep separate counts.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { assertPromtoolClean } from '../testutil/promtool.js';
import { needReference, freshDb, startTestController, type TestController } from './testutil.js';
import { BUNDLE_CHANNEL } from './context.js';

const ctls: TestController[] = [];
after(async () => {
  for (const t of ctls) await t.close().catch(() => {});
});

async function controller(): Promise<TestController> {
  const { db, dataDir } = await freshDb('sqlite', null, 'unused');
  const t = await startTestController(db, dataDir, { authFailures: { max: 1000, windowMs: 60_000 } });
  ctls.push(t);
  return t;
}

/** `name{labels}` → value, from the text format (the test's own reading, not prom-client's). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^(\S+?(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(m, `sample line: ${line}`);
    out.set(m[1], Number(m[2]));
  }
  return out;
}

async function scrape(t: TestController, user = 'vera'): Promise<{ text: string; s: Map<string, number> }> {
  const r = await fetch(`${t.run.url}/metrics`, { headers: { authorization: `Bearer ${t.tokens[user]}` } });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await r.text();
  return { text, s: samples(text) };
}

const req = (m: string, route: string, status: number) =>
  `chokepoint_controller_http_requests_total{method="${m}",route="${route}",status="${status}"}`;

test(
  'controller /metrics: promtool clean, templates not paths, values follow the requests',
  { skip: needReference() },
  async () => {
    const t = await controller();
    const other = await controller();

    // auth: no token and a bad token are refused; every role may read it
    assert.equal((await t.api(null, 'GET', '/metrics')).status, 401);
    const doc = (await t.api(null, 'GET', '/openapi.json')).json.paths['/metrics'].get;
    assert.equal(doc['x-required-role'], 'node', 'any valid token');
    assert.ok(doc.responses['200'].content['text/plain; version=0.0.4'], 'documented as Prometheus text');
    assert.equal((await t.api('cpt_not-a-token', 'GET', '/metrics')).status, 401);
    for (const u of ['vera', 'ed', 'alice', 'root', 'box1'])
      assert.equal((await t.api(u, 'GET', '/metrics')).status, 200, u);

    for (let i = 0; i < 3; i++) assert.equal((await t.api('vera', 'GET', '/v1/whoami')).status, 200);
    assert.equal((await t.api('vera', 'GET', '/v1/versions/424242')).status, 404);
    assert.equal((await t.api('vera', 'GET', '/no/such/path-31337')).status, 404);

    // publish a version (two approvers), then two boxes report: one on it, one behind
    const v = await t.api('ed', 'POST', '/v1/versions', {
      policy: 'rules:\n  - id: b\n    action: block\n    match: {host: {suffix: [bad.example]}}\n',
    });
    assert.equal(v.status, 201, JSON.stringify(v.json));
    await t.api('alice', 'POST', `/v1/versions/${v.json.id}/approve`);
    await t.api('bob', 'POST', `/v1/versions/${v.json.id}/approve`);
    assert.equal((await t.api('alice', 'POST', `/v1/versions/${v.json.id}/publish`)).json.status, 'active');
    const b = await t.api('box1', 'GET', '/v1/bundle');
    const published = Number(/^"(\d+)"$/.exec(b.headers.get('etag') ?? '')?.[1]);
    assert.ok(published >= 1, `bundle ETag ${b.headers.get('etag')}`);
    for (const [node, ver] of [
      ['edge-a', published],
      ['edge-b', published - 1],
      ['edge-c', null],
    ] as const)
      assert.equal(
        (await t.api('box1', 'POST', '/v1/status', { node, active_version: ver })).status,
        200,
        node,
      );

    // a long-poll waiting for a newer bundle
    const waiting = once(t.run.ctx.events, 'newListener');
    const poll = t.api('box1', 'GET', '/v1/bundle?wait=60', undefined, { 'if-none-match': `"${published}"` });
    await waiting;
    const during = await scrape(t);
    assert.equal(during.s.get('chokepoint_controller_bundle_waiters'), 1);
    t.run.ctx.events.emit(BUNDLE_CHANNEL, published + 1); // wakes it; nothing newer → 304
    assert.equal((await poll).status, 304);

    const { text, s } = await scrape(t);
    await assertPromtoolClean(text);

    assert.equal(s.get(req('GET', '/v1/whoami', 200)), 3);
    assert.equal(s.get(req('GET', '/v1/versions/:id', 404)), 1);
    assert.equal(s.get(req('GET', 'unmatched', 404)), 1);
    assert.equal(s.get(req('GET', '/metrics', 401)), 2);
    assert.equal(s.get(req('GET', '/v1/bundle', 304)), 1);
    assert.equal(s.get(req('POST', '/v1/status', 200)), 3);
    assert.equal(
      s.get('chokepoint_controller_http_request_duration_seconds_count{method="GET",route="/v1/whoami"}'),
      3,
    );
    assert.equal(s.get('chokepoint_controller_auth_failures_total{reason="missing_token"}'), 1);
    assert.equal(s.get('chokepoint_controller_auth_failures_total{reason="invalid_token"}'), 1);
    assert.equal(s.get('chokepoint_controller_auth_failures_total{reason="rate_limited"}'), 0);
    assert.equal(s.get('chokepoint_controller_bundle_version'), published);
    assert.equal(s.get('chokepoint_controller_bundle_waiters'), 0);
    assert.equal(s.get('chokepoint_controller_boxes{current="true"}'), 1);
    assert.equal(s.get('chokepoint_controller_boxes{current="false"}'), 2);
    const audit = await t.api('vera', 'GET', '/v1/audit?limit=5000');
    assert.ok(audit.json.rows.length > 0);
    assert.equal(s.get('chokepoint_controller_audit_rows'), audit.json.rows.length);

    for (const secret of ['424242', '31337', 'edge-a', 'vera', '127.0.0.1', ...Object.values(t.tokens)])
      assert.ok(!text.includes(secret), `${secret} must not appear in /metrics`);

    // the next scrape sees the previous one; the other controller counted none of this
    const again = await scrape(t);
    assert.equal(again.s.get(req('GET', '/metrics', 200)), (s.get(req('GET', '/metrics', 200)) ?? 0) + 1);
    const o = await scrape(other);
    await assertPromtoolClean(o.text);
    assert.equal(o.s.get(req('GET', '/v1/whoami', 200)), undefined);
    assert.equal(o.s.get('chokepoint_controller_bundle_version'), 0);
    assert.equal(o.s.get('chokepoint_controller_boxes{current="true"}'), 0);
  },
);
