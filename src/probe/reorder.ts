/**
 * @module probe/reorder
 * Out-of-order segments without raw sockets: the kernel of the probe's own host holds back the
 * first data segment of one test connection. An iptables mangle rule marks the 2nd and 3rd packets
 * (SYN, ACK, first data) sent from the test connection's local port (`connbytes`), and an `htb`
 * qdisc on the egress device sends marked packets (a 4-instruction cls_bpf filter on the mark) through a class whose rate is
 * so low that the segment waits about `delayMs`, while everything else passes at once (a default
 * class at 10 Gbit/s). Only htb, cls_bpf and iptables are needed: no netem or prio, which many kernels
 * (this project's CI included) do not have. The second segment therefore reaches the path first;
 * the held-back one follows (the client's TCP may also retransmit it early: either way the path
 * sees segment 2 before segment 1). Needs root on the probe's host; replaces the egress device's
 * root qdisc for the duration of one test connection and always removes it afterwards.
 */
import { run } from '../util/run.js';

export interface ReorderOptions {
  /** Destination address of the test connection. */
  dst: string;
  /** Local (source) port of the test connection. */
  localPort: number;
  delayMs?: number;
  /** Size of the segment to hold back (payload bytes; informational). */
  segmentBytes?: number;
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

/**
 * Classic BPF for cls_bpf that matches skb->mark == mark (tc's u32 `match mark` is not honoured
 * everywhere; cls_bpf is): `ld #mark` (ancillary load SKF_AD_OFF + SKF_AD_MARK), `jeq #mark`,
 * `ret #-1` (match: use flowid), `ret #0` (no match). Opcodes from linux/filter.h.
 */
export function markBpf(mark: number): string {
  const LD_W_ABS = 0x20;
  const JEQ_K = 0x15;
  const RET_K = 0x06;
  const AD_MARK = (0x100000000 - 0x1000 + 20) >>> 0; // SKF_AD_OFF + SKF_AD_MARK (20)
  const ins = [
    [LD_W_ABS, 0, 0, AD_MARK],
    [JEQ_K, 0, 1, mark >>> 0],
    [RET_K, 0, 0, 0xffffffff],
    [RET_K, 0, 0, 0],
  ];
  return `${ins.length},${ins.map((i) => i.join(' ')).join(',')}`;
}

export async function installReorder(o: ReorderOptions): Promise<Reorder> {
  const dev = await egressDevice(o.dst);
  const v6 = o.dst.includes(':');
  const ipt = v6 ? 'ip6tables' : 'iptables';
  const mark = String(o.mark ?? 0x43500000 + (o.localPort & 0xffff));
  const rule = [
    '-p',
    'tcp',
    '-d',
    o.dst,
    '--sport',
    String(o.localPort),
    '-m',
    'connbytes',
    '--connbytes',
    '2:3',
    '--connbytes-dir',
    'original',
    '--connbytes-mode',
    'packets',
    '-j',
    'MARK',
    '--set-mark',
    mark,
  ];
  const cleanups: string[][] = [];
  const remove = async () => {
    for (const c of cleanups.reverse()) await run(c, { timeoutMs: 5000 });
    cleanups.length = 0;
  };
  try {
    const q = await run(['tc', 'qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '10'], {
      timeoutMs: 5000,
    });
    if (q.code !== 0) throw new Error(`tc qdisc on ${dev}: ${q.stderr.trim()}`);
    cleanups.push(['tc', 'qdisc', 'del', 'dev', dev, 'root']);
    await run(
      [
        'tc',
        'class',
        'add',
        'dev',
        dev,
        'parent',
        '1:',
        'classid',
        '1:10',
        'htb',
        'rate',
        '10gbit',
        'burst',
        '1m',
        'cburst',
        '1m',
      ],
      { check: true, timeoutMs: 5000 },
    );
    // htb lets a packet through whenever the class has any tokens left, so the handshake's final
    // ACK (packet 2, also marked) goes out at once and leaves the class in debt: the first data
    // segment (packet 3) then waits until the debt is paid, ≈ ACK wire size / rate = delayMs.
    const ackWire = v6 ? 86 : 66;
    const rate = Math.max(8, Math.ceil((ackWire * 8 * 1000) / (o.delayMs ?? 100)));
    await run(
      [
        'tc',
        'class',
        'add',
        'dev',
        dev,
        'parent',
        '1:',
        'classid',
        '1:20',
        'htb',
        'rate',
        `${rate}bit`,
        'ceil',
        `${rate}bit`,
        'burst',
        '1',
        'cburst',
        '1',
      ],
      { check: true, timeoutMs: 5000 },
    );
    await run(
      [
        'tc',
        'filter',
        'add',
        'dev',
        dev,
        'parent',
        '1:',
        'protocol',
        'all',
        'prio',
        '1',
        'bpf',
        'bytecode',
        markBpf(Number(mark)),
        'flowid',
        '1:20',
      ],
      { check: true, timeoutMs: 5000 },
    );
    await run([ipt, '-w', '-t', 'mangle', '-A', 'OUTPUT', ...rule], { check: true, timeoutMs: 5000 });
    cleanups.push([ipt, '-w', '-t', 'mangle', '-D', 'OUTPUT', ...rule]);
  } catch (e) {
    await remove();
    throw e;
  }
  return { dev, remove };
}
