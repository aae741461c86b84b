/**
 * @module bench/fleet
 * `npm run bench:fleet`: a fleet of replay boxes (`chokepoint enforce --replay`, one process per box,
 * no root) against the controller:
 * - one controller (SQLite): publish → 99 % of the boxes applied (target ≤ 5 s), the controller's
 *   CPU and RSS while the fleet runs, the status-report rate it serves, RSS per box;
 * - the same with two controller replicas over one PostgreSQL (started here as the tests do), half of
 *   the boxes on each;
 * - bytes per box per update, full bundle vs delta, for 10^3 changed entries in a 10^6-entry list,
 *   measured on the list-file bytes with bundle/delta directly (the list file the controller writes
 *   is the sorted entry list; building it through a 10^6 registry import takes minutes, see
 *   bench:controller), extrapolated to 10^4 boxes and one update every 30 min.
 * The controller runs in this process (in-process, as the fleet test rig), so its CPU/RSS figures
 * include the bench's own small polling. Options: --boxes N --rate PPS --entries N --changes N
 * --only sqlite|postgres --no-write. Replaces the `## Fleet` section of BENCHMARKS.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createToken } from '../src/controller/auth.js';
import { DEFAULT_CONFIG } from '../src/controller/context.js';
import { openDb, type Db } from '../src/controller/db.js';
import { startController, type RunningController } from '../src/controller/server.js';
import {
  pgUnavailable,
  startPostgres,
  startTestController,
  type PgServer,
} from '../src/controller/testutil.js';
import { reference } from '../src/controller/testutil.js';
import { PcapWriter } from '../src/gen/pcap-writer.js';
import { generate } from '../src/gen/synth.js';
import { canonicalList, makeDelta } from '../src/bundle/delta.js';
import { mkdtemp } from 'node:fs/promises';

const { values } = parseArgs({
  options: {
    boxes: { type: 'string', default: '100' },
    rate: { type: 'string', default: '50' },
    entries: { type: 'string', default: '1000000' },
    changes: { type: 'string', default: '1000' },
    only: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
  },
});
const BOXES = Number(values.boxes);
const RATE = Number(values.rate);
const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const STATUS_EVERY_S = 10;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (m: string) => process.stderr.write(`bench:fleet: ${m}\n`);

interface Api {
  (user: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

function apiOf(url: string, tokens: Record<string, string>): Api {
  return async (user, method, path, body) => {
    const h: Record<string, string> = { authorization: `Bearer ${tokens[user]}` };
    if (body !== undefined) h['content-type'] = 'application/json';
    const r = await fetch(url + path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const t = await r.text();
    return { status: r.status, json: t ? JSON.parse(t) : null };
  };
}

let caseNo = 0;
/** Registry entry → version → two approvals → publish (as the fleet rig). */
async function publish(api: Api, name: string): Promise<void> {
  const e = await api('ed', 'POST', '/v1/registry/entries', {
    kind: 'suffix',
    value: name,
    action: 'block',
    authority: 'Bench court',
    reference: `case ${++caseNo}`,
  });
  if (e.status !== 201) throw new Error(`registry add: ${JSON.stringify(e.json)}`);
  const v = await api('ed', 'POST', '/v1/versions', { from_registry: true, note: `block ${name}` });
  if (v.status !== 201) throw new Error(`version: ${JSON.stringify(v.json)}`);
  for (const who of ['alice', 'bob']) await api(who, 'POST', `/v1/versions/${v.json.id}/approve`);
  const p = await api('alice', 'POST', `/v1/versions/${v.json.id}/publish`);
  if (p.status !== 200) throw new Error(`publish: ${JSON.stringify(p.json)}`);
}

async function nodesOn(api: Api, bundle: number): Promise<number> {
  const r = await api('root', 'GET', '/v1/nodes');
  return (r.json.nodes as { name: string; active_version: number | null }[]).filter(
    (n) => n.name.startsWith('rb') && (n.active_version ?? 0) >= bundle,
  ).length;
}

async function latestBundle(db: Db): Promise<number> {
  const b = await db.get<{ n: number }>('SELECT MAX(version) AS n FROM bundles');
  return Number(b?.n ?? 0);
}

function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

interface FleetFigures {
  label: string;
  boxes: number;
  startS: number;
  applyP99S: number;
  applyAllS: number;
  ctlCpuPct: number;
  ctlRssMiB: number;
  reportsPerS: number;
  boxRssMiB: { mean: number; max: number };
}

