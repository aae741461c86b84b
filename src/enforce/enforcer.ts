/**
 * @module enforce/enforcer
 * The box's decision core for one queue, independent of how packets arrive (a worker thread feeds it
 * packets from an NfQueue; tests feed it directly). Every packet goes through the one Engine (decode,
 * flow table, reassembly, dissectors, as offline); the policy decides on the flow's record through
 * the match-input builder `simulate` uses (policy/match-input), so a what-if run and the wire agree.
 *
 * Normal mode: the hold/release state machine of enforce/hold (TCP: every client segment passes at
 * once except the one that completes the name; UDP: client datagrams held), bounded by the policy's
 * `budget_bytes` and `hold_ms`; `inspection.on_timeout` decides a connection whose name is not
 * known in time. Once decided, enforce/enforcement maps the decision to a mark (and the userspace
 * policer), and the kernel enforces the connection from then on (rules.ts).
 *
 * Emulation mode (`inspection.mode: tspu-2021`): the decision comes from the tspu-2021 inspection
 * mode over the same Engine flows, one packet at a time, nothing is held, and throttled connections
 * are policed here (every packet comes to userspace) so the emulated state rules (10-minute idle,
 * RST/FIN ignored) hold exactly.
 */
import { DEFAULT_INSPECT_BYTES, Engine } from '../engine/engine.js';
import type { Flow } from '../flow/flow.js';
import type { EnforcementName, FlowEndReason, FlowRecord } from '../record/record.js';
import type { EvidenceDecision, EvidenceWriter } from '../output/evidence.js';
import type { CompiledPolicy, Decision, MatchInput } from '../policy/types.js';
import { PROTECTED_RULE_ID } from '../policy/types.js';
import { inputFromRecord } from '../policy/match-input.js';
import { PatternIndex } from '../policy/patterns.js';
import { TrafficStats, type Judged } from './traffic.js';
import { parseClientHelloBody } from '../dissect/tls.js';
import { TCP_ACK, TCP_SYN } from '../decode/packet.js';
import { NF_ACCEPT, type NfPacket } from './nfq.js';
import { DualPolicer } from './policer.js';
import { RstInjector, TCP_FIN, TCP_PSH, buildTcp4, buildTcp6, rewriteToRst } from './rst.js';
import { redirectResponse } from './redirect.js';
import { addressRuleIds, icmpBlock } from './icmp.js';
import { Tspu2021Inspector, tspuEngineOptions } from './tspu2021.js';
import { C } from './counters.js';
import { ResidualTable, residualKey } from './residual.js';
import {
  K_CLASS,
  K_PENDING,
  K_POLICE,
  K_DROP,
  K_REDIRECT,
  K_REWRITE,
  K_RST,
  K_STALL,
  Marks,
  enforcementOf,
  packetVerdict,
  type EnforceContext,
  type VerdictSink,
} from './enforcement.js';
import { Conn, HoldSet, Phase } from './hold.js';
import type { VerdictEvent, VerdictReason, VerdictTaken } from './types.js';

export type { VerdictSink } from './enforcement.js';

/** A connection whose conntrack mark (our bits) must become `mark` (the client's 5-tuple). */
export interface Remark {
  proto: 'TCP' | 'UDP';
  src: string;
  dst: string;
  sport: number;
  dport: number;
  mark: number;
}

export interface EnforcerOptions {
  queue: number;
  sink: VerdictSink;
  policy: CompiledPolicy;
  /** Shadow policy: decides every new flow beside `policy`, never enforced (counted in `traffic`). */
  shadow?: CompiledPolicy | null;
  /** Id of the policy version (carried by every verdict event). */
  version?: string;
  markMask: number;
  /** Where throttling happens. */
  throttle: 'kernel' | 'userspace';
  /** Kernel throttle class for (rate, burst): its id, or -1 when not installed yet (request it). */
  classFor?: (rateBps: number, burstBytes: number) => number;
  onVerdict?: (ev: VerdictEvent) => void;
  counters: Float64Array;
  /** Inject a RST toward the server on `block` with method rst (default true). */
  rstToServer?: boolean;
  maxFlows?: number;
  /** Most residual-blocking entries kept (default RESIDUAL_CAP); the oldest is evicted when full. */
  residualCap?: number;
  /**
   * Evidence pcaps (`enforce --evidence`): every queued packet of a flow is offered until the flow is
   * decided; block/throttle verdicts keep its first packets. Null/absent: one null check per packet.
   */
  evidence?: EvidenceWriter<Flow> | null;
  /**
   * The evidence writer failed (disk full, directory gone): evidence is off from then on and
   * enforcement goes on unchanged (a verdict never depends on the evidence).
   */
  onEvidenceError?: (e: Error) => void;
}

