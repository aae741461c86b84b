/**
 * @module policy/clitest
 * Run the `chokepoint` CLI in a child process for tests: the compiled dist/src/cli/main.js when the
 * tests run from dist, or src/cli/main.ts through tsx when they run from source.
 */
import { fileURLToPath } from 'node:url';
import { run, type ExecResult } from '../util/run.js';

/** Exit status and output of one CLI run. */
export type CliResult = ExecResult;

export async function runCli(
  args: string[],
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  const fromSource = import.meta.url.endsWith('.ts');
  const main = fileURLToPath(new URL(fromSource ? '../cli/main.ts' : '../cli/main.js', import.meta.url));
  const nodeArgs = fromSource ? ['--import', 'tsx', main, ...args] : [main, ...args];
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const r = await run([process.execPath, ...nodeArgs], { cwd: opts.cwd, timeoutMs });
  if (r.timedOut) throw new Error(`chokepoint ${args.join(' ')}: timed out after ${timeoutMs} ms`);
  return r;
}

/** The repository root (where profiles/ and schema/ live). */
export function repoRoot(): string {
  const fromSource = import.meta.url.endsWith('.ts');
  return fileURLToPath(new URL(fromSource ? '../../' : '../../../', import.meta.url));
}
