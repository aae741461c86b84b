/**
 * @module testutil/promtool
 * Runs Debian's `promtool check metrics` (package `prometheus`) on a Prometheus text exposition and
 * returns every complaint it prints (naming lint: `_total` suffixes, units, abbreviations; parse
 * errors). Reusable by any test that renders a /metrics body (the box, the controller).
 */
import { spawn } from 'node:child_process';

export interface PromtoolResult {
  /** promtool's exit status (0 clean, 3 lint problems, 1 parse error); -1 when it could not run. */
  code: number;
  /** One line per complaint (stdout and stderr together, blank lines dropped). */
  problems: string[];
}

/** Check `text` with `promtool check metrics`; rejects only when promtool cannot be started. */
export function promtoolCheck(text: string, timeoutMs = 20_000): Promise<PromtoolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => out.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run promtool (Debian package prometheus): ${e.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const problems = Buffer.concat(out)
        .toString('utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
      resolve({ code: code ?? -1, problems });
    });
    child.stdin.on('error', () => {
      /* promtool may exit before reading everything */
    });
    child.stdin.end(text);
  });
}

/** Throw with promtool's complaints unless the exposition is clean (exit 0 and no output). */
export async function assertPromtoolClean(text: string): Promise<void> {
  const r = await promtoolCheck(text);
  if (r.code !== 0 || r.problems.length > 0)
    throw new Error(`promtool check metrics (exit ${r.code}):\n${r.problems.join('\n')}`);
}
