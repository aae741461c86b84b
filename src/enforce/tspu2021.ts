/**
 * @module enforce/tspu2021
 * The `tspu-2021` inspection mode: the 2021 Russian throttler's inspector (brief §5), run over the
 * engine's own decoded Packet and Flow (no second decoder or flow table), for researchers who want
 * to test measurement tools and evasions against the documented behaviour, deliberately *not* the
 * engine's faithful reassembling classifier:
 * - only TCP connections whose SYN (without ACK) was seen are tracked; the SYN's sender is the
 *   initiator; a ClientHello from either side can trigger;
 * - per direction, the first data packet is inspected, one packet at a time, no reassembly;
 * - only the first TLS record of a packet is parsed; the record, and the ClientHello inside it, must
 *   fit (a split, padded, record-fragmented or out-of-order ClientHello does not trigger); IP
 *   fragments (datagrams the decoder reassembled) are not inspected;
 * - a first data packet of ≥ `junkBytes` (101) that is neither a TLS record nor an HTTP-proxy/SOCKS
 *   preamble ends inspection of the connection; a smaller one leaves the direction's "first packet"
 *   still to come;
 * - a TLS record or a proxy preamble opens a window of `windowPackets` (15) further packets (both
 *   directions) in which every data packet is inspected the same way, so one fake ClientHello first
 *   does not evade;
 * - state is forgotten after `idleMs` (10 min) without packets; RST and FIN do not clear it (the
 *   engine for this mode keeps closed flows as long as open ones: {@link tspuEngineOptions}).
 * Whether a name triggers is the caller's `onSni` (the policy): a non-null result ends inspection
 * and is kept on the state as `decision`. The state lives in a slot of the caller's (on Flow.user).
 */
import type { Flow } from '../flow/flow.js';
import { TCP_ACK, TCP_SYN, type Packet } from '../decode/packet.js';
import type { EngineOptions } from '../engine/engine.js';

export interface Tspu2021Options {
  windowPackets?: number;
  junkBytes?: number;
  idleMs?: number;
}

/** A parsed ClientHello body → its server_name (null when absent), or undefined when unparsable. */
export type SniParser = (body: Uint8Array) => string | null | undefined;

/** The engine settings of this mode: flows (closed ones too: RST/FIN keep state) live `idleMs`. */
export function tspuEngineOptions(idleMs: number): Pick<EngineOptions, 'tcpIdleMs' | 'closedIdleMs'> {
  return { tcpIdleMs: idleMs, closedIdleMs: idleMs };
}

/** The emulated box's state of one connection. */
export class TspuState<T> {
  lastSeen: number;
  inspecting = true;
  /** Remaining packets of the window opened by a TLS record / proxy preamble (0: none open). */
  window = 0;
  /** First data packet seen, per direction (0: from the initiator, 1: toward it). */
  firstDone0 = false;
  firstDone1 = false;
  /** The name that triggered, and the caller's decision for it. */
  sni: string | null = null;
  decision: T | null = null;
  /** Direction of the last packet: from the initiator (the SYN's sender). */
  lastToServer = true;
  /** Payload length of the last packet. */
  lastPayloadLen = 0;

  constructor(
    /** Whether the initiator is the engine flow's client. */
    readonly initIsClient: boolean,
    now: number,
  ) {
    this.lastSeen = now;
  }
}

/** Where the caller keeps a connection's state. */
export interface TspuSlot<T> {
  tspu: TspuState<T> | null;
}

const HTTP_METHODS = ['CONNECT ', 'GET ', 'POST ', 'HEAD ', 'PUT ', 'OPTIONS ', 'DELETE ', 'PATCH '].map(
  (s) => new TextEncoder().encode(s),
);

/** A TLS record header at the start of the payload (any content type 20–23, version 3.x). */
export function isTlsRecord(p: Uint8Array): boolean {
  return p.length >= 5 && p[0] >= 20 && p[0] <= 23 && p[1] === 3 && p[2] <= 4;
}

