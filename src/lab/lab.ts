/**
 * @module lab/lab
 * A three-namespace lab on one machine: `sub` (the subscriber, where clients and the probe run)
 * —veth— `box` (a forwarding router: where `chokepoint enforce` or any iptables censor runs, in its
 * FORWARD chain) —veth— `net` (the "internet", where servers run).
 *
 * Addresses come from blocks used only inside these namespaces (10.231.<index>.0/24 and
 * fd00:cafe:<index>::/48); the namespaces have no link to the host, so no lab packet can leave them.
 * Offloads that merge or split segments (GRO, GSO, TSO, LRO) are turned off on every veth when
 * `ethtool` is present, and TCP autocorking is off in `sub`, so a ClientHello the client writes in
 * two pieces crosses the box as two segments (the evasion tests depend on it).
 *
 * `destroy()` kills everything running in the namespaces and deletes them; it is idempotent.
 */
import { randomBytes } from 'node:crypto';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { deleteNamespace, execIn, killAllIn, LabError, requireRoot, spawnIn } from './ns.js';
import { run, type ExecOptions, type ExecResult } from '../util/run.js';

export { LabError } from './ns.js';
export type { ExecOptions, ExecResult } from '../util/run.js';

export interface LabOptions {
  /** Short, unique per run (≤ 11 chars, [a-z0-9]); default `cp` + 6 random hex digits. */
  name?: string;
  /** Picks the address block 10.231.<index>.0/24, fd00:cafe:<index hex>::/48 (0–255; default random). */
  index?: number;
  /** MTU of both links (default 1500). */
  mtu?: number;
  /** Turn segmentation/aggregation offloads off on the veths (default true; needs ethtool). */
  disableOffloads?: boolean;
}

export type LabNs = 'sub' | 'box' | 'net';

export interface LabAddrs {
  /** Subscriber (client) address. */
  sub: string;
  /** Box address on the subscriber link (the subscriber's default gateway). */
  boxSub: string;
  /** Box address on the internet link (the servers' default gateway). */
  boxNet: string;
  /** Main server address in `net`. */
  net: string;
  /** Second server address in `net` (e.g. a control server or the probe-server). */
  net2: string;
  sub6: string;
  boxSub6: string;
  boxNet6: string;
  net6: string;
  net26: string;
  /** Prefixes, for iptables rules: the subscriber link and the internet link. */
  subPrefix: string;
  netPrefix: string;
  subPrefix6: string;
  netPrefix6: string;
}

