/**
 * @module enforce/enforcement
 * The one mapping from a policy decision to its enforcement on the wire ({@link enforcementOf}), and
 * the per-packet verdict of a connection once it is decided ({@link packetVerdict}):
 * allow/log → mark allow (the kernel accepts); block → mark drop (method drop, or any UDP) or mark
 * reset (TCP, method rst); throttle → the userspace policer (mark police: every packet comes to the
 * queue) or a kernel `hashlimit` class (mark 16 + class; pending while the class rule is installed).
 * Block methods that must see packets (stall, curtain, degrade) take mark police, so every packet
 * comes to userspace; stall and curtain hand the connection to the kernel's drop mark once they cut.
 * rst-rewrite takes mark police until the server's first packet, which the enforcer rewrites.
 * Redirect takes mark drop: the enforcer sends the 307 and the server's RST when it releases the trigger.
 */
import type { Decision } from '../policy/types.js';
import { NF_ACCEPT, NF_DROP } from './nfq.js';
import { DualPolicer } from './policer.js';
import {
  MARK_ALLOW,
  MARK_CLASS_BASE,
  MARK_DROP,
  MARK_INSPECT,
  MARK_POLICE,
  MARK_RST,
  markValue,
} from './rules.js';
import { C } from './counters.js';
import type { EnforcementName } from '../record/record.js';

export interface VerdictSink {
  verdict(id: number, verdict: number, mark: number): void;
  /** The verdict with the packet replaced by `buf` (method rst-rewrite; absent: the packet is dropped). */
  verdictWith?(id: number, verdict: number, mark: number, buf: Uint8Array): void;
}

export const K_ACCEPT = 0;
export const K_DROP = 1;
export const K_RST = 2;
export const K_POLICE = 3;
export const K_CLASS = 4;
/** Throttled by a kernel class whose rule is still being installed: packets are held meanwhile. */
export const K_PENDING = 5;
/** SNI-II: `left` more packets pass (either direction), then the kernel drops both directions. */
export const K_STALL = 6;
/** The curtain: server→client payload passes until `left` bytes are spent, then dropped silently. */
export const K_CURTAIN = 7;
/** Each packet dropped with probability `p` (userspace, every packet). */
export const K_DEGRADE = 8;
/** Plain HTTP redirect: the box answers the request with a 307 (crafted), the kernel drops the rest. */
export const K_REDIRECT = 9;
/** SNI-I: the trigger passes; the server's next packet is rewritten into RST/ACK, then the kernel drops. */
export const K_REWRITE = 10;

/** Packet mark values of the verdicts, inside the mark mask. */
export class Marks {
  readonly allow: number;
  readonly drop: number;
  readonly rst: number;
  readonly police: number;
  /** Still being inspected: the connection keeps coming to the queue past `connbytes`. */
  readonly inspect: number;
  constructor(readonly mask: number) {
    this.allow = markValue(mask, MARK_ALLOW);
    this.drop = markValue(mask, MARK_DROP);
    this.rst = markValue(mask, MARK_RST);
    this.police = markValue(mask, MARK_POLICE);
    this.inspect = markValue(mask, MARK_INSPECT);
  }
  cls(id: number): number {
    return markValue(this.mask, MARK_CLASS_BASE + id);
  }
}

export interface EnforceContext {
  marks: Marks;
  /** Where throttling happens (emulation always polices in userspace). */
  throttle: 'kernel' | 'userspace';
  /** Kernel throttle class id for (rate, burst), or -1 while it is being installed. */
  classFor?: (rateBps: number, burstBytes: number) => number;
}

export interface Enforcement {
  kind: number;
  mark: number;
  name: EnforcementName;
  rate: number;
  burst: number;
  /** stall: packets; curtain: bytes still allowed. degrade: drop probability in `p`. */
  left: number;
  p: number;
}

/** Default rate and bucket when a throttle decision carries none (the policy normally fills them). */
const DEFAULT_RATE = 131072;
const DEFAULT_BURST = 16384;

