/**
 * @module enforce/testing/harness
 * Shared setup for the inline tests and the inline benchmark: a lab (lab/netns), a test certificate,
 * the HTTPS server in `net`, a policy file, and `chokepoint enforce` running in `box` (a real child
 * process, so it can be killed with SIGKILL). Clients: curl (real) and ch-client (real ClientHellos,
 * shaped). Everything is torn down by `close()`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { createLab, type Lab } from '../../lab/netns.js';
import { eveVerdictView } from '../../testutil/schema.js';

const here = fileURLToPath(new URL('.', import.meta.url));
export const MAIN_JS = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
export const SERVER_JS = join(here, 'lab-https.js');
export const CH_CLIENT_JS = join(here, 'ch-client.js');
/** Plain TCP sink in `net` (reads, never answers). */
export const SINK_PORT = 4444;

/**
 * The lab tests' smallest policy: allow by default, RST-block one name (`blocked-rst.example`); no
 * inspection block, so the box runs with the default hold settings.
 */
export const BLOCK_RST_POLICY = `version: 1
default: allow
rules:
  - id: block-rst
    action: block
    method: rst
    match:
      host:
        exact: [blocked-rst.example]
`;

export interface Enforce {
  child: ChildProcess;
  stderr: () => string;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
}

export interface InlineLab {
  lab: Lab;
  dir: string;
  policy: string;
  eve: string;
  chain: string;
  queue: number;
  server: string;
  /** Everything the lab server printed so far. */
  serverLog(): string;
  startEnforce(extra?: string[], env?: Record<string, string>): Promise<Enforce>;
  iptablesSave(): Promise<string>;
  close(): Promise<void>;
}

function waitFor(
  child: ChildProcess,
  stream: 'stdout' | 'stderr',
  re: RegExp,
  ms: number,
  buf: { text: string },
): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(
      () => reject(new Error(`timeout waiting for ${re} (${stream}): ${buf.text.slice(-500)}`)),
      ms,
    );
    const on = (): void => {
      if (re.test(buf.text)) {
        clearTimeout(t);
        resolve();
      }
    };
    child[stream]!.on('data', on);
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`process exited (${code}) before ${re}: ${buf.text.slice(-1000)}`));
    });
    on();
  });
}

