/**
 * @module controller/api.test
 * The controller's API over real sockets on 127.0.0.1, the same suite against embedded SQLite and a
 * real PostgreSQL server the test starts itself: the auth matrix (every route × every role, expected
 * roles written out here, not read from the code), the full version lifecycle with two-person
 * approval, the `*t.co*` acceptance case, audit tampering, bad input, bulk-import sync (failed and
 * interrupted imports), entry expiry, bundle signatures, re-signing before expiry, long-polls.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- API answers are untyped JSON, checked field by field */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ROUTES } from './routes.js';
import { backendSuites, envelopeOf, startTestController, type TestController } from './testutil.js';
import { verifyBundle, verifyFile } from './bundles.js';
import { runImport, cleanInterrupted, type ImportOptions } from './imports.js';
import { rotateSigningKey } from './keys.js';
import { resignIfDue } from './bundles.js';
import { runCli } from '../policy/clitest.js';
import { loadPolicyFile } from '../policy/load.js';
import { lintPolicy } from '../policy/lint.js';
import { sha256 } from './content.js';

const suites = backendSuites();

/** Expected role per endpoint, written independently of routes.ts. */
const EXPECTED: Record<string, 'public' | 'node' | 'viewer' | 'editor' | 'approver' | 'admin'> = {
  'GET /v1/health': 'public',
  'GET /metrics': 'node',
  'GET /v1/whoami': 'node',
  'GET /v1/tokens': 'admin',
  'POST /v1/tokens': 'admin',
  'DELETE /v1/tokens/:id': 'admin',
  'GET /v1/registry/entries': 'viewer',
  'POST /v1/registry/entries': 'editor',
  'GET /v1/registry/entries/:id': 'viewer',
  'PATCH /v1/registry/entries/:id': 'editor',
  'POST /v1/registry/import': 'editor',
  'GET /v1/registry/imports/:id': 'viewer',
  'GET /v1/registry/why': 'viewer',
  'GET /v1/takedowns': 'viewer',
  'POST /v1/takedowns': 'editor',
  'GET /v1/takedowns/:id': 'viewer',
  'POST /v1/takedowns/:id/status': 'editor',
  'GET /v1/settings': 'viewer',
  'PUT /v1/settings': 'admin',
  'GET /v1/versions': 'viewer',
  'POST /v1/versions': 'editor',
  'GET /v1/versions/:id': 'viewer',
  'GET /v1/versions/:id/export': 'viewer',
  'GET /v1/versions/:id/shadow': 'viewer',
  'POST /v1/versions/:id/submit': 'editor',
  'POST /v1/versions/:id/approve': 'approver',
  'POST /v1/versions/:id/override': 'admin',
  'POST /v1/versions/:id/reject': 'approver',
  'POST /v1/versions/:id/publish': 'approver',
  'POST /v1/rollback': 'approver',
  'POST /v1/emergency-stop': 'approver',
  'POST /v1/rollouts': 'approver',
  'GET /v1/rollouts': 'viewer',
  'GET /v1/rollouts/:id': 'viewer',
  'POST /v1/rollouts/:id/pause': 'approver',
  'POST /v1/rollouts/:id/resume': 'approver',
  'POST /v1/rollouts/:id/abort': 'approver',
  'POST /v1/rollouts/:id/rollback': 'approver',
  'GET /v1/audit': 'viewer',
  'GET /v1/audit/heads': 'viewer',
  'GET /v1/audit/verify': 'viewer',
  'GET /v1/keys': 'viewer',
  'GET /v1/bundle': 'node',
  'GET /v1/blobs/:sha256': 'node',
  'GET /v1/deltas/:from/:to': 'node',
  'POST /v1/status': 'node',
  'GET /v1/nodes': 'viewer',
};
const RANK: Record<string, number> = { viewer: 1, editor: 2, approver: 3, admin: 4 };
const USERS: [string, string][] = [
  ['vera', 'viewer'],
  ['ed', 'editor'],
  ['alice', 'approver'],
  ['root', 'admin'],
  ['box1', 'node'],
];
function mayCall(role: string, need: string): boolean {
  if (need === 'public' || need === 'node') return true;
  if (role === 'node') return false;
  return RANK[role] >= RANK[need];
}

const TCO = `rules:
  - id: tco
    action: throttle
    rate: 128kbit
    match: {host: {substring: [t.co]}}
`;
const GOOD = (name: string) => `rules:
  - id: block-${name.replace(/\./g, '-')}
    action: block
    match: {host: {suffix: [${name}]}}
    provenance: {authority: test}
`;

