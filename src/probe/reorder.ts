/**
 * @module probe/reorder
 * Out-of-order segments without raw sockets: the kernel of the probe's own host holds back the
 * first data segment of one test connection. An iptables mangle rule marks the 3rd packet
 * (SYN, ACK, first data) sent from the test connection's local port (`connbytes`), and a `prio`
 * qdisc on the egress device sends marked packets through a `netem` delay band while everything
 * else passes at once. The second segment therefore reaches the path first; the held-back one
 * follows `delayMs` later (the client's TCP may also retransmit it early: either way the path sees
 * segment 2 before segment 1). Needs root on the probe's host; installed per test connection and
 * always removed.
 */
import { run } from '../lab/netns.js';

export interface ReorderOptions {
  /** Destination address of the test connection. */
  dst: string;
  /** Local (source) port of the test connection. */
  localPort: number;
  delayMs?: number;
  /** fwmark used (default 0x4350 + low bits of the port). */
  mark?: number;
}

export interface Reorder {
  dev: string;
  remove(): Promise<void>;
}

/** Egress device towards `dst` (`ip route get`). */
export async function egressDevice(dst: string): Promise<string> {
  const r = await run(['ip', 'route', 'get', dst], { timeoutMs: 5000 });
  const m = /\bdev (\S+)/.exec(r.stdout);
  if (r.code !== 0 || !m) throw new Error(`no route to ${dst}: ${r.stderr.trim()}`);
  return m[1];
}

export async function installReorder(o: ReorderOptions): Promise<Reorder> {
  const dev = await egressDevice(o.dst);
  const v6 = o.dst.includes(':');
  const ipt = v6 ? 'ip6tables' : 'iptables';
  const mark = String(o.mark ?? 0x43500000 + (o.localPort & 0xffff));
  const rule = ['-p', 'tcp', '-d', o.dst, '--sport', String(o.localPort), '-m', 'connbytes', '--connbytes', '3:3',
    '--connbytes-dir', 'original', '--connbytes-mode', 'packets', '-j', 'MARK', '--set-mark', mark];
  const cleanups: string[][] = [];
  const remove = async () => {
    for (const c of cleanups.reverse()) await run(c, { timeoutMs: 5000 });
    cleanups.length = 0;
  };
  try {
    const q = await run(['tc', 'qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'prio', 'bands', '3', 'priomap',
      ...Array(16).fill('0')], { timeoutMs: 5000 });
    if (q.code !== 0) throw new Error(`tc qdisc on ${dev}: ${q.stderr.trim()}`);
    cleanups.push(['tc', 'qdisc', 'del', 'dev', dev, 'root']);
    await run(['tc', 'qdisc', 'add', 'dev', dev, 'parent', '1:2', 'handle', '20:', 'netem', 'delay', `${o.delayMs ?? 80}ms`],
      { check: true, timeoutMs: 5000 });
    await run(['tc', 'filter', 'add', 'dev', dev, 'parent', '1:', 'protocol', 'all', 'prio', '1', 'handle', mark, 'fw',
      'flowid', '1:2'], { check: true, timeoutMs: 5000 });
    await run([ipt, '-w', '-t', 'mangle', '-A', 'OUTPUT', ...rule], { check: true, timeoutMs: 5000 });
    cleanups.push([ipt, '-w', '-t', 'mangle', '-D', 'OUTPUT', ...rule]);
  } catch (e) {
    await remove();
    throw e;
  }
  return { dev, remove };
}
