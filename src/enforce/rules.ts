/**
 * @module enforce/rules
 * The iptables rules of the inline engine: what they are (pure functions that return argv lists, so
 * `--no-install` can print them and tests can read them) and installing / removing them.
 *
 * Chains of our own, jumped to from the top of FORWARD:
 * - mangle/<CHAIN>: connections whose conntrack mark (our bits) is still 0 go to NFQUEUE for their
 *   first N packets (`connbytes`), with `--queue-bypass` (no listener → accept); connections marked
 *   "police" (userspace throttling) or "inspect" (still being named: past `connbytes`, however many
 *   segments the client splits its first bytes into) go to NFQUEUE for every packet. The undecided
 *   ones (mark 0 within `connbytes`, and "inspect") enter through mangle/<CHAIN>-U
 *   ({@link undecidedChain}), where a bare TCP ACK — flags exactly ACK, no payload: IPv4 without
 *   options whose total length is 20 + 4·doff, IPv6 whose next header is TCP and whose payload
 *   length is 4·doff (an `u32` test per data offset 5..15) — leaves without the round trip through
 *   userspace (the handshake ACK of every new connection; the engine needs no packet without
 *   payload: the stream's base sequence comes from the SYN). Anything else (a payload, any other
 *   flag, IPv4 options, IPv6 extension headers) is queued as before. The SYN stays queued: a SYN on
 *   the 5-tuple of a decided connection starts a new engine flow.
 * - filter/<CHAIN>: the packet mark set by the verdict is saved into the conntrack mark, then the
 *   kernel enforces the connection's mark from then on: drop, TCP reset (REJECT toward the sender;
 *   the engine crafts the RST toward the other end), or a `hashlimit` policer per connection and
 *   direction for each kernel throttle class.
 *
 * Mark layout inside `markMask` (default 0x00ff0000): value << shift, where value is one of MARK_*,
 * or MARK_CLASS_BASE + k for kernel throttle class k.
 */
import { execFile } from 'node:child_process';
import { ChokepointError } from '../util/errors.js';

export const MARK_NONE = 0;
export const MARK_ALLOW = 1;
export const MARK_DROP = 2;
export const MARK_RST = 3;
/** Every packet of the connection goes to userspace (userspace policing / emulation state). */
export const MARK_POLICE = 4;
/** Still being inspected (normal mode): every packet keeps coming to userspace past `connbytes`. */
export const MARK_INSPECT = 5;
export const MARK_CLASS_BASE = 16;

export class RulesError extends ChokepointError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

export interface RuleOptions {
  /** Chain name in mangle and filter (≤ 28 chars). Default CHOKEPOINT. */
  chain: string;
  /** Queue numbers, contiguous: [first, last]. */
  queues: [number, number];
  /** Packets per connection (both directions) sent to userspace while unclassified. */
  connbytes: number;
  /** Mask of the mark bits we own (contiguous). */
  markMask: number;
}

export interface ThrottleClass {
  id: number;
  rateBps: number;
  burstBytes: number;
}

export const DEFAULT_RULE_OPTIONS: RuleOptions = {
  chain: 'CHOKEPOINT',
  queues: [0, 0],
  connbytes: 64,
  markMask: 0x00ff0000,
};

export function markShift(mask: number): number {
  let s = 0;
  while (s < 32 && ((mask >>> s) & 1) === 0) s++;
  return s;
}

/** The mark value (already shifted) for a MARK_* value. */
export function markValue(mask: number, v: number): number {
  return ((v << markShift(mask)) & mask) >>> 0;
}

const hex = (n: number): string => '0x' + (n >>> 0).toString(16);

/**
 * Name of the sub-chain undecided connections enter (mangle): `<chain>-U`, or for a chain name
 * longer than 26 characters its first 19, a hash of the whole name and `-U` (iptables: ≤ 28).
 */
export function undecidedChain(chain: string): string {
  if (chain.length <= 26) return `${chain}-U`;
  let h = 0x811c9dc5;
  for (let i = 0; i < chain.length; i++) h = Math.imul(h ^ chain.charCodeAt(i), 0x01000193) >>> 0;
  return `${chain.slice(0, 19)}-${h.toString(16).padStart(8, '0').slice(0, 6)}-U`;
}

/** TCP data offsets (32-bit words) a bare ACK is recognised with: 8 (timestamps) and 5 first. */
const BARE_ACK_DOFFS = [8, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15];

/**
 * `u32` test: the packet is a TCP segment without payload whose header is `doff` words. IPv4: byte 0
 * is 0x45 (no IP options) and the total length (bytes 2–3) is 20 + 4·doff, TCP's data offset is the
 * high nibble of byte 32. IPv6: payload length (bytes 4–5) 4·doff and next header (byte 6) TCP, the
 * data offset in byte 52. (The TOS / hop-limit bytes are masked out.)
 */
