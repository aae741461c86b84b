/**
 * @module bench/analyze
 * `npm run bench:analyze [-- --size 420MB --seed 7]`: generates (once, cached in out/) a synthetic capture of
 * ≥ 400 MB with ground truth, then times `chokepoint analyze`, `ndpiReader` and `tshark` (when installed)
 * on it in the same run, each pinned to core 1 (`taskset -c 1`), alternating run by run: medians of CPU
 * time (user + sys) and wall time, packets/s, Gbit/s, peak RSS (GNU time), and how many of the
 * ground-truth names each one reports. Prints a table with ratios against ndpiReader, and the load average.
 *
 * Then the split of chokepoint's cost (`--no-split` skips it): the same capture through the engine in
 * fresh pinned processes, CPU time of the work only (module loading excluded, measured apart as the CLI on a
 * header-only capture): reading alone, the packet path with dissectors off (`inspect: false`: decode,
 * flow table, counters), with dissectors on, and with records (build, EVE, JSON lines to /dev/null).
 * Per packet = packet path / packets; per flow = (dissectors + records) / flows. `--profile` adds a CPU
 * profile of one CLI run (0.5 ms samples) summed into cost classes by the innermost owning module.
 *
 * `--scaling SIZE` (e.g. `1700MB`) instead: one larger generated capture and its prefixes of 1/32 … 1/1
 * of its packets (`editcap -r`), chokepoint and ndpiReader alternating on each, pinned: how the ratio
 * depends on the capture's length, and each tool's marginal cost per packet between two prefixes —
 * chokepoint's fixed cost (start-up and V8's warm-up: compiling the hot code on the same core) is
 * paid once per process, so a short capture measures mostly that.
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { loadavg } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fromEveLine } from '../src/output/eve.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const CLI = join(root, 'dist', 'src', 'cli', 'main.js');

interface Measure {
  tool: string;
  secs: number;
  cpu: number;
  rssMiB: number;
  names: Set<string> | null;
  note?: string;
}

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

interface Timed {
  secs: number;
  cpu: number;
  rssMiB: number;
  ok: boolean;
  stderr: string;
}

/** Run a shell command pinned to core 1 under GNU time: wall seconds, CPU seconds (user + sys), peak RSS. */
function timed(cmd: string): Timed {
  const r = spawnSync('/usr/bin/time', ['-f', '@@TIME %e %U %S %M', 'taskset', '-c', '1', 'sh', '-c', cmd], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  const m = /@@TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(r.stderr ?? '');
  return {
    secs: m ? Number(m[1]) : NaN,
    cpu: m ? Number(m[2]) + Number(m[3]) : NaN,
    rssMiB: m ? Number(m[4]) / 1024 : NaN,
    ok: r.status === 0,
    stderr: r.stderr,
  };
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** Medians of runs (wall, CPU); peak RSS: the largest. */
function summarise(ts: Timed[]): { secs: number; cpu: number; rssMiB: number } {
  return {
    secs: median(ts.map((t) => t.secs)),
    cpu: median(ts.map((t) => t.cpu)),
    rssMiB: Math.max(...ts.map((t) => t.rssMiB)),
  };
}

const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

function truthNames(tsv: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of readFileSync(tsv, 'utf8').split('\n').slice(1)) {
    const c = line.split('\t');
    if (c.length < 8 || c[6] === '-') continue;
    m.set(`${c[0]} ${c[1]} ${c[2]} ${c[3]} ${c[4]}`, c[6]);
  }
  return m;
}

function key(proto: string, a: string, pa: string | number, b: string, pb: string | number): string {
  return `${proto} ${a} ${pa} ${b} ${pb}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '420MB' },
      seed: { type: 'string', default: '7' },
      runs: { type: 'string', default: '3' },
      'no-split': { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      phase: { type: 'string' },
      file: { type: 'string' },
      scaling: { type: 'string' },
    },
  });
  if (values.phase) return phase(values.phase, values.file ?? '');
  mkdirSync(join(root, 'out'), { recursive: true });
  if (values.scaling) return scaling(values.scaling, values.seed, Number(values.runs));
  const pcap = join(root, 'out', `bench-${values.size}-${values.seed}.pcap`);
  const truthFile = pcap.replace(/\.pcap$/, '.truth.tsv');
  if (!existsSync(pcap) || !existsSync(truthFile)) {
    console.error(`generating ${pcap} ...`);
    const g = spawnSync(
      process.execPath,
      [
        CLI,
        'gen',
        '--out',
        pcap,
        '--size',
        values.size,
        '--seed',
        values.seed,
        '--truth',
        truthFile,
        '--tls-share',
        '0.8',
      ],
      { stdio: 'inherit' },
    );
    if (g.status !== 0) throw new Error('gen failed');
  }
  const bytes = statSync(pcap).size;
  const truth = truthNames(truthFile);
  const cap = spawnSync('capinfos', ['-c', '-M', pcap], { encoding: 'utf8' });
  let packets = Number(/Number of packets:\s+(\d+)/.exec(cap.stdout ?? '')?.[1] ?? NaN);
  const runs = Number(values.runs);
  const results: Measure[] = [];
  const haveNdpi = have('ndpiReader');
  const csv = join(root, 'out', 'bench-ndpi.csv');
  const out = join(root, 'out', 'bench-records.jsonl');
  // chokepoint and ndpiReader alternate, run by run, so both see the same machine conditions
  const runsC: Timed[] = [];
  const runsN: Timed[] = [];
  const loadBefore = load();
  for (let i = 0; i < runs; i++) {
    const t = timed(`node ${CLI} analyze --no-progress ${pcap} > ${out}`);
    if (!t.ok) throw new Error('chokepoint failed: ' + t.stderr);
    runsC.push(t);
    if (haveNdpi) runsN.push(timed(`ndpiReader -q -n 1 -i ${pcap} -C ${csv} > /dev/null`));
  }
  const loadAfter = load();
  const bestC = summarise(runsC);
  const bestN = haveNdpi ? summarise(runsN) : { secs: NaN, cpu: NaN, rssMiB: NaN };

  // chokepoint
  {
    const best = bestC;
    const names = new Set<string>();
    for (const line of readFileSync(out, 'utf8').split('\n')) {
      if (!line) continue;
      const r = fromEveLine(line, out); // the EVE record, read back (output/eve.ts)
      if (!r) continue;
      const k = key(r.proto, r.src_ip, r.src_port, r.dest_ip, r.dest_port);
      if (r.host && truth.get(k) === r.host) names.add(k);
    }
    if (!Number.isFinite(packets)) packets = NaN;
    results.push({ tool: 'chokepoint', secs: best.secs, cpu: best.cpu, rssMiB: best.rssMiB, names });
  }
  // ndpiReader
  if (haveNdpi) {
    const best = bestN;
    const names = new Set<string>();
    const lines = readFileSync(csv, 'utf8').split('\n');
    const sep = (lines[0] ?? '').includes('|') ? '|' : ',';
    const head = (lines[0] ?? '').replace(/^#/, '').split(sep);
    const col = (n: string) => head.indexOf(n);
    const [ip1, p1, ip2, p2, pr, sn] = [
      'src_ip',
      'src_port',
      'dst_ip',
      'dst_port',
      'protocol',
      'server_name_sni',
    ].map(col);
    for (const line of lines.slice(1)) {
      const c = line.split(sep);
      if (c.length < head.length) continue;
      const proto = c[pr] === '6' ? 'TCP' : c[pr] === '17' ? 'UDP' : c[pr];
      for (const k of [key(proto, c[ip1], c[p1], c[ip2], c[p2]), key(proto, c[ip2], c[p2], c[ip1], c[p1])]) {
        if (c[sn] && truth.get(k) === c[sn].toLowerCase()) names.add(k);
      }
    }
    results.push({
      tool: 'ndpiReader',
      secs: best.secs,
      cpu: best.cpu,
      rssMiB: best.rssMiB,
      names: sn >= 0 ? names : null,
    });
  }
  // tshark (one run: it is slow)
  if (have('tshark')) {
    const t = timed(
      `tshark -n -r ${pcap} -T fields -E separator=/t -e ip.src -e ipv6.src -e tcp.srcport -e udp.srcport -e ip.dst -e ipv6.dst -e tcp.dstport -e udp.dstport -e tls.handshake.extensions_server_name -e http.host -e dns.qry.name -Y "tls.handshake.type==1 || http.request || (dns.flags.response==0) || quic" -o tls.desegment_ssl_records:TRUE > ${join(root, 'out', 'bench-tshark.tsv')}`,
    );
    const names = new Set<string>();
    for (const line of readFileSync(join(root, 'out', 'bench-tshark.tsv'), 'utf8').split('\n')) {
      const c = line.split('\t');
      if (c.length < 11) continue;
      const src = c[0] || c[1];
      const dst = c[4] || c[5];
      const sp = c[2] || c[3];
      const dp = c[6] || c[7];
      const proto = c[2] ? 'TCP' : 'UDP';
      const name = (c[8] || c[9] || c[10] || '').split(',')[0].toLowerCase().replace(/:\d+$/, '');
      const k = key(proto, src, sp, dst, dp);
      if (name && truth.get(k) === name) names.add(k);
    }
    results.push({ tool: 'tshark', secs: t.secs, cpu: t.cpu, rssMiB: t.rssMiB, names, note: 'one run' });
  }
  const base = results.find((r) => r.tool === 'ndpiReader');
  console.log(
    `capture: ${pcap}\n  ${(bytes / 1e6).toFixed(0)} MB, ${packets} packets, ${truth.size} named flows in ground truth; medians of ${runs} alternating runs, each pinned to core 1 (taskset -c 1); load average ${loadBefore} before, ${loadAfter} after\n`,
  );
  console.log(
    `${'tool'.padEnd(12)} ${'CPU s'.padStart(6)} ${'wall s'.padStart(7)} ${'pkt/s (CPU)'.padStart(12)} ${'Gbit/s'.padStart(7)} ${'peak RSS MiB'.padStart(13)} ${'names right'.padStart(16)} ${'vs ndpiReader CPU'.padStart(18)} ${'wall'.padStart(6)}`,
  );
  for (const r of results) {
    const pps = packets / r.cpu;
    const gbps = (bytes * 8) / r.cpu / 1e9;
    const ratio = base ? (base.cpu / r.cpu).toFixed(2) + '×' : '-';
    const wratio = base ? (base.secs / r.secs).toFixed(2) + '×' : '-';
    const nm = r.names ? `${r.names.size} (${((100 * r.names.size) / truth.size).toFixed(1)}%)` : 'n/a';
    console.log(
      `${r.tool.padEnd(12)} ${r.cpu.toFixed(2).padStart(6)} ${r.secs.toFixed(2).padStart(7)} ${Math.round(pps).toLocaleString('en').padStart(12)} ${gbps.toFixed(2).padStart(7)} ${r.rssMiB.toFixed(0).padStart(13)} ${nm.padStart(16)} ${ratio.padStart(18)} ${wratio.padStart(6)}${r.note ? '  (' + r.note + ')' : ''}`,
    );
  }
  console.log(`\ntargets: chokepoint ≥ 3× ndpiReader pkt/s on one core; 100 % of names; peak RSS ≤ 150 MiB`);
  if (!values['no-split']) split(pcap, packets, runs);
  if (values.profile) profile(pcap);
}

/** The packet count of a capture (capinfos). */
function packetCount(pcap: string): number {
  const cap = spawnSync('capinfos', ['-c', '-M', pcap], { encoding: 'utf8' });
  return Number(/Number of packets:\s+(\d+)/.exec(cap.stdout ?? '')?.[1] ?? NaN);
}

/** `--scaling`: the ratio against ndpiReader as a function of the capture's length (module header). */
function scaling(size: string, seed: string, runs: number): void {
  for (const t of ['ndpiReader', 'editcap', 'capinfos', 'taskset'])
    if (!have(t)) throw new Error(`--scaling needs ${t} (Debian: libndpi-bin, tshark, util-linux)`);
  const pcap = join(root, 'out', `bench-${size}-${seed}.pcap`);
  if (!existsSync(pcap)) {
    console.error(`generating ${pcap} ...`);
    const g = spawnSync(process.execPath, [CLI, 'gen', '--out', pcap, '--size', size, '--seed', seed,
      '--tls-share', '0.8'], { stdio: 'inherit' }); // prettier-ignore
    if (g.status !== 0) throw new Error('gen failed');
  }
  const total = packetCount(pcap);
  const counts = [32, 16, 8, 4, 2].map((d) => Math.floor(total / d)).concat(total);
  const files = counts.map((n) => {
    if (n === total) return pcap;
    const f = pcap.replace(/\.pcap$/, `-first-${n}.pcap`);
    if (!existsSync(f)) {
      const r = spawnSync('editcap', ['-F', 'pcap', '-r', pcap, f, `1-${n}`], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`editcap failed: ${r.stderr}`);
    }
    return f;
  });
  const loadBefore = load();
  const c: Timed[][] = counts.map(() => []);
  const n: Timed[][] = counts.map(() => []);
  for (let i = 0; i < runs; i++)
    for (let k = 0; k < files.length; k++) {
      const tc = timed(`node ${CLI} analyze --no-progress ${files[k]} > /dev/null`);
      if (!tc.ok) throw new Error('chokepoint failed: ' + tc.stderr);
      c[k].push(tc);
      n[k].push(timed(`ndpiReader -q -n 1 -i ${files[k]} > /dev/null`));
    }
  console.log(
    `scaling: prefixes of ${pcap} (${total} packets); CPU seconds (user + sys), medians of ${runs} alternating runs, each pinned to core 1; load average ${loadBefore} before, ${load()} after\n`,
  );
  console.log(
    `${'packets'.padStart(10)} ${'MB'.padStart(6)} ${'chokepoint s'.padStart(13)} ${'ndpiReader s'.padStart(13)} ${'ratio'.padStart(7)} ${'µs/pkt since previous: chokepoint'.padStart(34)} ${'ndpiReader'.padStart(11)} ${'ratio'.padStart(6)}`,
  );
  let prev: [number, number, number] | null = null;
  for (let k = 0; k < counts.length; k++) {
    const cc = median(c[k].map((t) => t.cpu));
    const nc = median(n[k].map((t) => t.cpu));
    let marg = '';
    if (prev) {
      const dp = counts[k] - prev[0];
      const mc = ((cc - prev[1]) / dp) * 1e6;
      const mn = ((nc - prev[2]) / dp) * 1e6;
      marg = `${mc.toFixed(2).padStart(34)} ${mn.toFixed(2).padStart(11)} ${(mn / mc).toFixed(2).padStart(5)}×`;
    }
    console.log(
      `${String(counts[k]).padStart(10)} ${(statSync(files[k]).size / 1e6).toFixed(0).padStart(6)} ${cc.toFixed(2).padStart(13)} ${nc.toFixed(2).padStart(13)} ${(nc / cc).toFixed(2).padStart(6)}× ${marg}`,
    );
    prev = [counts[k], cc, nc];
  }
  console.log(
    '\nratio = ndpiReader CPU / chokepoint CPU (> 1: chokepoint faster); the last interval is the steady state',
  );
}

/** Child mode: CPU seconds of one phase's work on `file` (module loading not counted). */
async function phase(name: string, file: string): Promise<void> {
  const { readCaptureFile } = await import('../src/capture/reader.js');
  const { Engine } = await import('../src/engine/engine.js');
  const { ANALYZE_MAX_FLOWS } = await import('../src/engine/analyze.js');
  const { writeEveLine } = await import('../src/output/eve.js');
  const { JsonlWriter } = await import('../src/output/jsonl.js');
  const out = new JsonlWriter(openSync('/dev/null', 'w'));
  const c0 = process.cpuUsage();
  let flows = 0;
  if (name === 'read') readCaptureFile(file, { packet() {} });
  else {
    const e = new Engine({
      maxFlows: ANALYZE_MAX_FLOWS,
      recycleFlows: true,
      pcapFilename: basename(file),
      inspect: name !== 'packets',
      onFlowEnd: name === 'records' ? (f, why) => writeEveLine(out, e.record(f, why)) : undefined,
    });
    readCaptureFile(file, {
      packet: (b, off, end, lt, ts, orig) => void e.packet(b, lt, ts, orig, off, end),
    });
    e.flush();
    out.flush();
    flows = e.stats.flows;
  }
  const c = process.cpuUsage(c0);
  console.log(JSON.stringify({ cpu: (c.user + c.system) / 1e6, flows }));
}

/** The per-packet / per-flow split (see the module header), medians of `runs` fresh pinned processes. */
function split(pcap: string, packets: number, runs: number): void {
  const empty = join(root, 'out', 'bench-empty.pcap');
  const hdr = Buffer.alloc(24);
  readFileSync(pcap).copy(hdr, 0, 0, 24);
  writeFileSync(empty, hdr);
  const phases = ['read', 'packets', 'inspect', 'records'];
  const cpu = new Map<string, number[]>(phases.map((p) => [p, []]));
  const startup: number[] = [];
  let flows = 0;
  for (let i = 0; i < runs; i++) {
    startup.push(timed(`node ${CLI} analyze --no-progress ${empty} > /dev/null`).cpu);
    for (const p of phases) {
      const r = spawnSync(
        'taskset',
        ['-c', '1', process.execPath, fileURLToPath(import.meta.url), '--phase', p, '--file', pcap],
        {
          encoding: 'utf8',
        },
      );
      const o = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { cpu: number; flows: number };
      cpu.get(p)!.push(o.cpu);
      flows = o.flows || flows;
    }
  }
  const m = (p: string): number => median(cpu.get(p)!);
  const st = median(startup);
  const rd = m('read');
  const pk = m('packets');
  const ins = m('inspect') - pk;
  const rec = m('records') - m('inspect');
  const total = st + m('records');
  const row = (what: string, s: number, per: string): void =>
    console.log(
      `  ${what.padEnd(44)} ${s.toFixed(3).padStart(7)} s ${((100 * s) / total).toFixed(0).padStart(4)} %  ${per}`,
    );
  console.log(`\nsplit (CPU s, medians of ${runs} pinned runs each; load average ${load()}):`);
  row('start-up (CLI on a header-only capture)', st, '');
  row('reading the capture (no-op sink)', rd, `${((rd / packets) * 1e9).toFixed(0)} ns/packet`);
  row(
    'packet path, dissectors off (decode, flows)',
    pk - rd,
    `${(((pk - rd) / packets) * 1e9).toFixed(0)} ns/packet`,
  );
  row('dissectors (per flow)', ins, `${((ins / flows) * 1e6).toFixed(1)} µs/flow`);
  row('records: build, EVE, JSON lines (per flow)', rec, `${((rec / flows) * 1e6).toFixed(1)} µs/flow`);
  console.log(
    `  per packet ${((pk / packets) * 1e9).toFixed(0)} ns (${packets} packets), per flow ${(((ins + rec) / flows) * 1e6).toFixed(1)} µs (${flows} flows); sum ${total.toFixed(2)} s`,
  );
}

/** Cost classes of a CPU profile: the first class (in this order) owning any frame of a sample's stack. */
const CLASSES: [string, RegExp][] = [
  ['garbage collection', /^\(garbage collector\)/],
  ['QUIC (keys, AES-GCM, frames)', /dissect\/quic/],
  ['JSON lines (stringify + write)', /output\/jsonl/],
  ['EVE mapping', /output\/eve/],
  ['record build', /engine\/record-build|output\/(community-id|address)/],
  ['TLS ClientHello + JA4', /dissect\/(tls|ja4)/],
  ['HTTP, DNS', /dissect\/(http|dns)/],
  ['inspection glue, reassembly', /engine\/inspect|flow\/stream/],
  ['decode', /decode\//],
  ['flow table, engine packet path', /flow\/|engine\/engine/],
  ['capture reading', /capture\/|engine\/analyze/],
];

interface ProfNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

function profile(pcap: string): void {
  const dir = join(root, 'out', 'bench-prof');
  rmSync(dir, { recursive: true, force: true });
  spawnSync(
    'taskset',
    [
      '-c',
      '1',
      process.execPath,
      '--cpu-prof',
      '--cpu-prof-interval',
      '500',
      '--cpu-prof-dir',
      dir,
      CLI,
      'analyze',
      '--no-progress',
      pcap,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const f = readdirSync(dir).find((x) => x.endsWith('.cpuprofile'));
  if (!f) return;
  const p = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { nodes: ProfNode[]; samples: number[] };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const tally = new Map<string, number>();
  for (const s of p.samples) {
    const keys: string[] = [];
    for (let x: number | undefined = s; x !== undefined; x = parent.get(x)) {
      const cf = byId.get(x)!.callFrame;
      keys.push(cf.functionName.startsWith('(') ? cf.functionName : cf.url);
    }
    const cls =
      CLASSES.find(([, re]) => keys.some((k) => re.test(k)))?.[0] ?? 'start-up, module loading, other';
    tally.set(cls, (tally.get(cls) ?? 0) + 1);
  }
  console.log(`\nCPU profile of one run (${p.samples.length} samples of 0.5 ms), share by cost class:`);
  for (const [k, n] of [...tally].sort((a, b) => b[1] - a[1]))
    console.log(`  ${k.padEnd(34)} ${((100 * n) / p.samples.length).toFixed(1).padStart(5)} %`);
}

void main();