export async function setupInlineLab(name: string, policyYaml: string): Promise<InlineLab> {
  const lab = await createLab({ name });
  const dir = mkdtempSync(join(tmpdir(), 'cp-inline-'));
  const policy = join(dir, 'policy.yaml');
  const eve = join(dir, 'eve.json');
  const chain = `CP${name.toUpperCase()}`.slice(0, 28);
  const queue = 1000 + Math.floor(Math.random() * 60000);
  let serverText = { text: '' };
  try {
    writeFileSync(policy, policyYaml);
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    await lab.exec('net', ['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
      '-subj', '/CN=chokepoint-lab', '-days', '2'], { check: true, timeoutMs: 30_000 }); // prettier-ignore
    const srv = lab.spawn('net', [process.execPath, SERVER_JS, '443', cert, key, String(SINK_PORT)]);
    const sbuf = { text: '' };
    srv.stdout!.on('data', (d: Buffer) => (sbuf.text += d.toString()));
    srv.stderr!.on('data', (d: Buffer) => (sbuf.text += d.toString()));
    await waitFor(srv, 'stdout', /listening/, 10_000, sbuf);
    serverText = sbuf;
  } catch (e) {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const running = new Set<ChildProcess>();
  const il: InlineLab = {
    lab,
    dir,
    policy,
    eve,
    chain,
    queue,
    server: lab.addr.net,
    serverLog: () => serverText.text,
    async startEnforce(extra: string[] = [], env?: Record<string, string>): Promise<Enforce> {
      const child = lab.spawn('box', [process.execPath, MAIN_JS, 'enforce', '--policy', policy, '--eve', eve,
        '--chain', chain, '--queues', String(queue), ...extra],
        env ? { env: { ...process.env, ...env } } : undefined); // prettier-ignore
      running.add(child);
      const buf = { text: '' };
      child.stderr!.on('data', (d: Buffer) => (buf.text += d.toString()));
      child.stdout!.on('data', () => {});
      const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      exited.then(() => running.delete(child));
      await waitFor(child, 'stderr', /bound/, 20_000, buf);
      return {
        child,
        stderr: () => buf.text,
        async stop() {
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
          const c = await exited;
          clearTimeout(t);
          return c;
        },
        async kill9() {
          child.kill('SIGKILL');
          await exited;
        },
      };
    },
    async iptablesSave(): Promise<string> {
      const v4 = (await lab.exec('box', ['iptables-save'], { timeoutMs: 10_000 })).stdout;
      const v6 = (await lab.exec('box', ['ip6tables-save'], { timeoutMs: 10_000 })).stdout;
      return v4 + v6;
    },
    async close(): Promise<void> {
      for (const c of running) c.kill('SIGKILL');
      await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return il;
}

export interface CurlResult {
  code: number;
  http: number;
  size: number;
  /** Seconds: handshake done, and total. */
  pretransfer: number;
  total: number;
  localPort: number;
}

/** `curl` from sub to the lab server under `sni`: download `bytes` (GET) or upload them (PUT). */
export async function curl(
  il: InlineLab,
  sni: string,
  bytes: number,
  opts: { upload?: boolean; maxTime?: number; limitRate?: string; ipv6?: boolean } = {},
): Promise<CurlResult> {
  const addr = opts.ipv6 ? `[${il.lab.addr.net6}]` : il.server;
  const args = ['curl', '-sk', '--resolve', `${sni}:443:${addr}`, '-o', '/dev/null',
    '-w', '%{http_code} %{size_download} %{size_upload} %{time_pretransfer} %{time_total} %{local_port}',
    '--max-time', String(opts.maxTime ?? 30)]; // prettier-ignore
  if (opts.limitRate) args.push('--limit-rate', opts.limitRate);
  if (opts.upload) {
    const upFile = join(il.dir, `up-${bytes}.bin`);
    writeFileSync(upFile, Buffer.alloc(bytes, 0x62));
    args.push('-T', upFile, `https://${sni}/upload`);
  } else args.push(`https://${sni}/bytes/${bytes}`);
  const r = await il.lab.exec('sub', args, { timeoutMs: ((opts.maxTime ?? 30) + 10) * 1000 });
  const [http, down, up, pre, total, port] = r.stdout.trim().split(/\s+/).map(Number);
  return { code: r.code, http, size: opts.upload ? up : down, pretransfer: pre, total, localPort: port };
}

/** Goodput in bit/s after the initial bucket: (size − burst) / (total − pretransfer). */
export function policedGoodput(r: CurlResult, burst: number): number {
  return ((r.size - burst) * 8) / Math.max(1e-3, r.total - r.pretransfer);
}

export interface ChResult {
  result: string;
  bytes: number;
  ms: number;
  chLen: number;
  localPort: number;
}

export async function chClient(
  il: InlineLab,
  sni: string,
  mode: string,
  arg?: string,
  port = 443,
  /** Server address (default the lab server's IPv4 address; `il.lab.addr.net6` for IPv6). */
  host = il.server,
): Promise<ChResult> {
  const cmd = [process.execPath, CH_CLIENT_JS, host, String(port), sni, mode];
  if (arg !== undefined) cmd.push(arg);
  const r = await il.lab.exec('sub', cmd, { timeoutMs: 20_000 });
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as ChResult;
}

export function readEve(il: InlineLab): Array<Record<string, unknown>> {
  let lines: string[];
  try {
    lines = readFileSync(il.eve, 'utf8').split('\n');
  } catch {
    return [];
  }
  lines.pop(); // '' after the last newline, or a line still being written
  // outside the catch: a line that fails Suricata's EVE schema or ours fails the test
  return lines.filter(Boolean).map(eveVerdictView);
}

/**
 * EVE lines once `done(lines)` holds, polling up to `ms` (the workers flush every 100 ms; a loaded
 * machine may take longer). Returns the last read either way.
 */
export async function waitEve(
  il: InlineLab,
  done: (ev: Array<Record<string, unknown>>) => boolean,
  ms = 5000,
): Promise<Array<Record<string, unknown>>> {
  const end = Date.now() + ms;
  let ev = readEve(il);
  while (!done(ev) && Date.now() < end) {
    await sleep(100);
    ev = readEve(il);
  }
  return ev;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
