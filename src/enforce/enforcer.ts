/**
 * @module enforce/enforcer
 * The per-queue verdict logic, independent of how packets arrive (a worker thread feeds it packets
 * from an NfQueue; tests may feed it directly).
 *
 * Normal mode: every packet goes through the engine (the same reassembly and dissectors as offline).
 * While a connection is still being inspected, its client data packets are *held* (no verdict yet,
 * the kernel keeps them) up to `holdPackets` / the policy's `budget_bytes`, and for at most the
 * policy's `hold_ms` (0: hold nothing, the verdict applies from the packet that completes the name);
 * packets without payload and server packets pass. Once the engine names the
 * connection (or gives up) the policy decides, and the held packets are released in arrival order
 * with the verdict's mark; the kernel enforces the connection from then on (rules.ts). On hold
 * timeout or overflow, `on_timeout` decides: `allow` (release unclassified), `block` (drop), anything
 * else (`match`, the default) asks the policy with what is known so far (the name may be null).
 *
 * Emulation mode (`inspection.mode: tspu-2021`): the decision comes from the Tspu2021Inspector, one
 * packet at a time, nothing is held, and throttled connections are policed here (every packet
 * comes to userspace) so the emulated state rules (10-minute idle, RST/FIN ignored) hold exactly.
 */
import { Engine } from '../engine/engine.js';
import type { Flow } from '../flow/flow.js';
import type { FlowRecord } from '../record/record.js';
import { parseClientHelloBody } from '../dissect/tls.js';
import { NF_ACCEPT, NF_DROP, type NfPacket } from './nfq.js';
import { DualPolicer } from './policer.js';
import { MARK_ALLOW, MARK_CLASS_BASE, MARK_DROP, MARK_POLICE, MARK_RST, markValue } from './rules.js';
import { RstInjector } from './rst.js';
import { Tspu2021Inspector, type TspuFlow } from './tspu2021.js';
import { C } from './counters.js';
import {
  matchInputFromRecord,
  type EnforceDecision,
  type PolicyLike,
  type VerdictEvent,
  type VerdictReason,
  type VerdictTaken,
} from './types.js';

export interface VerdictSink {
  verdict(id: number, verdict: number, mark: number): void;
}

export interface EnforcerOptions {
  queue: number;
  sink: VerdictSink;
  policy: PolicyLike;
  markMask: number;
  /** Where throttling happens. */
  throttle: 'kernel' | 'userspace';
  /** Kernel throttle class for (rate, burst): its id, or -1 when not installed yet (request it). */
  classFor?: (rateBps: number, burstBytes: number) => number;
  onVerdict?: (ev: VerdictEvent) => void;
  counters: Float64Array;
  /** Max packets held per connection (default 32). */
  holdPackets?: number;
  /** Inject a RST toward the server on `block` with method rst (default true). */
  rstToServer?: boolean;
  maxFlows?: number;
}

const K_ACCEPT = 0;
const K_DROP = 1;
const K_RST = 2;
const K_POLICE = 3;
const K_CLASS = 4;
const K_PENDING = 5;

/** Enforcement state of one connection, on Flow.user (normal mode) or TspuFlow.user (emulation). */
class ConnState {
  decided = false;
  kind = K_ACCEPT;
  mark = 0;
  policer: DualPolicer | null = null;
  held: number[] | null = null;
  heldBytes = 0;
  holdStart = 0;
  heldTotal = 0;
  /** Lowest client sequence number among held data and the client's ack (for the server RST). */
  seqLo = 0;
  ackLast = 0;
  haveSeq = false;
  rate = 0;
  burst = 0;
  decision: EnforceDecision | null = null;
}

const DEFAULT_BURST = 16384;

export class Enforcer {
  readonly engine: Engine;
  private policy: PolicyLike;
  private tspu: Tspu2021Inspector<EnforceDecision> | null = null;
  private readonly o: EnforcerOptions;
  private readonly c: Float64Array;
  private readonly holding = new Set<Flow>();
  private readonly pendingClass = new Map<string, Flow[]>();
  private readonly rst: RstInjector | null;
  private readonly mAllow: number;
  private readonly mDrop: number;
  private readonly mRst: number;
  private readonly mPolice: number;
  private readonly holdPackets: number;

  constructor(o: EnforcerOptions) {
    this.o = o;
    this.c = o.counters;
    this.policy = o.policy;
    this.engine = new Engine({
      maxFlows: o.maxFlows ?? 131072,
      inspectBytes: Math.max(1024, o.policy.inspection.budget_bytes || 16384),
      inspectPackets: o.policy.inspection.mode === 'normal' ? o.policy.inspection.max_packets || 24 : 24,
      onFlowEnd: (_rec, f) => this.flowEnd(f),
    });
    this.rst = o.rstToServer === false ? null : new RstInjector();
    this.mAllow = markValue(o.markMask, MARK_ALLOW);
    this.mDrop = markValue(o.markMask, MARK_DROP);
    this.mRst = markValue(o.markMask, MARK_RST);
    this.mPolice = markValue(o.markMask, MARK_POLICE);
    this.holdPackets = o.holdPackets ?? 32;
    this.applyMode();
  }