export function bareAckU32(doff: number, v6: boolean): string {
  if (v6) return `4&0xffffff00=${hex((((4 * doff) << 16) | (6 << 8)) >>> 0)}&&52>>28=${doff}`;
  return `0&0xff00ffff=${hex((0x45000000 | (20 + 4 * doff)) >>> 0)}&&32>>28=${doff}`;
}

function queueTarget(o: RuleOptions): string[] {
  const [a, b] = o.queues;
  const t = a === b ? ['--queue-num', String(a)] : ['--queue-balance', `${a}:${b}`];
  return ['-j', 'NFQUEUE', ...t, '--queue-bypass'];
}

/** Name of the hashlimit table of a class (≤ 15 chars, unique per chain). */
export function hashlimitName(chain: string, id: number): string {
  const h = chain
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .slice(-9);
  return `cp${h}${id}`.slice(0, 15);
}

/** hashlimit byte-mode rate/burst. The kernel requires burst ≥ the rate per second (rounded up). */
export function hashlimitArgs(c: ThrottleClass): string[] {
  const bytesPerSec = Math.max(1, Math.round(c.rateBps / 8));
  const burst = Math.max(c.burstBytes, bytesPerSec);
  return ['--hashlimit-above', `${bytesPerSec}b/s`, '--hashlimit-burst', `${burst}b`];
}

/** The rule of one kernel throttle class (argv after `iptables -t filter`). */
export function classRule(o: RuleOptions, c: ThrottleClass): string[] {
  const m = markValue(o.markMask, MARK_CLASS_BASE + c.id);
  return [
    '-A', o.chain,
    '-m', 'connmark', '--mark', `${hex(m)}/${hex(o.markMask)}`,
    '-m', 'hashlimit', ...hashlimitArgs(c),
    '--hashlimit-mode', 'srcip,srcport,dstip,dstport',
    '--hashlimit-name', hashlimitName(o.chain, c.id),
    '--hashlimit-htable-expire', '120000',
    '-j', 'DROP',
  ]; // prettier-ignore
}

/**
 * Every rule, as [table, argv...] lists in install order (chains created first); `v6`: the
 * ip6tables variant (only the bare-ACK tests differ).
 */
export function buildRules(o: RuleOptions, classes: ThrottleClass[] = [], v6 = false): string[][] {
  const M = hex(o.markMask);
  const mk = (v: number): string => `${hex(markValue(o.markMask, v))}/${M}`;
  const c = o.chain;
  const u = undecidedChain(c);
  const r: string[][] = [
    ['mangle', '-N', c],
    ['mangle', '-N', u],
    ['filter', '-N', c],
    // a SYN-ACK carries nothing the classifier needs: spare it the round trip through userspace
    ['mangle', '-A', c, '-p', 'tcp', '--tcp-flags', 'SYN,ACK', 'SYN,ACK', '-j', 'RETURN'],
    // undecided: goto, so a RETURN in the sub-chain leaves the whole of <chain>
    ['mangle', '-A', c, '-m', 'connmark', '--mark', `0x0/${M}`,
      '-m', 'connbytes', '--connbytes', `0:${o.connbytes}`, '--connbytes-dir', 'both',
      '--connbytes-mode', 'packets', '-g', u],
    ['mangle', '-A', c, '-m', 'connmark', '--mark', mk(MARK_POLICE), ...queueTarget(o)],
    // a connection still being named keeps coming however many packets the client splits it into
    ['mangle', '-A', c, '-m', 'connmark', '--mark', mk(MARK_INSPECT), '-g', u],
  ]; // prettier-ignore
  // a bare ACK of an undecided connection (the handshake's third packet) carries nothing to classify
  for (const d of BARE_ACK_DOFFS)
    r.push(['mangle', '-A', u, '-p', 'tcp', '--tcp-flags', 'ALL', 'ACK', '-m', 'u32', '--u32', bareAckU32(d, v6),
      '-j', 'RETURN']); // prettier-ignore
  r.push(['mangle', '-A', u, ...queueTarget(o)]);
  r.push(
    // the common case first: an allowed connection leaves the chain after one match
    ['filter', '-A', c, '-m', 'connmark', '--mark', mk(MARK_ALLOW), '-j', 'RETURN'],
    ['filter', '-A', c, '-m', 'mark', '!', '--mark', `0x0/${M}`,
      '-j', 'CONNMARK', '--save-mark', '--nfmask', M, '--ctmask', M],
    ['filter', '-A', c, '-m', 'connmark', '--mark', mk(MARK_DROP), '-j', 'DROP'],
    ['filter', '-A', c, '-p', 'tcp', '-m', 'connmark', '--mark', mk(MARK_RST),
      '-j', 'REJECT', '--reject-with', 'tcp-reset'],
    ['filter', '-A', c, '-m', 'connmark', '--mark', mk(MARK_RST), '-j', 'DROP'],
  ); // prettier-ignore
  for (const k of classes) r.push(['filter', ...classRule(o, k)]);
  r.push(['mangle', '-I', 'FORWARD', '1', '-j', c]);
  r.push(['filter', '-I', 'FORWARD', '1', '-j', c]);
  return r;
}

