/**
 * @module controller/dashboard-controls.test
 * The Rollouts page's controls in Debian's chromium (playwright-core) against a real controller on
 * embedded SQLite, its real orchestrator and two simulated boxes (`testing/sim-box`): pause holds the
 * stage (checked through the API after the bake would have ended) and resume carries it to success;
 * abort ends it `aborted` and the canary is handed the old content back; rollback records the reason
 * typed on the page; the emergency stop asks for a confirmation (Cancel sends nothing) and then
 * publishes allow-all to every box and ends the running rollout. A viewer sees none of these controls,
 * and a viewer's forged POST with the session cookie and CSRF token is refused (403), as is an
 * approver's cookie POST without, or with a wrong, CSRF token or from another origin.
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
import { verifyBundle, type Envelope } from './bundles.js';
import { block, startCanaryAndMain, type SimBox } from './testing/sim-box.js';

const skip = needReference() || needChromium();

const plan = (canaryBake: number, allBake = 2) => `stages:
  - name: canary
    select: {labels: {tier: canary}}
    bake_s: ${canaryBake}
    analysis: {interval_s: 0.5, threshold: 2}
  - name: all
    select: all
    bake_s: ${allBake}
    analysis: {interval_s: 0.5, threshold: 2}
`;
const CONTROLS = ['pause', 'resume', 'abort', 'rollback'];

/** Poll `probe` until it holds, at most `ms`; returns its last value. */
async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, ms: number): Promise<T> {
  const end = Date.now() + ms;
  let v = await probe();
  while (!ok(v) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    v = await probe();
  }
  return v;
}

