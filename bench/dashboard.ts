/**
 * @module bench/dashboard
 * `npm run bench:dashboard`: the dashboard's registry page at 10^6 entries on embedded SQLite, in
 * process (the same hono app over a real socket): list the first page, page deep (after = 900 000),
 * search a value substring that is frequent and one that matches nothing (the full scan), and
 * "why" for a name. Each figure is the median of 20 requests, printed with its ratio to the 200 ms
 * target and to GET /v1/health measured in the same run (the anchor; the machine is shared).
 * Options: --entries N.
 */
import { parseArgs } from 'node:util';
import { freshDb, startTestController } from '../src/controller/testutil.js';

const { values } = parseArgs({ options: { entries: { type: 'string', default: '1000000' } } });
const N = Number(values.entries);

const { db, dataDir } = await freshDb('sqlite', null, 'bench-dash');
const t = await startTestController(db, dataDir);
const t0 = Date.now();
const now = Date.now();
await db.run(
  `INSERT INTO entries (kind, value, action, status, source, created_at, updated_at, created_rev, updated_rev, authority, reference, legal_basis, decided, requested_by)
   WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
   SELECT CASE WHEN i % 10 = 0 THEN 'subdomains' ELSE 'exact' END, 'site' || i || CASE WHEN i % 7 = 0 THEN '.shop.example' ELSE '.example' END,
     'block', 'active', 'bench', $2, $2, 1, 1, 'Court', 'Case ' || i, 'Art. 1', '2026-01-01', 'bench' FROM n`,
  [N, now],
);
console.log(`inserted ${N} entries in ${Date.now() - t0} ms`);

async function median(path: string): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < 20; i++) {
    const a = performance.now();
    const r = await t.api('vera', 'GET', path);
    if (r.status !== 200) throw new Error(`${path}: ${r.status} ${JSON.stringify(r.json)}`);
    ms.push(performance.now() - a);
  }
  ms.sort((x, y) => x - y);
  return ms[10];
}
const anchor = await median('/v1/health');
const cases: [string, string][] = [
  ['list, first page (50)', '/v1/registry/entries?limit=50'],
  ['list, page after 900 000', '/v1/registry/entries?limit=50&after=900000'],
  ['search "shop" (frequent)', '/v1/registry/entries?limit=50&q=shop'],
  ['search "nomatch" (no hit: full scan)', '/v1/registry/entries?limit=50&q=nomatch'],
  ['search "site12345" + kind', '/v1/registry/entries?limit=50&q=site12345&kind=exact'],
];
console.log(`anchor GET /v1/health: ${anchor.toFixed(2)} ms (median of 20)`);
console.log('| request | median ms | / 200 ms target | / anchor |');
console.log('|---|---|---|---|');
for (const [label, path] of cases) {
  const m = await median(path);
  console.log(`| ${label} | ${m.toFixed(1)} | ${(m / 200).toFixed(2)} | ${(m / anchor).toFixed(0)} |`);
}
await t.close();