/** How decision `d` is enforced for a connection (`tcp`: TCP, else UDP). */
export function enforcementOf(d: Decision, tcp: boolean, ctx: EnforceContext): Enforcement {
  const m = ctx.marks;
  if (d.action === 'block') {
    const b = d.block;
    switch (d.method) {
      case 'stall':
        return {
          kind: K_STALL,
          mark: m.police,
          name: 'stall',
          rate: 0,
          burst: 0,
          left: b?.after_packets ?? 0,
          p: 0,
        };
      case 'curtain':
        return {
          kind: K_CURTAIN,
          mark: m.police,
          name: 'curtain',
          rate: 0,
          burst: 0,
          left: b?.after_bytes ?? 0,
          p: 0,
        };
      case 'degrade':
        return {
          kind: K_DEGRADE,
          mark: m.police,
          name: 'degrade',
          rate: 0,
          burst: 0,
          left: 0,
          p: b?.probability ?? 1,
        };
      case 'redirect':
        if (!tcp) return { kind: K_DROP, mark: m.drop, name: 'drop', rate: 0, burst: 0, left: 0, p: 0 };
        return { kind: K_REDIRECT, mark: m.drop, name: 'redirect', rate: 0, burst: 0, left: 0, p: 0 };
      case 'rst-rewrite':
        if (!tcp) return { kind: K_DROP, mark: m.drop, name: 'drop', rate: 0, burst: 0, left: 0, p: 0 };
        return { kind: K_REWRITE, mark: m.police, name: 'rst-rewrite', rate: 0, burst: 0, left: 0, p: 0 };
      case 'drop':
        return { kind: K_DROP, mark: m.drop, name: 'drop', rate: 0, burst: 0, left: 0, p: 0 };
      default:
        if (!tcp) return { kind: K_DROP, mark: m.drop, name: 'drop', rate: 0, burst: 0, left: 0, p: 0 };
        return { kind: K_RST, mark: m.rst, name: 'reset', rate: 0, burst: 0, left: 0, p: 0 };
    }
  }
  if (d.action === 'throttle') {
    const rate = d.rate_bps ?? DEFAULT_RATE;
    const burst = d.burst_bytes ?? DEFAULT_BURST;
    if (ctx.throttle === 'kernel' && ctx.classFor) {
      const id = ctx.classFor(rate, burst);
      if (id < 0) return { kind: K_PENDING, mark: 0, name: 'police-kernel', rate, burst, left: 0, p: 0 };
      return { kind: K_CLASS, mark: m.cls(id), name: 'police-kernel', rate, burst, left: 0, p: 0 };
    }
    return { kind: K_POLICE, mark: m.police, name: 'police-userspace', rate, burst, left: 0, p: 0 };
  }
  return { kind: K_ACCEPT, mark: m.allow, name: 'accept', rate: 0, burst: 0, left: 0, p: 0 };
}

/** The part of a connection's state the per-packet verdict needs. */
export interface Enforced {
  kind: number;
  mark: number;
  policer: DualPolicer | null;
  /** stall: packets, curtain: server→client bytes still passing. */
  left: number;
  /** degrade: drop probability. */
  p: number;
}

/**
 * Stall and curtain cut: the connection becomes a drop from this packet on — the packet is accepted
 * with the drop mark, the filter chain saves it on the connection and the kernel drops both
 * directions after it. A plain function (no per-packet closure).
 */
function cutToDrop(st: Enforced, sink: VerdictSink, id: number, c: Float64Array, drop: number): void {
  st.kind = K_DROP;
  st.mark = drop;
  c[C.cutDrop]++;
  sink.verdict(id, NF_ACCEPT, drop);
}

/**
 * Verdict for one packet of a decided connection (not K_PENDING: the caller holds those). The
 * kernel does the rest from the saved conntrack mark; only policed connections keep coming here.
 */
export function packetVerdict(
  st: Enforced,
  sink: VerdictSink,
  id: number,
  len: number,
  toServer: boolean,
  now: number,
  c: Float64Array,
  /** Transport payload bytes of the packet (the curtain counts them). */
  pay: number,
  /** The drop mark (stall and curtain switch the connection to it when they cut). */
  drop: number,
): void {
  if (st.kind === K_POLICE) {
    if (st.policer!.allow(toServer, len, now)) {
      c[C.policePass]++;
      sink.verdict(id, NF_ACCEPT, st.mark);
    } else {
      c[C.policeDrop]++;
      sink.verdict(id, NF_DROP, 0);
    }
    return;
  }
  if (st.kind === K_STALL) {
    if (st.left > 0) {
      st.left--;
      sink.verdict(id, NF_ACCEPT, st.mark);
      return;
    }
    // stall spent: cut
    cutToDrop(st, sink, id, c, drop);
    return;
  }
  if (st.kind === K_CURTAIN) {
    if (toServer || pay <= st.left) {
      if (!toServer) st.left -= pay;
      sink.verdict(id, NF_ACCEPT, st.mark);
      return;
    }
    // the first server→client packet past the curtain: frozen silently, both directions, in the kernel
    cutToDrop(st, sink, id, c, drop);
    return;
  }
  if (st.kind === K_DEGRADE) {
    if (Math.random() < st.p) {
      c[C.degradeDrop]++;
      sink.verdict(id, NF_DROP, 0);
    } else sink.verdict(id, NF_ACCEPT, st.mark);
    return;
  }
  // drop and reset too: accepted with the mark, the filter chain saves it and the kernel enforces
  sink.verdict(id, NF_ACCEPT, st.mark);
}