/** Closed flows in normal mode are ended 1 s after RST / both FINs (engine default). */
const CLOSED_IDLE_MS = 1000;

/**
 * A flow address (four 32-bit words, IPv4 in the last) as the 4 or 16 bytes of a crafted packet
 * (once per crafted reply, not per packet).
 */
function addrBytes(w: ArrayLike<number>, ipVer: number): Uint8Array {
  const v6 = ipVer === 6;
  const b = new Uint8Array(v6 ? 16 : 4);
  const dv = new DataView(b.buffer);
  if (v6) for (let i = 0; i < 4; i++) dv.setUint32(4 * i, w[i] >>> 0);
  else dv.setUint32(0, w[3] >>> 0);
  return b;
}

/** Evidence decision of a tspu-2021 connection whose inspection ended without a trigger. */
const TSPU_UNTRIGGERED: EvidenceDecision = { action: 'allow', rule_id: null };

/** What `inspection.on_timeout` of a policy gives a connection whose name is not known in time. */
function timeoutDecision(p: CompiledPolicy): Decision {
  const ot = p.inspection.on_timeout;
  if (ot === 'block') return { rule_id: null, action: 'block', method: 'drop' };
  if (ot === 'apply-default') return { rule_id: null, ...p.policy.default };
  return { rule_id: null, action: 'allow' };
}

/** The engine stopped inspecting because its budget ran out, not because the protocol is unknown. */
function exhausted(f: Flow): boolean {
  const a = f.anomalies;
  return a !== null && (a.includes('inspect_budget_exhausted') || a.includes('inspect_packets_exhausted'));
}

export class Enforcer {
  readonly engine: Engine;
  private policy: CompiledPolicy;
  private version: string;
  private tspu: Tspu2021Inspector<Decision> | null = null;
  private readonly o: EnforcerOptions;
  private readonly c: Float64Array;
  private readonly holds: HoldSet;
  private readonly pendingClass = new Map<string, Flow[]>();
  private readonly rst: RstInjector | null;
  /** Block rules on addresses only: they cover ICMP too (enforce/icmp.ts). */
  private icmpIds: Set<string>;
  private readonly residual: ResidualTable;
  private readonly marks: Marks;
  private readonly ctx: EnforceContext;
  private readonly emuCtx: EnforceContext;
  private ev: EvidenceWriter<Flow> | null;
  private shadow: CompiledPolicy | null;
  /** The match input of the last tspu-2021 trigger. */
  private tspuInput: MatchInput | null = null;
  private pat: PatternIndex;
  private shadowPat: PatternIndex | null;
  /** Counters of the current (active, shadow) pair, for the fleet status report. */
  readonly traffic = new TrafficStats();

  constructor(o: EnforcerOptions) {
    this.o = o;
    this.ev = o.evidence ?? null;
    this.c = o.counters;
    this.policy = o.policy;
    this.version = o.version ?? '';
    this.shadow = o.shadow ?? null;
    this.pat = new PatternIndex(o.policy);
    this.icmpIds = addressRuleIds(o.policy);
    this.shadowPat = this.shadow ? new PatternIndex(this.shadow) : null;
    this.traffic.reset(this.shadow !== null);
    const ins = o.policy.inspection;
    this.engine = new Engine({
      maxFlows: o.maxFlows ?? 131072,
      // at least the engine's default: one whole TLS record (16 KiB + header, a ClientHello padded to
      // the record limit) and room for records before it
      inspectBytes: Math.max(ins.budget_bytes, DEFAULT_INSPECT_BYTES),
      inspectPackets: ins.max_packets,
      onFlowEnd: (f, why) => {
        this.flowEnd(f, why);
        // after flowEnd: a flow decided at its end (reason flow_end) has its evidence written first
        if (this.ev !== null) this.evEnd(f);
      },
    });
    this.holds = new HoldSet(this.c);
    this.rst = o.rstToServer === false ? null : new RstInjector();
    this.residual = new ResidualTable(o.residualCap);
    this.marks = new Marks(o.markMask);
    this.ctx = { marks: this.marks, throttle: o.throttle, classFor: o.classFor };
    this.emuCtx = { marks: this.marks, throttle: 'userspace' };
    this.applyMode();
  }

