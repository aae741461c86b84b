/**
 * @module flow/flow
 * One bidirectional flow: the client/server 5-tuple (integer words), counters, inspection state, and
 * what the dissectors found. Allocated once per flow, never per packet.
 *
 * "Still inspecting, protocol known" ({@link Flow.inspectingKnown}): the first bytes chose a dissector
 * (TLS, HTTP, DNS over TCP, QUIC) and its message is not complete yet. Such a flow is inspected until
 * the message is complete or the engine's byte budget is spent, however many packets that takes (the
 * packet budget applies only while the protocol is unknown); an inline box keeps queueing it.
 */
import type { StreamAssembler } from './stream.js';
import type { TlsInfo, QuicInfo, HttpInfo, DnsInfo } from '../record/record.js';

export const enum FlowState {
  /** Still looking at the client's first bytes. */
  Inspecting = 0,
  /** A name (or a definite protocol) was found. */
  Named = 1,
  /** Inspection gave up (budget, not a known protocol, malformed). */
  GaveUp = 2,
}

export class Flow {
  /** Hash-chain link in the flow table. */
  next: Flow | null = null;
  /** Idle-list links. */
  prev_: Flow | null = null;
  next_: Flow | null = null;
  list = -1;
  /** Client address words 0..3, server address words 4..7 (IPv4 in words 3 and 7). One typed array per flow. */
  readonly addr = new Uint32Array(8);
  private cli_: Uint32Array | null = null;
  private srv_: Uint32Array | null = null;
  cport = 0;
  sport = 0;
  firstMs = 0;
  lastMs = 0;
  pktsToServer = 0;
  pktsToClient = 0;
  bytesToServer = 0;
  bytesToClient = 0;
  /** Client data packets seen while inspecting. */
  inspectedPkts = 0;
  state: FlowState = FlowState.Inspecting;
  finMask = 0;
  closed = false;
  /** The client's SYN sequence number (-1: none seen); the reassembler is made only when data comes. */
  synSeq = -1;
  stream: StreamAssembler | null = null;
  /** Per-protocol dissector state (e.g. the QUIC assembler); null while the protocol is unknown. */
  dstate: unknown = null;
  /** A dissector was chosen from the first bytes (TLS, HTTP, DNS over TCP, QUIC). */
  protoKnown = false;
  /** Reassembly bytes this flow holds, as last counted by the engine against its global cap. */
  held = 0;
  appProto: string | null = null;
  host: string | null = null;
  tls: TlsInfo | null = null;
  quic: QuicInfo | null = null;
  http: HttpInfo | null = null;
  dns: DnsInfo | null = null;
  /**
   * Bytes of what the flow keeps from its dissection (names, lists, URL: `engine/inspect` keptBytes),
   * for the engine's budget of them; 0 until the flow leaves inspection.
   */
  kept = 0;
  anomalies: string[] | null = null;
  /** Payload length of the first client packet with payload (-1: none yet). */
  firstLen = -1;
  /** Its first bytes as lowercase hex (made once per flow). */
  firstHead = '';
  /** Free slot for the mode using the engine (e.g. an inline verdict). */
  user: unknown = null;

  constructor(
    public id: number,
    public hash: number,
    public ipVer: number,
    public proto: number,
  ) {}

  /**
   * Make an ended flow new again (the engine's flow pool, offline analysis only, where nothing keeps a
   * reference to an ended flow). Every field above must be reset here.
   */
  reset(id: number, hash: number, ipVer: number, proto: number): void {
    this.id = id;
    this.hash = hash;
    this.ipVer = ipVer;
    this.proto = proto;
    this.next = this.prev_ = this.next_ = null;
    this.list = -1;
    this.addr.fill(0);
    this.cport = this.sport = 0;
    this.firstMs = this.lastMs = 0;
    this.pktsToServer = this.pktsToClient = this.bytesToServer = this.bytesToClient = 0;
    this.inspectedPkts = 0;
    this.state = FlowState.Inspecting;
    this.finMask = 0;
    this.closed = false;
    this.synSeq = -1;
    this.stream = null;
    this.dstate = null;
    this.protoKnown = false;
    this.held = 0;
    this.kept = 0;
    this.appProto = this.host = null;
    this.tls = null;
    this.quic = null;
    this.http = null;
    this.dns = null;
    this.anomalies = null;
    this.firstLen = -1;
    this.firstHead = '';
    this.user = null;
  }

  /** The client address (4 words): a view of `addr`, made on first use (not on the packet path). */
  get cli(): Uint32Array {
    return (this.cli_ ??= this.addr.subarray(0, 4));
  }

  /** The server address (4 words): a view of `addr`, made on first use. */
  get srv(): Uint32Array {
    return (this.srv_ ??= this.addr.subarray(4, 8));
  }

  get inspecting(): boolean {
    return this.state === FlowState.Inspecting;
  }

  /** Still inspecting and the protocol is known: the name is on its way (one comparison, no allocation). */
  get inspectingKnown(): boolean {
    return this.protoKnown && this.state === FlowState.Inspecting;
  }

  anomaly(code: string): void {
    if (!this.anomalies) this.anomalies = [code];
    else if (!this.anomalies.includes(code) && this.anomalies.length < 16) this.anomalies.push(code);
  }
}
