/**
 * @module util/run
 * The project's one process runner: run a command (an argv array, never a shell), feed it stdin,
 * collect stdout and stderr, kill it after a timeout. Used by the lab, the probe, the test helpers
 * and anything else that shells out to iproute2, iptables, openssl, tc, ss or the CLI itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { ChokepointError } from './errors.js';

/** Result of a finished command. `code` is the exit status, or -1 when killed (timeout/signal). */
export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
  /** The signal that ended it (e.g. `SIGSEGV`, or `SIGKILL` after a timeout), else null. */
  signal: NodeJS.Signals | null;
  /** Whether it was killed for running past `timeoutMs`. */
  timedOut: boolean;
}

export interface ExecOptions {
  /** Kill the command after this many ms (default 30000); the result then has code -1. */
  timeoutMs?: number;
  /** Bytes or text written to stdin, then stdin is closed. */
  input?: string | Uint8Array;
  /** Reject with {@link CommandError} `ERR_CMD_FAILED` on a non-zero exit status (default false). */
  check?: boolean;
  /** Extra environment variables (added to this process's environment). */
  env?: NodeJS.ProcessEnv;
  /** Working directory. */
  cwd?: string;
}

/**
 * A command could not be started (`ERR_CMD_SPAWN`: missing executable, bad cwd) or, with
 * `check`, exited non-zero (`ERR_CMD_FAILED`, the message carries its stderr).
 */
export class CommandError extends ChokepointError {
  constructor(
    code: 'ERR_CMD_SPAWN' | 'ERR_CMD_FAILED',
    message: string,
    readonly result?: ExecResult,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** Run `cmd` (argv) and collect its output. Rejects only when it cannot start, or with `check`. */
export function run(cmd: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd[0], cmd.slice(1), {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: opts.env ? { ...process.env, ...opts.env } : process.env,
        cwd: opts.cwd,
      });
    } catch (e) {
      reject(
        new CommandError('ERR_CMD_SPAWN', `cannot run ${cmd[0]}: ${(e as Error).message}`, undefined, {
          cause: e,
        }),
      );
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(
        new CommandError('ERR_CMD_SPAWN', `cannot run ${cmd[0]}: ${e.message}`, undefined, { cause: e }),
      );
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const res: ExecResult = {
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + (timedOut ? `\n[killed after ${timeoutMs} ms]` : ''),
        code: code ?? -1,
        signal,
        timedOut,
      };
      if (opts.check && res.code !== 0) {
        reject(
          new CommandError(
            'ERR_CMD_FAILED',
            `command failed (${res.code}): ${cmd.join(' ')}\n${res.stderr.trim()}`,
            res,
          ),
        );
      } else resolve(res);
    });
    child.stdin!.on('error', () => {
      /* the command may exit before reading stdin */
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}
