/**
 * @module bench/conformance
 * `npm run conformance`: runs `chokepoint analyze` on every capture of ../shared/corpus/ndpi/pcap (one
 * child process each, with a timeout, so a crash or a hang is seen as such), then compares the names
 * with nDPI's (names.tsv). Prints agreement, crashes/hangs, and every disagreement grouped by class;
 * writes the details to out/conformance.tsv. Exit 1 on any crash/hang or agreement below --min (97%).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { run } from '../src/util/run.js';
import { fromEveLine } from '../src/output/eve.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
export const CORPUS = resolve(root, '..', 'shared', 'corpus', 'ndpi');
const CLI = join(root, 'dist', 'src', 'cli', 'main.js');

interface Rec {
  proto: string;
  src_ip: string;
  src_port: number;
  dest_ip: string;
  dest_port: number;
  host: string | null;
  app_proto: string | null;
}

interface RunResult {
  file: string;
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  stderr: string;
  records: Rec[];
  ms: number;
}

async function runOne(file: string, timeoutMs: number): Promise<RunResult> {
  const t0 = Date.now();
  const r = await run([process.execPath, CLI, 'analyze', '--no-progress', file], { timeoutMs });
  const records: Rec[] = [];
  for (const line of r.stdout.split('\n')) {
    if (!line) continue;
    try {
      const rec = fromEveLine(line, file); // the EVE record, read back
      if (rec) records.push(rec);
    } catch {
      /* partial line on crash */
    }
  }
  return {
    file,
    code: r.signal ? null : r.code,
    signal: r.signal,
    timedOut: r.timedOut,
    stderr: r.stderr,
    records,
    ms: Date.now() - t0,
  };
}

/** Canonical address text for comparison (nDPI prints IPv6 without RFC 5952's rules). */
export function canonIp(ip: string): string {
  if (!ip.includes(':')) return ip;
  const [h, t] = ip.split('::');
  const hs = h ? h.split(':') : [];
  const ts = t !== undefined && t !== '' ? t.split(':') : [];
  if (t === undefined && hs.length !== 8) return ip;
  const fill = 8 - hs.length - ts.length;
  if (fill < 0) return ip;
  return [...hs, ...Array(fill).fill('0'), ...ts].map((g) => parseInt(g || '0', 16).toString(16)).join(':');
}

function norm(s: string | null | undefined): string {
  return (s ?? '').toLowerCase().replace(/\.+$/, '');
}

export interface ConformanceReport {
  files: number;
  crashes: RunResult[];
  rows: number;
  agree: number;
  classes: Map<string, string[]>;
}

export async function conformance(
  opts: { jobs?: number; timeoutMs?: number; only?: string } = {},
): Promise<ConformanceReport> {
  const pcapDir = join(CORPUS, 'pcap');
  let files = readdirSync(pcapDir)
    .filter((f) => /\.(pcap|pcapng|cap)$/.test(f))
    .sort();
  if (opts.only) files = files.filter((f) => f.includes(opts.only!));
  const results = new Map<string, RunResult>();
  let next = 0;
  const jobs = opts.jobs ?? 2;
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      while (next < files.length) {
        const f = files[next++];
        results.set(f, await runOne(join(pcapDir, f), opts.timeoutMs ?? 60_000));
      }
    }),
  );
  const crashes = [...results.values()].filter(
    (r) =>
      r.timedOut || r.signal !== null || (r.code !== 0 && r.code !== 1) || /at .*\.js:\d+/.test(r.stderr),
  );
  const lines = readFileSync(join(CORPUS, 'names.tsv'), 'utf8').split('\n').slice(1).filter(Boolean);
  const classes = new Map<string, string[]>();
  let agree = 0;
  let rows = 0;
  const add = (cls: string, detail: string) => {
    if (!classes.has(cls)) classes.set(cls, []);
    classes.get(cls)!.push(detail);
  };
  for (const line of lines) {
    const [pcap, l4, a0, pa, b0, pb, app, name] = line.split('\t');
    const a = canonIp(a0);
    const b = canonIp(b0);
    if (opts.only && !pcap.includes(opts.only)) continue;
    rows++;
    const r = results.get(pcap);
    const want = norm(name);
    if (!r) {
      add('capture not analysed', `${pcap}\t${name}`);
      continue;
    }
    const cands = r.records.filter((x) => {
      if (x.proto !== l4) return false;
      const s = canonIp(x.src_ip);
      const d = canonIp(x.dest_ip);
      return (
        (s === a && String(x.src_port) === pa && d === b && String(x.dest_port) === pb) ||
        (s === b && String(x.src_port) === pb && d === a && String(x.dest_port) === pa)
      );
    });
    const detail = `${pcap}\t${l4}\t${a}:${pa}\t${b}:${pb}\t${app}\tndpi=${name}\tours=${cands.map((c) => c.host ?? '-').join(',') || '(no flow)'}`;
    if (cands.some((c) => norm(c.host) === want)) {
      agree++;
      continue;
    }
    if (cands.length === 0) add('no flow with that 5-tuple', detail);
    else if (cands.every((c) => !c.host)) add(`no name (${app.split('.')[0]})`, detail);
    else add(`different name (${app.split('.')[0]})`, detail);
  }
  return { files: files.length, crashes, rows, agree, classes };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      min: { type: 'string', default: '97' },
      only: { type: 'string' },
      jobs: { type: 'string', default: '2' },
    },
  });
  if (!existsSync(join(CORPUS, 'names.tsv'))) {
    console.error(`conformance: the nDPI corpus is absent (${CORPUS}); nothing to compare`);
    process.exit(1);
  }
  const t0 = Date.now();
  const rep = await conformance({ jobs: Number(values.jobs), only: values.only });
  const pct = (100 * rep.agree) / Math.max(1, rep.rows);
  console.log(
    `captures analysed: ${rep.files}, crashes/hangs: ${rep.crashes.length}, time ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  for (const c of rep.crashes)
    console.log(
      `  CRASH ${c.file}: code=${c.code} signal=${c.signal} timeout=${c.timedOut}\n${c.stderr.split('\n').slice(0, 6).join('\n')}`,
    );
  console.log(
    `names agree with nDPI: ${rep.agree}/${rep.rows} = ${pct.toFixed(2)}% (target ≥ ${values.min}%)`,
  );
  const detail: string[] = [];
  for (const [cls, list] of [...rep.classes].sort((a, b) => b[1].length - a[1].length)) {
    console.log(`  ${String(list.length).padStart(5)}  ${cls}`);
    for (const d of list) detail.push(`${cls}\t${d}`);
  }
  mkdirSync(join(root, 'out'), { recursive: true });
  writeFileSync(join(root, 'out', 'conformance.tsv'), detail.join('\n') + '\n');
  console.log(`details: out/conformance.tsv`);
  process.exit(rep.crashes.length === 0 && pct >= Number(values.min) ? 0 : 1);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) void main();