  /** Swap the policy (atomic for the next packet; connections already decided keep their verdict). */
  setPolicy(p: PolicyLike): void {
    this.policy = p;
    this.applyMode();
  }

  private applyMode(): void {
    if (this.policy.inspection.mode === 'tspu-2021') {
      if (!this.tspu) {
        this.tspu = new Tspu2021Inspector<EnforceDecision>(
          (body) => {
            try {
              return parseClientHelloBody(body, 't').sni;
            } catch {
              return undefined;
            }
          },
          (sni, f) => this.tspuMatch(sni, f),
          {
            windowPackets: this.policy.inspection.max_packets || 15,
            idleMs: (this.policy.inspection.idle_timeout_s || 600) * 1000,
          },
        );
      }
    } else this.tspu = null;
  }

  /** One queued packet. Always leads to exactly one verdict for it (now or when released). */
  handle(p: NfPacket, now: number): void {
    const c = this.c;
    c[C.packets]++;
    c[C.bytes] += p.payload.length;
    const f = this.engine.packet(p.payload, 101, now);
    if (this.tspu) {
      this.handleTspu(p, f, now);
      return;
    }
    if (!f) {
      c[C.notIp]++;
      this.o.sink.verdict(p.id, NF_ACCEPT, 0);
      return;
    }
    const toServer = this.engine.lastToServer;
    let st = f.user as ConnState | null;
    if (st && (st.decided || st.kind === K_PENDING)) {
      // decided, or waiting for its kernel throttle class (then every packet is held: enforce())
      this.enforce(st, p.id, p.payload.length, toServer, now);
      return;
    }
    const ep = this.engine.pkt;
    if (!st) {
      st = new ConnState();
      f.user = st;
    }
    if (f.inspecting) {
      if (!toServer || ep.payLen === 0 || this.policy.inspection.hold_ms === 0) {
        // hold_ms 0: nothing is held, the verdict applies from the packet that completes the name
        if (toServer && ep.payLen > 0 && ep.proto === 6) {
          st.seqLo = (ep.seq + ep.payLen) >>> 0; // what the server expects next
          st.ackLast = ep.ack >>> 0;
          st.haveSeq = true;
        }
        c[C.passInspecting]++;
        this.o.sink.verdict(p.id, NF_ACCEPT, 0);
        return;
      }
      this.hold(f, st, p.id, p.payload.length, now, ep.proto === 6, ep.seq, ep.ack);
      if (
        st.held!.length >= this.holdPackets ||
        st.heldBytes > (this.policy.inspection.budget_bytes || 65536)
      ) {
        c[C.holdOverflows]++;
        this.timeoutDecision(f, st, 'hold_overflow', now);
      }
      return;
    }
    // Inspection finished with this packet, or earlier without anything held.
    if (toServer && ep.payLen > 0)
      this.hold(f, st, p.id, p.payload.length, now, ep.proto === 6, ep.seq, ep.ack);
    else this.o.sink.verdict(p.id, NF_ACCEPT, 0);
    this.decide(f, st, f.host !== null ? 'named' : 'gave_up', this.policyMatch(f), now);
  }

  private hold(
    f: Flow,
    st: ConnState,
    id: number,
    len: number,
    now: number,
    tcp: boolean,
    seq: number,
    ack: number,
  ): void {
    this.holdRaw(st, id, len, now);
    this.holding.add(f);
    if (tcp) {
      if (!st.haveSeq || ((seq - st.seqLo) | 0) < 0) st.seqLo = seq >>> 0;
      st.haveSeq = true;
      st.ackLast = ack >>> 0;
    }
  }

  private holdRaw(st: ConnState, id: number, len: number, now: number): void {
    if (!st.held) st.held = [];
    if (st.held.length === 0) st.holdStart = now;
    st.held.push(id);
    st.heldBytes += len;
    st.heldTotal++;
    this.c[C.held]++;
  }

  private policyMatch(f: Flow): EnforceDecision {
    return this.policy.match(matchInputFromRecord(this.engine.record(f)));
  }

  /** Hold timeouts; call every few ms. */
  tick(now: number): void {
    if (this.holding.size === 0) return;
    const limit = this.policy.inspection.hold_ms;
    for (const f of this.holding) {
      const st = f.user as ConnState;
      if (!st || !st.held || st.held.length === 0) {
        this.holding.delete(f);
        continue;
      }
      if (!st.decided && st.kind !== K_PENDING && now - st.holdStart >= limit) {
        this.c[C.holdTimeouts]++;
        this.timeoutDecision(f, st, 'hold_timeout', now);
      }
    }
  }

