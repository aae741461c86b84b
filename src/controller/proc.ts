/**
 * @module controller/proc
 * Test helper: run `chokepoint controller serve` as a real child process on a free 127.0.0.1 port
 * and wait until it answers, or until it dies (for crash tests).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from './testutil.js';

export interface ServeProc {
  url: string;
  child: ChildProcess;
  stderr(): string;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

export async function serveProcess(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServeProc> {
  const fromSource = import.meta.url.endsWith('.ts');
  const main = fileURLToPath(new URL(fromSource ? '../cli/main.ts' : '../cli/main.js', import.meta.url));
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      ...(fromSource ? ['--import', 'tsx'] : []),
      main,
      'controller',
      'serve',
      ...args,
      '--listen',
      `127.0.0.1:${port}`,
    ],
    {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) =>
    child.once('exit', (code, sig) => r(code ?? (sig ? -1 : null))),
  );
  const url = `http://127.0.0.1:${port}`;
  // the server prints its address once it listens
  await new Promise<void>((resolve, reject) => {
    const onData = () => {
      if (err.includes('controller listening on')) {
        child.stderr!.off('data', onData);
        resolve();
      }
    };
    child.stderr!.on('data', onData);
    exited.then((c) => reject(new Error(`controller exited (${c}) before listening: ${err}`)));
  });
  return {
    url,
    child,
    stderr: () => err,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}