describe('dashboard: rollout controls and the emergency stop, by role', { skip }, () => {
  let t: TestController;
  let browser: any;
  const boxes: SimBox[] = [];
  const nodeTokens: Record<string, string> = {};
  const model = { tco: new Set<number>(), blocked: new Map<number, string[]>() };
  let v1 = 0;
  let seq = 0;
  before(async () => {
    const { db, dataDir } = await freshDb('sqlite', null, 'dashctl');
    t = await startTestController(db, dataDir);
    browser = await launchChromium();
    v1 = await version(['bad.example']);
    assert.equal((await t.api('alice', 'POST', `/v1/versions/${v1}/publish`)).json.status, 'active');
    for (const { box, token } of await startCanaryAndMain(t, model)) {
      boxes.push(box);
      nodeTokens[box.name] = token;
    }
    for (const b of boxes) await onPolicy(b, v1);
  });
  after(async () => {
    for (const b of boxes) b.stop();
    await browser?.close();
    await t?.close();
  });

  /** An approved version blocking `names` (plus one name of its own, so each version differs). */
  async function version(names: string[]): Promise<number> {
    const all = [...names, `only${++seq}.example`];
    const v = await t.api('ed', 'POST', '/v1/versions', { policy: block(all), filename: 'p.yaml' });
    assert.equal(v.status, 201, JSON.stringify(v.json));
    assert.equal((await t.api('alice', 'POST', `/v1/versions/${v.json.id}/approve`)).status, 200);
    const a = await t.api('bob', 'POST', `/v1/versions/${v.json.id}/approve`);
    assert.equal(a.json.status, 'approved', JSON.stringify(a.json));
    model.blocked.set(Number(v.json.id), all);
    return Number(v.json.id);
  }
  async function onPolicy(b: SimBox, v: number): Promise<void> {
    await until(
      async () => b.policy,
      (p) => p === v,
      20_000,
    );
    assert.equal(b.policy, v, `${b.name} runs policy version ${v}`);
  }
  async function startRollout(v: number, text: string): Promise<number> {
    const r = await t.api('alice', 'POST', '/v1/rollouts', { version_id: v, plan: text });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    return Number(r.json.id);
  }
  const rollout = async (id: number) => (await t.api('vera', 'GET', `/v1/rollouts/${id}`)).json;
  /** The bundle a box is given now, verified with the root key. */
  async function bundleOf(box: string) {
    const b = await t.api(nodeTokens[box], 'GET', '/v1/bundle');
    assert.equal(b.status, 200);
    return verifyBundle(b.json as Envelope, t.rootPublicPem);
  }
  const signIn = (user: string) => signInAs(browser, t, user);
  const button = (page: any, name: string) => page.getByRole('button', { name, exact: true });

  test('pause holds the stage past its bake; resume carries the rollout to success', async () => {
    const v = await version(['bad.example']);
    const id = await startRollout(v, plan(4));
    const { page, errors } = await signIn('alice');
    await page.goto(`${t.run.url}/#rollouts?id=${id}`);
    await page.getByRole('heading', { name: `Rollout #${id}: running` }).waitFor();
    assert.equal(await button(page, 'resume').count(), 0, 'nothing to resume while running');
    await button(page, 'pause').click();
    await page.getByRole('heading', { name: `Rollout #${id}: paused` }).waitFor();
    await page.locator('#status').getByText('pause: done').waitFor();
    const p = await rollout(id);
    assert.equal(p.state, 'paused');
    const stage = Number(p.stage);
    const st = p.stages[stage];
    // past the stage's bake (plus two orchestrator ticks), with fresh reports from both boxes
    const bakeEnd = Number(st.started ?? Date.now()) + st.bake_s * 1000 + 2000;
    const seen = boxes.map((b) => b.reports);
    await until(
      async () => Date.now() > bakeEnd && boxes.every((b, i) => b.reports >= seen[i] + 5),
      (x) => x,
      30_000,
    );
    assert.ok(Date.now() > bakeEnd, 'waited past the bake');
    const held = await rollout(id);
    assert.equal(held.state, 'paused');
    assert.equal(held.stage, stage, 'a paused rollout does not advance');
    assert.equal(held.stages[stage].state, p.stages[stage].state);
    assert.equal((await t.api('vera', 'GET', `/v1/versions/${v}`)).json.status, 'approved');
    // the page offers resume, not pause
    await page.reload();
    await page.getByRole('heading', { name: `Rollout #${id}: paused` }).waitFor();
    assert.equal(await button(page, 'pause').count(), 0);
    await button(page, 'resume').click();
    await page.getByRole('heading', { name: `Rollout #${id}: succeeded` }).waitFor({ timeout: 40_000 });
    const done = await rollout(id);
    assert.equal(done.state, 'succeeded');
    assert.equal((await t.api('vera', 'GET', `/v1/versions/${v}`)).json.status, 'active');
    for (const verb of CONTROLS) assert.equal(await button(page, verb).count(), 0, verb);
    const audit = (await t.api('vera', 'GET', `/v1/audit?target=rollout:${id}`)).json.rows;
    assert.deepEqual(
      audit.filter((r: any) => /pause|resume/.test(r.action)).map((r: any) => [r.action, r.actor]),
      [
        ['rollout.pause', 'alice'],
        ['rollout.resume', 'alice'],
      ],
    );
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('abort ends the rollout and the canary gets the old content back', async () => {
    const prev = Number(
      (await t.api('vera', 'GET', '/v1/versions')).json.versions.find((x: any) => x.status === 'active').id,
    );
    const v = await version(['bad.example', 'abort.example']);
    const id = await startRollout(v, plan(60));
    await onPolicy(boxes[0], v);
    assert.equal((await bundleOf('box-a')).policy_version, v, 'the canary was given the version');
    const { page, errors } = await signIn('alice');
    await page.goto(`${t.run.url}/#rollouts?id=${id}`);
    await page.getByRole('heading', { name: `Rollout #${id}: running` }).waitFor();
    await button(page, 'abort').click();
    await page.getByRole('heading', { name: `Rollout #${id}: aborted` }).waitFor();
    const r = await rollout(id);
    assert.equal(r.state, 'aborted');
    assert.equal(r.reason, 'abort by alice');
    const m = await bundleOf('box-a');
    assert.equal(m.kind, 'rollback');
    assert.equal(m.policy_version, prev, 'the canary is given the previous content');
    await onPolicy(boxes[0], prev);
    assert.equal(
      (await t.api('vera', 'GET', `/v1/versions/${v}`)).json.status,
      'approved',
      'abort is no verdict',
    );
    for (const verb of CONTROLS) assert.equal(await button(page, verb).count(), 0, verb);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('rollback from the page records the reason typed there', async () => {
    const prev = Number(
      (await t.api('vera', 'GET', '/v1/versions')).json.versions.find((x: any) => x.status === 'active').id,
    );
    const v = await version(['bad.example', 'rollback.example']);
    const id = await startRollout(v, plan(60));
    await onPolicy(boxes[0], v);
    const { page, errors } = await signIn('alice');
    await page.goto(`${t.run.url}/#rollouts?id=${id}`);
    await page.getByRole('heading', { name: `Rollout #${id}: running` }).waitFor();
    const why = 'support calls from the canary site';
    await page.getByLabel('Reason (abort / rollback)').fill(why);
    await button(page, 'rollback').click();
    await page.getByRole('heading', { name: `Rollout #${id}: rolled_back` }).waitFor();
    const r = await rollout(id);
    assert.equal(r.state, 'rolled_back');
    assert.equal(r.reason, `rollback by alice: ${why}`);
    assert.equal(await page.getByTestId('rollout-reason').innerText(), `Reason: rollback by alice: ${why}`);
    assert.equal((await t.api('vera', 'GET', `/v1/versions/${v}`)).json.status, 'failed');
    assert.equal((await bundleOf('box-a')).policy_version, prev);
    const audit = (await t.api('vera', 'GET', `/v1/audit?target=rollout:${id}`)).json.rows;
    const row = audit.find((x: any) => x.action === 'rollout.rollback');
    assert.ok(row, 'audited');
    assert.match(JSON.stringify(row.after), /support calls from the canary site/);
    // the API checks the reason too
    const bad = await t.api('alice', 'POST', `/v1/rollouts/${id}/rollback`, { reason: 7 });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.field, 'reason');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('a viewer sees no control, and forged or cross-site POSTs are refused', async () => {
    const active = Number(
      (await t.api('vera', 'GET', '/v1/versions')).json.versions.find((x: any) => x.status === 'active').id,
    );
    const v = await version(['bad.example', 'viewer.example']);
    const id = await startRollout(v, plan(60));
    const { page, errors } = await signIn('vera');
    await page.goto(`${t.run.url}/#rollouts?id=${id}`);
    await page.getByRole('heading', { name: `Rollout #${id}: running` }).waitFor();
    await page.getByRole('table', { name: 'Stages' }).waitFor();
    for (const verb of [...CONTROLS, 'Emergency stop', 'Confirm emergency stop'])
      assert.equal(await button(page, verb).count(), 0, verb);
    assert.equal(await page.getByRole('group', { name: 'Rollout controls' }).count(), 0);
    assert.equal(await page.getByRole('form', { name: 'Emergency stop' }).count(), 0);
    // the viewer's own session, with its CSRF token: the role check refuses
    const forged = await page.evaluate(async (rid: number) => {
      const s: any = await (await fetch('/ui/session')).json();
      const out: Record<string, [number, string]> = {};
      for (const [path, body] of [
        [`/v1/rollouts/${rid}/pause`, undefined],
        [`/v1/rollouts/${rid}/rollback`, '{"reason":"forged"}'],
        ['/v1/emergency-stop', '{"reason":"forged"}'],
      ] as const) {
        const r = await fetch(path, {
          method: 'POST',
          headers: { 'x-csrf-token': s.csrf, ...(body ? { 'content-type': 'application/json' } : {}) },
          body,
        });
        out[path] = [r.status, ((await r.json()) as any).error?.code];
      }
      return out;
    }, id);
    for (const [path, [status, code]] of Object.entries(forged as Record<string, [number, string]>)) {
      assert.equal(status, 403, path);
      assert.equal(code, 'ERR_FORBIDDEN', path);
    }
    assert.deepEqual(errors, []);
    await page.close();

    // an approver's cookie sent cross-site: no token, a wrong token, a foreign origin
    const { cookie, csrf } = await sessionOverHttp(t, 'alice');
    const post = (path: string, headers: Record<string, string>) =>
      fetch(t.run.url + path, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ reason: 'cross-site' }),
      });
    for (const path of [`/v1/rollouts/${id}/pause`, `/v1/rollouts/${id}/abort`, '/v1/emergency-stop'])
      for (const headers of [
        {} as Record<string, string>,
        { 'x-csrf-token': 'not-the-token' },
        { 'x-csrf-token': csrf, origin: 'http://evil.example' },
      ]) {
        const r = await post(path, headers);
        assert.equal(r.status, 403, `${path} ${JSON.stringify(headers)}`);
        assert.equal(((await r.json()) as any).error.code, 'ERR_CSRF');
      }
    const still = await rollout(id);
    assert.equal(still.state, 'running', 'nothing was applied');
    const now = (await t.api('vera', 'GET', '/v1/versions')).json.versions.find(
      (x: any) => x.status === 'active',
    );
    assert.equal(Number(now.id), active, 'no emergency version');
    // the same request with the session's token from this origin passes: the refusals were the CSRF check
    const ok = await post(`/v1/rollouts/${id}/pause`, { 'x-csrf-token': csrf, origin: t.run.url });
    assert.equal(ok.status, 200, await ok.text());
    assert.equal((await rollout(id)).state, 'paused');
    assert.equal((await t.api('alice', 'POST', `/v1/rollouts/${id}/resume`)).json.state, 'running');
  });

  test('emergency stop: a confirmation step, then allow-all on every box and the rollout ended', async () => {
    const running = (await t.api('vera', 'GET', '/v1/rollouts')).json.rollouts.find(
      (r: any) => r.state === 'running',
    );
    assert.ok(running, 'the previous test left a rollout running');
    const before = (await t.api('vera', 'GET', '/v1/versions')).json.versions.find(
      (x: any) => x.status === 'active',
    );
    const { page, errors } = await signIn('alice');
    await page.getByRole('link', { name: 'Rollouts' }).click();
    const why = 'customer outage, suspect the policy';
    await page.getByLabel('Reason for the emergency stop').fill(why);
    await button(page, 'Emergency stop').click();
    const dialog = page.getByRole('alertdialog', { name: 'Confirm emergency stop' });
    await dialog.waitFor();
    assert.match(await dialog.innerText(), /allow-all policy to every box/);
    // the confirmation takes the focus; Escape and Cancel close it and send nothing
    assert.equal(
      await page.evaluate(() => (globalThis as any).document.activeElement?.textContent),
      'Confirm emergency stop',
    );
    await page.keyboard.press('Escape');
    await page.locator('#status').getByText('emergency stop cancelled').waitFor();
    assert.equal(await dialog.isVisible(), false);
    assert.equal(
      await page.evaluate(() => (globalThis as any).document.activeElement?.textContent),
      'Emergency stop',
    );
    await page.locator('#status').evaluate((el: any) => (el.textContent = ''));
    await button(page, 'Emergency stop').click();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await page.locator('#status').getByText('emergency stop cancelled').waitFor();
    assert.equal(await dialog.isVisible(), false);
    assert.equal((await rollout(running.id)).state, 'running');
    const same = (await t.api('vera', 'GET', '/v1/versions')).json.versions.find(
      (x: any) => x.status === 'active',
    );
    assert.equal(same.id, before.id, 'cancelled: no emergency version');
    // now for real
    await button(page, 'Emergency stop').click();
    await dialog.getByRole('button', { name: 'Confirm emergency stop' }).click();
    await page.locator('#status').getByText('emergency stop: done').waitFor();
    const vs = (await t.api('vera', 'GET', '/v1/versions')).json.versions;
    const active = vs.find((x: any) => x.status === 'active');
    assert.equal(active.origin, 'emergency');
    assert.equal(active.author, 'alice');
    assert.equal(active.note, `emergency stop: ${why}`);
    assert.equal(vs.find((x: any) => x.id === before.id).status, 'superseded');
    const r = await rollout(running.id);
    assert.equal(r.state, 'aborted');
    assert.equal(r.reason, `emergency stop: ${why}`);
    for (const b of ['box-a', 'box-b']) {
      const m = await bundleOf(b);
      assert.equal(m.kind, 'emergency', b);
      assert.equal(m.policy_version, Number(active.id), b);
    }
    for (const b of boxes) await onPolicy(b, Number(active.id));
    const audit = (await t.api('vera', 'GET', `/v1/audit?target=version:${active.id}`)).json.rows;
    assert.deepEqual(
      audit.map((x: any) => [x.action, x.actor]),
      [['fleet.emergency_stop', 'alice']],
    );
    assert.deepEqual(errors, []);
    await page.close();
  });
  test('overview charts: named by a summary of their values, with a data table', async () => {
    // stop the boxes so the counters hold still, then compare the page with the API's own numbers
    for (const b of boxes) await b.halt();
    const nodes = (await t.api('vera', 'GET', '/v1/nodes')).json.nodes;
    const sum: Record<string, number> = { allow: 0, log: 0, block: 0, throttle: 0 };
    for (const n of nodes)
      for (const k of Object.keys(sum))
        sum[k] += n.traffic?.by_action?.[k] ?? n.counters?.traffic?.by_action?.[k] ?? 0;
    assert.ok(sum.allow > 0, JSON.stringify(sum));
    const { page, errors } = await signIn('vera');
    const fig = page.getByRole('img', { name: /^Flows by action/ });
    await fig.waitFor();
    const name = (await fig.getAttribute('aria-label')) as string;
    for (const [k, v] of Object.entries(sum))
      assert.ok(name.includes(`${k} ${v.toLocaleString('en')} flows`), `${k} in ${name}`);
    const data = page.getByText(/^Data: Flows by action/);
    await data.click();
    const tbl = page.getByRole('table', { name: /^Flows by action/ });
    for (const [k, v] of Object.entries(sum))
      assert.equal(
        await tbl
          .getByRole('row')
          .filter({ hasText: new RegExp('^' + k) })
          .getByRole('cell')
          .nth(1)
          .innerText(),
        `${v.toLocaleString('en')} flows`,
        k,
      );
    // verdicts over time: sampled by the page; its table lists the samples' times
    await page.getByText(/^Data: Verdicts over time/).click();
    const vt = page.getByRole('table', { name: /^Verdicts over time/ });
    assert.ok((await vt.getByRole('row').count()) >= 2, 'a header and at least one sample');
    assert.match(await vt.getByRole('row').nth(1).innerText(), /UTC/);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
