/**
 * @module controller/dashboard-rollouts.test
 * The dashboard's Rollouts and Overview pages in Debian's chromium (playwright-core) against a real
 * controller on embedded SQLite and its real rollout orchestrator. Two simulated boxes
 * (controller/testing/sim-box: node tokens, `GET /v1/bundle` verified, status reports with `traffic`
 * counters POSTed over HTTP, counters from the boxes' own model of the test policies) follow it. An approver starts a rollout from the Versions
 * page with a short plan and watches its stages advance to success; an overridden `*t.co*` throttle
 * is rolled back by the canary analysis and the page shows the reason and the failing metric; the
 * Overview shows the boxes' flows by action and the top pattern matches from their reports.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- API answers and page globals are untyped */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  needReference,
  approvedVersion,
  freshDb,
  startTestController,
  type TestController,
} from './testutil.js';
import { launchChromium, needChromium, signIn as signInAs } from './testing/dash-browser.js';
import { allOn, block, startCanaryAndMain, TCO, type SimBox } from './testing/sim-box.js';

const skip = needReference() || needChromium();

/** canary bakes 2 s, "all" 7 s: longer than the page's 5 s live refresh, so the page shows it running. */
const PLAN_YAML = `stages:
  - name: canary
    select: {labels: {tier: canary}}
    bake_s: 2
    analysis: {interval_s: 0.5, threshold: 2}
  - name: all
    select: all
    bake_s: 7
    analysis: {interval_s: 0.5, threshold: 2}
`;

