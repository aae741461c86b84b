/**
 * @module bench/simulate
 * `npm run bench:simulate [-- --size 420MB --seed 7 --runs 3]`: `simulate` with the compiled 10^6-name +
 * 10^5-CIDR registry against `analyze` on the same capture (issue 13 item 3: target ≤ 1.2×). Uses the
 * capture bench:analyze caches in out/ (generated with the same `gen` arguments when missing), writes the
 * registry (bench/registry-gen) and compiles it with `chokepoint registry compile`, then alternates
 * `analyze CAPTURE` and `simulate --policy REG.compiled CAPTURE` (both writing their JSON lines to
 * /dev/null), each pinned to one core (taskset -c CORE, default 1); prints the medians and the ratio.
 * Also times `simulate --policy REG.yaml` (text lists) once for the anchor.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeRegistry } from './registry-gen.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '420MB' },
    seed: { type: 'string', default: '7' },
    runs: { type: 'string', default: '3' },
    core: { type: 'string', default: '1' },
    names: { type: 'string', default: '1e6' },
    cidrs: { type: 'string', default: '1e5' },
  },
});
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(root, 'dist', 'src', 'cli', 'main.js');
mkdirSync(join(root, 'out'), { recursive: true });
const pcap = join(root, 'out', `bench-${values.size}-${values.seed}.pcap`);
const truth = pcap.replace(/\.pcap$/, '.truth.tsv');
if (!existsSync(pcap) || !existsSync(truth)) {
  console.error(`generating ${pcap} ...`);
  const g = spawnSync(
    process.execPath,
    [CLI, 'gen', '--out', pcap, '--size', values.size!, '--seed', values.seed!, '--truth', truth,
      '--tls-share', '0.8'], // prettier-ignore
    { stdio: 'inherit' },
  );
  if (g.status !== 0) throw new Error('gen failed');
}

/** Wall seconds of one pinned run of the CLI with `args`, output to /dev/null. */
function timed(args: string[]): number {
  const t = performance.now();
  const r = spawnSync('taskset', ['-c', values.core!, process.execPath, CLI, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`${args[0]} exited ${r.status}: ${r.stderr}`);
  return (performance.now() - t) / 1000;
}
const median = (a: number[]): number => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'chokepoint-bench-simulate-'));
try {
  const reg = writeRegistry(dir, Number(values.names), Number(values.cidrs));
  const compiled = join(dir, 'policy.compiled');
  const c = spawnSync(process.execPath, [CLI, 'registry', 'compile', reg.policy, '--out', compiled], {
    encoding: 'utf8',
  });
  if (c.status !== 0) throw new Error(`registry compile: ${c.stderr}`);
  const analyze: number[] = [];
  const simulate: number[] = [];
  for (let i = 0; i < Number(values.runs); i++) {
    analyze.push(timed(['analyze', '--no-progress', pcap]));
    simulate.push(timed(['simulate', '--policy', compiled, pcap]));
  }
  const text = timed(['simulate', '--policy', reg.policy, pcap]);
  const a = median(analyze);
  const s = median(simulate);
  const load = spawnSync('uptime', { encoding: 'utf8' }).stdout.trim();
  console.log(
    `capture ${pcap}; registry ${values.names} names + ${values.cidrs} CIDRs; pinned to core ${values.core}`,
  );
  console.log(
    `analyze:                         median ${a.toFixed(2)} s of [${analyze.map((x) => x.toFixed(2)).join(', ')}]`,
  );
  console.log(
    `simulate --policy REG.compiled:  median ${s.toFixed(2)} s of [${simulate.map((x) => x.toFixed(2)).join(', ')}]  = ${(s / a).toFixed(2)}× analyze (target ≤ 1.2×)`,
  );
  console.log(
    `simulate --policy REG.yaml:      ${text.toFixed(2)} s (one run) = ${(text / a).toFixed(2)}× analyze (text lists, the anchor)`,
  );
  console.log(`load: ${load}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
