/**
 * @module bench/showcase
 * `npm run bench:showcase`: how soon `chokepoint showcase` (what `npm start` runs) shows something —
 * from the spawn of the built CLI to the dashboard URL on stdout, to the first HTTP 200 on `/`, and
 * to the end of the 2021 story ("Story done") — then SIGINT and its exit status. `--runs N` (default 3),
 * `--listen HOST:PORT` (default 127.0.0.1:0). Prints one line per run and the median; no write.
 * The fresh-clone figure in the README is this measured from `git clone` + `npm ci` (see there).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, listen: { type: 'string', default: '127.0.0.1:0' } },
});
const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

interface Run {
  urlS: number;
  pageS: number;
  storyS: number;
  exit: number | null;
}

async function once(): Promise<Run> {
  const t0 = performance.now();
  const s = () => (performance.now() - t0) / 1000;
  const c = spawn(process.execPath, [MAIN, 'showcase', '--listen', values.listen], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const exited = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
  const r: Partial<Run> = {};
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no "Story done" within 300 s')), 300_000);
    createInterface({ input: c.stdout }).on('line', (l) => {
      const m = /^Dashboard: (\S+)$/.exec(l);
      if (m) {
        r.urlS = s();
        void (async () => {
          for (let i = 0; i < 5000; i++) {
            try {
              if ((await fetch(m[1])).status === 200) return void (r.pageS = s());
            } catch {
              /* not yet */
            }
            await new Promise((w) => setTimeout(w, 10));
          }
        })();
      }
      if (l.startsWith('Story failed')) reject(new Error(l));
      if (l.startsWith('Story done')) {
        r.storyS = s();
        clearTimeout(timer);
        resolve();
      }
    });
  });
  c.kill('SIGINT');
  r.exit = await exited;
  return r as Run;
}

const runs: Run[] = [];
for (let i = 0; i < Number(values.runs); i++) {
  const r = await once();
  runs.push(r);
  process.stdout.write(
    `run ${i + 1}: URL printed ${r.urlS.toFixed(2)} s, / answers 200 at ${r.pageS.toFixed(2)} s, story done ${r.storyS.toFixed(1)} s, exit ${r.exit}\n`,
  );
}
const med = (k: keyof Run) => {
  const v = runs.map((r) => Number(r[k])).sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)]!;
};
process.stdout.write(
  `median of ${runs.length}: / answers at ${med('pageS').toFixed(2)} s, story done at ${med('storyS').toFixed(1)} s\n`,
);