  /** Id of the policy version in force. */
  get policyVersion(): string {
    return this.version;
  }

  /**
   * Swap the policy (atomic for the next packet; connections already decided keep their verdict) and
   * the shadow policy; the traffic counters start over when the version pair changes.
   */
  setPolicy(p: CompiledPolicy, version = this.version, shadow: CompiledPolicy | null = null): void {
    const changed = version !== this.version || p !== this.policy;
    this.policy = p;
    this.icmpIds = addressRuleIds(p);
    this.version = version;
    this.shadow = shadow;
    this.pat = new PatternIndex(p);
    this.shadowPat = shadow ? new PatternIndex(shadow) : null;
    if (changed) this.traffic.reset(shadow !== null);
    this.applyMode();
  }

  /**
   * After a version change (normal mode): re-decide every connection the previous version decided
   * on a match (its name is known), under the policy now in force. A connection whose verdict changes
   * gets the new mark and policer at once in userspace; the returned list is what the kernel must be
   * told — the conntrack mark of connections it enforces without us (marked allow/drop/reset/class),
   * so e.g. a long download a bad version throttled recovers. A new kernel throttle class is not
   * waited for: such a connection is policed in userspace (every packet comes back to the queue).
   */
  redecide(now: number): Remark[] {
    const out: Remark[] = [];
    if (this.tspu) return out;
    for (const f of this.engine.table.all()) {
      const st = f.user as Conn | null;
      if (!st || st.phase !== Phase.Decided || st.decision === null) continue;
      if (st.reason !== 'named' && st.reason !== 'gave_up') continue;
      const rec = this.engine.record(f);
      const d = this.policy.match(inputFromRecord(rec));
      const o = st.decision;
      if (
        d.action === o.action &&
        d.rate_bps === o.rate_bps &&
        d.burst_bytes === o.burst_bytes &&
        d.method === o.method
      )
        continue;
      let e = enforcementOf(d, f.proto === 6, this.ctx);
      if (e.kind === K_PENDING) e = enforcementOf(d, f.proto === 6, this.emuCtx);
      const oldMark = st.mark;
      st.decision = d;
      st.kind = e.kind;
      st.mark = e.mark;
      st.rate = e.rate;
      st.burst = e.burst;
      st.policer = e.kind === K_POLICE ? new DualPolicer(e.rate, e.burst, now) : null;
      this.c[C.redecided]++;
      if (e.mark !== oldMark)
        out.push({
          proto: rec.proto,
          src: rec.src_ip,
          dst: rec.dest_ip,
          sport: rec.src_port,
          dport: rec.dest_port,
          mark: e.mark,
        });
    }
    return out;
  }

  /** The shadow policy in force, or null. */
  get shadowPolicy(): CompiledPolicy | null {
    return this.shadow;
  }

  /** What one policy's decision means for the counters. */
  private judge(p: CompiledPolicy, pat: PatternIndex, d: Decision, input: MatchInput | null): Judged {
    const restrictive = d.action === 'block' || d.action === 'throttle';
    return {
      d,
      pattern: !pat.empty && input !== null && pat.viaPattern(d, input.host),
      protectedHit:
        d.rule_id === PROTECTED_RULE_ID ||
        (restrictive && input !== null && p.isProtected !== undefined && p.isProtected(input)),
    };
  }

  /**
   * Count a new flow's active decision and (if a shadow is loaded) the shadow's on the same input;
   * `input` null: decided without a match (timeouts), the shadow's own `on_timeout` decides it.
   */
  private tally(d: Decision, input: MatchInput | null, f: Flow): void {
    const name = input?.host ?? f.host ?? `[${this.engine.record(f).dest_ip}]`;
    const a = this.judge(this.policy, this.pat, d, input);
    const sp = this.shadow;
    let s: Judged | null = null;
    if (sp !== null) {
      const sd = input !== null ? sp.match(input) : timeoutDecision(sp);
      s = this.judge(sp, this.shadowPat!, sd, input);
    }
    this.traffic.flow(name, a, s);
  }

