/**
 * @module bench/inline
 * `npm run bench:inline` (root): the inline engine in a lab of network namespaces.
 * 1. iperf3 (Debian) throughput of an allowed TCP flow through the box: plain forwarding, stateful
 *    forwarding (conntrack, the fair baseline) and with `chokepoint enforce` (the kernel carries the
 *    flow once it is marked).
 * 2. New connections classified per second and the connection-setup latency (connect → first byte
 *    echoed back after a real ClientHello), without and with the engine; classified/s counted from
 *    the EVE verdict log.
 * 2b. Open loop (`BENCH_OPEN` = 1, default): the stateful box's capacity (closed-loop max, above)
 *    sets a fixed rate (`BENCH_OPEN_FRACTION` of it, default 0.5); connections start on that
 *    schedule whatever the others do, against plain, stateful and engine boxes alternating; latency
 *    = scheduled start → first echoed byte (the generator's lateness counts). Also the engine
 *    process's CPU share (its /proc utime + stime over the window) and, with `BENCH_MULTIQUEUE` = 1
 *    (default), the closed-loop capacity of the engine on two queues (`--queues A-B`). Each round's
 *    figures are printed too, with the machine's busy cores meanwhile (other jobs on a shared
 *    machine show there).
 *    Per new connection (last engine round, from /metrics): packets that reached userspace, reads of
 *    the queue socket and verdict sends.
 * 3. Throttle mechanisms: userspace token-bucket policing vs kernel `hashlimit`, goodput of a curl
 *    download against the policed rate, at 256 kbit/s and 2 Mbit/s.
 * Every box gets `BENCH_WARMUP` seconds (default 1) of closed-loop connections after it starts and
 * before any connection figure is taken: a box runs for days, and its first second is V8 compiling
 * the connection path (≈ 0.66 s of TurboFan in the first 2 s, `--trace-opt`, on cores shared with the generator). The engine's
 * rate in that first second is printed beside the steady one.
 * Prints a side-by-side table with ratios (markdown, for BENCHMARKS.md).
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { curl, setupInlineLab, SINK_PORT, sleep, type InlineLab } from '../src/enforce/testing/harness.js';

const CONN_LOAD_JS = fileURLToPath(new URL('../src/enforce/testing/conn-load.js', import.meta.url));
const DURATION = Number(process.env.BENCH_SECONDS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const METRICS_PORT = 19464;
const OPEN = (process.env.BENCH_OPEN ?? '1') !== '0';
const OPEN_FRACTION = Number(process.env.BENCH_OPEN_FRACTION ?? 0.5);
const MULTIQUEUE = (process.env.BENCH_MULTIQUEUE ?? '1') !== '0';
const WARMUP = Number(process.env.BENCH_WARMUP ?? 1);
const TICKS = 100; // USER_HZ of /proc/<pid>/stat

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}
function medianLoad(a: LoadResult[]): LoadResult {
  return {
    conns: median(a.map((x) => x.conns)),
    failed: a.reduce((n, x) => n + x.failed, 0),
    perSec: median(a.map((x) => x.perSec)),
    p50Ms: median(a.map((x) => x.p50Ms)),
    p99Ms: median(a.map((x) => x.p99Ms)),
    maxMs: median(a.map((x) => x.maxMs)),
  };
}

const CORES = availableParallelism();

/** Busy and total jiffies of the whole machine so far (/proc/stat, all CPUs). */
function machineTicks(): [number, number] {
  const l = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = l.reduce((a, b) => a + b, 0);
  return [total - l[3] - l[4], total];
}

