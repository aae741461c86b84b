/**
 * @module lab/manage
 * A persistent lab for `chokepoint lab up|down|status`: creates the namespaces (lab/lab), starts
 * the lab services (lab/servers, plus the plug-ins the caller passes, e.g. the probe-server) detached
 * inside `net`, and records the state under
 * /run/chokepoint-lab/<name>/ (state.json, the test CA, the services' log) so that `status` and
 * `down` work from another process, and `down` cleans up after a crash (it deletes the namespaces
 * by name even without state). `up` on a healthy lab does nothing; on a half-broken one it tears
 * it down and builds it again.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLab, destroyLabByName, labAddrs, labNamespaces, type LabAddrs } from './lab.js';
import { alive, LabError, namespaceExists, requireRoot } from './ns.js';
import type { LabPlugin } from './servers.js';

export const STATE_ROOT = '/run/chokepoint-lab';

export interface LabState {
  version: 1;
  name: string;
  index: number;
  created: string;
  ns: { sub: string; box: string; net: string };
  addr: LabAddrs;
  /** PID of the services process (inside `net`), 0 when started without services. */
  servicesPid: number;
  services: { name: string; listen: string }[];
  ca: string;
  log: string;
}

export interface LabStatus {
  name: string;
  state: LabState | null;
  namespaces: Record<'sub' | 'box' | 'net', boolean>;
  servicesRunning: boolean;
  healthy: boolean;
}

const here = dirname(fileURLToPath(import.meta.url));

function stateDir(name: string): string {
  return join(STATE_ROOT, name);
}

function readState(name: string): LabState | null {
  try {
    return JSON.parse(readFileSync(join(stateDir(name), 'state.json'), 'utf8')) as LabState;
  } catch {
    return null;
  }
}

export function labStatus(name: string): LabStatus {
  const state = readState(name);
  const ns = labNamespaces(name);
  const namespaces = {
    sub: namespaceExists(ns.sub),
    box: namespaceExists(ns.box),
    net: namespaceExists(ns.net),
  };
  const servicesRunning = !!state && state.servicesPid > 0 && alive(state.servicesPid);
  const all = namespaces.sub && namespaces.box && namespaces.net;
  return {
    name,
    state,
    namespaces,
    servicesRunning,
    healthy: !!state && all && (state.servicesPid === 0 || servicesRunning),
  };
}

function servicesList(a: LabAddrs, plugins: readonly LabPlugin[]): { name: string; listen: string }[] {
  return [
    { name: 'https (any name, lab CA)', listen: `${a.net}:443, [${a.net6}]:443` },
    { name: 'http', listen: `${a.net}:80, [${a.net6}]:80` },
    { name: 'dns (A/AAAA → net)', listen: `${a.net}:53/udp, [${a.net6}]:53/udp` },
    { name: 'udp echo (QUIC responder)', listen: `${a.net}:443/udp, [${a.net6}]:443/udp` },
    ...plugins.map((p) => ({
      name: p.name,
      listen: p.listen({ host: a.net, host6: a.net6, host2: a.net2 }),
    })),
  ];
}

export interface UpOptions {
  name: string;
  index?: number;
  services?: boolean;
  /** Services of higher layers to run in `net` too (`chokepoint lab up` passes the probe-server). */
  plugins?: readonly LabPlugin[];
}