  private timeoutDecision(f: Flow, st: ConnState, reason: VerdictReason, now: number): void {
    const ot = this.policy.inspection.on_timeout;
    let d: EnforceDecision;
    if (ot === 'allow') d = { rule_id: null, action: 'allow' };
    else if (ot === 'block') d = { rule_id: null, action: 'block', method: 'drop' };
    else if (ot === 'apply-default' && this.policy.policy?.default)
      d = { rule_id: null, ...this.policy.policy.default };
    else d = this.policyMatch(f);
    this.decide(f, st, reason, d, now);
  }

  /** Fix the connection's verdict, emit the event, and release what was held. */
  private decide(f: Flow, st: ConnState, reason: VerdictReason, d: EnforceDecision, now: number): void {
    st.decision = d;
    const tcp = f.proto === 6;
    let enforcement: VerdictTaken['enforcement'] = 'accept';
    if (d.action === 'block') {
      if (d.method === 'drop' || !tcp) {
        st.kind = K_DROP;
        st.mark = this.mDrop;
        enforcement = 'drop';
      } else {
        st.kind = K_RST;
        st.mark = this.mRst;
        enforcement = 'reset';
      }
    } else if (d.action === 'throttle') {
      st.rate = d.rate_bps ?? 131072;
      st.burst = d.burst_bytes ?? DEFAULT_BURST;
      if (this.o.throttle === 'kernel' && this.o.classFor) {
        const id = this.o.classFor(st.rate, st.burst);
        if (id < 0) {
          // the class rule is being installed: keep holding until classReady()
          st.kind = K_PENDING;
          const key = `${st.rate}:${st.burst}`;
          const l = this.pendingClass.get(key);
          if (l) l.push(f);
          else this.pendingClass.set(key, [f]);
          this.emit(f, st, reason, 'police-kernel', now);
          return;
        }
        st.kind = K_CLASS;
        st.mark = markValue(this.o.markMask, MARK_CLASS_BASE + id);
        enforcement = 'police-kernel';
      } else {
        st.kind = K_POLICE;
        st.mark = this.mPolice;
        st.policer = new DualPolicer(st.rate, st.burst, now);
        enforcement = 'police-userspace';
      }
    } else {
      st.kind = K_ACCEPT;
      st.mark = this.mAllow;
    }
    st.decided = true;
    this.emit(f, st, reason, enforcement, now);
    this.release(f, st, now);
  }

  private emit(
    f: Flow,
    st: ConnState,
    reason: VerdictReason,
    enforcement: VerdictTaken['enforcement'],
    now: number,
  ): void {
    const d = st.decision!;
    const c = this.c;
    if (d.action === 'allow') c[C.verdictAllow]++;
    else if (d.action === 'log') c[C.verdictLog]++;
    else if (d.action === 'block') c[C.verdictBlock]++;
    else c[C.verdictThrottle]++;
    if (!this.o.onVerdict) return;
    const rec = this.engine.record(f) as FlowRecord;
    const taken: VerdictTaken = {
      action: d.action,
      enforcement,
      reason,
      queue: this.o.queue,
      held_packets: st.heldTotal,
      held_ms: st.heldTotal > 0 ? Math.max(0, now - st.holdStart) : 0,
    };
    if (d.action === 'throttle') {
      taken.rate_bps = st.rate;
      taken.burst_bytes = st.burst;
    }
    this.o.onVerdict({
      ...rec,
      event_type: 'verdict',
      policy: { rule_id: d.rule_id, action: d.action },
      verdict: taken,
    });
  }

  /** Release held packets in arrival order under the connection's verdict. */
  private release(f: Flow, st: ConnState, now: number): void {
    const held = st.held;
    if (st.kind === K_RST && this.rst && st.haveSeq && f.ipVer === 4) this.injectServerRst(f, st);
    if (held && held.length > 0) {
      const avg = st.heldBytes / held.length;
      for (let i = 0; i < held.length; i++) this.enforce(st, held[i], avg, true, now);
      held.length = 0;
      st.heldBytes = 0;
    }
    this.holding.delete(f);
  }

  private injectServerRst(f: Flow, st: ConnState): void {
    const cli = new Uint8Array(4);
    const srv = new Uint8Array(4);
    new DataView(cli.buffer).setUint32(0, f.cli[3]);
    new DataView(srv.buffer).setUint32(0, f.srv[3]);
    if (this.rst!.send(cli, srv, f.cport, f.sport, st.seqLo, st.ackLast)) this.c[C.rstInjected]++;
    else this.c[C.rstFailed]++;
  }

