/**
 * @module bench/hostile-inline
 * `npm run bench:hostile-inline` (root): the inline part of the hostile-input benchmark. In a lab of
 * network namespaces with `chokepoint enforce` in the box (default inspection settings), a client in
 * `sub` sends 50 crafted ClientHellos per second (5,000 cipher suites and 1,000 extensions, both in
 * descending order: ~14 KB each, BENCH_HOSTILE_RATE / _CIPHERS / _EXTENSIONS to change) while an
 * allowed connection's setup latency (connect → first byte echoed after a real ClientHello, one at a
 * time) is measured; the same without the hostile load, rounds alternated, medians. Also: the box's
 * CPU (user+system of the enforce process) per second of each window, the verdicts of the crafted
 * connections by reason, and every fail-open event as /metrics counts it. Target: loaded setup
 * latency ≤ 2× unloaded; every crafted connection that was let through unnamed is a counted fail-open.
 * Prints a markdown table (for BENCHMARKS.md, "Hostile input, inline").
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setupInlineLab, SINK_PORT, sleep, type InlineLab } from '../src/enforce/testing/harness.js';

const CONN_LOAD_JS = fileURLToPath(new URL('../src/enforce/testing/conn-load.js', import.meta.url));
const HOSTILE_JS = fileURLToPath(new URL('../src/enforce/testing/hostile-client.js', import.meta.url));
const DURATION = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RATE = Number(process.env.BENCH_HOSTILE_RATE ?? 50);
const CIPHERS = Number(process.env.BENCH_HOSTILE_CIPHERS ?? 5000);
const EXTENSIONS = Number(process.env.BENCH_HOSTILE_EXTENSIONS ?? 1000);
const METRICS_PORT = 19465;
const HOSTILE_SNI = 'crafted.hostile.example';

/** BENCH_MAX_PACKETS: the policy's inspection.max_packets (default: the policy default). */
const MAX_PACKETS = process.env.BENCH_MAX_PACKETS;
const POLICY = `version: 1
default: allow
${MAX_PACKETS ? `inspection:\n  max_packets: ${Number(MAX_PACKETS)}\n` : ''}rules:
  - id: block-some
    action: block
    match:
      host:
        suffix: [blocked.example]
`;

interface LoadResult {
  conns: number;
  failed: number;
  perSec: number;
  p50Ms: number;
  p99Ms: number;
}

