/**
 * @module bench/screenshots
 * `npm run screenshots`: regenerates docs/dashboard-<page>.png — every dashboard page in Debian's
 * chromium (playwright-core, no browser download) against a throw-away controller on embedded
 * SQLite with a few registry entries, a version with lint findings, and two boxes that reported.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { freshDb, startTestController } from '../src/controller/testutil.js';

const ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../' : '../', import.meta.url));
const out = process.argv[2] ?? join(ROOT, 'docs');
mkdirSync(out, { recursive: true });

const { db, dataDir } = await freshDb('sqlite', null, 'shots');
const t = await startTestController(db, dataDir);
const prov = {
  authority: 'Roskomnadzor',
  legal_basis: 'Art. 15.3',
  decided: '2021-03-10',
  requested_by: 'prosecutor',
};
await t.api('ed', 'POST', '/v1/registry/entries', {
  kind: 'subdomains',
  value: 'twitter.com',
  action: 'throttle',
  rate: '128kbit',
  reference: 'Order 2021-03',
  ...prov,
});
await t.api('ed', 'POST', '/v1/registry/entries', {
  kind: 'substring',
  value: 't.co',
  action: 'throttle',
  rate: '128kbit',
  reference: 'Order 2021-03 (as written)',
  ...prov,
});
await t.api('ed', 'POST', '/v1/registry/entries', {
  kind: 'exact',
  value: 'casino.example',
  action: 'block',
  reference: 'Case 12/2026',
  ...prov,
});
const v1 = await t.api('ed', 'POST', '/v1/versions', { from_registry: true, note: 'March 2021 order' });
await t.api('root', 'POST', `/v1/versions/${v1.json.id}/override`, {
  reason: 'the order names *t.co* as written',
});
await t.api('alice', 'POST', `/v1/versions/${v1.json.id}/approve`);
await t.api('bob', 'POST', `/v1/versions/${v1.json.id}/approve`);
await t.api('alice', 'POST', `/v1/versions/${v1.json.id}/publish`);
await t.api('root', 'POST', '/v1/takedowns', {
  authority: 'Court',
  reference: 'Case 7/2026',
  legal_basis: 'Art. 1',
  requested_by: 'prosecutor',
});
const b = await t.api('box1', 'GET', '/v1/bundle');
const bundle = b.json?.version ?? b.json?.manifest?.version ?? null;
for (const [node, v] of [
  ['box-msk-1', bundle],
  ['box-spb-1', bundle ? bundle - 1 : null],
] as const)
  await t.api('box1', 'POST', '/v1/status', {
    node,
    labels: { region: node.split('-')[1] },
    active_version: v,
    errors: [],
  });

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(t.run.url + '/');
  await page.getByLabel('API token').fill(t.tokens.alice);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Signed in as alice').waitFor();
  const shots: [string, string][] = [
    ['overview', '#overview'],
    ['registry', '#registry?why=mt.co'],
    ['versions', `#versions?id=${v1.json.id}`],
    ['rollouts', '#rollouts'],
    ['nodes', '#nodes'],
    ['audit', '#audit'],
    ['takedowns', '#takedowns'],
    ['probe', '#probe'],
  ];
  for (const [name, hash] of shots) {
    await page.goto(t.run.url + '/' + hash);
    await page.locator('#view h2').first().waitFor();
    await page.screenshot({ path: join(out, `dashboard-${name}.png`), fullPage: true });
    console.log(`wrote ${join(out, `dashboard-${name}.png`)}`);
  }
} finally {
  await browser.close();
  await t.close();
}