/** HTTP proxy request line or SOCKS4/5 greeting at the start of the payload. */
export function isProxyPreamble(p: Uint8Array): boolean {
  if (p.length >= 3 && p[0] === 5 && p[1] >= 1 && p.length === 2 + p[1]) return true; // SOCKS5
  if (p.length >= 9 && p[0] === 4 && (p[1] === 1 || p[1] === 2)) return true; // SOCKS4
  outer: for (const m of HTTP_METHODS) {
    if (p.length < m.length) continue;
    for (let i = 0; i < m.length; i++) if (p[i] !== m[i]) continue outer;
    return true;
  }
  return false;
}

/**
 * The SNI of a ClientHello contained entirely in the first TLS record of `p`, as the 2021 parser saw
 * it: null when there is none (not a handshake record, record or message does not fit, no SNI).
 */
export function firstRecordSni(p: Uint8Array, parse: SniParser): string | null {
  if (p.length < 9 || p[0] !== 22 || p[1] !== 3) return null;
  const recLen = (p[3] << 8) | p[4];
  if (5 + recLen > p.length) return null;
  if (p[5] !== 1) return null;
  const hsLen = (p[6] << 16) | (p[7] << 8) | p[8];
  if (4 + hsLen > recLen) return null;
  const sni = parse(p.subarray(9, 9 + hsLen));
  return sni ?? null;
}

export class Tspu2021Inspector<T> {
  private readonly windowPackets: number;
  private readonly junkBytes: number;
  private readonly idleMs: number;
  private count = 0;

  constructor(
    private readonly parse: SniParser,
    private readonly onSni: (sni: string, flow: Flow) => T | null,
    opts: Tspu2021Options = {},
  ) {
    this.windowPackets = opts.windowPackets ?? 15;
    this.junkBytes = opts.junkBytes ?? 101;
    this.idleMs = opts.idleMs ?? 600_000;
  }

  /** Connections tracked. */
  get size(): number {
    return this.count;
  }

  /** The engine ended the flow holding `slot`. */
  forget(slot: TspuSlot<T> | null): void {
    if (slot?.tspu) {
      slot.tspu = null;
      this.count--;
    }
  }

  /**
   * Inspect the engine's current packet `p` of flow `f` (`toServer`: the engine's direction). Returns
   * the connection's state, or null when the packet belongs to no tracked connection (not TCP, an IP
   * fragment, or the connection's SYN was not seen / it idled out).
   */
  inspect(slot: TspuSlot<T>, f: Flow, p: Packet, toServer: boolean, now: number): TspuState<T> | null {
    if (p.proto !== 6 || p.reassembled) return null;
    let st = slot.tspu;
    if (st && now - st.lastSeen > this.idleMs) {
      this.forget(slot);
      st = null;
    }
    if (!st) {
      if ((p.tcpFlags & (TCP_SYN | TCP_ACK)) !== TCP_SYN) return null;
      st = slot.tspu = new TspuState<T>(toServer, now);
      this.count++;
    }
    const fromInit = toServer === st.initIsClient;
    st.lastSeen = now;
    st.lastToServer = fromInit;
    st.lastPayloadLen = p.payLen;
    if (!st.inspecting || p.payLen === 0) return st;
    const payload = p.buf.subarray(p.payOff, p.payOff + p.payLen);
    if (st.window > 0) {
      st.window--;
      if (isTlsRecord(payload)) this.trigger(st, f, payload);
      if (st.window === 0 && st.decision === null) st.inspecting = false;
      return st;
    }
    const first = fromInit ? !st.firstDone0 : !st.firstDone1;
    if (!first) return st;
    if (isTlsRecord(payload) || isProxyPreamble(payload)) {
      if (fromInit) st.firstDone0 = true;
      else st.firstDone1 = true;
      st.window = this.windowPackets;
      if (isTlsRecord(payload)) this.trigger(st, f, payload);
    } else if (payload.length >= this.junkBytes) {
      st.inspecting = false;
    }
    // a smaller non-TLS first packet leaves this direction's first packet still to come
    return st;
  }

  private trigger(st: TspuState<T>, f: Flow, payload: Uint8Array): void {
    const sni = firstRecordSni(payload, this.parse);
    if (sni === null) return;
    const d = this.onSni(sni, f);
    if (d !== null) {
      st.sni = sni;
      st.decision = d;
      st.inspecting = false;
      st.window = 0;
    }
  }
}
