/**
 * @module controller/emergency.test
 * The kill switch and the fleet view over real sockets, on embedded SQLite and on a real PostgreSQL
 * the test starts: a box long-polling `GET /v1/bundle` wakes on the emergency stop with a signed,
 * higher bundle whose content (read back through the blob store and the policy loader) allows
 * everything; roles and bad input; the audit entry; `GET /v1/nodes` with labels, intended version,
 * drift and last error; `rollback` restores the pre-stop version as a higher bundle again.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- API answers are untyped JSON, checked field by field */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { backendSuites, envelopeOf, type TestController } from './testutil.js';
import { verifyBundle, verifyFile } from './bundles.js';
import { parsePolicy } from '../policy/load.js';

const suites = backendSuites();

const BLOCK = `rules:
  - id: block-bad
    action: block
    match: {host: {suffix: [bad.example]}}
    provenance: {authority: test}
`;

for (const backend of ['sqlite', 'postgres'] as const) {
  const skip = suites.skip(backend);
  describe(`emergency stop and fleet view on ${backend}`, { skip }, () => {
    let t: TestController;
    before(async () => {
      t = await suites.controller(backend, 'em');
    });
    after(async () => {
      await t?.close();
    });

    test('a long-polling box wakes on a signed allow-all bundle, higher than the one it has; audited; rollback restores', async () => {
      const v = await t.api('ed', 'POST', '/v1/versions', { policy: BLOCK, filename: 'p.yaml' });
      assert.equal(v.status, 201, JSON.stringify(v.json));
      await t.api('alice', 'POST', `/v1/versions/${v.json.id}/approve`);
      await t.api('bob', 'POST', `/v1/versions/${v.json.id}/approve`);
      assert.equal((await t.api('alice', 'POST', `/v1/versions/${v.json.id}/publish`)).json.status, 'active');
      const b1 = verifyBundle(envelopeOf((await t.api('box1', 'GET', '/v1/bundle')).json), t.rootPublicPem);
      assert.equal(b1.policy_version, v.json.id);

      // the fleet view before the stop: one box on the current bundle, one behind with an error
      const report = (node: string, labels: object, active: number, errors: unknown[]) =>
        t.api('box1', 'POST', '/v1/status', { node, labels, active_version: active, errors, counters: {} });
      assert.equal((await report('box-a', { tier: 'canary' }, b1.version, [])).status, 200);
      assert.equal(
        (await report('box-b', { tier: 'main' }, b1.version - 1, ['first', 'bundle 9: signature invalid']))
          .status,
        200,
      );
      let nodes = (await t.api('vera', 'GET', '/v1/nodes')).json.nodes;
      assert.deepEqual(
        nodes.map((n: any) => [
          n.name,
          n.labels,
          n.active_version,
          n.intended_version,
          n.drift,
          n.last_error,
        ]),
        [
          ['box-a', { tier: 'canary' }, b1.version, b1.version, false, null],
          ['box-b', { tier: 'main' }, b1.version - 1, b1.version, true, 'bundle 9: signature invalid'],
        ],
      );
      assert.equal(typeof nodes[0].last_seen, 'number');

      // roles and bad input: nothing is published
      assert.equal((await t.api('vera', 'POST', '/v1/emergency-stop', { reason: 'x' })).status, 403);
      assert.equal((await t.api('ed', 'POST', '/v1/emergency-stop', { reason: 'x' })).status, 403);
      assert.equal((await t.api('box1', 'POST', '/v1/emergency-stop', { reason: 'x' })).status, 403);
      const bad = await t.api('alice', 'POST', '/v1/emergency-stop', { reason: '  ' });
      assert.equal(bad.status, 400);
      assert.match(bad.json.error.message, /reason/);
      assert.equal((await t.api('alice', 'POST', '/v1/emergency-stop', {})).status, 400);
      assert.equal(
        verifyBundle(envelopeOf((await t.api('box1', 'GET', '/v1/bundle')).json), t.rootPublicPem).version,
        b1.version,
        'refused stops published nothing',
      );

      // a box long-polls; the stop wakes it
      const poll = t.api('box1', 'GET', '/v1/bundle?wait=20', undefined, {
        'if-none-match': `"${b1.version}"`,
      });
      const stop = await t.api('alice', 'POST', '/v1/emergency-stop', {
        reason: 'global outage: reddit throttled',
      });
      assert.equal(stop.status, 200, JSON.stringify(stop.json));
      const got = await poll;
      assert.equal(got.status, 200);
      const m = verifyBundle(envelopeOf(got.json), t.rootPublicPem, { minVersion: b1.version });
      assert.equal(m.kind, 'emergency');
      assert.ok(m.version > b1.version, 'a new, higher bundle: the box no-rollback check stays strict');
      assert.equal(m.policy_version, stop.json.id);
      assert.equal(stop.json.bundle_version, m.version);
      assert.equal(m.files.length, 1);
      const blob = await fetch(`${t.run.url}/v1/blobs/${m.files[0].sha256}`, {
        headers: { authorization: `Bearer ${t.tokens.box1}` },
      });
      const bytes = Buffer.from(await blob.arrayBuffer());
      verifyFile(m, m.files[0].name, bytes);
      const pol = await parsePolicy(bytes.toString('utf8'), m.files[0].name);
      assert.equal(pol.rules.length, 0, 'no rule: nothing is blocked or throttled');
      assert.deepEqual(pol.default, { action: 'allow' });

      // audited with the caller and the reason, before the bundle it produced
      const audit = (await t.api('vera', 'GET', '/v1/audit')).json.rows;
      const i = audit.findIndex((r: any) => r.action === 'fleet.emergency_stop');
      assert.ok(i >= 0, 'an audit row for the stop');
      assert.equal(audit[i].actor, 'alice');
      assert.equal(JSON.parse(audit[i].after).reason, 'global outage: reddit throttled');
      assert.equal(JSON.parse(audit[i].before).active, v.json.id);
      assert.equal(audit[i + 1].action, 'bundle.emergency');
      assert.equal(audit[i + 1].target, `bundle:${m.version}`);

      // every node is now meant to run the stop bundle: both drift until they report it
      nodes = (await t.api('vera', 'GET', '/v1/nodes')).json.nodes;
      assert.deepEqual(
        nodes.map((n: any) => [n.intended_version, n.drift]),
        [
          [m.version, true],
          [m.version, true],
        ],
      );
      assert.equal((await t.api('vera', 'GET', `/v1/versions/${v.json.id}`)).json.status, 'superseded');

      // recovery: rollback restores the blocking version as a higher bundle again
      const rb = await t.api('alice', 'POST', '/v1/rollback', { reason: 'cause understood' });
      assert.equal(rb.status, 200, JSON.stringify(rb.json));
      assert.equal(rb.json.id, v.json.id);
      const m2 = verifyBundle(envelopeOf((await t.api('box1', 'GET', '/v1/bundle')).json), t.rootPublicPem, {
        minVersion: m.version,
      });
      assert.ok(m2.version > m.version);
      assert.equal(m2.policy_version, v.json.id);
    });
  });
}
