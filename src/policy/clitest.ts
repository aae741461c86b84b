/**
 * @module policy/clitest
 * Run the `chokepoint` CLI in a child process for tests: the compiled dist/src/cli/main.js when the
 * tests run from dist, or src/cli/main.ts through tsx when they run from source.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const fromSource = import.meta.url.endsWith('.ts');
  const main = fileURLToPath(new URL(fromSource ? '../cli/main.ts' : '../cli/main.js', import.meta.url));
  const nodeArgs = fromSource ? ['--import', 'tsx', main, ...args] : [main, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, nodeArgs, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`chokepoint ${args.join(' ')}: timed out`));
    }, opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** The repository root (where profiles/ and schema/ live). */
export function repoRoot(): string {
  const fromSource = import.meta.url.endsWith('.ts');
  return fileURLToPath(new URL(fromSource ? '../../' : '../../../', import.meta.url));
}