export interface Lab {
  name: string;
  index: number;
  ns: Record<LabNs, string>;
  addr: LabAddrs;
  /** Interface names inside each namespace. */
  ifaces: { sub: string; boxSub: string; boxNet: string; net: string };
  /** Whether offloads were turned off (false when ethtool is missing). */
  offloadsOff: boolean;
  /** Run a command inside a lab namespace and collect its output. */
  exec(ns: LabNs, cmd: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Start a long-running process inside a lab namespace; it is killed by destroy(). */
  spawn(ns: LabNs, cmd: string[], opts?: SpawnOptions): ChildProcess;
  /** Kill every process in the namespaces and delete them. Idempotent. */
  destroy(): Promise<void>;
}

const NAME_RE = /^[a-z][a-z0-9]{0,10}$/;

/** Address plan for a lab index (pure; exported for `lab status` and tests). */
export function labAddrs(index: number): LabAddrs {
  const v4 = `10.231.${index}`;
  const v6 = `fd00:cafe:${index.toString(16)}`;
  return {
    sub: `${v4}.1`,
    boxSub: `${v4}.2`,
    boxNet: `${v4}.17`,
    net: `${v4}.18`,
    net2: `${v4}.19`,
    sub6: `${v6}:1::1`,
    boxSub6: `${v6}:1::2`,
    boxNet6: `${v6}:2::1`,
    net6: `${v6}:2::2`,
    net26: `${v6}:2::3`,
    subPrefix: `${v4}.0/30`,
    netPrefix: `${v4}.16/28`,
    subPrefix6: `${v6}:1::/64`,
    netPrefix6: `${v6}:2::/64`,
  };
}

export function labNamespaces(name: string): Record<LabNs, string> {
  return { sub: `${name}-sub`, box: `${name}-box`, net: `${name}-net` };
}

let ethtoolPresent: boolean | undefined;
async function haveEthtool(): Promise<boolean> {
  if (ethtoolPresent === undefined) {
    try {
      ethtoolPresent = (await run(['ethtool', '--version'], { timeoutMs: 5000 })).code === 0;
    } catch {
      ethtoolPresent = false;
    }
  }
  return ethtoolPresent;
}

/** Create the three namespaces, links, addresses and routes. On failure everything is removed. */
export async function createLab(opts: LabOptions = {}): Promise<Lab> {
  requireRoot();
  const name = opts.name ?? `cp${randomBytes(3).toString('hex')}`;
  if (!NAME_RE.test(name))
    throw new LabError('ERR_LAB_SETUP', `bad lab name '${name}' (want [a-z][a-z0-9]{0,10})`);
  const index = opts.index ?? 1 + (randomBytes(1)[0] % 254);
  if (!Number.isInteger(index) || index < 0 || index > 255) {
    throw new LabError('ERR_LAB_SETUP', `bad lab index ${index} (want 0–255)`);
  }
  const mtu = opts.mtu ?? 1500;
  const ns = labNamespaces(name);
  const addr = labAddrs(index);
  const ifaces = { sub: 'veth-box', boxSub: 'veth-sub', boxNet: 'veth-net', net: 'veth-box' };
  const children = new Set<ChildProcess>();
  let destroyed = false;

  const destroy = async (): Promise<void> => {
    destroyed = true;
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
    children.clear();
    for (const n of Object.values(ns)) await deleteNamespace(n);
  };

  const sh = (n: LabNs, cmd: string[]) => execIn(ns[n], cmd, { check: true, timeoutMs: 15_000 });
  let offloadsOff = false;
  try {
    for (const n of Object.values(ns)) {
      // a leftover from a crashed run with the same name: remove it first
      await deleteNamespace(n);
      await run(['ip', 'netns', 'add', n], { check: true });
    }
    for (const n of ['sub', 'box', 'net'] as LabNs[]) {
      await sh(n, ['ip', 'link', 'set', 'lo', 'up']);
      await sh(n, ['sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
    }
    // veths are created directly inside their namespaces: nothing ever appears in the host namespace
    await run(
      [
        'ip',
        'link',
        'add',
        ifaces.boxSub,
        'netns',
        ns.box,
        'type',
        'veth',
        'peer',
        'name',
        ifaces.sub,
        'netns',
        ns.sub,
      ],
      { check: true },
    );
    await run(
      [
        'ip',
        'link',
        'add',
        ifaces.boxNet,
        'netns',
        ns.box,
        'type',
        'veth',
        'peer',
        'name',
        ifaces.net,
        'netns',
        ns.net,
      ],
      { check: true },
    );
    const links: [LabNs, string][] = [
      ['sub', ifaces.sub],
      ['box', ifaces.boxSub],
      ['box', ifaces.boxNet],
      ['net', ifaces.net],
    ];
    for (const [n, dev] of links) await sh(n, ['ip', 'link', 'set', dev, 'mtu', String(mtu), 'up']);
    if (opts.disableOffloads !== false && (await haveEthtool())) {
      offloadsOff = true;
      for (const [n, dev] of links) {
        // each feature separately: a feature the driver lacks must not stop the others
        for (const f of ['gro', 'gso', 'tso', 'lro']) {
          await execIn(ns[n], ['ethtool', '-K', dev, f, 'off'], { timeoutMs: 5000 });
        }
      }
    }
    await sh('sub', ['ip', 'addr', 'add', `${addr.sub}/30`, 'dev', ifaces.sub]);
    await sh('box', ['ip', 'addr', 'add', `${addr.boxSub}/30`, 'dev', ifaces.boxSub]);
    await sh('box', ['ip', 'addr', 'add', `${addr.boxNet}/28`, 'dev', ifaces.boxNet]);
    await sh('net', ['ip', 'addr', 'add', `${addr.net}/28`, 'dev', ifaces.net]);
    await sh('net', ['ip', 'addr', 'add', `${addr.net2}/28`, 'dev', ifaces.net]);
    await sh('sub', ['ip', '-6', 'addr', 'add', `${addr.sub6}/64`, 'dev', ifaces.sub, 'nodad']);
    await sh('box', ['ip', '-6', 'addr', 'add', `${addr.boxSub6}/64`, 'dev', ifaces.boxSub, 'nodad']);
    await sh('box', ['ip', '-6', 'addr', 'add', `${addr.boxNet6}/64`, 'dev', ifaces.boxNet, 'nodad']);
    await sh('net', ['ip', '-6', 'addr', 'add', `${addr.net6}/64`, 'dev', ifaces.net, 'nodad']);
    await sh('net', ['ip', '-6', 'addr', 'add', `${addr.net26}/64`, 'dev', ifaces.net, 'nodad']);
    await sh('sub', ['ip', 'route', 'add', 'default', 'via', addr.boxSub]);
    await sh('net', ['ip', 'route', 'add', 'default', 'via', addr.boxNet]);
    await sh('sub', ['ip', '-6', 'route', 'add', 'default', 'via', addr.boxSub6]);
    await sh('net', ['ip', '-6', 'route', 'add', 'default', 'via', addr.boxNet6]);
    await sh('box', ['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    // small writes must leave the client as separate segments (split-ClientHello evasions)
    await execIn(ns.sub, ['sysctl', '-qw', 'net.ipv4.tcp_autocorking=0'], { timeoutMs: 5000 });
    // fail fast if the routes are not there
    const r = await execIn(ns.sub, ['ip', 'route', 'get', addr.net], { timeoutMs: 5000 });
    if (r.code !== 0) throw new LabError('ERR_LAB_SETUP', `lab ${name}: no route to ${addr.net}`);
  } catch (e) {
    await destroy();
    if (e instanceof LabError) throw e;
    throw new LabError('ERR_LAB_SETUP', `lab ${name}: setup failed: ${(e as Error).message}`, { cause: e });
  }

  return {
    name,
    index,
    ns,
    addr,
    ifaces,
    offloadsOff,
    exec: (n, cmd, o) => execIn(ns[n], cmd, o),
    spawn: (n, cmd, o) => {
      if (destroyed) throw new LabError('ERR_LAB_SETUP', `lab ${name} is destroyed`);
      const c = spawnIn(ns[n], cmd, o);
      children.add(c);
      c.on('exit', () => children.delete(c));
      return c;
    },
    destroy,
  };
}

/** Remove the namespaces of a lab by name (for cleanup after a crash, without a Lab object). */
export async function destroyLabByName(name: string): Promise<void> {
  for (const n of Object.values(labNamespaces(name))) {
    await killAllIn(n);
    await deleteNamespace(n);
  }
}
