/**
 * @module bench/controller
 * `npm run bench:controller`: the fleet controller at registry scale, on embedded SQLite and on
 * PostgreSQL side by side (a real server started here, as the tests do), each controller a separate
 * `chokepoint controller serve` process driven through the same client as `ctl`:
 * - import 10^6 names (domains list, 10 % `*.x` masks) + 10^5 CIDRs (target ≤ 60 s together);
 * - submit a version from the registry: lint + blast radius + diff against the active one (≤ 30 s);
 * - publish = build + sign its bundle (≤ 10 s), and the bundle's size;
 * - 200 concurrent long-polling clients: the controller's CPU and RSS while they wait, and the p50/p99
 *   time from a publish request to each client holding the new manifest;
 * - "why" lookups per second over HTTP on the 10^6 registry (first lookup builds the matcher).
 * Prints figures next to the targets (ratio = figure / target) and replaces the `## Controller`
 * section of BENCHMARKS.md. Options: --names N --cidrs N --pollers N --lookups N --only sqlite|postgres --no-write
 * --profile DIR (the controller process runs with --cpu-prof into DIR).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { nameGen, rng } from '../src/gen/synth.js';
import { Client } from '../src/controller/client.js';
import { freePort, pgUnavailable, startPostgres, TOP10K } from '../src/controller/testutil.js';

const { values } = parseArgs({
  options: {
    names: { type: 'string', default: '1000000' },
    cidrs: { type: 'string', default: '100000' },
    pollers: { type: 'string', default: '200' },
    lookups: { type: 'string', default: '3000' },
    only: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
    profile: { type: 'string' },
  },
});
const N_NAMES = Number(values.names);
const N_CIDRS = Number(values.cidrs);
const POLLERS = Number(values.pollers);
const LOOKUPS = Number(values.lookups);
const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

const rnd = rng(20210310);
const { randomName } = nameGen(rnd);

const work = mkdtempSync(join(tmpdir(), 'chokepoint-bench-ctl-'));
const names: string[] = [];
{
  const seen = new Set<string>();
  while (seen.size < N_NAMES) {
    const n = randomName();
    if (seen.has(n)) continue;
    seen.add(n);
    names.push(n);
  }
}
writeFileSync(join(work, 'names.txt'), names.map((n, i) => (i % 10 === 9 ? `*.${n}` : n)).join('\n') + '\n');
{
  const out: string[] = [];
  const seen = new Set<string>();
  while (out.length < N_CIDRS) {
    const len = 16 + Math.floor(rnd() * 17);
    const a = Math.floor(rnd() * 0xffffffff) >>> 0;
    const m = (a & ((0xffffffff << (32 - len)) >>> 0)) >>> 0;
    const t = `${m >>> 24}.${(m >>> 16) & 255}.${(m >>> 8) & 255}.${m & 255}/${len}`;
    if (!seen.has(t)) {
      seen.add(t);
      out.push(t);
    }
  }
  writeFileSync(join(work, 'cidrs.txt'), out.join('\n') + '\n');
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(process.execPath, [MAIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
    .toString()
    .trim();
}

function procStat(pid: number): { cpuS: number; rssMiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const tick = 100; // USER_HZ on Linux
  const cpuS = (Number(f[11]) + Number(f[12])) / tick;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  return { cpuS, rssMiB: rss };
}

async function waitHealthy(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error('controller exited');
    try {
      const r = await fetch(url + '/v1/health');
      if (r.ok) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('controller did not start');
}

const sec = (ms: number) => ms / 1000;
const pct = (a: number[], p: number) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

interface Result {
  importNamesS: number;
  importCidrsS: number;
  healthMaxMs: number;
  submitS: number;
  publishS: number;
  bundleMiB: number;
  pollP50Ms: number;
  pollP99Ms: number;
  pollDelivered: number;
  idleCpuPct: number;
  rssMiB: number;
  whyFirstMs: number;
  whyPerS: number;
}

/** Children to stop if the bench is interrupted. */
const cleanups = new Set<() => void>();
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    for (const c of cleanups) c();
    process.exit(130);
  });

