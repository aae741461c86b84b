/**
 * @module controller/dashboard.test
 * The web dashboard in Debian's chromium driven by playwright-core, against a real controller on
 * embedded SQLite: sign in with a token, the registry's "why" with provenance, approving as an
 * approver, the approve control absent for a viewer and the API refusing the viewer's forged request,
 * the audit chain shown verified; and the security cases: registry text holding `<script>` and
 * `onerror=` renders as text, a cross-site POST with the session cookie is refused, an expired
 * session is refused.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- API answers and page globals are untyped */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { needReference, freshDb, startTestController, type TestController } from './testutil.js';
import {
  cookieAndCsrf as sessionOverHttp,
  launchChromium,
  needChromium,
  signIn as signInAs,
} from './testing/dash-browser.js';

const skip = needReference() || needChromium();

const HOSTILE_REF = '<script>window.__xss = 1</script>';
const HOSTILE_AUTH = '<img src=x onerror="window.__xss = 2">Court';

describe('dashboard', { skip }, () => {
  let t: TestController;
  let browser: any;
  before(async () => {
    const { db, dataDir } = await freshDb('sqlite', null, 'dash');
    t = await startTestController(db, dataDir);
    const e = await t.api('ed', 'POST', '/v1/registry/entries', {
      kind: 'substring',
      value: 'reddit',
      action: 'throttle',
      rate: '1mbit',
      authority: HOSTILE_AUTH,
      reference: HOSTILE_REF,
      legal_basis: 'Art. 9 (test)',
      decided: '2026-03-01',
      requested_by: 'ministry',
    });
    assert.equal(e.status, 201, JSON.stringify(e.json));
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  const signIn = (user: string) => signInAs(browser, t, user);

  test('sign in, why reddit.com: the matching entry with provenance, hostile text inert', async () => {
    const { page, errors } = await signIn('vera');
    await page.getByRole('link', { name: 'Registry' }).click();
    await page.getByLabel('Why is this name treated so?').fill('www.reddit.com');
    await page.getByRole('button', { name: 'Explain' }).click();
    const why = page.getByTestId('why');
    await why.getByText('substring reddit').waitFor();
    // the provenance is shown as the literal text it is
    await why.getByRole('cell', { name: HOSTILE_REF, exact: true }).waitFor();
    await why.getByRole('cell', { name: HOSTILE_AUTH, exact: true }).waitFor();
    assert.equal(await page.evaluate(() => (globalThis as any).__xss), undefined, 'no script ran');
    assert.equal(
      await page.locator('#view img, #view script').count(),
      0,
      'no element made from registry text',
    );
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('approver approves a version; a viewer sees no control and the API refuses a forged request', async () => {
    const v = await t.api('ed', 'POST', '/v1/versions', { from_registry: true, note: 'dash test' });
    assert.equal(v.status, 201, JSON.stringify(v.json));
    const id = v.json.id;
    // the substring rule is a lint error: an admin records the override first (the 2021 story)
    const o = await t.api('root', 'POST', `/v1/versions/${id}/override`, { reason: 'court order' });
    assert.equal(o.status, 200, JSON.stringify(o.json));
    const viewer = await signIn('vera');
    await viewer.page.goto(`${t.run.url}/#versions?id=${id}`);
    await viewer.page.getByRole('heading', { name: `Version #${id}` }).waitFor();
    assert.equal(await viewer.page.getByRole('button', { name: 'Approve' }).count(), 0);
    const forged = await viewer.page.evaluate(async (vid: number) => {
      const s: any = await (await fetch('/ui/session')).json();
      const r = await fetch(`/v1/versions/${vid}/approve`, {
        method: 'POST',
        headers: { 'x-csrf-token': s.csrf },
      });
      return { status: r.status, body: await r.json() };
    }, id);
    assert.equal(forged.status, 403);
    assert.equal(forged.body.error.code, 'ERR_FORBIDDEN');
    await viewer.page.close();

    const { page } = await signIn('alice');
    await page.goto(`${t.run.url}/#versions?id=${id}`);
    await page.getByRole('button', { name: 'Approve' }).click();
    await page
      .locator('#status')
      .getByText(/^approve/)
      .waitFor();
    assert.equal(await page.locator('#status').textContent(), 'approve: done');
    await page.getByText(/^Approvals: alice at /).waitFor();
    const after = await t.api('vera', 'GET', `/v1/versions/${id}`);
    assert.deepEqual(
      after.json.approvals.map((a: any) => a.user),
      ['alice'],
    );
    await page.close();
  });

  test('audit log shows the chain verified', async () => {
    const { page } = await signIn('vera');
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page
      .getByTestId('chain')
      .getByText(/^Chain verified: \d+ rows/)
      .waitFor();
    await page.close();
  });

  test('probe results: an uploaded report shows readable rates and a chart even for a fast run', async () => {
    const { page, errors } = await signIn('vera');
    await page.getByRole('link', { name: 'Probe results' }).click();
    const dir = {
      bytes: 100_000,
      target: 100_000,
      duration_ms: 40,
      complete: true,
      goodput_bps: 0,
      rate_bps: 0,
    };
    const rep = {
      name: 'twitter.com',
      server: '127.0.0.1:9',
      started: '2026-12-02T14:00:00Z',
      duration_ms: 900,
      verdict: 'ok',
      reason: 'hand-made',
      cases: [
        {
          id: 'tls-sni',
          proto: 'tcp',
          sni: 'twitter.com',
          verdict: 'ok',
          reason: 'fast',
          down_bps: 20_000_000,
          up_bps: 1_333_333,
          // one sample: 100 000 bytes at 40 ms = 20 Mbit/s
          runs: [{ class: 'ok', down: { ...dir, timeline: [[40, 100_000]] }, up: null }],
        },
      ],
    };
    await page.getByLabel(/Probe JSON report/).setInputFiles({
      name: 'probe.json',
      mimeType: 'application/json',
      buffer: Buffer.from(JSON.stringify(rep)),
    });
    await page.getByRole('cell', { name: '20.0 Mbit/s' }).waitFor();
    await page.getByRole('cell', { name: '1.33 Mbit/s' }).waitFor();
    assert.equal(await page.locator('#view polyline').count(), 1, 'the fast run is drawn');
    assert.deepEqual(errors, []);
    await page.close();
  });

  async function cookieAndCsrf(user: string): Promise<{ cookie: string; csrf: string }> {
    const { cookie, csrf, setCookie } = await sessionOverHttp(t, user);
    assert.match(setCookie, /HttpOnly/i);
    assert.match(setCookie, /SameSite=Strict/i);
    assert.doesNotMatch(setCookie, /Secure/i, 'plain HTTP: no Secure flag (TLS sets it)');
    return { cookie, csrf };
  }

  test('a cross-site POST with the session cookie is refused; the same with the CSRF token passes', async () => {
    const { cookie, csrf } = await cookieAndCsrf('root');
    const post = (headers: Record<string, string>) =>
      fetch(t.run.url + '/v1/takedowns', {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ authority: 'x', reference: 'r', legal_basis: 'b', requested_by: 'p' }),
      });
    const before = (await t.api('root', 'GET', '/v1/takedowns')).json.takedowns.length;
    const noToken = await post({ origin: 'http://evil.example' });
    assert.equal(noToken.status, 403);
    assert.equal(((await noToken.json()) as any).error.code, 'ERR_CSRF');
    const wrongOrigin = await post({ origin: 'http://evil.example', 'x-csrf-token': csrf });
    assert.equal(wrongOrigin.status, 403);
    const noHeader = await post({});
    assert.equal(noHeader.status, 403);
    // an HTML form cannot sign anyone in: the session endpoint takes JSON only
    const form = await fetch(t.run.url + '/ui/session', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'token=' + encodeURIComponent(t.tokens.root),
    });
    assert.equal(form.status, 415);
    assert.equal(
      (await t.api('root', 'GET', '/v1/takedowns')).json.takedowns.length,
      before,
      'nothing created',
    );
    const ok = await post({ 'x-csrf-token': csrf, origin: t.run.url });
    assert.equal(ok.status, 201, await ok.text());
  });

  test('an expired session is refused, in the API and in the page', async () => {
    const { cookie, csrf } = await cookieAndCsrf('vera');
    const get = () => fetch(t.run.url + '/v1/versions', { headers: { cookie } });
    assert.equal((await get()).status, 200);
    await t.db.run('UPDATE sessions SET expires_at = $1', [Date.now() - 1]);
    assert.equal((await get()).status, 401);
    const del = await fetch(t.run.url + '/ui/session', { headers: { cookie, 'x-csrf-token': csrf } });
    assert.equal(del.status, 401);
    const page = await browser.newPage();
    await page.context().addCookies([
      {
        name: 'cp_session',
        value: cookie.split('=')[1],
        url: t.run.url,
        httpOnly: true,
        sameSite: 'Strict',
      },
    ]);
    await page.goto(t.run.url + '/');
    await page.getByLabel('API token').waitFor();
    await page.close();
  });
});