  /** Verdict for one packet of a decided connection. */
  private enforce(st: ConnState, id: number, len: number, toServer: boolean, now: number): void {
    const sink = this.o.sink;
    switch (st.kind) {
      case K_POLICE:
        if (st.policer!.allow(toServer, len, now)) {
          this.c[C.policePass]++;
          sink.verdict(id, NF_ACCEPT, st.mark);
        } else {
          this.c[C.policeDrop]++;
          sink.verdict(id, NF_DROP, 0);
        }
        return;
      case K_PENDING:
        this.holdRaw(st, id, len, now);
        return;
      case K_DROP:
        // accept with the mark: the filter chain saves it to the connection and drops
        sink.verdict(id, NF_ACCEPT, st.mark);
        return;
      default:
        sink.verdict(id, NF_ACCEPT, st.mark);
    }
  }

  /** A kernel throttle class was installed: release connections waiting for it. */
  classReady(rateBps: number, burstBytes: number, id: number, now: number): void {
    const key = `${rateBps}:${burstBytes}`;
    const l = this.pendingClass.get(key);
    if (!l) return;
    this.pendingClass.delete(key);
    for (const f of l) {
      const st = f.user as ConnState;
      if (!st || st.kind !== K_PENDING) continue;
      if (id < 0) {
        st.kind = K_POLICE;
        st.mark = this.mPolice;
        st.policer = new DualPolicer(st.rate, st.burst, now);
      } else {
        st.kind = K_CLASS;
        st.mark = markValue(this.o.markMask, MARK_CLASS_BASE + id);
      }
      st.decided = true;
      this.release(f, st, now);
    }
  }

  private flowEnd(f: Flow): void {
    const st = f.user as ConnState | null;
    if (st && st.held && st.held.length > 0) {
      // the engine forgot the flow while packets were held: let them go (fail open)
      for (const id of st.held) this.o.sink.verdict(id, NF_ACCEPT, 0);
      st.held.length = 0;
    }
    this.holding.delete(f);
  }

  // ---- emulation mode ----

  private tspuMatch(sni: string, tf: TspuFlow<EnforceDecision>): EnforceDecision | null {
    const d = this.policy.match({
      host: sni,
      raw_host: sni,
      proto: 'TCP',
      src_ip: ipText(tf.ia),
      dest_ip: ipText(tf.ra),
      dest_port: tf.rp,
      app_proto: 'tls',
      alpn: [],
      ja4: null,
      quic_version: null,
      ech: false,
    });
    return d.action === 'allow' || d.action === 'log' ? null : d;
  }

  private handleTspu(p: NfPacket, f: Flow | null, now: number): void {
    const sink = this.o.sink;
    const t = this.tspu!.packet(p.payload, now);
    if (!t) {
      // untracked (SYN not seen, idled out): out of the emulated box's reach; let the kernel carry it
      sink.verdict(p.id, NF_ACCEPT, f ? this.mAllow : 0);
      return;
    }
    const d = t.decision;
    if (d === null) {
      if (t.inspecting) {
        this.c[C.passInspecting]++;
        sink.verdict(p.id, NF_ACCEPT, 0);
      } else sink.verdict(p.id, NF_ACCEPT, this.mAllow);
      return;
    }
    let st = t.user as ConnState | null;
    if (!st) {
      st = new ConnState();
      st.decision = d;
      st.decided = true;
      t.user = st;
      let enforcement: VerdictTaken['enforcement'];
      if (d.action === 'block') {
        // the 2021 box only throttled; blocking here follows the policy (2022+ behaviour)
        if (d.method === 'drop') {
          st.kind = K_DROP;
          st.mark = this.mDrop;
          enforcement = 'drop';
        } else {
          st.kind = K_RST;
          st.mark = this.mRst;
          enforcement = 'reset';
        }
      } else {
        st.kind = K_POLICE;
        st.mark = this.mPolice;
        st.rate = d.rate_bps ?? 131072;
        st.burst = d.burst_bytes ?? DEFAULT_BURST;
        st.policer = new DualPolicer(st.rate, st.burst, now);
        enforcement = 'police-userspace';
      }
      if (f) {
        const fs = new ConnState();
        fs.decision = d;
        fs.rate = st.rate;
        fs.burst = st.burst;
        this.emit(f, fs, 'emulation', enforcement, now);
      }
    }
    this.enforce(st, p.id, p.payload.length, t.lastToServer, now);
  }
}

function ipText(a: Uint8Array): string {
  if (a.length === 4) return `${a[0]}.${a[1]}.${a[2]}.${a[3]}`;
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(((a[i] << 8) | a[i + 1]).toString(16));
  return parts.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}
