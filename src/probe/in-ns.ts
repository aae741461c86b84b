/**
 * @module probe/in-ns
 * Run the probe or a probe-server inside a network namespace (a lab's `sub` or `net`) from a
 * process that lives elsewhere (a test): a child Node process under `ip netns exec` (probe/child).
 * Works from compiled JavaScript and under tsx alike.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { ProbeOptions, ProbeReport } from './probe.js';

const here = dirname(fileURLToPath(import.meta.url));
const isTs = import.meta.url.endsWith('.ts');

function childArgv(args: string[]): string[] {
  const entry = join(here, isTs ? 'child.ts' : 'child.js');
  return isTs ? [process.execPath, '--import', 'tsx', entry, ...args] : [process.execPath, entry, ...args];
}

export interface InNsOptions {
  /** Kill the probe after this many ms (default 300000). */
  timeoutMs?: number;
  /** Receive the probe's progress lines. */
  onProgress?: (line: string) => void;
}

/** Run `runProbe(opts)` inside namespace `ns` and return its report. */
export function runProbeInNs(
  ns: string,
  opts: Omit<ProbeOptions, 'onProgress'>,
  o: InNsOptions = {},
): Promise<ProbeReport> {
  const argv = ['ip', 'netns', 'exec', ns, ...childArgv(['probe', JSON.stringify(opts)])];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d: Buffer) => {
      err += d;
      if (o.onProgress) for (const l of d.toString().split('\n')) if (l) o.onProgress(l);
    });
    const t = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 300_000);
    child.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(t);
      if (code !== 0) return reject(new Error(`probe in ${ns} exited ${code}: ${err.slice(-2000)}`));
      try {
        resolve(JSON.parse(out) as ProbeReport);
      } catch (e) {
        reject(new Error(`probe in ${ns}: bad output: ${(e as Error).message}\n${out.slice(0, 500)}`));
      }
    });
  });
}

export interface NsProbeServer {
  host: string;
  port: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Start a probe-server inside namespace `ns` on host:port and wait until it listens. */
export function startProbeServerInNs(ns: string, host: string, port: number): Promise<NsProbeServer> {
  const argv = ['ip', 'netns', 'exec', ns, ...childArgv(['server', host, String(port)])];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`probe-server in ${ns} did not start: ${err}`));
    }, 30_000);
    child.on('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`probe-server in ${ns} exited ${code}: ${err}`));
    });
    child.stdout.once('data', (d: Buffer) => {
      clearTimeout(t);
      const m = /listening (\S+):(\d+)/.exec(d.toString());
      if (!m) return reject(new Error(`probe-server in ${ns}: unexpected output ${d}`));
      resolve({
        host,
        port: Number(m[2]),
        child,
        stop: () =>
          new Promise<void>((r) => {
            if (child.exitCode !== null || child.signalCode !== null) return r();
            const k = setTimeout(() => child.kill('SIGKILL'), 2000);
            child.once('exit', () => {
              clearTimeout(k);
              r();
            });
            child.kill('SIGTERM');
          }),
      });
    });
  });
}
