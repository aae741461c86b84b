/**
 * @module enforce/enforcement
 * The one mapping from a policy decision to its enforcement on the wire ({@link enforcementOf}), and
 * the per-packet verdict of a connection once it is decided ({@link packetVerdict}):
 * allow/log → mark allow (the kernel accepts); block → mark drop (method drop, or any UDP) or mark
 * reset (TCP, method rst); throttle → the userspace policer (mark police: every packet comes to the
 * queue) or a kernel `hashlimit` class (mark 16 + class; pending while the class rule is installed).
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
import type { EnforcementName } from './types.js';

export interface VerdictSink {
  verdict(id: number, verdict: number, mark: number): void;
}

export const K_ACCEPT = 0;
export const K_DROP = 1;
export const K_RST = 2;
export const K_POLICE = 3;
export const K_CLASS = 4;
/** Throttled by a kernel class whose rule is still being installed: packets are held meanwhile. */
export const K_PENDING = 5;

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
}

/** Default rate and bucket when a throttle decision carries none (the policy normally fills them). */
const DEFAULT_RATE = 131072;
const DEFAULT_BURST = 16384;

/** How decision `d` is enforced for a connection (`tcp`: TCP, else UDP). */
export function enforcementOf(d: Decision, tcp: boolean, ctx: EnforceContext): Enforcement {
  const m = ctx.marks;
  if (d.action === 'block') {
    if (d.method === 'drop' || !tcp) return { kind: K_DROP, mark: m.drop, name: 'drop', rate: 0, burst: 0 };
    return { kind: K_RST, mark: m.rst, name: 'reset', rate: 0, burst: 0 };
  }
  if (d.action === 'throttle') {
    const rate = d.rate_bps ?? DEFAULT_RATE;
    const burst = d.burst_bytes ?? DEFAULT_BURST;
    if (ctx.throttle === 'kernel' && ctx.classFor) {
      const id = ctx.classFor(rate, burst);
      if (id < 0) return { kind: K_PENDING, mark: 0, name: 'police-kernel', rate, burst };
      return { kind: K_CLASS, mark: m.cls(id), name: 'police-kernel', rate, burst };
    }
    return { kind: K_POLICE, mark: m.police, name: 'police-userspace', rate, burst };
  }
  return { kind: K_ACCEPT, mark: m.allow, name: 'accept', rate: 0, burst: 0 };
}

/** The part of a connection's state the per-packet verdict needs. */
export interface Enforced {
  kind: number;
  mark: number;
  policer: DualPolicer | null;
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
  // drop and reset too: accepted with the mark, the filter chain saves it and the kernel enforces
  sink.verdict(id, NF_ACCEPT, st.mark);
}
