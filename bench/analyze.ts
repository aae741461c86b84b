/**
 * @module bench/analyze
 * `npm run bench:analyze [-- --size 420MB --seed 7]`: generates (once, cached in out/) a synthetic capture of
 * ≥ 400 MB with ground truth, then times `chokepoint analyze`, `ndpiReader` and `tshark` (when installed)
 * on it in the same run, one core each: wall time, packets/s, Gbit/s, peak RSS (GNU time), and how many
 * of the ground-truth names each one reports. Prints a table with ratios against ndpiReader.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fromEveLine } from '../src/output/eve.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const CLI = join(root, 'dist', 'src', 'cli', 'main.js');

interface Measure {
  tool: string;
  secs: number;
  rssMiB: number;
  names: Set<string> | null;
  note?: string;
}

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** Run a shell command under GNU time; returns wall seconds and peak RSS. */
function timed(cmd: string): { secs: number; rssMiB: number; ok: boolean; stderr: string } {
  const r = spawnSync('/usr/bin/time', ['-f', '@@TIME %e %M', 'sh', '-c', cmd], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  const m = /@@TIME ([\d.]+) (\d+)/.exec(r.stderr ?? '');
  return {
    secs: m ? Number(m[1]) : NaN,
    rssMiB: m ? Number(m[2]) / 1024 : NaN,
    ok: r.status === 0,
    stderr: r.stderr,
  };
}

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
    },
  });
  mkdirSync(join(root, 'out'), { recursive: true });
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
  let bestC = { secs: Infinity, rssMiB: 0 };
  let bestN = { secs: Infinity, rssMiB: 0 };
  for (let i = 0; i < runs; i++) {
    const t = timed(`node ${CLI} analyze --no-progress ${pcap} > ${out}`);
    if (!t.ok) throw new Error('chokepoint failed: ' + t.stderr);
    if (t.secs < bestC.secs) bestC = t;
    if (haveNdpi) {
      const n = timed(`ndpiReader -q -n 1 -i ${pcap} -C ${csv} > /dev/null`);
      if (n.secs < bestN.secs) bestN = n;
    }
  }

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
    results.push({ tool: 'chokepoint', secs: best.secs, rssMiB: best.rssMiB, names });
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
    results.push({ tool: 'ndpiReader', secs: best.secs, rssMiB: best.rssMiB, names: sn >= 0 ? names : null });
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
    results.push({ tool: 'tshark', secs: t.secs, rssMiB: t.rssMiB, names, note: 'one run' });
  }
  const base = results.find((r) => r.tool === 'ndpiReader');
  console.log(
    `capture: ${pcap}\n  ${(bytes / 1e6).toFixed(0)} MB, ${packets} packets, ${truth.size} named flows in ground truth; best of ${runs} alternating runs, each pinned to one core (taskset)\n`,
  );
  console.log(
    `${'tool'.padEnd(12)} ${'time s'.padStart(7)} ${'pkt/s'.padStart(11)} ${'Gbit/s'.padStart(7)} ${'peak RSS MiB'.padStart(13)} ${'names right'.padStart(16)} ${'pkt/s vs ndpiReader'.padStart(20)}`,
  );
  for (const r of results) {
    const pps = packets / r.secs;
    const gbps = (bytes * 8) / r.secs / 1e9;
    const ratio = base ? (base.secs / r.secs).toFixed(2) + '×' : '-';
    const nm = r.names ? `${r.names.size} (${((100 * r.names.size) / truth.size).toFixed(1)}%)` : 'n/a';
    console.log(
      `${r.tool.padEnd(12)} ${r.secs.toFixed(2).padStart(7)} ${Math.round(pps).toLocaleString('en').padStart(11)} ${gbps.toFixed(2).padStart(7)} ${r.rssMiB.toFixed(0).padStart(13)} ${nm.padStart(16)} ${ratio.padStart(20)}${r.note ? '  (' + r.note + ')' : ''}`,
    );
  }
  console.log(`\ntargets: chokepoint ≥ 2× ndpiReader pkt/s; peak RSS ≤ 150 MiB`);
}

void main();
