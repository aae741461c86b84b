/**
 * @module engine/engine
 * The packet path: decode → flow lookup → counters → inspection of the client's first bytes → flow end.
 * One Engine per thread; every mode (analyze, simulate, enforce) drives it with `packet()`.
 * Per packet it allocates nothing on the common path (decoded into a reused Packet, integer flow hash).
 *
 * Budgets: while a flow's protocol is unknown, at most `inspectPackets` client data packets are
 * inspected (not counting those held while the stream's first byte is still missing: the protocol
 * cannot be known before it, so out-of-order segments are bounded by bytes only); once the first bytes chose a dissector (TLS, HTTP, DNS over TCP, QUIC) the flow is
 * inspected until its message is complete or `inspectBytes` are spent, whatever the number, size or
 * order of the segments (each costs O(its bytes): see flow/stream). Ask `flow.inspectingKnown` (or
 * {@link Engine.inspectingKnown}) whether a flow is in that state — one comparison, for an inline box
 * that must keep queueing it. All reassembly buffers together are capped (`maxReassemblyBytes`).
 * Every cap hit is an anomaly on the flow and a count in {@link Engine.caps}:
 * `inspect_budget_exhausted`, `inspect_packets_exhausted`, `reassembly_memory_exhausted`, `flow_evicted`
 * (the table full, or `kept_bytes_exhausted`: what flows keep of their dissection over `maxKeptBytes`),
 * the QUIC dissector's caps counted once per flow when its inspection ends (`quic_too_many_packets`,
 * `quic_crypto_beyond_limit`, `quic_crypto_too_large`, `quic_no_client_hello`; also when it is cut
 * short by another cap or by the flow's end, the dissector's anomalies then kept on the flow), and the decoder's
 * `ipfrag_*` codes in `decoder.anomalies`.
 */