async function runFleet(
  label: string,
  db: Db,
  urls: string[],
  tokens: Record<string, string>,
  trustFile: string,
  capture: string,
): Promise<FleetFigures> {
  const api = apiOf(urls[0]!, tokens);
  const dir = mkdtempSync(join(tmpdir(), 'cp-bench-fleet-'));
  const kids: ChildProcess[] = [];
  try {
    await publish(api, 'first.example');
    const t0 = Date.now();
    const first = await latestBundle(db);
    // spawned in batches of 10, each batch registered before the next (no thundering herd on 2 cores)
    for (let i = 0; i < BOXES; i++) {
      const tok = (await createToken(db, { name: `rb${i}`, role: 'node', actor: 'bench' })).token;
      const c = spawn(
        process.execPath,
        [MAIN, 'enforce', '--replay', capture, '--rate', String(RATE), '--loop', 'forever',
         '--controller', urls[i % urls.length]!, '--token', tok, '--trust', trustFile, '--node', `rb${i}`,
         '--labels', `bench=fleet,n=${i}`, '--state', join(dir, `s${i}`),
         '--status-every', String(STATUS_EVERY_S), '--poll-wait', '30'], // prettier-ignore
        { stdio: ['ignore', 'ignore', 'ignore'] },
      );
      kids.push(c);
      if (i % 10 === 9 || i === BOXES - 1)
        for (let k = 0; k < 600 && (await nodesOn(api, first)) < i + 1; k++) await sleep(200);
    }
    const startS = (Date.now() - t0) / 1000;
    const live = kids.filter((k) => k.exitCode === null).length;
    log(
      `${label}: ${await nodesOn(api, first)}/${BOXES} boxes on bundle ${first} (${live} alive) after ${startS.toFixed(1)} s`,
    );
    await sleep(3000); // settle: every box parked in its long-poll, replaying
    // steady state: controller CPU/RSS and the status reports it serves
    const reports0 = await reportsSum(api);
    const cpu0 = process.cpuUsage();
    const w0 = Date.now();
    await sleep(STATUS_EVERY_S * 1000);
    const cpu = process.cpuUsage(cpu0);
    const wall = Date.now() - w0;
    const reportsPerS = ((await reportsSum(api)) - reports0) / (wall / 1000);
    const ctlCpuPct = ((cpu.user + cpu.system) / 1000 / wall) * 100;
    const ctlRssMiB = process.memoryUsage().rss / 2 ** 20;
    const rss = kids.map((k) => rssKiB(k.pid!) / 1024).filter((x) => x > 0);
    // publish → applied
    const tp = Date.now();
    await publish(api, 'second.example');
    const b = await latestBundle(db);
    const alive = kids.filter((k) => k.exitCode === null).length;
    const need = Math.ceil(alive * 0.99);
    let applyP99S = NaN;
    let applyAllS = NaN;
    for (let k = 0; k < 2400; k++) {
      const n = await nodesOn(api, b);
      if (n >= need && Number.isNaN(applyP99S)) applyP99S = (Date.now() - tp) / 1000;
      if (n >= alive) {
        applyAllS = (Date.now() - tp) / 1000;
        break;
      }
      await sleep(50);
    }
    log(`${label}: publish → 99 % applied ${applyP99S.toFixed(2)} s, all ${applyAllS.toFixed(2)} s`);
    return {
      label,
      boxes: alive,
      startS,
      applyP99S,
      applyAllS,
      ctlCpuPct,
      ctlRssMiB,
      reportsPerS,
      boxRssMiB: { mean: rss.reduce((a, x) => a + x, 0) / Math.max(1, rss.length), max: Math.max(...rss) },
    };
  } finally {
    for (const k of kids) k.kill('SIGTERM');
    await Promise.all(kids.map((k) => (k.exitCode !== null ? null : new Promise((r) => k.once('exit', r)))));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function reportsSum(api: Api): Promise<number> {
  const r = await api('root', 'GET', '/v1/nodes');
  let s = 0;
  for (const n of r.json.nodes as { name: string; counters?: Record<string, number> }[])
    if (n.name.startsWith('rb')) s += n.counters?.status_reports_ok ?? 0;
  return s;
}

function deltaFigures(entries: number, changes: number) {
  const t0 = Date.now();
  const names: string[] = [];
  for (let i = 0; i < entries; i++) names.push(`n${(i * 2654435761) % 4294967291}.example`);
  const from = canonicalList(names);
  for (let i = 0; i < changes / 2; i++) names[(i * 997) % entries] = `changed${i}.example`; // half removed, half added
  for (let i = 0; i < changes / 2; i++) names.push(`added${i}.example`);
  const to = canonicalList(names);
  const d = makeDelta(from, to)!;
  return { entries, changes, full: to.length, delta: d.length, ms: Date.now() - t0 };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'cp-bench-fleet-'));
  const capture = join(work, 'c.pcap');
  const fd = openSync(capture, 'w');
  generate(new PcapWriter(fd), { seed: 5, flows: 60 });
  closeSync(fd);
  const figures: FleetFigures[] = [];
  let pg: PgServer | null = null;
  try {
    if (values.only !== 'postgres') {
      const dataDir = mkdtempSync(join(tmpdir(), 'cp-bench-ctl-'));
      const db = openDb({ dataDir });
      const tc = await startTestController(db, dataDir);
      const trust = join(work, 'root.pub');
      writeFileSync(trust, tc.rootPublicPem);
      figures.push(await runFleet('1 controller, SQLite', db, [tc.run.url], tc.tokens, trust, capture));
      await tc.close();
    }
    if (values.only !== 'sqlite') {
      const why = pgUnavailable();
      if (why) log(`PostgreSQL skipped: ${why}`);
      else {
        pg = await startPostgres();
        const url = await pg.createDatabase('fleet_bench');
        const dataDir = mkdtempSync(join(tmpdir(), 'cp-bench-ctl-'));
        const db = openDb({ databaseUrl: url });
        const tc = await startTestController(db, dataDir);
        const db2 = openDb({ databaseUrl: url });
        const r2: RunningController = await startController(
          db2,
          { ...DEFAULT_CONFIG, reference: await reference() },
          { host: '127.0.0.1', port: 0 },
        );
        const trust = join(work, 'root-pg.pub');
        writeFileSync(trust, tc.rootPublicPem);
        figures.push(
          await runFleet('2 replicas, PostgreSQL', db, [tc.run.url, r2.url], tc.tokens, trust, capture),
        );
        await r2.close();
        await db2.close();
        await tc.close();
      }
    }
  } finally {
    pg?.stop();
    rmSync(work, { recursive: true, force: true });
  }
  const df = deltaFigures(Number(values.entries), Number(values.changes));
  const perDay = 48;
  const fleet = 10_000;
  const gb = (b: number) => (b / 1e9).toFixed(1);
  const rows = figures
    .map(
      (f) =>
        `| ${f.label} | ${f.boxes} | ${f.startS.toFixed(1)} s | **${f.applyP99S.toFixed(2)} s** (${(f.applyP99S / 5).toFixed(2)}× target) | ${f.applyAllS.toFixed(2)} s | ${f.ctlCpuPct.toFixed(1)} % | ${f.ctlRssMiB.toFixed(0)} MiB | ${f.reportsPerS.toFixed(1)}/s | ${f.boxRssMiB.mean.toFixed(0)} / ${f.boxRssMiB.max.toFixed(0)} MiB |`,
    )
    .join('\n');
  const section = `## Fleet

\`npm run bench:fleet\` (bench/fleet.ts), ${new Date().toISOString().slice(0, 10)}: ${BOXES} replay boxes (\`chokepoint enforce --replay\`,
one process per box, no root; a generated 60-flow capture looped at ${RATE} packets/s each, ports shifted per
iteration so every loop is new flows; status every ${STATUS_EVERY_S} s, long-poll 30 s) against an in-process controller
(registry: 2 entries — this measures the fleet path, not registry size; see the delta row for 10^6).
Taken ${new Date().toISOString().slice(11, 16)} UTC on this 2-core machine, load average ${loadavg()
    .map((x) => x.toFixed(1))
    .join(
      ' / ',
    )} (1 / 5 / 15 min) at the end: the ${BOXES} box processes share its 2 cores with the controller,
so their own replay traffic (${BOXES} × ${RATE} packets/s) is part of the load a publish meets.

| setup | boxes | all boxes on bundle 1 from spawn | publish → 99 % applied | → 100 % | controller CPU (steady) | controller RSS | status reports | RSS per box mean / max |
|---|---|---|---|---|---|---|---|---|
${rows}

Controller CPU / RSS are the bench process (controller in-process, plus its own polling of /v1/nodes).
100 boxes × the max RSS per box is well under this machine's 24 GiB.

Deltas (bundle/delta, measured on the list-file bytes directly — the list file the controller writes
is the canonical sorted entry list; not through a 10^6 registry import, see the Controller
section): a ${df.entries.toLocaleString('en')}-entry list with ${df.changes.toLocaleString('en')} entries changed
(${df.changes / 2} removed, ${df.changes / 2} added) — full list file **${(df.full / 1e6).toFixed(1)} MB**, delta **${(df.delta / 1e3).toFixed(1)} kB**
(${(df.full / df.delta).toFixed(0)}× smaller; built in ${df.ms} ms). The signed manifest (~2 kB) is fetched either way. Extrapolated to
${fleet.toLocaleString('en')} boxes and one such update every 30 min (${perDay}/day): full ${gb(df.full * fleet * perDay)} GB/day,
delta ${gb(df.delta * fleet * perDay)} GB/day — and both are immutable and content-addressed
(\`Cache-Control: immutable\`, ETag = hash), so an HTTP cache in front of the controller serves all but one copy.

`;
  process.stdout.write(section);
  if (!values['no-write']) {
    const path = 'BENCHMARKS.md';
    const old = readFileSync(path, 'utf8');
    const re = /^## Fleet\n[\s\S]*?(?=^## |(?![\s\S]))/m;
    writeFileSync(path, re.test(old) ? old.replace(re, section) : old.trimEnd() + '\n\n' + section);
    log('BENCHMARKS.md: ## Fleet updated');
  }
}

await main();
