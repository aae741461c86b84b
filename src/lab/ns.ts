/**
 * @module lab/ns
 * Thin, typed wrappers over iproute2 for network namespaces: run a command inside a namespace and
 * collect its output (through util/run), spawn a long-running process inside one, list and delete
 * namespaces, kill every process inside one. No shell is ever involved: commands are argv arrays.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { ChokepointError } from '../util/errors.js';
import { run, type ExecOptions, type ExecResult } from '../util/run.js';

/** The lab could not be set up or used. Codes: ERR_LAB_SETUP, ERR_LAB_NOT_ROOT. */
export class LabError extends ChokepointError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** argv prefix that runs a command inside namespace `ns` (or as is when ns is undefined). */
export function inNs(ns: string | undefined, cmd: string[]): string[] {
  return ns ? ['ip', 'netns', 'exec', ns, ...cmd] : cmd;
}

/** Run a command inside a namespace. */
export function execIn(ns: string, cmd: string[], opts?: ExecOptions): Promise<ExecResult> {
  return run(inNs(ns, cmd), opts);
}

/** Spawn a long-running process inside a namespace (stdio defaults to pipes). */
export function spawnIn(ns: string, cmd: string[], opts: SpawnOptions = {}): ChildProcess {
  const argv = inNs(ns, cmd);
  return spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

/** Names of the network namespaces that `ip netns` knows (bind mounts under /run/netns). */
export function listNamespaces(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
}

export function namespaceExists(ns: string): boolean {
  return listNamespaces().includes(ns);
}

/** PIDs of processes whose network namespace is `ns`. */
export async function pidsIn(ns: string): Promise<number[]> {
  const r = await run(['ip', 'netns', 'pids', ns], { timeoutMs: 10_000 });
  if (r.code !== 0) return [];
  return r.stdout
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 1 && n !== process.pid);
}

/** SIGTERM then SIGKILL every process inside `ns` (never our own process). */
export async function killAllIn(ns: string, graceMs = 500): Promise<void> {
  let pids = await pidsIn(ns);
  if (pids.length === 0) return;
  for (const p of pids) {
    try {
      process.kill(p, 'SIGTERM');
    } catch {
      /* already gone */
    }
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    pids = pids.filter((p) => alive(p));
    if (pids.length === 0) return;
  }
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kill processes inside `ns`, then delete it. Idempotent: a missing namespace is not an error. */
export async function deleteNamespace(ns: string): Promise<void> {
  if (!namespaceExists(ns)) return;
  await killAllIn(ns);
  await run(['ip', 'netns', 'del', ns], { timeoutMs: 10_000 });
}

/** Throw a clear error if not running as root (namespaces and iptables need CAP_NET_ADMIN). */
export function requireRoot(): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new LabError(
      'ERR_LAB_NOT_ROOT',
      'the lab needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create namespaces',
    );
  }
}