/** CPU seconds (user + system, all threads) a process has used so far. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / TICKS;
}

const POLICY = `version: 1
default: allow
inspection:
  mode: normal
rules:
  - id: block-some
    action: block
    match:
      host:
        suffix: [blocked.example, ads.example]
  - id: thr256
    action: throttle
    rate: 256kbit
    burst: 16KB
    match:
      host:
        exact: [thr256.example]
  - id: thr2m
    action: throttle
    rate: 2mbit
    burst: 32KB
    match:
      host:
        exact: [thr2m.example]
`;

interface LoadResult {
  conns: number;
  failed: number;
  perSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

async function iperf(il: InlineLab): Promise<number> {
  const r = await il.lab.exec(
    'sub',
    ['iperf3', '-c', il.server, '-p', '5201', '-t', String(DURATION), '-J'],
    {
      timeoutMs: (DURATION + 20) * 1000,
    },
  );
  const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
  return j.end.sum_received.bits_per_second;
}

async function load(il: InlineLab, rate = 0, seconds = DURATION): Promise<LoadResult> {
  const r = await il.lab.exec(
    'sub',
    [
      process.execPath,
      CONN_LOAD_JS,
      il.server,
      String(SINK_PORT + 1),
      String(CONCURRENCY),
      String(Math.round(seconds * 1000)),
      String(rate),
    ],
    { timeoutMs: (seconds + 30) * 1000 },
  );
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as LoadResult;
}

/** The warm-up of a box just started: `WARMUP` s of closed-loop connections (null when 0). */
async function warm(il: InlineLab): Promise<LoadResult | null> {
  return WARMUP > 0 ? load(il, 0, WARMUP) : null;
}

/** The engine's queue counters now: packets, reads, verdict sends (its /metrics). */
async function queueMetrics(il: InlineLab): Promise<[number, number, number]> {
  const m = (await il.lab.exec('box', ['curl', '-s', `http://127.0.0.1:${METRICS_PORT}/metrics`])).stdout;
  const get = (name: string): number =>
    Number(new RegExp(`${name}\\{queue="\\d+"\\} (\\d+)`).exec(m)?.[1] ?? NaN);
  return [
    get('chokepoint_packets_total'),
    get('chokepoint_queue_reads_total'),
    get('chokepoint_queue_verdict_sends_total'),
  ];
}