/** Shell text of the rules (for --no-install): the same rules for iptables and ip6tables. */
export function rulesScript(o: RuleOptions, classes: ThrottleClass[] = []): string {
  const lines: string[] = [];
  for (const bin of FAMILIES) {
    for (const [t, ...a] of buildRules(o, classes, bin === 'ip6tables'))
      lines.push(`${bin} -w -t ${t} ${a.map(shq).join(' ')}`);
  }
  return lines.join('\n');
}

/** Both address families get the same rules (REJECT tcp-reset and hashlimit exist in both; the bare-ACK test differs). */
export const FAMILIES = ['iptables', 'ip6tables'] as const;

function shq(s: string): string {
  return /^[A-Za-z0-9_./:,=+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface IptablesResult {
  code: number;
  stderr: string;
}

/** Run `iptables -w -t table args...` (no shell). */
export function iptables(table: string, args: string[], bin = 'iptables'): Promise<IptablesResult> {
  return new Promise((resolve, reject) => {
    execFile(bin, ['-w', '5', '-t', table, ...args], { timeout: 20_000 }, (err, _out, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(
          new RulesError('ERR_IPTABLES_MISSING', `${bin} not found (install the Debian package iptables)`),
        );
        return;
      }
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stderr: String(stderr) });
    });
  });
}

/** Remove our jumps and chains (leftovers of a crash included). Idempotent; never throws on absence. */
export async function removeRules(chain: string): Promise<void> {
  for (const bin of FAMILIES) {
    for (const t of ['mangle', 'filter']) {
      // Delete every jump to the chain (there may be several after repeated crashes).
      for (let i = 0; i < 16; i++) {
        const r = await iptables(t, ['-D', 'FORWARD', '-j', chain], bin).catch(() => ({
          code: 1,
          stderr: '',
        }));
        if (r.code !== 0) break;
      }
      await dropChains(t, chain, bin);
    }
  }
}

/** Flush our chain, then the sub-chain it jumps to (mangle), then delete both. */
async function dropChains(t: string, chain: string, bin: string): Promise<void> {
  await iptables(t, ['-F', chain], bin).catch(() => undefined);
  if (t === 'mangle') {
    const u = undecidedChain(chain);
    await iptables(t, ['-F', u], bin).catch(() => undefined);
    await iptables(t, ['-X', u], bin).catch(() => undefined);
  }
  await iptables(t, ['-X', chain], bin).catch(() => undefined);
}

/** True when our chain exists in the table (e.g. left behind by a crash). */
export async function chainExists(chain: string, table = 'mangle'): Promise<boolean> {
  const r = await iptables(table, ['-S', chain]);
  return r.code === 0;
}

/**
 * Remove leftovers, then install every rule (IPv4, then IPv6); on failure remove what was installed
 * and throw. IPv6 is best effort: without ip6tables (or IPv6) the result says so and IPv4 stays.
 */
export async function installRules(
  o: RuleOptions,
  classes: ThrottleClass[] = [],
): Promise<{ ipv6: boolean; ipv6Error?: string }> {
  await removeRules(o.chain);
  await installFamily(o, classes, 'iptables');
  try {
    await installFamily(o, classes, 'ip6tables');
    return { ipv6: true };
  } catch (e) {
    await removeFamily(o.chain, 'ip6tables');
    return { ipv6: false, ipv6Error: (e as Error).message };
  }
}

async function removeFamily(chain: string, bin: string): Promise<void> {
  for (const t of ['mangle', 'filter']) {
    await iptables(t, ['-D', 'FORWARD', '-j', chain], bin).catch(() => undefined);
    await dropChains(t, chain, bin);
  }
}

async function installFamily(o: RuleOptions, classes: ThrottleClass[], bin: string): Promise<void> {
  for (const [t, ...a] of buildRules(o, classes, bin === 'ip6tables')) {
    const r = await iptables(t, a, bin);
    if (r.code !== 0) {
      await removeRules(o.chain);
      const msg = r.stderr.trim();
      const hint = /Permission denied|Operation not permitted/.test(msg)
        ? ' (run as root)'
        : /No chain|Couldn't load|not supported|Extension/i.test(msg)
          ? ' (kernel module or iptables extension missing: needs NFQUEUE, connmark, connbytes, u32, hashlimit, REJECT)'
          : '';
      throw new RulesError('ERR_IPTABLES', `${bin} -t ${t} ${a.join(' ')} failed: ${msg}${hint}`);
    }
  }
}

/**
 * Insert a kernel throttle class into the installed filter chain (before nothing else: classes are
 * independent, order does not matter).
 */
export async function addClassRule(o: RuleOptions, c: ThrottleClass, ipv6 = true): Promise<void> {
  const r = await iptables('filter', classRule(o, c));
  if (r.code !== 0)
    throw new RulesError('ERR_IPTABLES', `adding throttle class ${c.id} failed: ${r.stderr.trim()}`);
  if (ipv6) await iptables('filter', classRule(o, c), 'ip6tables').catch(() => undefined);
}
