/**
 * @module testutil/promtool
 * Runs Debian's `promtool check metrics` (package `prometheus`) on a Prometheus text exposition and
 * returns every complaint it prints (naming lint: `_total` suffixes, units, abbreviations; parse
 * errors). Reusable by any test that renders a /metrics body (the box, the controller).
 */
import { run } from '../util/run.js';

export interface PromtoolResult {
  /** promtool's exit status (0 clean, 3 lint problems, 1 parse error); -1 when killed. */
  code: number;
  /** One line per complaint (stdout and stderr together, blank lines dropped). */
  problems: string[];
}

/** Check `text` with `promtool check metrics`; rejects only when promtool cannot be started. */
export async function promtoolCheck(text: string, timeoutMs = 20_000): Promise<PromtoolResult> {
  const r = await run(['promtool', 'check', 'metrics'], { input: text, timeoutMs });
  const problems = (r.stdout + '\n' + r.stderr)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return { code: r.code, problems };
}

/** Throw with promtool's complaints unless the exposition is clean (exit 0 and no output). */
export async function assertPromtoolClean(text: string): Promise<void> {
  const r = await promtoolCheck(text);
  if (r.code !== 0 || r.problems.length > 0)
    throw new Error(`promtool check metrics (exit ${r.code}):\n${r.problems.join('\n')}`);
}