  private applyMode(): void {
    const ins = this.policy.inspection;
    const idleMs = ins.idle_timeout_s * 1000;
    if (ins.mode === 'tspu-2021') {
      this.tspu = new Tspu2021Inspector<Decision>(
        (body) => {
          try {
            return parseClientHelloBody(body, 't').sni;
          } catch {
            return undefined;
          }
        },
        (sni, f) => this.tspuMatch(sni, f),
        { windowPackets: ins.max_packets, idleMs },
      );
      this.engine.setIdleTimeouts(tspuEngineOptions(idleMs));
    } else {
      this.tspu = null;
      this.engine.setIdleTimeouts({ tcpIdleMs: idleMs, closedIdleMs: CLOSED_IDLE_MS });
    }
  }

  /** One queued packet. Always leads to exactly one verdict for it (now or when released). */
  handle(p: NfPacket, now: number): void {
    const c = this.c;
    c[C.packets]++;
    c[C.bytes] += p.payload.length;
    let f = this.engine.packet(p.payload, 101, now);
    const sink = this.o.sink;
    if (f && !this.tspu && (f.user as Conn | null)?.phase === Phase.Decided && this.newConnection()) {
      // a SYN on the 5-tuple of a decided connection: the kernel queued it, so its conntrack entry is
      // new (TIME_WAIT reuse; the old one's close was never queued to us). The engine's flow is stale:
      // end it and start over, or the new connection would inherit the old verdict unclassified.
      this.engine.endFlow(f);
      f = this.engine.packet(p.payload, 101, now);
    }
    if (!f) {
      // ICMP to/from a blocked address: the drop mark (the kernel drops the rest of its conntrack entry)
      if (this.icmpIds.size > 0 && icmpBlock(p.payload, this.policy, this.icmpIds) !== null) {
        c[C.icmpDrop]++;
        sink.verdict(p.id, NF_ACCEPT, this.marks.drop);
        return;
      }
      c[C.notIp]++;
      sink.verdict(p.id, NF_ACCEPT, 0);
      return;
    }
    // evidence: only what reaches the queue (the kernel carries a connection once it is marked)
    if (this.ev !== null) this.evPacket(f, now, p.payload);
    const toServer = this.engine.lastToServer;
    let st = f.user as Conn | null;
    if (!st) {
      f.user = st = new Conn();
      // a new connection inside a residual-blocking window: blocked at its first packet
      if (this.residual.size > 0 && this.residualHit(f, st, now)) {
        packetVerdict(st, sink, p.id, p.payload.length, toServer, now, this.c, 0, this.marks.drop);
        return;
      }
    }
    if (this.tspu) {
      this.handleTspu(p, f, st, toServer, now);
      return;
    }
    const len = p.payload.length;
    if (st.phase === Phase.Decided) {
      if (st.kind === K_REWRITE && !toServer) {
        this.rewrite(p, st);
        return;
      }
      packetVerdict(st, sink, p.id, len, toServer, now, c, this.engine.pkt.payLen, this.marks.drop);
      return;
    }
    if (st.phase === Phase.Pending) {
      this.holdPending(f, st, p.id, len, now);
      return;
    }
    const ep = this.engine.pkt;
    const data = toServer && ep.payLen > 0;
    const tcp = ep.proto === 6;
    // data in a SYN (TCP Fast Open) starts after the SYN's own sequence number
    const seq = tcp && ep.tcpFlags & TCP_SYN ? (ep.seq + 1) >>> 0 : ep.seq;
    if (f.inspecting) {
      if (!data) {
        c[C.passInspecting]++;
        sink.verdict(p.id, NF_ACCEPT, 0);
        return;
      }
      this.holds.start(f, st, now, tcp);
      if (!tcp) {
        this.holds.hold(st, p.id, len, now);
        if (st.heldBytes > this.policy.inspection.budget_bytes) {
          c[C.holdOverflows]++;
          this.timeout(f, st, 'hold_overflow', now);
        }
        return;
      }
      // forwarded at once: the server acknowledges it, so a client that splits its first bytes
      // into tiny segments never stalls; the server cannot act on an incomplete ClientHello
      st.sent(seq, ep.payLen, ep.ack);
      c[C.passInspecting]++;
      // protocol known: keep the connection queued past connbytes until the name is complete
      sink.verdict(p.id, NF_ACCEPT, f.inspectingKnown ? this.marks.inspect : 0);
      return;
    }
    // the engine finished inspecting with this packet: it gets the verdict
    const rec = this.engine.record(f);
    if (data) {
      if (tcp) st.withheld(seq, ep.ack, ep.payLen);
      this.holds.hold(st, p.id, len, now);
    } else sink.verdict(p.id, NF_ACCEPT, 0);
    const input = inputFromRecord(rec);
    const d = this.policy.match(input);
    if (f.host === null && (d.action === 'allow' || d.action === 'log') && exhausted(f))
      this.c[C.failOpenExhausted]++;
    this.tally(d, input, f);
    this.decide(f, st, f.host !== null ? 'named' : 'gave_up', d, now, rec);
  }

