/**
 * @module enforce/hold
 * The hold/release state machine of one connection on the inline path, and the set of connections
 * that hold packets. A connection is `Inspecting` (the engine has not named it), `Pending` (decided
 * to a kernel throttle class whose rule is being installed) or `Decided`.
 *
 * What is held, and its bounds (bytes and time, never a packet count the client controls):
 * - TCP while inspecting: nothing but the segment that completes the name. Every other client
 *   segment is forwarded at once — once the protocol is known, marked "inspect", so the kernel keeps
 *   queueing the connection past `connbytes` (before that, `connbytes` bounds what is queued; a
 *   connection whose client never speaks is not queued for its whole life): the server acknowledges it, so a client sending its ClientHello in 1-byte
 *   segments or into a tiny window never stalls, and the server cannot act on an incomplete
 *   ClientHello. The completing segment gets the verdict (dropped, reset, policed or accepted).
 * - UDP while inspecting: client datagrams are held (a QUIC Initial of a blocked name never reaches
 *   the server) up to `budget_bytes` and `hold_ms`.
 * - Pending: every packet is held (up to `budget_bytes`) until the class rule exists.
 * `hold_ms` bounds the time without progress: for TCP from the newest client segment (a client that
 * keeps sending is bounded by the engine's byte budget), for UDP from the first held datagram (0: no
 * time bound). Held packets are released in arrival order.
 */
import type { Flow } from '../flow/flow.js';
import type { Decision } from '../policy/types.js';
import type { DualPolicer } from './policer.js';
import type { TspuState } from './tspu2021.js';
import { C } from './counters.js';
import { K_ACCEPT, type Enforced } from './enforcement.js';
import type { VerdictReason } from './types.js';

export const enum Phase {
  Inspecting = 0,
  Pending = 1,
  Decided = 2,
}

/** Enforcement state of one connection (on `Flow.user`). */
export class Conn implements Enforced {
  phase = Phase.Inspecting;
  kind = K_ACCEPT;
  mark = 0;
  policer: DualPolicer | null = null;
  left = 0;
  p = 0;
  decision: Decision | null = null;
  reason: VerdictReason = 'named';
  rate = 0;
  burst = 0;
  /** Held packet ids and their lengths, in arrival order. */
  held: number[] | null = null;
  heldLens: number[] | null = null;
  heldBytes = 0;
  holdStart = 0;
  heldTotal = 0;
  /** When the hold timer started (-1: no client data yet): `hold_ms` counts from here. */
  dataStart = -1;
  /** The client sequence number the server expects next (for the RST toward the server). */
  nextSeq = 0;
  ackLast = 0;
  /** The end of the client's last data segment (seq + length): what a crafted reply acknowledges. */
  cliEnd = 0;
  haveSeq = false;
  /** tspu-2021 emulation state (null in normal mode or when the SYN was not seen). */
  tspu: TspuState<Decision> | null = null;
  /** tspu-2021: the flow went into the traffic counters (at its first name, trigger or not). */
  tallied = false;

  /** Track the client's sequence space from a data segment that reached the server. */
  sent(seq: number, len: number, ack: number): void {
    if (!this.haveSeq || seq === this.nextSeq) this.nextSeq = (seq + len) >>> 0;
    this.cliEnd = (seq + len) >>> 0;
    this.ackLast = ack >>> 0;
    this.haveSeq = true;
  }

  /** Track a client segment that did not reach the server: the server still expects its first byte. */
  withheld(seq: number, ack: number, len = 0): void {
    this.nextSeq = seq >>> 0;
    this.cliEnd = (seq + len) >>> 0;
    this.ackLast = ack >>> 0;
    this.haveSeq = true;
  }
}

/**
 * Held packets of connections, and the hold timer of connections still inspecting. The timer set
 * is ordered by insertion, which is the order of `dataStart` (set when inserted), so a tick stops
 * at the first connection not yet due: O(due) per tick, whatever the number of connections.
 */
export class HoldSet {
  private readonly timers = new Set<Flow>();

  constructor(private readonly c: Float64Array) {}

  /**
   * Client data of an inspecting connection: (re)start its hold timer. `restart` (TCP, where nothing
   * is held): the timer counts from the newest segment, so a client that keeps sending is bounded by
   * the byte budget, one that stalls by `hold_ms`; otherwise (UDP) from the first datagram.
   */
  start(f: Flow, st: Conn, now: number, restart: boolean): void {
    if (st.dataStart >= 0) {
      if (!restart || st.dataStart === now) return;
      this.timers.delete(f); // re-inserted last: the set stays ordered by dataStart
    }
    st.dataStart = now;
    this.timers.add(f);
  }

  hold(st: Conn, id: number, len: number, now: number): void {
    if (!st.held) {
      st.held = [];
      st.heldLens = [];
    }
    if (st.held.length === 0) st.holdStart = now;
    st.held.push(id);
    st.heldLens!.push(len);
    st.heldBytes += len;
    st.heldTotal++;
    this.c[C.held]++;
  }

  /** Hand every held packet, in arrival order, to `each`, and forget them. */
  release(f: Flow, st: Conn, each: (id: number, len: number) => void): void {
    this.timers.delete(f);
    const held = st.held;
    if (!held || held.length === 0) return;
    const lens = st.heldLens!;
    const n = held.length;
    for (let i = 0; i < n; i++) each(held[i], lens[i]);
    held.length = 0;
    lens.length = 0;
    st.heldBytes = 0;
  }

  forget(f: Flow): void {
    this.timers.delete(f);
  }

  /** Connections inspecting for `holdMs` or more since their timer started (0: no bound). */
  due(now: number, holdMs: number, fn: (f: Flow) => void): void {
    if (holdMs <= 0 || this.timers.size === 0) return;
    for (const f of this.timers) {
      const st = f.user as Conn | null;
      if (!st || st.phase !== Phase.Inspecting) {
        this.timers.delete(f);
        continue;
      }
      if (now - st.dataStart < holdMs) return;
      this.timers.delete(f);
      this.c[C.holdTimeouts]++;
      fn(f);
    }
  }
}