const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/** user+system CPU seconds of a process. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

async function latency(il: InlineLab): Promise<LoadResult> {
  const r = await il.lab.exec(
    'sub',
    [process.execPath, CONN_LOAD_JS, il.server, String(SINK_PORT + 1), '1', String(DURATION * 1000)],
    { timeoutMs: (DURATION + 30) * 1000 },
  );
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as LoadResult;
}

async function metrics(il: InlineLab): Promise<string> {
  return (await il.lab.exec('box', ['curl', '-s', `http://127.0.0.1:${METRICS_PORT}/metrics`])).stdout;
}

function sumMetric(text: string, re: RegExp): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of text.matchAll(re)) m.set(x[1], (m.get(x[1]) ?? 0) + Number(x[2]));
  return m;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench:hostile-inline needs root (network namespaces, iptables, NFQUEUE)\n');
    process.exitCode = 1;
    return;
  }
  const il = await setupInlineLab(`cph${process.pid % 100000}`, POLICY);
  try {
    await il.lab.exec('sub', [
      'sysctl',
      '-qw',
      'net.ipv4.tcp_tw_reuse=1',
      'net.ipv4.ip_local_port_range=10000 65000',
    ]);
    const enf = await il.startEnforce(['--metrics', `127.0.0.1:${METRICS_PORT}`]);
    const pid = enf.child.pid!;
    const idle: number[] = [];
    const idle99: number[] = [];
    const loaded: number[] = [];
    const loaded99: number[] = [];
    const cpuIdle: number[] = [];
    const cpuLoaded: number[] = [];
    let hostileSent = 0;
    let hostileFailed = 0;
    let chLen = 0;
    for (let round = 0; round < ROUNDS; round++) {
      process.stderr.write(`round ${round + 1}/${ROUNDS}: unloaded...\n`);
      let c0 = cpuSeconds(pid);
      let t0 = Date.now();
      const a = await latency(il);
      cpuIdle.push((cpuSeconds(pid) - c0) / ((Date.now() - t0) / 1000));
      idle.push(a.p50Ms);
      idle99.push(a.p99Ms);
      process.stderr.write(`round ${round + 1}/${ROUNDS}: under ${RATE} crafted ClientHellos/s...\n`);
      const hostile = il.lab.exec(
        'sub',
        [process.execPath, HOSTILE_JS, il.server, String(SINK_PORT + 1), String(RATE),
          String((DURATION + 2) * 1000), String(CIPHERS), String(EXTENSIONS), HOSTILE_SNI], // prettier-ignore
        { timeoutMs: (DURATION + 40) * 1000 },
      );
      await sleep(1000);
      c0 = cpuSeconds(pid);
      t0 = Date.now();
      const b = await latency(il);
      cpuLoaded.push((cpuSeconds(pid) - c0) / ((Date.now() - t0) / 1000));
      loaded.push(b.p50Ms);
      loaded99.push(b.p99Ms);
      const h = JSON.parse((await hostile).stdout.trim().split('\n').pop()!) as {
        sent: number;
        failed: number;
        chLen: number;
      };
      hostileSent += h.sent;
      hostileFailed += h.failed;
      chLen = h.chLen;
    }
    await sleep(500);
    const m = await metrics(il);
    await enf.stop();
    const failOpen = sumMetric(m, /^chokepoint_fail_open_total\{reason="([^"]+)"\} (\d+)/gm);
    const kernel = sumMetric(
      m,
      /^chokepoint_nfqueue_dropped_packets_total\{queue="\d+",reason="([^"]+)"\} (\d+)/gm,
    );
    const enobufs = sumMetric(m, /^chokepoint_(queue_enobufs)_total\{queue="\d+"\} (\d+)/gm);
    const verdicts = sumMetric(m, /^chokepoint_(verdicts)_total\{[^}]*\} (\d+)/gm);
    const tracked = sumMetric(m, /^chokepoint_(flows_tracked)\{queue="\d+"\} (\d+)/gm);
    const reasons = new Map<string, number>();
    let hostileVerdicts = 0;
    let eveTotal = 0;
    for (const line of readFileSync(il.eve, 'utf8').split('\n')) {
      if (!line) continue;
      eveTotal++;
      // the EVE record (docs/EVE.md): Suricata's tls{sni}, ours under chokepoint
      const e = JSON.parse(line) as {
        tls?: { sni?: string };
        chokepoint: { name: string | null; verdict: { reason: string }; anomalies: string[] };
      };
      const sni = e.tls?.sni ?? null;
      const ours = e.chokepoint;
      // a crafted connection: its name, or no name at all (the allowed probe always has one)
      if (sni !== HOSTILE_SNI && ours.name !== null) continue;
      hostileVerdicts++;
      const k = `${ours.verdict.reason}${ours.anomalies.length ? ` (${ours.anomalies.join(', ')})` : ''}`;
      reasons.set(k, (reasons.get(k) ?? 0) + 1);
    }
    const unnamed = [...reasons].filter(([k]) => !k.startsWith('named')).reduce((n, [, v]) => n + v, 0);
    const counted = [...failOpen].filter(([k]) => k !== 'worker_exit').reduce((n, [, v]) => n + v, 0);
    const f2 = (n: number): string => n.toFixed(2);
    const out: string[] = [];
    out.push(
      `Command: \`npm run bench:hostile-inline\` (BENCH_SECONDS=${DURATION}, BENCH_ROUNDS=${ROUNDS}${MAX_PACKETS ? `, BENCH_MAX_PACKETS=${MAX_PACKETS}` : ''}; medians of the rounds, unloaded and loaded alternated).`,
      `Hostile load: ${RATE} crafted ClientHellos/s (${CIPHERS} cipher suites, ${EXTENSIONS} extensions, descending; ${chLen} bytes each), ${hostileSent} sent, ${hostileFailed} failed to connect.`,
      '',
      '| measure | unloaded | under hostile load | loaded / unloaded | target |',
      '|---|---|---|---|---|',
      `| allowed connection setup, p50 (ms) | ${f2(median(idle))} | ${f2(median(loaded))} | ${f2(median(loaded) / median(idle))} | ≤ 2 |`,
      `| allowed connection setup, p99 (ms) | ${f2(median(idle99))} | ${f2(median(loaded99))} | ${f2(median(loaded99) / median(idle99))} | |`,
      `| box CPU (enforce process, cores) | ${f2(median(cpuIdle))} | ${f2(median(cpuLoaded))} | | |`,
      '',
      `Crafted connections with a verdict: ${hostileVerdicts}; by reason: ${[...reasons].map(([k, v]) => `${k}: ${v}`).join('; ') || 'none'}.`,
      `Let through without a name: ${unnamed}; fail-open events in /metrics (\`chokepoint_fail_open_total\`): ${[...failOpen].map(([k, v]) => `${k}=${v}`).join(', ') || 'none'} (sum without worker_exit: ${counted}) — ${counted >= unnamed ? 'every one counted' : 'NOT all counted'}.`,
      `Kernel side: ${[...kernel].map(([k, v]) => `nfqueue_dropped_packets{reason=${k}}=${v}`).join(', ') || 'no queue counters (metric not found)'}, queue_enobufs=${enobufs.get('queue_enobufs') ?? 0}; flows still tracked at the end: ${tracked.get('flows_tracked') ?? 0}; verdicts in /metrics ${verdicts.get('verdicts') ?? 0}, EVE lines ${eveTotal}.`,
      boxCpuLine(median(cpuLoaded) - median(cpuIdle)),
    );
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    await il.close();
  }
}

main().catch((e: Error) => {
  process.stderr.write(String(e.stack ?? e) + '\n');
  process.exitCode = 1;
});

/** The box CPU the crafted hellos added (loaded − unloaded window, in cores), per hello. */
function boxCpuLine(extraCores: number): string {
  const ms = (extraCores * 1000) / RATE;
  if (ms < 0.05)
    return `Box CPU per crafted ClientHello: below what the windows resolve (loaded − unloaded = ${extraCores.toFixed(3)} cores).`;
  return `Box CPU per crafted ClientHello ≈ ${ms.toFixed(1)} ms.`;
}
