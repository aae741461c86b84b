/**
 * @module bench/reload
 * `npm run bench:reload`: the box's policy reload time with a big registry (issue 8 item 2 "compile
 * once", issue 13 item 3). Writes a policy of N names (exact list) + M CIDRs, starts
 * `chokepoint enforce --no-install` (no rules: nothing is steered to it) in a network namespace
 * of its own, then R times: change one line of the name list, SIGHUP, and time until the daemon logs
 * "policy reloaded (...): ID active on all Q queues" (every worker acknowledged). Prints the start
 * time (first "active on all" line) and the median reload. `--cli PATH` runs another build's
 * `dist/src/cli/main.js` (e.g. the commit before, for a before/after in the same run); pin with
 * `taskset -c 1 npm run bench:reload` to compare on one core.
 * Options: --names N (1e6), --cidrs N (1e5), --queues Q (1), --runs R (3), --cli PATH.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeRegistry } from './registry-gen.js';

const { values } = parseArgs({
  options: {
    names: { type: 'string', default: '1e6' },
    cidrs: { type: 'string', default: '1e5' },
    queues: { type: 'string', default: '1' },
    runs: { type: 'string', default: '3' },
    cli: { type: 'string' },
  },
});
const N = Number(values.names);
const M = Number(values.cidrs);
const Q = Number(values.queues);
const R = Number(values.runs);
const CLI = values.cli ?? fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
if (typeof process.getuid === 'function' && process.getuid() !== 0)
  throw new Error('bench:reload needs root (NFQUEUE, a network namespace)');

const dir = mkdtempSync(join(tmpdir(), 'chokepoint-bench-reload-'));
const ns = `cpreload${process.pid}`;
const reg = writeRegistry(dir, N, M);

const median = (a: number[]): number => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
const ip = (...a: string[]): void => {
  const r = spawnSync('ip', a, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${a.join(' ')}: ${r.stderr}`);
};

ip('netns', 'add', ns);
let child: ReturnType<typeof spawn> | null = null;
try {
  const t0 = performance.now();
  child = spawn(
    'ip',
    ['netns', 'exec', ns, process.execPath, CLI, 'enforce', '--policy', reg.policy,
      '--queues', `0-${Q - 1}`, '--no-install'], // prettier-ignore
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  const waiters: (() => void)[] = [];
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<never>((_, reject) =>
    child!.once('exit', (c) => reject(new Error(`enforce exited (${c}): ${err.slice(-1000)}`))),
  );
  /** Resolves when the log matches `re` more than `count` times (bounded: 300 s). */
  const waitLog = (re: RegExp, count: number): Promise<void> =>
    Promise.race([
      exited,
      new Promise<void>((resolve, reject) => {
        const t = setTimeout(
          () => reject(new Error(`timeout waiting for ${re}: ${err.slice(-800)}`)),
          300_000,
        );
        const check = (): void => {
          if ((err.match(re) ?? []).length > count) {
            clearTimeout(t);
            resolve();
          } else waiters.push(check);
        };
        check();
      }),
    ]);
  await waitLog(new RegExp(`active on all ${Q} queues \\(start\\)`, 'g'), 0);
  const startS = (performance.now() - t0) / 1000;
  const ack = new RegExp(`policy reloaded \\([^)]*\\): [0-9a-f]{16} active on all ${Q} queues`, 'g');
  const times: number[] = [];
  for (let r = 0; r < R; r++) {
    reg.changeName(r);
    const t = performance.now();
    child.kill('SIGHUP');
    await waitLog(ack, r);
    times.push((performance.now() - t) / 1000);
  }
  console.log(
    `reload, ${N.toLocaleString('en')} names + ${M.toLocaleString('en')} CIDRs, ${Q} queue(s), ${CLI}: ` +
      `start ${startS.toFixed(2)} s; reload (SIGHUP -> acknowledged by every queue) median ${median(times).toFixed(2)} s ` +
      `of [${times.map((s) => s.toFixed(2)).join(', ')}]`,
  );
} finally {
  if (child && child.exitCode === null) {
    const gone = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  }
  spawnSync('ip', ['netns', 'del', ns]);
  rmSync(dir, { recursive: true, force: true });
}
