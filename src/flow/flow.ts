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
  readonly cli = new Uint32Array(4);
  readonly srv = new Uint32Array(4);
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
  anomalies: string[] | null = null;
  /** Free slot for the mode using the engine (e.g. an inline verdict). */
  user: unknown = null;

  constructor(
    readonly id: number,
    readonly hash: number,
    readonly ipVer: number,
    readonly proto: number,
  ) {}

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