function eveLines(il: InlineLab): number {
  try {
    return readFileSync(il.eve, 'utf8').split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

const f1 = (n: number): string => n.toFixed(1);
const f2 = (n: number): string => n.toFixed(2);
const sgn = (n: number): string => (n >= 0 ? '+' : '') + f2(n);

async function withBox<T>(
  il: InlineLab,
  cfg: 'plain' | 'stateful' | 'engine' | 'engine2q',
  fn: (pid: number | null) => Promise<T>,
): Promise<T> {
  let enf: Awaited<ReturnType<InlineLab['startEnforce']>> | null = null;
  if (cfg === 'stateful') {
    await il.lab.exec('box', ['sysctl', '-qw', 'net.netfilter.nf_conntrack_acct=1']);
    await il.lab.exec(
      'box',
      ['iptables', '-A', 'FORWARD', '-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'DROP'],
      { check: true },
    );
  } else if (cfg === 'engine') enf = await il.startEnforce();
  else if (cfg === 'engine2q') enf = await il.startEnforce(['--queues', `${il.queue}-${il.queue + 1}`]);
  try {
    await warm(il);
    return await fn(enf?.child.pid ?? null);
  } finally {
    if (enf) await enf.stop();
    if (cfg === 'stateful') await il.lab.exec('box', ['iptables', '-F', 'FORWARD']);
  }
}

/**
 * Open-loop rounds at a fixed fraction of the stateful box's closed-loop capacity, then (optionally)
 * the closed-loop capacity of the engine on one queue vs two.
 */
async function openLoop(il: InlineLab, statefulCap: number, engineCap: number): Promise<string[]> {
  const rate = Math.max(10, Math.round(statefulCap * OPEN_FRACTION));
  const cfgs = ['plain', 'stateful', 'engine'] as const;
  const res: Record<string, LoadResult[]> = { plain: [], stateful: [], engine: [] };
  const cpu: number[] = [];
  /** Each round's p50 / p99 per box and the machine's busy cores meanwhile (all processes). */
  const rounds: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const cfg of cfgs) {
      process.stderr.write(`open loop ${rate}/s round ${round + 1}/${ROUNDS}: ${cfg}...\n`);
      await withBox(il, cfg, async (pid) => {
        const c0 = pid ? cpuSeconds(pid) : 0;
        const m0 = machineTicks();
        const t0 = Date.now();
        const r = await load(il, rate);
        res[cfg].push(r);
        const m1 = machineTicks();
        const busy = (m1[0] - m0[0]) / Math.max(1, m1[1] - m0[1]);
        if (pid) cpu.push((cpuSeconds(pid) - c0) / ((Date.now() - t0) / 1000));
        rounds.push(
          `${cfg} ${f2(r.p50Ms)} / ${f2(r.p99Ms)} ms (${f1(r.perSec)}/s, machine ${f2(busy * CORES)} cores busy)`,
        );
      });
    }
    rounds.push('|');
  }
  const [p, s, e] = cfgs.map((c) => medianLoad(res[c]));
  const out = [
    `Open loop: ${rate} new connections/s scheduled (${OPEN_FRACTION} × the stateful box's closed-loop ${f1(statefulCap)}/s), ${DURATION} s per box, latency = scheduled start → first echoed byte, medians of ${ROUNDS} alternating rounds.`,
    '',
    '| measure | plain forwarding | stateful forwarding (conntrack) | with engine | engine − stateful |',
    '|---|---|---|---|---|',
    `| achieved new connections/s | ${f1(p.perSec)} | ${f1(s.perSec)} | ${f1(e.perSec)} | ${f2(e.perSec / s.perSec)}× |`,
    `| setup latency p50 (ms) | ${f2(p.p50Ms)} | ${f2(s.p50Ms)} | ${f2(e.p50Ms)} | ${sgn(e.p50Ms - s.p50Ms)} ms |`,
    `| setup latency p99 (ms) | ${f2(p.p99Ms)} | ${f2(s.p99Ms)} | ${f2(e.p99Ms)} | ${sgn(e.p99Ms - s.p99Ms)} ms |`,
    `| setup latency max (ms) | ${f2(p.maxMs)} | ${f2(s.maxMs)} | ${f2(e.maxMs)} | ${sgn(e.maxMs - s.maxMs)} ms |`,
    `| failed connections (all rounds) | ${p.failed} | ${s.failed} | ${e.failed} | |`,
    `| engine process CPU (cores, of 2 shared with the generator) | – | – | ${f2(median(cpu))} | |`,
    '',
    `Per round (p50 / p99; busy cores over the whole machine, other jobs included, /proc/stat): ${rounds.join('; ').replace(/; \|(; )?/g, ' | ')}`,
    '',
    `Capacity (closed loop, ${CONCURRENCY} clients): engine / stateful = ${f2(engineCap / statefulCap)} (${f1(engineCap)} vs ${f1(statefulCap)}/s).`,
  ];
  if (MULTIQUEUE) {
    const one: number[] = [];
    const two: number[] = [];
    const cpu1: number[] = [];
    const cpu2: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const cfg of ['engine', 'engine2q'] as const) {
        process.stderr.write(`queues round ${round + 1}/${ROUNDS}: ${cfg}...\n`);
        await withBox(il, cfg, async (pid) => {
          const c0 = cpuSeconds(pid!);
          const t0 = Date.now();
          const r = await load(il);
          (cfg === 'engine' ? cpu1 : cpu2).push((cpuSeconds(pid!) - c0) / ((Date.now() - t0) / 1000));
          (cfg === 'engine' ? one : two).push(r.perSec);
        });
      }
    }
    out.push(
      `Queues (closed loop, ${CONCURRENCY} clients): one queue ${f1(median(one))}/s (engine CPU ${f2(median(cpu1))} cores), \`--queues A-B\` (two workers) ${f1(median(two))}/s (${f2(median(cpu2))} cores): two / one = ${f2(median(two) / median(one))}.`,
    );
  }
  return out;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench:inline needs root (network namespaces, iptables, NFQUEUE)\n');
    process.exitCode = 1;
    return;
  }
  const il = await setupInlineLab(`cpb${process.pid % 100000}`, POLICY);
  const out: string[] = [];
  try {
    await il.lab.exec('sub', [
      'sysctl',
      '-qw',
      'net.ipv4.tcp_tw_reuse=1',
      'net.ipv4.ip_local_port_range=10000 65000',
    ]);
    il.lab.spawn('net', ['iperf3', '-s', '-p', '5201']);
    await sleep(500);

    // Alternate the three boxes (ROUNDS each) and take medians: the machine is shared and noisy.
    // plain: forwarding only (no netfilter table in the box, so conntrack is off);
    // stateful: a typical stateful router: conntrack with accounting on (what connbytes needs) and
    //   one conntrack rule in FORWARD; the fair baseline for any connmark/NFQUEUE design;
    // engine: chokepoint enforce with an allow-default policy.
    const cfgs = ['plain', 'stateful', 'engine'] as const;
    const tput: Record<string, number[]> = { plain: [], stateful: [], engine: [] };
    const loads: Record<string, LoadResult[]> = { plain: [], stateful: [], engine: [] };
    const cls: number[] = [];
    /** Each box's rate in the warm-up, its first WARMUP s of connections after it started. */
    const cold: Record<string, number[]> = { plain: [], stateful: [], engine: [] };
    let queued = 0;
    let iperfPackets = 0;
    /** Per new connection in the last engine round: packets to userspace, reads, verdict sends. */
    let perConn = [NaN, NaN, NaN];
    for (let round = 0; round < ROUNDS; round++) {
      for (const cfg of cfgs) {
        process.stderr.write(`round ${round + 1}/${ROUNDS}: ${cfg}...\n`);
        let enf: Awaited<ReturnType<InlineLab['startEnforce']>> | null = null;
        if (cfg === 'stateful') {
          await il.lab.exec('box', ['sysctl', '-qw', 'net.netfilter.nf_conntrack_acct=1']);
          await il.lab.exec(
            'box',
            ['iptables', '-A', 'FORWARD', '-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'DROP'],
            { check: true },
          );
        } else if (cfg === 'engine') enf = await il.startEnforce(['--metrics', `127.0.0.1:${METRICS_PORT}`]);
        tput[cfg].push(await iperf(il));
        if (cfg === 'engine') {
          const m = await il.lab.exec('box', ['curl', '-s', `http://127.0.0.1:${METRICS_PORT}/metrics`]);
          queued = Number(/chokepoint_packets_total\{queue="\d+"\} (\d+)/.exec(m.stdout)?.[1] ?? NaN);
          const ct = await il.lab.exec('box', ['conntrack', '-L', '-p', 'tcp', '--dport', '5201']);
          iperfPackets = Math.max(0, ...[...ct.stdout.matchAll(/packets=(\d+)/g)].map((x) => Number(x[1])));
        }
        const w = await warm(il);
        if (w) cold[cfg].push(w.perSec);
        const before = eveLines(il);
        const m0 = cfg === 'engine' ? await queueMetrics(il) : null;
        const lr = await load(il);
        loads[cfg].push(lr);
        if (cfg === 'engine') {
          await sleep(300);
          cls.push((eveLines(il) - before) / DURATION);
          const m1 = await queueMetrics(il);
          const n = Math.max(1, lr.conns + lr.failed);
          perConn = [(m1[0] - m0![0]) / n, (m1[1] - m0![1]) / n, (m1[2] - m0![2]) / n];
        }
        if (enf) await enf.stop();
        if (cfg === 'stateful') await il.lab.exec('box', ['iptables', '-F', 'FORWARD']);
      }
    }
    const plain = median(tput.plain);
    const base = median(tput.stateful);
    const withTput = median(tput.engine);
    const plainLoad = medianLoad(loads.plain);
    const baseLoad = medianLoad(loads.stateful);
    const withLoad = medianLoad(loads.engine);
    const classified = median(cls);

    out.push(
      '| measure | plain forwarding | stateful forwarding (conntrack) | with engine | engine / stateful | engine / plain |',
      '|---|---|---|---|---|---|',
    );
    out.push(
      `| iperf3 TCP throughput, allowed flow (Gbit/s) | ${f2(plain / 1e9)} | ${f2(base / 1e9)} | ${f2(withTput / 1e9)} | ${f2(withTput / base)} | ${f2(withTput / plain)} |`,
    );
    out.push(
      `| new connections/s (${CONCURRENCY} concurrent clients, real ClientHello) | ${f1(plainLoad.perSec)} | ${f1(baseLoad.perSec)} | ${f1(withLoad.perSec)} | ${f2(withLoad.perSec / baseLoad.perSec)} | ${f2(withLoad.perSec / plainLoad.perSec)} |`,
    );
    if (WARMUP > 0) {
      const [cp, cs, ce] = cfgs.map((c) => median(cold[c]));
      out.push(
        `| new connections/s in the first ${WARMUP} s after the box started (warm-up, not in the row above) | ${f1(cp)} | ${f1(cs)} | ${f1(ce)} | ${f2(ce / cs)} | ${f2(ce / cp)} |`,
      );
    }
    out.push(`| connections classified/s (EVE verdicts) | – | – | ${f1(classified)} | | |`);
    out.push(
      `| connection setup latency p50 (ms) | ${f2(plainLoad.p50Ms)} | ${f2(baseLoad.p50Ms)} | ${f2(withLoad.p50Ms)} | +${f2(withLoad.p50Ms - baseLoad.p50Ms)} ms | +${f2(withLoad.p50Ms - plainLoad.p50Ms)} ms |`,
    );
    out.push(
      `| connection setup latency p99 (ms) | ${f2(plainLoad.p99Ms)} | ${f2(baseLoad.p99Ms)} | ${f2(withLoad.p99Ms)} | +${f2(withLoad.p99Ms - baseLoad.p99Ms)} ms | +${f2(withLoad.p99Ms - plainLoad.p99Ms)} ms |`,
    );
    out.push(
      `| failed connections (all rounds) | ${plainLoad.failed} | ${baseLoad.failed} | ${withLoad.failed} | | |`,
    );
    out.push(
      '',
      `Packets that reached userspace during the last engine iperf3 run: ${queued} (its data connection alone carried ${iperfPackets} packets, per conntrack).`,
    );
    out.push(
      `Per new connection (closed loop, last engine round, from /metrics): ${f2(perConn[0])} packets reached userspace, in ${f2(perConn[1])} reads (recvmmsg), their verdicts in ${f2(perConn[2])} sends.`,
    );
    out.push(
      `Per-round iperf3 Gbit/s: plain ${tput.plain.map((x) => f2(x / 1e9)).join(', ')}; stateful ${tput.stateful.map((x) => f2(x / 1e9)).join(', ')}; engine ${tput.engine.map((x) => f2(x / 1e9)).join(', ')}.`,
    );

    if (OPEN) out.push('', ...(await openLoop(il, baseLoad.perSec, withLoad.perSec)));

    process.stderr.write('throttle mechanisms...\n');
    const thr: string[] = [
      '',
      '| mechanism | rate | bucket in force | download | average goodput / rate | steady-state goodput / rate |',
      '|---|---|---|---|---|---|',
    ];
    for (const mode of ['userspace', 'kernel'] as const) {
      const e = await il.startEnforce(['--throttle', mode]);
      for (const [name, rate, burst] of [
        ['thr256.example', 256_000, 16_000],
        ['thr2m.example', 2_000_000, 32_000],
      ] as const) {
        const bytes = Math.round((rate / 8) * 4) + burst;
        const r = await curl(il, name, bytes, { maxTime: 40 });
        // the kernel's hashlimit cannot hold a bucket smaller than one second at the rate
        const eff = mode === 'kernel' ? Math.max(burst, rate / 8) : burst;
        const avg = (r.size * 8) / Math.max(1e-3, r.total - r.pretransfer) / rate;
        const steady = ((r.size - eff) * 8) / Math.max(1e-3, r.total - r.pretransfer) / rate;
        thr.push(
          `| ${mode} | ${rate / 1000} kbit/s | ${eff} B | ${bytes} B in ${f2(r.total)} s | ${f2(avg)} | ${f2(steady)} |`,
        );
      }
      await e.stop();
    }
    out.push(...thr);
  } finally {
    await il.close();
  }
  const text = out.join('\n');
  process.stdout.write(
    `\n${text}\n\n(lab: 3 network namespaces, veth, offloads off; medians of ${ROUNDS} alternating rounds of ${DURATION} s, each after a ${WARMUP} s warm-up of the box; Node ${process.version})\n`,
  );
}

main().catch((e: Error) => {
  process.stderr.write(String(e.stack ?? e) + '\n');
  process.exitCode = 1;
});