  /** The engine's current packet is a client SYN (without ACK). */
  private newConnection(): boolean {
    const ep = this.engine.pkt;
    return ep.proto === 6 && (ep.tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN && this.engine.lastToServer;
  }

  /** Hold timeouts; call every few ms. */
  tick(now: number): void {
    this.holds.due(now, this.policy.inspection.hold_ms, (f) =>
      this.timeout(f, f.user as Conn, 'hold_timeout', now),
    );
  }

  /** What `inspection.on_timeout` gives a connection whose name is not known in time. */
  private timeout(f: Flow, st: Conn, reason: VerdictReason, now: number): void {
    const d = timeoutDecision(this.policy);
    if (this.policy.inspection.on_timeout === 'allow') this.c[C.failOpenTimeout]++;
    this.tally(d, null, f);
    this.decide(f, st, reason, d, now);
  }

  /** Fix the connection's verdict, emit the event, and release what was held. */
  private decide(f: Flow, st: Conn, reason: VerdictReason, d: Decision, now: number, rec?: FlowRecord): void {
    const e = enforcementOf(d, f.proto === 6, this.ctx);
    st.decision = d;
    st.reason = reason;
    st.kind = e.kind;
    st.mark = e.mark;
    st.rate = e.rate;
    st.burst = e.burst;
    // stall: the held trigger passes on top of the N packets after it
    st.left = e.kind === K_STALL ? e.left + (st.held?.length ?? 0) : e.left;
    st.p = e.p;
    if (e.kind === K_POLICE) st.policer = new DualPolicer(e.rate, e.burst, now);
    if (d.block?.residual_s !== undefined && reason !== 'residual') this.residualAdd(f, d, now);
    this.count(d);
    this.emit(f, st, e.name, now, rec);
    if (e.kind === K_PENDING) {
      // the class rule is being installed: keep holding until classReady()
      st.phase = Phase.Pending;
      this.holds.forget(f);
      const key = `${e.rate}:${e.burst}`;
      const l = this.pendingClass.get(key);
      if (l) l.push(f);
      else this.pendingClass.set(key, [f]);
      return;
    }
    st.phase = Phase.Decided;
    this.release(f, st, now);
  }

  /** Start the residual window of a triggering connection (key and time from its rule). */
  private residualAdd(f: Flow, d: Decision, now: number): void {
    const b = d.block!;
    const key = residualKey(b.residual_key ?? '5-tuple', f.proto, f.cli, f.srv, f.cport, f.sport);
    const before = this.residual.evicted;
    // inside the window every new connection is refused as the trigger was: rst stays rst, the
    // methods that let packets pass (stall, curtain, degrade) become a silent drop
    const rd: Decision = Object.freeze({
      rule_id: d.rule_id,
      action: 'block',
      method: d.method === 'rst' || d.method === 'rst-rewrite' ? 'rst' : 'drop',
    });
    this.residual.add(key, now + b.residual_s! * 1000, rd);
    this.c[C.residualEvicted] += this.residual.evicted - before;
  }

  /** The new connection `f` falls in a residual window: decide it now (true) or not (false). */
  private residualHit(f: Flow, st: Conn, now: number): boolean {
    const cli = f.cli;
    const srv = f.srv;
    const d =
      this.residual.get(residualKey('5-tuple', f.proto, cli, srv, f.cport, f.sport), now) ??
      this.residual.get(residualKey('address-pair', f.proto, cli, srv, f.cport, f.sport), now);
    if (d === null) return false;
    this.c[C.residualHits]++;
    this.decide(f, st, 'residual', d, now);
    return true;
  }

  private count(d: Decision): void {
    const c = this.c;
    if (d.action === 'allow') c[C.verdictAllow]++;
    else if (d.action === 'log') c[C.verdictLog]++;
    else if (d.action === 'block') c[C.verdictBlock]++;
    else c[C.verdictThrottle]++;
  }

  /** The one place every verdict is emitted (normal and emulation mode): EVE event and evidence. */
  private emit(f: Flow, st: Conn, enforcement: EnforcementName, now: number, rec?: FlowRecord): void {
    const ev = this.ev;
    if (!this.o.onVerdict && ev === null) return;
    const d = st.decision!;
    const r = rec ?? this.engine.record(f);
    if (ev !== null) this.evDecided(f, r, d);
    if (!this.o.onVerdict) return;
    const taken: VerdictTaken = {
      action: d.action,
      enforcement,
      reason: st.reason,
      queue: this.o.queue,
      held_packets: st.heldTotal,
      held_ms: st.heldTotal > 0 ? Math.max(0, now - st.holdStart) : 0,
    };
    if (d.action === 'throttle') {
      taken.rate_bps = st.rate;
      taken.burst_bytes = st.burst;
    }
    this.o.onVerdict(verdictEvent(r, this.version, { rule_id: d.rule_id, action: d.action }, taken));
  }

  /** Release held packets in arrival order under the connection's verdict. */
  private release(f: Flow, st: Conn, now: number): void {
    // (a flow that already ended gets no crafted RST: there is no connection left to reset)
    if (st.kind === K_RST && this.rst && st.haveSeq && st.reason !== 'flow_end') this.injectServerRst(f, st);
    if (st.kind === K_REDIRECT && this.rst && st.haveSeq && st.reason !== 'flow_end') this.redirect(f, st);
    const sink = this.o.sink;
    const c = this.c;
    const drop = this.marks.drop;
    this.holds.release(f, st, (id, len) => packetVerdict(st, sink, id, len, true, now, c, 0, drop));
  }

  /**
   * Method redirect: answer the client's request in the server's name with a 307 to the block page
   * (PSH|ACK|FIN: the response ends the connection), and reset the server's half. The request itself
   * is dropped by the kernel (mark drop). Needs the raw socket of `rstToServer` (off: nothing sent).
   */
  private redirect(f: Flow, st: Conn): void {
    const inj = this.rst!;
    const cli = addrBytes(f.cli, f.ipVer);
    const srv = addrBytes(f.srv, f.ipVer);
    const body = redirectResponse(st.decision!.block?.location ?? '/');
    const pkt = (f.ipVer === 6 ? buildTcp6 : buildTcp4)(
      srv,
      cli,
      f.sport,
      f.cport,
      st.ackLast,
      st.cliEnd,
      TCP_PSH | TCP_ACK | TCP_FIN,
      body,
    );
    if (inj.sendPacket(pkt, cli)) this.c[C.redirectSent]++;
    else this.c[C.rstFailed]++;
    if (inj.send(cli, srv, f.cport, f.sport, st.nextSeq, st.ackLast)) this.c[C.rstInjected]++;
    else this.c[C.rstFailed]++;
  }

  /**
   * Method rst-rewrite (SNI-I): the server's first packet after the trigger leaves as a RST/ACK to the
   * client, with the server's own seq (so the client's stack takes it: RFC 5961 exact match); the
   * server gets nothing from the box. The kernel drops the rest of the connection (mark drop).
   */
  private rewrite(p: NfPacket, st: Conn): void {
    const sink = this.o.sink;
    const n = sink.verdictWith ? rewriteToRst(p.payload) : 0;
    // the RST itself leaves under the police mark (the drop mark would make the kernel drop it); the
    // packets after it come here once more and get the drop mark
    if (n > 0) {
      this.c[C.rstRewritten]++;
      sink.verdictWith!(p.id, NF_ACCEPT, st.mark, p.payload.subarray(0, n));
    } else sink.verdict(p.id, NF_ACCEPT, this.marks.drop);
    st.kind = K_DROP;
    st.mark = this.marks.drop;
  }

  private injectServerRst(f: Flow, st: Conn): void {
    const cli = addrBytes(f.cli, f.ipVer);
    const srv = addrBytes(f.srv, f.ipVer);
    if (this.rst!.send(cli, srv, f.cport, f.sport, st.nextSeq, st.ackLast)) this.c[C.rstInjected]++;
    else this.c[C.rstFailed]++;
  }

  /** A packet of a connection waiting for its kernel class: held, bounded by the byte budget. */
  private holdPending(f: Flow, st: Conn, id: number, len: number, now: number): void {
    this.holds.hold(st, id, len, now);
    if (st.heldBytes > this.policy.inspection.budget_bytes) {
      // the class takes too long: police this connection in userspace instead
      this.c[C.holdOverflows]++;
      this.classDone(f, st, -1, now);
    }
  }

  /** A kernel throttle class was installed (id ≥ 0) or failed (-1): release connections waiting for it. */
  classReady(rateBps: number, burstBytes: number, id: number, now: number): void {
    const key = `${rateBps}:${burstBytes}`;
    const l = this.pendingClass.get(key);
    if (!l) return;
    this.pendingClass.delete(key);
    for (const f of l) {
      const st = f.user as Conn | null;
      if (st && st.phase === Phase.Pending) this.classDone(f, st, id, now);
    }
  }

  private classDone(f: Flow, st: Conn, id: number, now: number): void {
    if (id < 0) {
      st.kind = K_POLICE;
      st.mark = this.marks.police;
      st.policer = new DualPolicer(st.rate, st.burst, now);
    } else {
      st.kind = K_CLASS;
      st.mark = this.marks.cls(id);
    }
    st.phase = Phase.Decided;
    this.release(f, st, now);
  }

  private flowEnd(f: Flow, why: FlowEndReason): void {
    const st = f.user as Conn | null;
    if (!st) return;
    if (!this.tspu && st.phase === Phase.Inspecting && st.dataStart >= 0) {
      // (the only end that needs the record: a decided connection's verdict line is written already)
      const rec = this.engine.record(f, why);
      // ended (closed, idle, evicted) before a verdict, after the client sent data: its forwarded
      // segments passed unclassified. Decide on the final record (the engine's last look at the bytes)
      // so it is logged, and count it as a fail-open when that lets it through unnamed.
      const input = inputFromRecord(rec);
      const d = this.policy.match(input);
      if (f.host === null && (d.action === 'allow' || d.action === 'log')) this.c[C.failOpenFlowEnd]++;
      this.tally(d, input, f);
      this.decide(f, st, 'flow_end', d, this.engine.nowMs, rec);
      if ((st.phase as Phase) === Phase.Decided) return;
    }
    if (st.held && st.held.length > 0) {
      // the engine forgot the flow while packets were held: let them go (fail open)
      this.c[C.failOpenHeld] += st.held.length;
      const sink = this.o.sink;
      this.holds.release(f, st, (id) => sink.verdict(id, NF_ACCEPT, 0));
    } else this.holds.forget(f);
    this.tspu?.forget(st);
  }

  // ---- evidence: its failures turn it off, never the verdict ----

  private evPacket(f: Flow, now: number, buf: Uint8Array): void {
    try {
      this.ev!.packet(f, now, 101, buf);
    } catch (e) {
      this.evFailed(e);
    }
  }

  private evDecided(f: Flow, r: FlowRecord, d: EvidenceDecision): void {
    try {
      this.ev!.flowDecided(f, r, d);
    } catch (e) {
      this.evFailed(e);
    }
  }

  private evEnd(f: Flow): void {
    try {
      this.ev!.flowEnd(f);
    } catch (e) {
      this.evFailed(e);
    }
  }

  /** Stop offering packets and verdicts to the evidence writer (its owner saw it fail). */
  dropEvidence(): void {
    this.ev = null;
  }

  private evFailed(e: unknown): void {
    this.ev = null;
    this.o.onEvidenceError?.(e instanceof Error ? e : new Error(String(e)));
  }

  // ---- emulation mode ----

  private tspuMatch(sni: string, f: Flow): Decision | null {
    const input = inputFromRecord(this.engine.record(f), sni);
    const d = this.policy.match(input);
    this.tspuInput = input;
    if (d.action === 'allow' || d.action === 'log') {
      // no trigger: the flow still counts (and its shadow decision on the same name), once, at its
      // first name — so a shadow stage on an emulating box sees what the new version would throttle
      const st = f.user as Conn | null;
      if (st && !st.tallied) {
        st.tallied = true;
        this.tally(d, input, f);
      }
      return null;
    }
    return d;
  }

  private handleTspu(p: NfPacket, f: Flow, st: Conn, toServer: boolean, now: number): void {
    const sink = this.o.sink;
    const t = this.tspu!.inspect(st, f, this.engine.pkt, toServer, now);
    if (!t) {
      // untracked (SYN not seen, idled out): out of the emulated box's reach; let the kernel carry it
      if (this.ev !== null) this.evDecided(f, this.engine.record(f), TSPU_UNTRIGGERED);
      sink.verdict(p.id, NF_ACCEPT, this.marks.allow);
      return;
    }
    if (st.phase !== Phase.Decided) {
      const d = t.decision;
      if (d === null) {
        if (t.inspecting) {
          this.c[C.passInspecting]++;
          sink.verdict(p.id, NF_ACCEPT, 0);
        } else {
          // inspection over without a trigger: the kernel carries it; its held evidence is freed
          if (this.ev !== null) this.evDecided(f, this.engine.record(f), TSPU_UNTRIGGERED);
          sink.verdict(p.id, NF_ACCEPT, this.marks.allow);
        }
        return;
      }
      // the 2021 box only throttled; blocking follows the policy (2022+ behaviour); throttling is
      // policed in userspace so the idle rule holds exactly
      const e = enforcementOf(d, true, this.emuCtx);
      st.decision = d;
      st.reason = 'emulation';
      st.kind = e.kind;
      st.mark = e.mark;
      st.rate = e.rate;
      st.burst = e.burst;
      st.left = e.left;
      st.p = e.p;
      if (e.kind === K_POLICE) st.policer = new DualPolicer(e.rate, e.burst, now);
      if (d.block?.residual_s !== undefined) this.residualAdd(f, d, now);
      st.phase = Phase.Decided;
      this.count(d);
      // a flow already counted at an earlier, allowed name keeps that count (one flow, one tally)
      if (!st.tallied) {
        st.tallied = true;
        this.tally(d, this.tspuInput, f);
      }
      this.emit(f, st, e.name, now);
    }
    if (st.kind === K_REWRITE && !t.lastToServer) {
      this.rewrite(p, st);
      return;
    }
    packetVerdict(
      st,
      sink,
      p.id,
      p.payload.length,
      t.lastToServer,
      now,
      this.c,
      this.engine.pkt.payLen,
      this.marks.drop,
    );
  }
}

/**
 * The verdict event of a flow's record: the record's keys in its order (`event_type` and `policy`
 * replaced), then the version and the verdict. Written out key by key rather than as a spread: a spread
 * of the record's 28 keys cost ~5 µs a verdict (`emit` was a tenth of the enforcer's CPU in a profile);
 * a literal is one allocation of one shape. `enforcer.test` checks that no key of the record is missed.
 */
export function verdictEvent(
  r: FlowRecord,
  version: string,
  policy: VerdictEvent['policy'],
  verdict: VerdictTaken,
): VerdictEvent {
  return {
    event_type: 'verdict',
    flow_id: r.flow_id,
    community_id: r.community_id,
    timestamp: r.timestamp,
    pcap_filename: r.pcap_filename,
    proto: r.proto,
    src_ip: r.src_ip,
    src_port: r.src_port,
    dest_ip: r.dest_ip,
    dest_port: r.dest_port,
    app_proto: r.app_proto,
    host: r.host,
    anomalies: r.anomalies,
    pkts_toserver: r.pkts_toserver,
    pkts_toclient: r.pkts_toclient,
    bytes_toserver: r.bytes_toserver,
    bytes_toclient: r.bytes_toclient,
    duration: r.duration,
    end: r.end,
    state: r.state,
    reason: r.reason,
    first_payload: r.first_payload,
    tls: r.tls,
    quic: r.quic,
    http: r.http,
    dns: r.dns,
    policy,
    partial: r.partial,
    policy_version: version,
    verdict,
  };
}