import { Decoder } from '../decode/decoder.js';
import { Decoded, Packet, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../decode/packet.js';
import { Flow, FlowState } from '../flow/flow.js';
import { FlowTable, LIST_CLOSED, LIST_TCP, LIST_UDP, flowHash } from '../flow/table.js';
import { StreamAssembler } from '../flow/stream.js';
import { abandonUdp, inspectHeld, inspectTcp, inspectUdp, keptBytes } from './inspect.js';
import { randomBytes } from 'node:crypto';
import { buildRecord } from './record-build.js';
import { FIRST_HEAD_BYTES, type FlowEndReason, type FlowRecord } from '../record/record.js';

/**
 * The QUIC dissector's cap hits (dissect/quic): more than 8 coalesced packets in a datagram, CRYPTO
 * data past the byte limit, a ClientHello larger than the limit, 64 datagrams without a ClientHello.
 */
const QUIC_CAP_CODES: readonly string[] = [
  'quic_too_many_packets',
  'quic_crypto_beyond_limit',
  'quic_crypto_too_large',
  'quic_no_client_hello',
];

/**
 * A hook on every packet after the engine saw it (`f` null when not TCP/UDP over IP); the bytes
 * `buf[off, end)` are valid only during the call. Used by offline (engine/analyze) and live (engine/live) runs.
 */
export type PacketTap = (
  f: Flow | null,
  buf: Uint8Array,
  off: number,
  end: number,
  linktype: number,
  tsMs: number,
  wireLen: number,
) => void;

export interface EngineOptions {
  /**
   * Called when a flow ends (idle timeout, close, eviction, flush), before its objects are reused.
   * `engine.record(flow, reason)` gives its final record: built only by a listener that wants it (the
   * inline box has written its verdict already, and skips the record of every decided connection).
   */
  onFlowEnd?: (flow: Flow, reason: FlowEndReason) => void;
  /** Called once when a flow's inspection finishes (named or gave up). */
  onClassified?: (flow: Flow) => void;
  /** Hard cap on tracked flows (default 131072); the least recently active flow is evicted. */
  maxFlows?: number;
  /**
   * Client bytes buffered and inspected per flow (default {@link DEFAULT_INSPECT_BYTES}: a ClientHello
   * padded to the 16 KiB record limit, its record header, and room for records before it).
   */
  inspectBytes?: number;
  /** Client data packets inspected while the protocol is unknown (default 24). */
  inspectPackets?: number;
  /** Reassembly bytes held by all flows together (default {@link DEFAULT_MAX_REASSEMBLY_BYTES}). */
  maxReassemblyBytes?: number;
  /**
   * What all flows together keep of their dissection (names, lists, URLs: `inspect.keptBytes`;
   * default {@link DEFAULT_MAX_KEPT_BYTES}). Past it, flows that keep the most are reported early
   * (`flow_evicted`, counted as `kept_bytes_exhausted`), then the least recently active.
   */
  maxKeptBytes?: number;
  /** Seed of the flow hash (default: random per process, so chains cannot be forced). */
  hashSeed?: number;
  /**
   * Reuse the objects of ended flows (offline analysis: `onFlowEnd` takes the record, and the flow must
   * not be kept). Under a flow flood this keeps evicted flows from piling up as old-generation garbage.
   */
  recycleFlows?: boolean;
  /** Idle timeouts in ms. */
  tcpIdleMs?: number;
  udpIdleMs?: number;
  closedIdleMs?: number;
  /** Name shown as pcap_filename in records. */
  pcapFilename?: string;
  /**
   * Inspect flows (default true). False: no dissector runs, every flow is unnamed from its first
   * packet (`bench:analyze` times the packet path alone this way).
   */
  inspect?: boolean;
}

/** Well-known server ports used to orient flows picked up without a SYN. */
const SERVER_PORTS = new Set([
  20, 21, 22, 23, 25, 53, 80, 110, 119, 123, 143, 161, 389, 443, 465, 587, 853, 993, 995, 1080, 1194, 1433,
  1521, 1883, 3128, 3306, 3389, 5060, 5061, 5222, 5228, 5353, 5355, 5432, 6379, 8000, 8008, 8080, 8443, 8888,
  9000,
]);

/** 16 KiB record + 5-byte header + 2 KiB of records before it or of a second record's headers. */
export const DEFAULT_INSPECT_BYTES = 16384 + 4096;
/** All flows' reassembly buffers together (TCP streams and QUIC CRYPTO streams). */
export const DEFAULT_MAX_REASSEMBLY_BYTES = 32 << 20;
/**
 * All flows' kept dissection results together. The flow cap alone does not bound them: a request
 * may carry a URL of 16 KB, a ClientHello an SNI of kilobytes (and, before ALPN lists were capped,
 * thousands of ALPN names: 49,152 such flows, the offline cap then, held 4 GiB). An ordinary TLS flow
 * keeps ~350 B.
 */
export const DEFAULT_MAX_KEPT_BYTES = 64 << 20;
/** A flow that keeps at least this much is first in line when the kept-bytes budget is exceeded. */
const BIG_KEPT = 2048;

/** The process's flow-hash seed (random), used when no `hashSeed` is given. */
const PROCESS_SEED = randomBytes(4).readInt32LE(0);

/** Data segments a flow without a SYN is inspected for before its first bytes are taken as its start. */
const NO_SYN_SEGMENTS = 4;

export interface EngineStats {
  packets: number;
  bytes: number;
  ipPackets: number;
  skipped: number;
  malformed: number;
  flows: number;
  evicted: number;
  /** Reassembly bytes held now (all flows). */
  reassemblyBytes: number;
  /** Bytes kept of dissection results now (all flows; see `maxKeptBytes`). */
  keptBytes: number;
}

export class Engine {
  readonly decoder = new Decoder();
  readonly table = new FlowTable();
  readonly pkt = new Packet();
  readonly stats: EngineStats = {
    packets: 0,
    bytes: 0,
    ipPackets: 0,
    skipped: 0,
    malformed: 0,
    flows: 0,
    evicted: 0,
    reassemblyBytes: 0,
    keptBytes: 0,
  };
  /** Cap hits by anomaly code (each also set on the flow concerned). */
  readonly caps = new Map<string, number>();
  readonly hashSeed: number;
  /** Direction of the last packet given to `packet()`. */
  lastToServer = true;
  /** Capture time of the newest packet seen. */
  nowMs = 0;
  pcapFilename: string | undefined;

  private nextId = 1;
  private nextExpiry = 0;
  private readonly maxFlows: number;
  private readonly inspectBytes: number;
  private readonly inspectPackets: number;
  private readonly maxReassembly: number;
  private readonly maxKept: number;
  /** Flows that keep ≥ BIG_KEPT bytes, oldest first, with their id then (a stale entry is skipped). */
  private big: Flow[] = [];
  private bigIds: number[] = [];
  private bigHead = 0;
  private readonly pool: Flow[] | null;
  private readonly inspect: boolean;
  private readonly idle: number[];
  private readonly onFlowEnd?: (flow: Flow, reason: FlowEndReason) => void;
  private readonly onClassified?: (flow: Flow) => void;

  constructor(opts: EngineOptions = {}) {
    this.maxFlows = opts.maxFlows ?? 131072;
    this.inspectBytes = opts.inspectBytes ?? DEFAULT_INSPECT_BYTES;
    this.inspectPackets = opts.inspectPackets ?? 24;
    this.maxReassembly = opts.maxReassemblyBytes ?? DEFAULT_MAX_REASSEMBLY_BYTES;
    this.maxKept = opts.maxKeptBytes ?? DEFAULT_MAX_KEPT_BYTES;
    this.hashSeed = opts.hashSeed ?? PROCESS_SEED;
    this.pool = opts.recycleFlows ? [] : null;
    this.inspect = opts.inspect ?? true;
    this.idle = [opts.tcpIdleMs ?? 300_000, opts.udpIdleMs ?? 120_000, opts.closedIdleMs ?? 1_000];
    this.onFlowEnd = opts.onFlowEnd;
    this.onClassified = opts.onClassified;
    this.pcapFilename = opts.pcapFilename;
  }

  /**
   * Feed one frame. `linktype` is a LINKTYPE_* (101 = raw IP, what NFQUEUE gives). Returns the flow the
   * packet belongs to, or null when it is not a TCP/UDP packet over IP (or is malformed). The frame is
   * bytes [off, end) of `data` (default: all of it), so callers need not make a view per packet.
   */
  packet(
    data: Uint8Array,
    linktype: number,
    tsMs: number,
    wireLen = -1,
    off = 0,
    end = data.length,
  ): Flow | null {
    if (wireLen < 0) wireLen = end - off;
    const st = this.stats;
    st.packets++;
    st.bytes += wireLen;
    if (tsMs > this.nowMs) this.nowMs = tsMs;
    // expire before the lookup, so a packet after a flow's idle timeout starts a new flow
    if (this.nowMs >= this.nextExpiry) this.expire(this.nowMs);
    const p = this.pkt;
    const r = this.decoder.decode(data, linktype, tsMs, p, off, end);
    if (r !== Decoded.Ok) {
      if (r === Decoded.Bad) st.malformed++;
      else st.skipped++;
      return null;
    }
    if (p.proto !== 6 && p.proto !== 17) {
      st.skipped++;
      return null;
    }
    st.ipPackets++;
    const hash = flowHash(p, this.hashSeed);
    const table = this.table;
    let f = table.lookup(p, hash);
    if (f !== null && f.closed && p.proto === 6 && (p.tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN) {
      // a new connection on the 5-tuple of a closed one (port reuse): end the old flow
      this.end(f, 'tcp_reuse');
      f = null;
    }
    let toServer = table.toServer;
    if (!f) {
      f = this.create(p, hash, tsMs);
      toServer = table.toServer;
    }
    this.lastToServer = toServer;
    f.lastMs = tsMs > f.lastMs ? tsMs : f.lastMs;
    if (toServer) {
      f.pktsToServer++;
      f.bytesToServer += wireLen;
    } else {
      f.pktsToClient++;
      f.bytesToClient += wireLen;
    }
    if (p.anomaly !== null) f.anomaly(p.anomaly);
    if (toServer && f.firstLen < 0 && p.payLen > 0) {
      f.firstLen = p.payLen;
      f.firstHead = hexHead(p.buf, p.payOff, p.payLen);
    }
    if (p.proto === 6) this.tcp(f, p, toServer);
    else if (f.state === FlowState.Inspecting && p.payLen > 0) {
      f.inspectedPkts++;
      inspectUdp(f, p.buf.subarray(p.payOff, p.payOff + p.payLen), toServer);
      if (f.protoKnown) this.account(f);
      if (f.state !== FlowState.Inspecting && f.appProto === 'quic' && f.anomalies !== null) this.quicCaps(f);
      this.afterInspect(f);
    }
    table.touch(f, f.closed ? LIST_CLOSED : p.proto === 6 ? LIST_TCP : LIST_UDP);
    return f;
  }

  private tcp(f: Flow, p: Packet, toServer: boolean): void {
    const flags = p.tcpFlags;
    if (flags & TCP_RST) f.closed = true;
    if (flags & TCP_FIN) {
      f.finMask |= toServer ? 1 : 2;
      if (f.finMask === 3) f.closed = true;
    }
    if (f.state !== FlowState.Inspecting) return;
    if (!toServer) return;
    let s = f.stream;
    if (flags & TCP_SYN) {
      if (s) s.syn(p.seq);
      else if (f.synSeq < 0) f.synSeq = p.seq;
    }
    if (p.payLen === 0) return;
    // data in a SYN (TCP Fast Open) starts after the SYN's own sequence number
    const seq = flags & TCP_SYN ? (p.seq + 1) >>> 0 : p.seq;
    f.inspectedPkts++;
    if (
      s === null ? f.synSeq < 0 || (f.synSeq + 1) >>> 0 === seq : s.synSeen && s.base === seq && !s.hasData()
    ) {
      // fast path: the first in-order segment is inspected in place; it is copied into a reassembly
      // buffer only when the dissector needs more bytes
      inspectTcp(f, p.buf.subarray(p.payOff, p.payOff + Math.min(p.payLen, this.inspectBytes)));
      if (f.state !== FlowState.Inspecting && !this.awaitEarlier(f, s)) {
        this.afterInspect(f);
        return;
      }
    }
    if (!s) {
      s = f.stream = new StreamAssembler(this.inspectBytes);
      if (f.synSeq >= 0) s.syn(f.synSeq);
    }
    const epoch = s.epoch;
    const grew = s.add(seq, p.buf, p.payOff, p.payLen);
    if (s.epoch !== epoch) {
      // an earlier segment rebased the stream: the dissector starts over on the new prefix
      f.dstate = null;
      f.protoKnown = false;
    }
    if (grew) {
      inspectTcp(f, s.view());
      if ((f.state as FlowState) === FlowState.GaveUp) this.awaitEarlier(f, s);
    }
    if (f.state === FlowState.Inspecting) {
      // the packet budget applies only while the protocol is unknown
      const why = s.overflow
        ? 'inspect_budget_exhausted'
        : !f.protoKnown && f.inspectedPkts >= this.inspectPackets && (s.contig > 0 || !s.synSeen)
          ? 'inspect_packets_exhausted'
          : this.account(f)
            ? null
            : 'reassembly_memory_exhausted';
      if (why !== null) {
        inspectTcp(f, s.view(), true);
        if (f.state === FlowState.Inspecting) {
          this.cap(f, why);
          f.state = FlowState.GaveUp;
        }
      }
    }
    if (s.overlapMismatch) f.anomaly('tcp_overlap_mismatch');
    if (s.zeroReplaced) f.anomaly('tcp_zero_payload_replaced');
    this.afterInspect(f);
  }

  /**
   * A flow picked up without its SYN may have shown us a later segment first: when its first bytes
   * are of no known protocol, keep inspecting a few more segments (an earlier one rebases the stream).
   */
  private awaitEarlier(f: Flow, s: StreamAssembler | null): boolean {
    if (f.synSeq >= 0 || (s && s.synSeen) || f.appProto !== null || f.inspectedPkts >= NO_SYN_SEGMENTS)
      return false;
    f.state = FlowState.Inspecting;
    f.dstate = null;
    f.protoKnown = false;
    return true;
  }

  /**
   * Still inspecting, protocol known (see flow/flow): an inline box keeps queueing such a flow.
   * Same as `f.inspectingKnown`.
   */
  inspectingKnown(f: Flow): boolean {
    return f.protoKnown && f.state === FlowState.Inspecting;
  }

  /** A QUIC flow's inspection just ended: count the QUIC dissector's cap hits (once per flow) in `caps`. */
  private quicCaps(f: Flow): void {
    const a = f.anomalies as string[];
    for (let i = 0; i < QUIC_CAP_CODES.length; i++) {
      const code = QUIC_CAP_CODES[i];
      if (a.includes(code)) this.caps.set(code, (this.caps.get(code) ?? 0) + 1);
    }
  }

  /** A UDP flow's inspection cut short: the QUIC dissector's anomalies onto the flow, its caps counted. */
  private abandonUdp(f: Flow): void {
    if (abandonUdp(f) && f.anomalies !== null) this.quicCaps(f);
    f.dstate = null;
  }

  /** Count a cap hit: an anomaly on the flow and in `caps`. */
  private cap(f: Flow | null, code: string): void {
    if (f) f.anomaly(code);
    this.caps.set(code, (this.caps.get(code) ?? 0) + 1);
  }

  /** Update the global reassembly count with what `f` holds now; false when over the cap. */
  private account(f: Flow): boolean {
    const h = (f.stream !== null ? f.stream.held : 0) + inspectHeld(f);
    const st = this.stats;
    st.reassemblyBytes += h - f.held;
    f.held = h;
    return st.reassemblyBytes <= this.maxReassembly;
  }

  /** Free a flow's reassembly state (inspection over). */
  private release(f: Flow): void {
    if (f.stream !== null) f.stream.dispose();
    f.stream = null;
    this.stats.reassemblyBytes -= f.held;
    f.held = 0;
  }

  private afterInspect(f: Flow): void {
    if (f.state === FlowState.Inspecting) {
      if (f.proto !== 17) return;
      if (!f.protoKnown && f.inspectedPkts >= this.inspectPackets) this.cap(f, 'inspect_packets_exhausted');
      else if (f.held > 0 && this.stats.reassemblyBytes > this.maxReassembly)
        this.cap(f, 'reassembly_memory_exhausted');
      else return;
      f.state = FlowState.GaveUp;
      this.abandonUdp(f);
    }
    this.release(f); // free the reassembly buffer
    this.keep(f);
    this.onClassified?.(f);
  }

  /**
   * Drop the big-flow queue's consumed and stale entries (flows ended or reused since): what is left
   * are live flows that keep ≥ BIG_KEPT each, at most maxKept / BIG_KEPT of them.
   */
  private compactBig(): void {
    const big: Flow[] = [];
    const ids: number[] = [];
    for (let i = this.bigHead; i < this.big.length; i++) {
      const b = this.big[i];
      if (b.id === this.bigIds[i] && b.list >= 0 && b.kept >= BIG_KEPT) {
        big.push(b);
        ids.push(this.bigIds[i]);
      }
    }
    this.big = big;
    this.bigIds = ids;
    this.bigHead = 0;
  }

  /**
   * Count what `f` keeps of its dissection; over the budget, report flows early: those that keep the
   * most first (oldest of them first), then the least recently active — never `f` itself.
   */
  private keep(f: Flow): void {
    const k = keptBytes(f);
    const st = this.stats;
    st.keptBytes += k - f.kept;
    f.kept = k;
    if (k >= BIG_KEPT) {
      if (this.big.length - this.bigHead >= 2 * Math.ceil(this.maxKept / BIG_KEPT)) this.compactBig();
      this.big.push(f);
      this.bigIds.push(f.id);
    }
    while (st.keptBytes > this.maxKept) {
      let victim: Flow | null = null;
      while (this.bigHead < this.big.length) {
        const b = this.big[this.bigHead];
        if (b === f) break; // the flow just inspected stays queued (it is the newest entry)
        const id = this.bigIds[this.bigHead++];
        if (b.id === id && b.list >= 0 && b.kept >= BIG_KEPT) {
          victim = b;
          break;
        }
      }
      if (this.bigHead > 1024 && this.bigHead * 2 > this.big.length) this.compactBig();
      if (victim === null) {
        const old = this.table.oldest();
        victim = old !== f ? old : null;
      }
      if (victim === null) break;
      this.cap(victim, 'flow_evicted');
      this.caps.set('kept_bytes_exhausted', (this.caps.get('kept_bytes_exhausted') ?? 0) + 1);
      st.evicted++;
      this.end(victim, 'forced');
    }
  }

  private create(p: Packet, hash: number, tsMs: number): Flow {
    if (this.table.size >= this.maxFlows) {
      const old = this.table.oldest();
      if (old) {
        this.cap(old, 'flow_evicted');
        this.stats.evicted++;
        this.end(old, 'forced');
      }
    }
    // orientation: the sender is the client unless evidence says otherwise
    let senderIsClient = true;
    if (p.proto === 6) {
      const syn = (p.tcpFlags & TCP_SYN) !== 0;
      const ack = (p.tcpFlags & TCP_ACK) !== 0;
      if (syn && ack) senderIsClient = false;
      else if (!syn) senderIsClient = !isServerPort(p.sport, p.dport);
    } else {
      senderIsClient = !isServerPort(p.sport, p.dport);
      if (p.payLen >= 12 && (p.sport === 53 || p.dport === 53 || p.sport === 5353 || p.sport === 5355)) {
        // DNS: the QR bit tells a response from a query
        const qr = (p.buf[p.payOff + 2] & 0x80) !== 0;
        senderIsClient = !qr;
      }
    }
    const pooled = this.pool !== null ? this.pool.pop() : undefined;
    let f: Flow;
    if (pooled !== undefined) {
      f = pooled;
      f.reset(this.nextId++, hash, p.ipVer, p.proto);
    } else f = new Flow(this.nextId++, hash, p.ipVer, p.proto);
    if (senderIsClient) {
      f.addr.set(p.src, 0);
      f.addr.set(p.dst, 4);
      f.cport = p.sport;
      f.sport = p.dport;
    } else {
      f.addr.set(p.dst, 0);
      f.addr.set(p.src, 4);
      f.cport = p.dport;
      f.sport = p.sport;
    }
    f.firstMs = tsMs;
    f.lastMs = tsMs;
    if (!this.inspect) f.state = FlowState.GaveUp;
    this.table.insert(f);
    this.table.toServer = senderIsClient;
    this.stats.flows++;
    return f;
  }

  /**
   * Idle timeouts (ms) from now on, for a mode switched at run time (the inline box's policy reload
   * into or out of `tspu-2021`, whose flows and closed flows live 10 minutes).
   */
  setIdleTimeouts(o: Pick<EngineOptions, 'tcpIdleMs' | 'udpIdleMs' | 'closedIdleMs'>): void {
    if (o.tcpIdleMs !== undefined) this.idle[0] = o.tcpIdleMs;
    if (o.udpIdleMs !== undefined) this.idle[1] = o.udpIdleMs;
    if (o.closedIdleMs !== undefined) this.idle[2] = o.closedIdleMs;
  }

  /** End flows idle past their timeout at capture time `nowMs`. */
  expire(nowMs: number): void {
    this.nextExpiry = nowMs + 1000;
    const lists = this.table.lists;
    for (let li = 0; li < lists.length; li++) {
      const limit = nowMs - this.idle[li];
      let f = lists[li].head;
      while (f && f.lastMs < limit) {
        const n = f.next_;
        this.end(f, 'timeout');
        f = n;
      }
    }
    this.decoder.frags.expire(nowMs);
  }

  /**
   * End flow `f` now (onFlowEnd hears of it, reason `tcp_reuse`), e.g. when the inline box learns that its 5-tuple
   * carries a new connection the engine could not see closing.
   */
  endFlow(f: Flow): void {
    this.end(f, 'tcp_reuse');
  }

  /** End every flow (end of input). */
  flush(): void {
    for (const f of [...this.table.all()]) this.end(f, 'shutdown');
  }

  private end(f: Flow, reason: FlowEndReason): void {
    this.table.remove(f);
    this.stats.keptBytes -= f.kept;
    f.kept = 0;
    if (f.state === FlowState.Inspecting) {
      if (f.stream && f.stream.contig > 0) inspectTcp(f, f.stream.view(), true);
      if (f.state === FlowState.Inspecting) f.state = FlowState.GaveUp;
      if (f.proto === 17) this.abandonUdp(f);
      this.release(f);
    }
    this.onFlowEnd?.(f, reason);
    if (this.pool !== null) this.pool.push(f);
  }

  /** A snapshot of the flow as a record. */
  record(f: Flow, reason?: FlowEndReason): FlowRecord {
    return buildRecord(f, this.pcapFilename, reason);
  }
}

function isServerPort(sport: number, dport: number): boolean {
  const s = SERVER_PORTS.has(sport);
  const d = SERVER_PORTS.has(dport);
  if (s !== d) return s;
  if (s && d) return sport < dport;
  return sport < 1024 && dport >= 1024;
}

/** The first bytes of a payload as lowercase hex: one native conversion (not 32 string concatenations). */
function hexHead(buf: Uint8Array, off: number, len: number): string {
  const n = len < FIRST_HEAD_BYTES ? len : FIRST_HEAD_BYTES;
  return Buffer.from(buf.buffer, buf.byteOffset + off, n).toString('hex');
}