/** Bring the lab up (idempotent). Returns its state and whether anything was done. */
export async function labUp(o: UpOptions): Promise<{ state: LabState; created: boolean }> {
  requireRoot();
  const st = labStatus(o.name);
  if (st.healthy && st.state) return { state: st.state, created: false };
  await labDown(o.name); // half-broken or leftover: start clean
  const lab = await createLab({ name: o.name, index: o.index ?? 231 });
  const dir = stateDir(o.name);
  mkdirSync(dir, { recursive: true });
  const log = join(dir, 'services.log');
  let pid = 0;
  try {
    if (o.services !== false) {
      const isTs = import.meta.url.endsWith('.ts');
      const entry = join(here, isTs ? 'servers.ts' : 'servers.js');
      const node = isTs ? [process.execPath, '--import', 'tsx', entry] : [process.execPath, entry];
      const fd = openSync(log, 'a');
      const child = spawn(
        'ip',
        [
          'netns',
          'exec',
          lab.ns.net,
          ...node,
          dir,
          lab.addr.net,
          lab.addr.net6,
          lab.addr.net2,
          ...(o.plugins ?? []).map((p) => p.module),
        ],
        {
          detached: true,
          stdio: ['ignore', fd, fd],
          cwd: process.cwd(),
        },
      );
      closeSync(fd);
      child.unref();
      pid = child.pid ?? 0;
      const deadline = Date.now() + 60_000;
      while (true) {
        const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
        if (/^ready$/m.test(text)) break;
        if (!alive(pid) || Date.now() > deadline) {
          throw new LabError('ERR_LAB_SETUP', `lab services did not start:\n${text.slice(-2000)}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const state: LabState = {
      version: 1,
      name: lab.name,
      index: lab.index,
      created: new Date().toISOString(),
      ns: lab.ns,
      addr: lab.addr,
      servicesPid: pid,
      services: o.services === false ? [] : servicesList(lab.addr, o.plugins ?? []),
      ca: join(dir, 'ca.crt'),
      log,
    };
    writeFileSync(join(dir, 'state.json'), JSON.stringify(state, null, 2) + '\n');
    return { state, created: true };
  } catch (e) {
    await labDown(o.name);
    throw e;
  }
}

/** Tear the lab down: stop the services, delete the namespaces (by name), remove the state. */
export async function labDown(name: string): Promise<boolean> {
  requireRoot();
  const st = readState(name);
  let did = false;
  if (st && st.servicesPid > 0 && alive(st.servicesPid)) {
    try {
      process.kill(st.servicesPid, 'SIGTERM');
    } catch {
      /* gone */
    }
    did = true;
  }
  const ns = labNamespaces(name);
  if (Object.values(ns).some((n) => namespaceExists(n))) did = true;
  await destroyLabByName(name);
  if (existsSync(stateDir(name))) {
    rmSync(stateDir(name), { recursive: true, force: true });
    did = true;
  }
  return did;
}

export function formatStatus(s: LabStatus): string {
  const lines: string[] = [];
  const ns = Object.entries(s.namespaces)
    .map(([k, v]) => `${k}:${v ? 'up' : 'missing'}`)
    .join(' ');
  if (!s.state && !Object.values(s.namespaces).some(Boolean)) return `lab ${s.name}: down\n`;
  lines.push(`lab ${s.name}: ${s.healthy ? 'up' : 'BROKEN (run: chokepoint lab down, then up)'}  [${ns}]`);
  if (s.state) {
    const a = s.state.addr;
    lines.push(
      `  namespaces: ${s.state.ns.sub} (subscriber) — ${s.state.ns.box} (box, forwarding) — ${s.state.ns.net} (internet)`,
    );
    lines.push(
      `  sub ${a.sub} [${a.sub6}]  box ${a.boxSub}/${a.boxNet}  net ${a.net} [${a.net6}], ${a.net2} [${a.net26}]`,
    );
    lines.push(
      `  services (pid ${s.state.servicesPid || '-'}, ${s.servicesRunning ? 'running' : 'not running'}):`,
    );
    for (const x of s.state.services) lines.push(`    ${x.name.padEnd(28)} ${x.listen}`);
    lines.push(`  test CA: ${s.state.ca}`);
    lines.push(
      `  try: ip netns exec ${s.state.ns.sub} curl --cacert ${s.state.ca} --resolve example.com:443:${a.net} https://example.com/`,
    );
    lines.push(
      `       ip netns exec ${s.state.ns.sub} npx chokepoint probe --server ${a.net2}:443 --name example.com`,
    );
  }
  return lines.join('\n') + '\n';
}

export { labAddrs };