async function runBackend(kind: 'sqlite' | 'postgres'): Promise<Result> {
  const dir = mkdtempSync(join(work, kind + '-'));
  let pg: Awaited<ReturnType<typeof startPostgres>> | null = null;
  const store: string[] = [];
  if (kind === 'postgres') {
    pg = await startPostgres();
    store.push('--database', await pg.createDatabase('bench'));
  } else store.push('--data', join(dir, 'data'));
  let child: ChildProcess | null = null;
  try {
    cli(['controller', 'root-key', 'create', '--out', join(dir, 'keys')]);
    const tok: Record<string, string> = {};
    for (const [name, role] of [
      ['admin', 'admin'],
      ['ed', 'editor'],
      ['alice', 'approver'],
      ['bob', 'approver'],
      ['box', 'node'],
    ])
      tok[name] = cli(['controller', 'token', 'create', ...store, '--role', role, '--name', name]);
    cli(['controller', 'signing-key', 'rotate', ...store, '--root', join(dir, 'keys', 'root.key')]);
    const port = await freePort();
    child = spawn(
      process.execPath,
      [
        ...(values.profile ? ['--cpu-prof', '--cpu-prof-dir', values.profile] : []),
        MAIN,
        'controller',
        'serve',
        ...store,
        '--listen',
        `127.0.0.1:${port}`,
        '--reference',
        TOP10K,
      ],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    const url = `http://127.0.0.1:${port}`;
    const ch = child;
    const pgRef = pg;
    cleanups.add(() => {
      ch.kill('SIGKILL');
      pgRef?.stop();
    });
    await waitHealthy(url, child);
    const as = (u: string) => new Client(url, tok[u]);
    let t = performance.now();
    // while the names import runs, a reader asks /v1/health every 50 ms: the longest answer is how
    // long the import keeps the controller from answering anyone
    let importing = true;
    let healthMaxMs = 0;
    const healthProbe = (async () => {
      while (importing) {
        const h0 = performance.now();
        await fetch(url + '/v1/health').then((r) => r.arrayBuffer());
        healthMaxMs = Math.max(healthMaxMs, performance.now() - h0);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await as('ed').importFile(
      `/v1/registry/import?format=domains&source=names&filename=names.txt&action=block`,
      join(dir, '..', 'names.txt'),
    );
    const importNamesS = sec(performance.now() - t);
    importing = false;
    await healthProbe;
    t = performance.now();
    await as('ed').importFile(
      `/v1/registry/import?format=cidr&source=ips&filename=cidrs.txt&action=block`,
      join(dir, '..', 'cidrs.txt'),
    );
    const importCidrsS = sec(performance.now() - t);
    process.stderr.write(`[${kind}] import ${importNamesS.toFixed(1)} s + ${importCidrsS.toFixed(1)} s\n`);
    t = performance.now();
    const v1 = await as('ed').call('POST', '/v1/versions', { from_registry: true });
    const submitS = sec(performance.now() - t);
    process.stderr.write(
      `[${kind}] submit ${submitS.toFixed(1)} s (errors ${v1.errors}, warnings ${v1.warnings})\n`,
    );
    await as('alice').call('POST', `/v1/versions/${v1.id}/approve`);
    await as('bob').call('POST', `/v1/versions/${v1.id}/approve`);
    t = performance.now();
    await as('alice').call('POST', `/v1/versions/${v1.id}/publish`);
    const publishS = sec(performance.now() - t);
    const cur = await as('box').call('GET', '/v1/bundle');
    const m = JSON.parse(cur.manifest);
    const bundleMiB = m.files.reduce((a: number, f: { size: number }) => a + f.size, 0) / 1048576;
    process.stderr.write(`[${kind}] publish ${publishS.toFixed(2)} s, bundle ${bundleMiB.toFixed(1)} MiB\n`);
    // a second version ready to publish
    await as('ed').call('POST', '/v1/registry/entries', {
      kind: 'exact',
      value: 'bench-new.example',
      action: 'block',
    });
    const v2 = await as('ed').call('POST', '/v1/versions', { from_registry: true });
    await as('alice').call('POST', `/v1/versions/${v2.id}/approve`);
    await as('bob').call('POST', `/v1/versions/${v2.id}/approve`);
    // long-pollers: one node token each, as real boxes (the controller caps waiters per token)
    const nodeTokens: string[] = [];
    for (let i = 0; i < POLLERS; i++)
      nodeTokens.push(
        (
          (await as('admin').call('POST', '/v1/tokens', { name: `poller-${i}`, role: 'node' })) as {
            token: string;
          }
        ).token,
      );
    const etag = `"${m.version}"`;
    let waiting = 0;
    let t0 = 0;
    const got: number[] = [];
    const poll = async (token: string) => {
      waiting++;
      const r = await fetch(`${url}/v1/bundle?wait=120`, {
        headers: { authorization: `Bearer ${token}`, 'if-none-match': etag },
      });
      const body = await r.text();
      if (r.status === 200 && JSON.parse(JSON.parse(body).manifest).version > m.version)
        got.push(performance.now() - t0);
    };
    const polls = nodeTokens.map((tk) => poll(tk));
    while (waiting < POLLERS) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 1000)); // all requests parked on the server
    const s0 = procStat(child.pid!);
    await new Promise((r) => setTimeout(r, 3000));
    const s1 = procStat(child.pid!);
    const idleCpuPct = (100 * (s1.cpuS - s0.cpuS)) / 3;
    t0 = performance.now();
    await as('alice').call('POST', `/v1/versions/${v2.id}/publish`);
    await Promise.all(polls);
    const rssMiB = procStat(child.pid!).rssMiB;
    process.stderr.write(
      `[${kind}] ${got.length}/${POLLERS} pollers got the publish, p99 ${pct(got, 99).toFixed(0)} ms\n`,
    );
    // why lookups
    const pick = () => names[Math.floor(rnd() * names.length)];
    t = performance.now();
    await as('admin').call('GET', `/v1/registry/why?name=${pick()}`);
    const whyFirstMs = performance.now() - t;
    t = performance.now();
    const conc = 8;
    let done = 0;
    await Promise.all(
      Array.from({ length: conc }, async () => {
        while (done < LOOKUPS) {
          done++;
          const r = await as('admin').call('GET', `/v1/registry/why?name=www.${pick()}`);
          if (!r.entries) throw new Error('why failed');
        }
      }),
    );
    const whyPerS = LOOKUPS / sec(performance.now() - t);
    return {
      importNamesS,
      importCidrsS,
      healthMaxMs,
      submitS,
      publishS,
      bundleMiB,
      pollP50Ms: pct(got, 50),
      pollP99Ms: pct(got, 99),
      pollDelivered: got.length,
      idleCpuPct,
      rssMiB,
      whyFirstMs,
      whyPerS,
    };
  } finally {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
    pg?.stop();
  }
}

const results: Partial<Record<'sqlite' | 'postgres', Result>> = {};
try {
  for (const k of ['sqlite', 'postgres'] as const) {
    if (values.only && values.only !== k) continue;
    if (k === 'postgres' && pgUnavailable()) {
      process.stderr.write(`postgres: ${pgUnavailable()}\n`);
      continue;
    }
    results[k] = await runBackend(k);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const S = results.sqlite;
const P = results.postgres;
const f = (v: number | undefined, d = 1) => (v === undefined ? '-' : v.toFixed(d));
const ratio = (v: number | undefined, target: number) => (v === undefined ? '-' : (v / target).toFixed(2));
const rows: [string, (r: Result) => number, number | null, number, string][] = [
  [
    `import ${N_NAMES.toLocaleString('en')} names + ${N_CIDRS.toLocaleString('en')} CIDRs (s)`,
    (r) => r.importNamesS + r.importCidrsS,
    60,
    1,
    '≤ 60',
  ],
  ['  of which names (s)', (r) => r.importNamesS, null, 1, ''],
  ['  longest /v1/health answer during the names import (ms)', (r) => r.healthMaxMs, null, 0, ''],
  ['submit from registry: lint + blast radius + diff (s)', (r) => r.submitS, 30, 1, '≤ 30'],
  ['publish: build + sign the bundle (s)', (r) => r.publishS, 10, 2, '≤ 10'],
  ['bundle size (MiB)', (r) => r.bundleMiB, null, 1, ''],
  [`${POLLERS} long-pollers: publish → client, p50 (ms)`, (r) => r.pollP50Ms, null, 0, ''],
  [`${POLLERS} long-pollers: publish → client, p99 (ms)`, (r) => r.pollP99Ms, null, 0, ''],
  ['  clients that got it', (r) => r.pollDelivered, null, 0, `${POLLERS}`],
  ['controller CPU while they wait (% of a core)', (r) => r.idleCpuPct, null, 1, ''],
  ['controller RSS after publish (MiB)', (r) => r.rssMiB, null, 0, ''],
  ['why: first lookup, builds the matcher (ms)', (r) => r.whyFirstMs, null, 0, ''],
  ['why: lookups/s over HTTP (8 concurrent)', (r) => r.whyPerS, null, 0, ''],
];
let table =
  '| figure | SQLite | PostgreSQL | target | SQLite / target | PostgreSQL / target |\n|---|---|---|---|---|---|\n';
for (const [name, get, target, d, ttext] of rows)
  table += `| ${name} | ${f(S && get(S), d)} | ${f(P && get(P), d)} | ${ttext || '-'} | ${target ? ratio(S && get(S), target) : '-'} | ${target ? ratio(P && get(P), target) : '-'} |\n`;
process.stdout.write(table);

if (!values['no-write'] && N_NAMES >= 1_000_000) {
  const section = `## Controller

\`npm run bench:controller\` (bench/controller.ts): each controller is its own \`chokepoint controller serve\` process
(SQLite in a temp dir; PostgreSQL ${existsSync('/usr/lib/postgresql/15') ? '15 ' : ''}started by the bench with fsync off), driven through the \`ctl\` client
on 127.0.0.1, reference list top10k. Registry: ${N_NAMES.toLocaleString('en')} generated names (10 % \`*.x\` masks) and
${N_CIDRS.toLocaleString('en')} IPv4 prefixes, seeded PRNG. 2-core machine shared with other work; figures from one run.

${table}
Notes: "publish → client" is measured from the start of the publish request (build, sign, commit,
NOTIFY) to each client holding the new manifest; the clients run in the bench process. The long-poll
CPU figure is the controller process only, over 3 s with every client parked; every poller has its
own node token, as boxes do (the controller caps waiters per token). "Longest /v1/health answer":
a client asks every 50 ms while the names import runs; the import runs in a worker thread
(controller/import-offload), so this is how long the controller stops answering (12.9 s when the
import ran on the event loop). Taken ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC,
load average ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' / ')} (1 / 5 / 15 min) at the end.

`;
  const path = 'BENCHMARKS.md';
  const old = readFileSync(path, 'utf8');
  const re = /^## Controller\n[\s\S]*?(?=^## |(?![\s\S]))/m;
  writeFileSync(path, re.test(old) ? old.replace(re, section) : old.trimEnd() + '\n\n' + section);
  process.stderr.write('BENCHMARKS.md: ## Controller updated\n');
}