for (const backend of ['sqlite', 'postgres'] as const) {
  const skip = suites.skip(backend);
  describe(`controller API on ${backend}`, { skip }, () => {
    const ctls: TestController[] = [];
    async function controller(
      over: Parameters<typeof startTestController>[2] = {},
      withKeys = true,
    ): Promise<TestController> {
      const t = await suites.controller(
        backend,
        't',
        { bodyLimit: 256 * 1024, importLimit: 1024 * 1024, ...over },
        withKeys,
      );
      ctls.push(t);
      return t;
    }
    after(async () => {
      for (const t of ctls) await t.close().catch(() => {});
    });

    test('auth matrix: every route × every role → allowed, 403, or 401 without a token', async () => {
      const t = await controller({ authFailures: { max: 1_000_000, windowMs: 60_000 } });
      const routes = ROUTES.map((r) => `${r.method} ${r.path}`).sort();
      assert.deepEqual(
        routes,
        Object.keys(EXPECTED).sort(),
        'the expected table covers exactly the mounted routes',
      );
      for (const r of ROUTES) {
        const need = EXPECTED[`${r.method} ${r.path}`];
        const path = r.path.replace(':id', '999999').replace(':sha256', '0'.repeat(64));
        const body =
          r.method === 'GET' || r.method === 'DELETE' || r.body === 'none'
            ? undefined
            : r.body === 'upload'
              ? 'x'
              : {};
        const anon = await t.api(null, r.method, path, body);
        if (need === 'public') assert.notEqual(anon.status, 401, `${r.method} ${r.path} is public`);
        else assert.equal(anon.status, 401, `${r.method} ${r.path} without a token`);
        const bad = await t.api('cpt_not-a-token', r.method, path, body);
        if (need !== 'public') assert.equal(bad.status, 401, `${r.method} ${r.path} with a bad token`);
        for (const [user, role] of USERS) {
          const res = await t.api(user, r.method, path, body);
          if (mayCall(role, need))
            assert.ok(
              res.status !== 401 && res.status !== 403,
              `${user} (${role}) may call ${r.method} ${r.path}: got ${res.status} ${JSON.stringify(res.json)}`,
            );
          else assert.equal(res.status, 403, `${user} (${role}) may not call ${r.method} ${r.path}`);
        }
      }
    });

    test('failed authentication is rate-limited per client', async () => {
      const t = await controller({ authFailures: { max: 5, windowMs: 60_000 } });
      for (let i = 0; i < 5; i++) assert.equal((await t.api('cpt_wrong', 'GET', '/v1/whoami')).status, 401);
      const r = await t.api('vera', 'GET', '/v1/whoami');
      assert.equal(r.status, 429, 'even a valid token is refused while the client is limited');
      assert.ok(r.headers.get('retry-after'));
    });

    test('lifecycle: registry → version → two approvals → publish → signed bundle → supersede → rollback', async () => {
      const t = await controller();
      const e = await t.api('ed', 'POST', '/v1/registry/entries', {
        kind: 'suffix',
        value: 'Bad.Example.',
        action: 'block',
        authority: 'Court',
        reference: 'Case 7/2026',
        legal_basis: 'Art. 1',
        decided: '2026-03-01',
        requested_by: 'prosecutor',
      });
      assert.equal(e.status, 201, JSON.stringify(e.json));
      assert.equal(e.json.value, 'bad.example', 'normalised like the policy loader');
      assert.equal(
        (await t.api('ed', 'POST', '/v1/registry/entries', { kind: 'suffix', value: 'bad.example' })).status,
        409,
      );
      const ip = await t.api('ed', 'POST', '/v1/registry/entries', {
        kind: 'cidr',
        value: '203.0.113.0/24',
        action: 'block',
        authority: 'Court',
      });
      assert.equal(ip.status, 201);
      const v1 = await t.api('ed', 'POST', '/v1/versions', { from_registry: true, note: 'first' });
      assert.equal(v1.status, 201, JSON.stringify(v1.json));
      assert.equal(v1.json.status, 'submitted');
      assert.equal(v1.json.errors, 0);
      // two-person rule
      assert.equal(
        (await t.api('alice', 'POST', `/v1/versions/${v1.json.id}/publish`)).json.error.code,
        'ERR_STATE',
      );
      const a1 = await t.api('alice', 'POST', `/v1/versions/${v1.json.id}/approve`);
      assert.equal(a1.json.status, 'submitted', 'one approval is not enough');
      assert.equal(
        (await t.api('alice', 'POST', `/v1/versions/${v1.json.id}/approve`)).json.error.code,
        'ERR_ALREADY_APPROVED',
      );
      const a2 = await t.api('bob', 'POST', `/v1/versions/${v1.json.id}/approve`);
      assert.equal(a2.json.status, 'approved');
      const p1 = await t.api('alice', 'POST', `/v1/versions/${v1.json.id}/publish`);
      assert.equal(p1.json.status, 'active');
      // the box's view: signed, verifiable, files match
      const b1 = await t.api('box1', 'GET', '/v1/bundle');
      assert.equal(b1.status, 200);
      assert.equal(b1.headers.get('etag'), '"1"');
      const m1 = verifyBundle(envelopeOf(b1.json), t.rootPublicPem);
      assert.equal(m1.version, 1);
      assert.deepEqual(m1.approvals.map((a) => a.user).sort(), ['alice', 'bob']);
      for (const f of m1.files) {
        const r = await fetch(`${t.run.url}/v1/blobs/${f.sha256}`, {
          headers: { authorization: `Bearer ${t.tokens.box1}` },
        });
        const data = Buffer.from(await r.arrayBuffer());
        verifyFile(m1, f.name, data);
        assert.equal(sha256(data), f.sha256);
      }
      assert.equal(
        (await t.api('box1', 'GET', '/v1/bundle', undefined, { 'if-none-match': '"1"' })).status,
        304,
      );
      // an author cannot approve their own version (alice writes v2)
      const v2 = await t.api('alice', 'POST', '/v1/versions', {
        policy: GOOD('other.example'),
        filename: 'other.yaml',
      });
      assert.equal(v2.json.status, 'submitted');
      assert.equal(v2.json.baseline_version, v1.json.id);
      assert.ok(v2.json.diff.groups.length > 0 || v2.json.diff.changed === 0);
      assert.equal(
        (await t.api('alice', 'POST', `/v1/versions/${v2.json.id}/approve`)).json.error.code,
        'ERR_OWN_VERSION',
      );
      await t.api('bob', 'POST', `/v1/versions/${v2.json.id}/approve`);
      assert.equal(
        (await t.api('root', 'POST', `/v1/versions/${v2.json.id}/approve`)).json.status,
        'approved',
      );
      assert.equal((await t.api('bob', 'POST', `/v1/versions/${v2.json.id}/publish`)).json.status, 'active');
      assert.equal((await t.api('vera', 'GET', `/v1/versions/${v1.json.id}`)).json.status, 'superseded');
      // rollback publishes the old content as a new, higher bundle
      const rb = await t.api('alice', 'POST', '/v1/rollback', { reason: 'collateral seen on canary' });
      assert.equal(rb.status, 200, JSON.stringify(rb.json));
      assert.equal(rb.json.id, v1.json.id);
      assert.equal(rb.json.status, 'active');
      assert.equal((await t.api('vera', 'GET', `/v1/versions/${v2.json.id}`)).json.status, 'rolled_back');
      const b3 = verifyBundle(envelopeOf((await t.api('box1', 'GET', '/v1/bundle')).json), t.rootPublicPem, {
        minVersion: 2,
      });
      assert.equal(b3.version, 3);
      assert.equal(b3.kind, 'rollback');
      assert.equal(b3.policy_version, v1.json.id);
      assert.deepEqual(b3.files, m1.files, 'same content as version 1');
      // why: the active decision and the entry with its provenance
      const w = await t.api('vera', 'GET', '/v1/registry/why?name=www.bad.example');
      assert.equal(w.json.active.decision.action, 'block');
      assert.equal(w.json.entries.length, 1);
      assert.equal(w.json.entries[0].reference, 'Case 7/2026');
      assert.equal(w.json.entries[0].since_version, v1.json.id);
      const wi = await t.api('vera', 'GET', '/v1/registry/why?ip=203.0.113.77');
      assert.equal(wi.json.entries[0].value, '203.0.113.0/24');
      assert.equal(wi.json.active.decision.action, 'block');
      assert.equal(
        (await t.api('vera', 'GET', '/v1/registry/why?name=bad.example.org')).json.entries.length,
        0,
      );
      // exported content round-trips through the policy loader and lint
      const ex = await t.api('vera', 'GET', `/v1/versions/${v1.json.id}/export`);
      const dir = mkdtempSync(join(tmpdir(), 'ctl-export-'));
      try {
        for (const f of ex.json.files) {
          const p = join(dir, f.name);
          (await import('node:fs')).mkdirSync(join(p, '..'), { recursive: true });
          writeFileSync(p, f.text);
        }
        const pol = await loadPolicyFile(join(dir, ex.json.main));
        assert.equal(lintPolicy(pol).filter((f) => f.severity === 'error').length, 0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      // status reports and the fleet view
      assert.equal(
        (
          await t.api('box1', 'POST', '/v1/status', {
            node: 'box-a',
            labels: { tier: 'canary' },
            active_version: 3,
            last_activation: new Date().toISOString(),
            errors: [],
            counters: { flows: 5 },
          })
        ).status,
        200,
      );
      const nodes = await t.api('vera', 'GET', '/v1/nodes');
      assert.equal(nodes.json.nodes[0].name, 'box-a');
      assert.equal(nodes.json.nodes[0].drift, false);
    });

    test('*t.co*: diff lists microsoft.com and reddit.com; no approval without an admin override; the override is not an approval', async () => {
      const t = await controller();
      const traffic = ['reddit.com', 'reddit.com', 'www.microsoft.com', 'example.org']
        .map((h) => JSON.stringify({ event_type: 'flow', host: h }))
        .join('\n');
      const v = await t.api('ed', 'POST', '/v1/versions', { policy: TCO, filename: 'tco.yaml', traffic });
      assert.equal(v.status, 201);
      assert.ok(v.json.errors >= 1);
      assert.ok(v.json.findings.some((f: any) => f.code === 'emulation-substring' && f.severity === 'error'));
      const g = v.json.diff.groups.find((x: any) => x.to.rule_id === 'tco' && x.to.action === 'throttle');
      assert.ok(g, 'a group of names newly throttled by rule tco');
      assert.ok(
        g.names.includes('microsoft.com') && g.names.includes('reddit.com'),
        g.names.slice(0, 20).join(','),
      );
      assert.equal(g.count, 445, 'names of top10k containing t.co (corpus README; grep -c)');
      const tg = v.json.diff.traffic.groups.find((x: any) => x.to.rule_id === 'tco');
      assert.deepEqual(
        tg.names,
        ['reddit.com', 'www.microsoft.com'],
        'names seen in the attached traffic, most flows first',
      );
      assert.equal(v.json.diff.traffic.names, 3);
      const badTraffic = await t.api('ed', 'POST', '/v1/versions', {
        policy: TCO,
        traffic: '{"host": "a"}\nnot json\n',
      });
      assert.equal(badTraffic.json.error.field, 'traffic.jsonl:2:1');
      assert.equal(
        (await t.api('alice', 'POST', `/v1/versions/${v.json.id}/approve`)).json.error.code,
        'ERR_NEEDS_OVERRIDE',
      );
      assert.equal(
        (
          await t.api('alice', 'POST', `/v1/versions/${v.json.id}/override`, {
            reason: 'I am only an approver here',
          })
        ).status,
        403,
      );
      assert.equal(
        (await t.api('root', 'POST', `/v1/versions/${v.json.id}/override`, { reason: '' })).status,
        400,
      );
      const o = await t.api('root', 'POST', `/v1/versions/${v.json.id}/override`, {
        reason: 'lab emulation of the 2021 rule, approved by J. Doe',
      });
      assert.equal(o.json.override.by, 'root');
      assert.equal(o.json.approvals.length, 0, 'the override is not an approval');
      assert.equal(
        (await t.api('root', 'POST', `/v1/versions/${v.json.id}/approve`)).json.error.code,
        'ERR_OVERRIDER',
      );
      assert.equal(
        (await t.api('alice', 'POST', `/v1/versions/${v.json.id}/approve`)).json.status,
        'submitted',
      );
      assert.equal((await t.api('bob', 'POST', `/v1/versions/${v.json.id}/approve`)).json.status, 'approved');
      const list = await t.api('vera', 'GET', '/v1/versions');
      assert.equal(
        list.json.versions[0].override.reason,
        'lab emulation of the 2021 rule, approved by J. Doe',
        'the override is shown in lists too',
      );
      await t.api('alice', 'POST', `/v1/versions/${v.json.id}/publish`);
      const m = verifyBundle(envelopeOf((await t.api('box1', 'GET', '/v1/bundle')).json), t.rootPublicPem);
      assert.equal(m.override?.reason, 'lab emulation of the 2021 rule, approved by J. Doe');
    });

    test('a protected_override written in the policy text is still an error finding', async () => {
      const t = await controller();
      const text = `protected: {suffix: [microsoft.com]}
rules:
  - id: ms
    action: block
    protected_override: {reason: "I say so"}
    match: {host: {exact: [microsoft.com]}}
    provenance: {authority: x}
`;
      const v = await t.api('ed', 'POST', '/v1/versions', { policy: text });
      assert.equal(v.status, 201);
      const f = v.json.findings.find((x: any) => x.code === 'protected-override');
      assert.equal(f?.severity, 'error');
      assert.equal(
        (await t.api('alice', 'POST', `/v1/versions/${v.json.id}/approve`)).json.error.code,
        'ERR_NEEDS_OVERRIDE',
      );
    });

    test('bad input: malformed JSON/YAML → 400 naming the field or file:line:col; too large → 413', async () => {
      const t = await controller();
      const r1 = await fetch(`${t.run.url}/v1/registry/entries`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.tokens.ed}`, 'content-type': 'application/json' },
        body: '{"kind": "exact", "value": ',
      });
      assert.equal(r1.status, 400);
      assert.equal(((await r1.json()) as any).error.field, 'body');
      const r2 = await t.api('ed', 'POST', '/v1/versions', {
        policy: 'rules:\n  - id: a\n    action: block\n    match: {host: {exact: [x.example]\n',
      });
      assert.equal(r2.status, 400);
      assert.match(r2.json.error.field, /^policy\.yaml:\d+:\d+$/);
      const r3 = await t.api('ed', 'POST', '/v1/versions', {
        policy:
          'rules:\n  - id: a\n    action: block\n    match:\n      host:\n        suffix: ["*.bad.example"]\n',
        filename: 'p.yaml',
      });
      assert.equal(r3.status, 400);
      assert.equal(r3.json.error.field, 'p.yaml:6:18');
      assert.match(r3.json.error.message, /wildcard/);
      const r4 = await t.api('ed', 'POST', '/v1/versions', {
        policy:
          'rules:\n  - id: a\n    action: block\n    match:\n      host:\n        exact_file: /etc/passwd\n',
      });
      assert.equal(r4.status, 400);
      assert.equal(r4.json.error.field, 'policy.yaml:6:9');
      const r5 = await t.api('ed', 'POST', '/v1/registry/entries', { kind: 'exact', value: 'a..b' });
      assert.equal(r5.status, 400);
      assert.equal(r5.json.error.field, 'value');
      assert.equal(
        (
          await t.api('ed', 'POST', '/v1/registry/entries', {
            kind: 'exact',
            value: 'a.example',
            colour: 'red',
          })
        ).json.error.field,
        'colour',
      );
      assert.equal(
        (
          await t.api('ed', 'POST', '/v1/registry/entries', {
            kind: 'exact',
            value: 'a.example',
            action: 'throttle',
          })
        ).json.error.field,
        'rate',
      );
      const big = await t.api('ed', 'POST', '/v1/versions', { policy: 'x'.repeat(300 * 1024) });
      assert.equal(big.status, 413);
      const bigUp = await t.api(
        'ed',
        'POST',
        '/v1/registry/import?format=domains&source=big',
        Buffer.alloc(2 * 1024 * 1024, 0x61),
      );
      assert.equal(bigUp.status, 413);
      assert.equal(
        (await t.api('ed', 'POST', '/v1/registry/import?format=nope&source=s', 'a.example\n')).json.error
          .field,
        'format',
      );
      assert.equal(
        (await t.api('vera', 'GET', '/v1/registry/entries')).json.entries.length,
        0,
        'nothing written by refused requests',
      );
      const doc = await t.api(null, 'GET', '/openapi.json');
      assert.equal(doc.json.openapi, '3.1.0');
      for (const r of ROUTES)
        assert.ok(
          doc.json.paths[r.path.replace(/:(\w+)/g, '{$1}')]?.[r.method.toLowerCase()],
          `${r.method} ${r.path} documented`,
        );
    });

    test('bulk import is a sync; a failed import leaves nothing; an interrupted one changes nothing until re-run', async () => {
      const t = await controller({ importChunk: 2 });
      const up = (q: string, text: string, user = 'ed') =>
        t.api(user, 'POST', `/v1/registry/import?${q}`, text);
      const active = async () =>
        ((await t.api('vera', 'GET', '/v1/registry/entries?status=active&limit=1000')).json.entries as any[])
          .map((e) => `${e.kind}:${e.value}`)
          .sort();
      const a = await up(
        'format=domains&source=feed&filename=a.txt&action=block',
        'one.example\ntwo.example\n*.three.example\n',
      );
      assert.equal(a.status, 200, JSON.stringify(a.json));
      assert.deepEqual([a.json.added, a.json.updated, a.json.retired], [3, 0, 0]);
      const manual = await t.api('ed', 'POST', '/v1/registry/entries', {
        kind: 'exact',
        value: 'manual.example',
        action: 'block',
      });
      assert.equal(manual.status, 201);
      const b = await up(
        'format=domains&source=feed&filename=b.txt&action=block',
        'one.example\n*.three.example\nfour.example\n',
      );
      assert.deepEqual([b.json.added, b.json.updated, b.json.retired], [1, 0, 1]);
      const expectB = [
        'exact:four.example',
        'exact:manual.example',
        'exact:one.example',
        'subdomains:three.example',
      ];
      assert.deepEqual(await active(), expectB);
      const again = await up(
        'format=domains&source=feed&filename=b.txt&action=block',
        'one.example\n*.three.example\nfour.example\n',
      );
      assert.deepEqual([again.json.added, again.json.updated, again.json.retired], [0, 0, 0]);
      // a malformed line: refused with file:line:col, nothing changes
      const bad = await up(
        'format=domains&source=feed&filename=bad.txt',
        'x.example\ny.example\nbad name here\n',
      );
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error.field, 'bad.txt:3:1');
      assert.deepEqual(await active(), expectB);
      // cidr feed
      const c = await up('format=cidr&source=ips&filename=ips.txt', '198.51.100.0/24\n2001:db8::/32\n');
      assert.equal(c.json.added, 2);
      // interrupted during staging (the process would die here): nothing changes; the re-run completes it
      const opts: ImportOptions = {
        format: 'domains',
        source: 'feed',
        filename: 'c.txt',
        action: 'block',
        method: null,
        rate_bps: null,
        burst_bytes: null,
        expires: null,
      };
      const dir = mkdtempSync(join(tmpdir(), 'ctl-imp-'));
      const file = join(dir, 'c.txt');
      writeFileSync(file, 'one.example\nfive.example\nsix.example\nseven.example\nsub.one.example\n');
      await assert.rejects(
        runImport(t.run.ctx, file, null, opts, 'ed', { failAfterChunks: 1 }),
        /simulated crash/,
      );
      assert.equal(await cleanInterrupted(t.run.ctx), 1);
      assert.deepEqual(
        (await active()).filter((x) => !x.startsWith('cidr')),
        expectB,
      );
      assert.equal(Number((await t.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM import_stage'))!.n), 0);
      const done = await runImport(t.run.ctx, file, null, opts, 'ed');
      assert.deepEqual([done.added, done.retired], [4, 2]);
      assert.deepEqual(
        (await active()).filter((x) => !x.startsWith('cidr')),
        [
          'exact:five.example',
          'exact:manual.example',
          'exact:one.example',
          'exact:seven.example',
          'exact:six.example',
          'exact:sub.one.example',
        ],
      );
      rmSync(dir, { recursive: true, force: true });
    });

    test('a long import does not stall approvals or status reports: they complete while it stages', async () => {
      const t = await controller({ importChunk: 200 });
      const v = await t.api('ed', 'POST', '/v1/versions', { policy: GOOD('q.example') });
      const names = Array.from({ length: 40_000 }, (_, i) => `s${i}.stall.example`).join('\n') + '\n';
      const up = await t.api('ed', 'POST', '/v1/registry/import?format=domains&source=big&async=true', names);
      assert.equal(up.status, 202);
      const st = await t.api('box1', 'POST', '/v1/status', { node: 'n1', active_version: null });
      assert.equal(st.status, 200);
      const ap = await t.api('alice', 'POST', `/v1/versions/${v.json.id}/approve`);
      assert.equal(ap.json.approvals.length, 1);
      const during = await t.api('vera', 'GET', `/v1/registry/imports/${up.json.id}`);
      assert.ok(
        ['parsing', 'staging'].includes(during.json.status),
        `the import was still running (${during.json.status})`,
      );
      for (let i = 0; i < 100_000; i++) {
        const s = await t.api('vera', 'GET', `/v1/registry/imports/${up.json.id}`);
        if (s.json.status === 'done') {
          assert.equal(s.json.added, 40_000);
          break;
        }
        assert.ok(['parsing', 'staging', 'applying'].includes(s.json.status), s.json.status);
        await new Promise((r) => setTimeout(r, 50));
      }
    });

    test('expiry: expired entries leave the next version, soon-expiring ones are warned about and carry expires', async () => {
      const t = await controller();
      const day = (d: number) => new Date(Date.now() + d * 86_400_000).toISOString().slice(0, 10);
      await t.api('ed', 'POST', '/v1/registry/entries', {
        kind: 'exact',
        value: 'old.example',
        action: 'block',
        expires: day(-2),
      });
      await t.api('ed', 'POST', '/v1/registry/entries', {
        kind: 'exact',
        value: 'soon.example',
        action: 'block',
        expires: day(3),
      });
      await t.api('ed', 'POST', '/v1/registry/entries', {
        kind: 'exact',
        value: 'long.example',
        action: 'block',
      });
      const v = await t.api('ed', 'POST', '/v1/versions', { from_registry: true });
      assert.equal(v.json.findings.find((f: any) => f.code === 'entries-expired')?.count, 1);
      const w = v.json.findings.find((f: any) => f.code === 'entries-expiring');
      assert.equal(w?.severity, 'warning');
      assert.match(w.examples[0], /soon\.example/);
      const ex = await t.api('vera', 'GET', `/v1/versions/${v.json.id}/export`);
      const all = ex.json.files.map((f: any) => f.text).join('\n');
      assert.ok(!all.includes('old.example'));
      assert.ok(all.includes('soon.example') && all.includes('long.example'));
      const pol = JSON.parse(ex.json.files.find((f: any) => f.name === 'policy.json').text);
      assert.ok(
        pol.rules.some((r: any) => r.expires === day(3)),
        'the rule of the expiring entry carries expires, so boxes drop it on time',
      );
    });

    test('bundles are re-signed before they expire, and long-polls wake on it', async () => {
      const t = await controller({ bundleTtlMs: 3000 });
      await t.api('ed', 'POST', '/v1/registry/entries', {
        kind: 'exact',
        value: 'x.example',
        action: 'block',
      });
      const v = await t.api('ed', 'POST', '/v1/versions', { from_registry: true });
      await t.api('alice', 'POST', `/v1/versions/${v.json.id}/approve`);
      await t.api('bob', 'POST', `/v1/versions/${v.json.id}/approve`);
      await t.api('alice', 'POST', `/v1/versions/${v.json.id}/publish`);
      const first = verifyBundle(
        envelopeOf((await t.api('box1', 'GET', '/v1/bundle')).json),
        t.rootPublicPem,
      );
      const r = await t.api('box1', 'GET', '/v1/bundle?wait=20', undefined, {
        'if-none-match': `"${first.version}"`,
      });
      assert.equal(r.status, 200);
      const next = verifyBundle(envelopeOf(r.json), t.rootPublicPem, { minVersion: first.version });
      assert.equal(next.kind, 'resign');
      assert.ok(next.version > first.version);
      assert.equal(next.policy_version, first.policy_version);
      assert.ok(Date.parse(next.expires) > Date.parse(first.expires));
      assert.throws(
        () => verifyBundle(envelopeOf(r.json), t.rootPublicPem, { now: Date.parse(next.expires) + 1 }),
        /expired/,
      );
    });

    test('signatures: tampering, rollback, unknown keys; rotation re-signs; a revoked key is refused', async () => {
      const t = await controller();
      await t.api('ed', 'POST', '/v1/registry/entries', {
        kind: 'exact',
        value: 'x.example',
        action: 'block',
      });
      const v = await t.api('ed', 'POST', '/v1/versions', { from_registry: true });
      await t.api('alice', 'POST', `/v1/versions/${v.json.id}/approve`);
      await t.api('bob', 'POST', `/v1/versions/${v.json.id}/approve`);
      await t.api('alice', 'POST', `/v1/versions/${v.json.id}/publish`);
      const env1 = envelopeOf((await t.api('box1', 'GET', '/v1/bundle')).json);
      const m1 = verifyBundle(env1, t.rootPublicPem);
      const tampered = { ...env1, manifest: env1.manifest.replace('"version":1', '"version":9') };
      assert.throws(
        () => verifyBundle(tampered, t.rootPublicPem),
        (e: any) => e.code === 'ERR_BUNDLE_SIGNATURE',
      );
      assert.throws(
        () => verifyBundle(env1, t.rootPublicPem, { minVersion: 2 }),
        (e: any) => e.code === 'ERR_BUNDLE_ROLLBACK',
      );
      const other = (await import('node:crypto'))
        .generateKeyPairSync('ed25519')
        .publicKey.export({ type: 'spki', format: 'pem' })
        .toString();
      assert.throws(
        () => verifyBundle(env1, other),
        (e: any) => e.code === 'ERR_BUNDLE_TRUST',
      );
      assert.throws(
        () => verifyFile(m1, m1.files[0].name, Buffer.from('nope')),
        (e: any) => e.code === 'ERR_BUNDLE_FILE',
      );
      // rotate: the next re-sign check signs the content with the new key
      const rot = await rotateSigningKey(t.db, { rootPrivatePem: t.rootPrivatePem, actor: 'test' });
      const nv = await resignIfDue(t.run.ctx);
      assert.ok(nv !== null);
      const env2 = envelopeOf((await t.api('box1', 'GET', '/v1/bundle')).json);
      const m2 = verifyBundle(env2, t.rootPublicPem, { minVersion: m1.version });
      assert.equal(m2.signing_keyid, rot.keyid);
      // revoke the first key: its bundles are refused with the new trust document
      await rotateSigningKey(t.db, {
        rootPrivatePem: t.rootPrivatePem,
        actor: 'test',
        revoke: [m1.signing_keyid],
        newKey: false,
      });
      const trust3 = (await t.api('box1', 'GET', '/v1/bundle')).json.trust;
      assert.throws(
        () => verifyBundle({ ...env1, trust: trust3 }, t.rootPublicPem),
        (e: any) => e.code === 'ERR_BUNDLE_KEY_REVOKED',
      );
      verifyBundle({ ...env2, trust: trust3 }, t.rootPublicPem);
      // a trust document signed by another root is refused
      const { privateKey } = (await import('node:crypto')).generateKeyPairSync('ed25519');
      await assert.rejects(
        rotateSigningKey(t.db, {
          rootPrivatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
          actor: 'x',
        }),
        /not the controller's root key/,
      );
    });

    test('no signing key: publish is refused with a clear error and nothing changes', async () => {
      const t = await controller({}, false);
      await t.api('ed', 'POST', '/v1/registry/entries', {
        kind: 'exact',
        value: 'x.example',
        action: 'block',
      });
      const v = await t.api('ed', 'POST', '/v1/versions', { from_registry: true });
      await t.api('alice', 'POST', `/v1/versions/${v.json.id}/approve`);
      await t.api('bob', 'POST', `/v1/versions/${v.json.id}/approve`);
      const p = await t.api('alice', 'POST', `/v1/versions/${v.json.id}/publish`);
      assert.equal(p.json.error.code, 'ERR_NO_SIGNING_KEY');
      assert.equal((await t.api('vera', 'GET', `/v1/versions/${v.json.id}`)).json.status, 'approved');
    });

    test('audit: every change is chained; ctl audit verify catches an edited, a deleted and a deleted last row', async () => {
      const t = await controller();
      await t.api('ed', 'POST', '/v1/registry/entries', {
        kind: 'exact',
        value: 'a.example',
        action: 'block',
      });
      await t.api('ed', 'POST', '/v1/registry/entries', {
        kind: 'exact',
        value: 'b.example',
        action: 'block',
      });
      const v = await t.api('ed', 'POST', '/v1/versions', { from_registry: true });
      await t.api('alice', 'POST', `/v1/versions/${v.json.id}/approve`);
      await t.api('bob', 'POST', `/v1/versions/${v.json.id}/approve`);
      await t.api('alice', 'POST', `/v1/versions/${v.json.id}/publish`);
      const ctl = (...a: string[]) =>
        runCli(['ctl', 'audit', 'verify', '--url', t.run.url, '--token', t.tokens.vera, ...a]);
      const ok = await ctl('--format', 'json');
      assert.equal(ok.code, 0, ok.stderr);
      const rows = JSON.parse(ok.stdout).rows as number;
      const actions = (await t.api('vera', 'GET', '/v1/audit')).json.rows.map((r: any) => r.action);
      for (const a of [
        'token.create',
        'keys.rotate',
        'entry.add',
        'version.create',
        'version.submit',
        'version.approve',
        'version.publish',
        'bundle.publish',
      ])
        assert.ok(actions.includes(a), `audited: ${a}`);
      // the last row is deleted (and the head row rewound): the bundle manifest still knows it
      const last = (await t.db.get<{ seq: number; prev_hash: string }>(
        'SELECT seq, prev_hash FROM audit ORDER BY seq DESC LIMIT 1',
      ))!;
      const saved = await t.db.get('SELECT * FROM audit WHERE seq = $1', [last.seq]);
      await t.db.run('DELETE FROM audit WHERE seq = $1', [last.seq]);
      await t.db.run('UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1', [
        Number(last.seq) - 1,
        last.prev_hash,
      ]);
      const r0 = await ctl();
      assert.equal(r0.code, 1);
      assert.match(r0.stderr, new RegExp(`first bad row ${Number(last.seq)}\\b.*manifest`));
      const s = saved as any;
      await t.db.run(
        'INSERT INTO audit (seq, at, actor, action, target, before, after, prev_hash, hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)',
        [s.seq, s.at, s.actor, s.action, s.target, s.before, s.after, s.prev_hash, s.hash],
      );
      await t.db.run('UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1', [s.seq, s.hash]);
      assert.equal((await ctl()).code, 0, 'restored');
      // an edited row
      await t.db.run("UPDATE audit SET actor = 'mallory' WHERE seq = 4");
      const r1 = await ctl();
      assert.equal(r1.code, 1);
      assert.match(r1.stderr, /first bad row 4: .*edited/);
      // a deleted row in the middle
      await t.db.run('UPDATE audit SET actor = $1 WHERE seq = 4', [
        (await t.db.get<{ actor: string }>('SELECT actor FROM audit WHERE seq = 5'))!.actor === 'x'
          ? 'x'
          : 'bootstrap',
      ]);
      const again = await ctl('--format', 'json');
      if (again.code === 0) {
        await t.db.run('DELETE FROM audit WHERE seq = 6');
        const r2 = await ctl('--format', 'json');
        assert.equal(r2.code, 1);
        assert.equal(JSON.parse(r2.stdout).bad.seq, 6);
        assert.match(JSON.parse(r2.stdout).bad.reason, /missing/);
      } else {
        // row 4's original actor was not 'bootstrap': delete row 6 anyway; the first bad row stays 4
        await t.db.run('DELETE FROM audit WHERE seq = 6');
        assert.equal(JSON.parse((await ctl('--format', 'json')).stdout).bad.seq, 4);
      }
      assert.ok(rows > 10);
    });

    test('takedown requests link to the entries they produce', async () => {
      const t = await controller();
      const td = await t.api('ed', 'POST', '/v1/takedowns', {
        authority: 'Regulator',
        reference: 'Req 42',
        legal_basis: 'Law 149-FZ',
        requested_by: 'office',
      });
      assert.equal(td.json.status, 'received');
      assert.equal(
        (await t.api('ed', 'POST', `/v1/takedowns/${td.json.id}/status`, { status: 'enacted' })).status,
        409,
        'received → enacted skips review',
      );
      assert.equal(
        (await t.api('ed', 'POST', `/v1/takedowns/${td.json.id}/status`, { status: 'reviewed' })).json.status,
        'reviewed',
      );
      const e = await t.api('ed', 'POST', '/v1/registry/entries', {
        kind: 'exact',
        value: 'td.example',
        action: 'block',
        takedown_id: td.json.id,
        authority: 'Regulator',
        reference: 'Req 42',
      });
      assert.equal(e.status, 201);
      assert.equal(
        (
          await t.api('ed', 'POST', '/v1/registry/entries', {
            kind: 'exact',
            value: 'y.example',
            takedown_id: 999,
          })
        ).json.error.field,
        'takedown_id',
      );
      await t.api('ed', 'POST', `/v1/takedowns/${td.json.id}/status`, {
        status: 'enacted',
        note: 'entry added',
      });
      const show = await t.api('vera', 'GET', `/v1/takedowns/${td.json.id}`);
      assert.equal(show.json.status, 'enacted');
      assert.deepEqual(
        show.json.entries.map((x: any) => x.value),
        ['td.example'],
      );
    });

    if (backend === 'postgres')
      test('two replicas on one PostgreSQL: a publish through one wakes long-polls on the other (LISTEN/NOTIFY)', async () => {
        const t = await controller();
        const { DEFAULT_CONFIG } = await import('./context.js');
        const { startController } = await import('./server.js');
        const { openDb } = await import('./db.js');
        const url = (t.db as any).url as string;
        const db2 = openDb({ databaseUrl: url });
        const replica = await startController(
          db2,
          { ...DEFAULT_CONFIG, reference: t.run.ctx.config.reference },
          { host: '127.0.0.1', port: 0 },
        );
        try {
          const call = async (
            base: string,
            user: string,
            method: string,
            path: string,
            body?: unknown,
            h: Record<string, string> = {},
          ) => {
            const r = await fetch(base + path, {
              method,
              headers: {
                authorization: `Bearer ${t.tokens[user]}`,
                'content-type': 'application/json',
                ...h,
              },
              body: body === undefined ? undefined : JSON.stringify(body),
            });
            return { status: r.status, json: r.status === 304 ? null : ((await r.json()) as any) };
          };
          await call(t.run.url, 'ed', 'POST', '/v1/registry/entries', {
            kind: 'exact',
            value: 'r1.example',
            action: 'block',
          });
          // any replica serves any request
          const v = await call(replica.url, 'ed', 'POST', '/v1/versions', { from_registry: true });
          await call(t.run.url, 'alice', 'POST', `/v1/versions/${v.json.id}/approve`);
          await call(replica.url, 'bob', 'POST', `/v1/versions/${v.json.id}/approve`);
          await call(t.run.url, 'alice', 'POST', `/v1/versions/${v.json.id}/publish`);
          assert.equal(
            (
              await call(replica.url, 'box1', 'GET', '/v1/bundle?wait=1', undefined, {
                'if-none-match': '"1"',
              })
            ).status,
            304,
            'timeout → 304',
          );
          const poll = call(replica.url, 'box1', 'GET', '/v1/bundle?wait=60', undefined, {
            'if-none-match': '"1"',
          });
          await new Promise((r) => setTimeout(r, 200)); // let the poll reach the replica before the publish
          const v2 = await call(t.run.url, 'ed', 'POST', '/v1/versions', { policy: GOOD('z.example') });
          await call(t.run.url, 'alice', 'POST', `/v1/versions/${v2.json.id}/approve`);
          await call(t.run.url, 'bob', 'POST', `/v1/versions/${v2.json.id}/approve`);
          const t0 = Date.now();
          await call(t.run.url, 'alice', 'POST', `/v1/versions/${v2.json.id}/publish`);
          const r = await poll;
          assert.equal(r.status, 200);
          assert.equal(JSON.parse(r.json.manifest).version, 2);
          assert.ok(Date.now() - t0 < 10_000);
        } finally {
          await replica.close();
          await db2.close();
        }
      });
  });
}