describe('dashboard: rollouts and overview against the real orchestrator', { skip }, () => {
  let t: TestController;
  let browser: any;
  const boxes: SimBox[] = [];
  const model = { tco: new Set<number>(), blocked: new Map<number, string[]>() };
  before(async () => {
    const { db, dataDir } = await freshDb('sqlite', null, 'dashro');
    t = await startTestController(db, dataDir);
    browser = await launchChromium();
  });
  after(async () => {
    for (const b of boxes) b.stop();
    await browser?.close();
    await t?.close();
  });

  const version = (text: string, override?: string) => approvedVersion(t, text, override);
  const signIn = (user: string) => signInAs(browser, t, user);
  /** Start a rollout of version `id` from its Versions page; returns the rollout id from the URL. */
  async function startFromPage(page: any, id: number, plan: string): Promise<number> {
    await page.goto(`${t.run.url}/#versions?id=${id}`);
    await page.getByLabel('Rollout plan (YAML or JSON, optional)').fill(plan);
    await page.getByRole('button', { name: 'Start rollout' }).click();
    await page.waitForURL(/#rollouts\?id=\d+$/);
    return Number(/id=(\d+)$/.exec(page.url())![1]);
  }
  const stageRow = (page: any, name: string) =>
    page
      .getByRole('table', { name: 'Stages' })
      .getByRole('row')
      .filter({ hasText: new RegExp('^' + name) });

  test('start a rollout from the Versions page and watch its stages advance', async () => {
    const v1 = await version(block(['bad.example']));
    model.blocked.set(v1, ['bad.example']);
    assert.equal((await t.api('alice', 'POST', `/v1/versions/${v1}/publish`)).json.status, 'active');
    for (const { box } of await startCanaryAndMain(t, model)) boxes.push(box);
    await allOn(boxes, v1);
    // a name the boxes never see: the blocked share does not move, every metric passes
    const v2 = await version(block(['bad.example', 'gone.example']));
    model.blocked.set(v2, ['bad.example', 'gone.example']);

    const { page, errors } = await signIn('alice');
    // a malformed plan is refused with the field named, nothing started
    await page.goto(`${t.run.url}/#versions?id=${v2}`);
    await page
      .getByLabel('Rollout plan (YAML or JSON, optional)')
      .fill('stages:\n  - name: x\n    select: all\n');
    await page.getByRole('button', { name: 'Start rollout' }).click();
    await page
      .locator('#status')
      .getByText(/bake_s/)
      .waitFor();
    assert.equal((await t.api('vera', 'GET', '/v1/rollouts')).json.rollouts.length, 0);

    const id = await startFromPage(page, v2, PLAN_YAML);
    await page.getByRole('heading', { name: `Rollout #${id}: running` }).waitFor();
    await stageRow(page, 'canary').getByText('box-a').waitFor();
    // the live refresh shows the canary passed while the last stage runs on both boxes
    await stageRow(page, 'all').getByText('running').waitFor({ timeout: 20_000 });
    assert.match(await stageRow(page, 'canary').innerText(), /passed/);
    assert.match(await stageRow(page, 'all').innerText(), /box-a, box-b/);
    await page.getByRole('heading', { name: `Rollout #${id}: succeeded` }).waitFor({ timeout: 30_000 });
    assert.match(await stageRow(page, 'all').innerText(), /passed/);
    // a finished rollout offers no control the API would refuse (rollback is for running/paused)
    for (const verb of ['pause', 'resume', 'abort', 'rollback'])
      assert.equal(await page.getByRole('button', { name: verb, exact: true }).count(), 0, verb);
    const late = await t.api('alice', 'POST', `/v1/rollouts/${id}/rollback`, { reason: 'x' });
    assert.equal(late.status, 409);
    // the analysis is charted per metric against its threshold, and listed
    await page.getByRole('img', { name: /^Metric pattern_flows against its threshold/ }).waitFor();
    const rows = page.getByRole('table', { name: 'Analysis samples' }).getByRole('row');
    assert.ok((await rows.count()) > 5);
    // ground truth from the API, not from the page: the fleet version moved
    assert.equal((await t.api('vera', 'GET', `/v1/versions/${v2}`)).json.status, 'active');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('overview shows the boxes’ flows by action and top pattern matches from their reports', async () => {
    const tco = await version(TCO, 'lab emulation of the 2021 rule');
    model.tco.add(tco);
    // put the boxes on the *t.co* version directly so their reports carry pattern counters
    assert.equal((await t.api('alice', 'POST', `/v1/versions/${tco}/publish`)).json.status, 'active');
    await allOn(boxes, tco);
    const { page, errors } = await signIn('vera');
    const fig = page.getByRole('img', { name: /^Flows by action/ });
    await fig.waitFor();
    // every box throttles 2 of its 5 names per report and allows none of them blocked: check shares
    const nodes = (await t.api('vera', 'GET', '/v1/nodes')).json.nodes;
    assert.equal(nodes.length, 2);
    const label = await fig.getAttribute('aria-label');
    const total = Number(/\(([\d,]+) flows/.exec(label)![1].replace(/,/g, ''));
    assert.ok(total >= 10, label);
    const top = page.getByRole('table', { name: 'Top pattern matches' });
    await top.getByRole('row').filter({ hasText: 'reddit.com' }).filter({ hasText: 'tco' }).waitFor();
    await top.getByRole('row').filter({ hasText: 'www.microsoft.com' }).waitFor();
    assert.equal(await top.getByRole('row').filter({ hasText: 'example.org' }).count(), 0);
    assert.deepEqual(errors, []);
    await page.close();
    // back to a safe version for the next test
    const safe = await version(block(['bad.example']));
    model.blocked.set(safe, ['bad.example']);
    assert.equal((await t.api('alice', 'POST', `/v1/versions/${safe}/publish`)).json.status, 'active');
    await allOn(boxes, safe);
  });

  test('an overridden *t.co* rollout is rolled back and the page shows why', async () => {
    const tco = await version(TCO, 'lab emulation of the 2021 rule, again');
    model.tco.add(tco);
    const { page, errors } = await signIn('alice');
    const id = await startFromPage(page, tco, PLAN_YAML.replace('bake_s: 2', 'bake_s: 30'));
    await page.getByRole('heading', { name: `Rollout #${id}: rolled_back` }).waitFor({ timeout: 30_000 });
    const reason = await page.getByTestId('rollout-reason').innerText();
    const api = (await t.api('vera', 'GET', `/v1/rollouts/${id}`)).json;
    assert.equal(api.state, 'rolled_back');
    assert.equal(reason, 'Reason: ' + api.reason);
    // the collateral shows as more throttled flows through the pattern (and a larger blocked share)
    const m = /analysis failed at stage canary: (pattern_flows|blocked_share) on box-a/.exec(reason);
    assert.ok(m, reason);
    const failing = page
      .getByRole('table', { name: 'Analysis samples' })
      .getByRole('row')
      .filter({ hasText: m[1] })
      .filter({ hasText: 'FAIL' });
    assert.ok((await failing.count()) >= 2);
    const pf = api.samples.filter((x: any) => x.metric === 'pattern_flows' && !x.pass);
    assert.ok(pf.length >= 1, 'the substring rule throttled names the baseline never did');
    const row = page
      .getByRole('table', { name: 'Analysis samples' })
      .getByRole('row')
      .filter({ hasText: 'pattern_flows' })
      .filter({ hasText: 'FAIL' });
    assert.match(await row.first().innerText(), /reddit\.com/);
    await page.getByRole('img', { name: new RegExp('^Metric ' + m[1] + ' against its threshold') }).waitFor();
    // no control to pause or roll back a finished rollout
    assert.equal(await page.getByRole('button', { name: 'pause' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'rollback' }).count(), 0);
    assert.equal(await stageRow(page, 'all').getByText('pending').count(), 1);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
