/**
 * @module enforce/tspu2021
 * Emulation of the 2021 Russian throttler's inspector (brief §5), for researchers who want to test
 * measurement tools and evasions against the documented behaviour, deliberately *not* the engine's
 * faithful reassembling classifier:
 * - only TCP connections whose SYN (without ACK) was seen are tracked; the SYN's sender is the
 *   initiator ("client"); a ClientHello from either side can trigger;
 * - per direction, the first data packet is inspected, one packet at a time, no reassembly;
 * - only the first TLS record of a packet is parsed; the record, and the ClientHello inside it, must
 *   fit (a split, padded, record-fragmented or out-of-order ClientHello does not trigger);
 * - a first data packet of ≥ `junkBytes` (101) that is neither a TLS record nor an HTTP-proxy/SOCKS
 *   preamble ends inspection of the connection; a smaller one leaves the direction's "first packet"
 *   still to come;
 * - a TLS record or a proxy preamble opens a window of `windowPackets` (15) further packets (both
 *   directions) in which every data packet is inspected the same way, so one fake ClientHello first
 *   does not evade;
 * - state is forgotten after `idleMs` (10 min) without packets; RST and FIN do not clear it.
 * Whether a name triggers is the caller's `onSni` (the policy): a non-null result ends inspection
 * and is kept on the flow as `decision`.
 */

export interface Tspu2021Options {
  windowPackets?: number;
  junkBytes?: number;
  idleMs?: number;
  maxFlows?: number;
}

/** A parsed ClientHello body → its server_name (null when absent), or undefined when unparsable. */
export type SniParser = (body: Uint8Array) => string | null | undefined;

export class TspuFlow<T> {
  /** Initiator (SYN sender) address and port; the other end. */
  readonly ia: Uint8Array;
  readonly ra: Uint8Array;
  readonly ip: number;
  readonly rp: number;
  readonly hash: number;
  lastSeen: number;
  inspecting = true;
  /** Remaining packets of the window opened by a TLS record / proxy preamble (0: none open). */
  window = 0;
  /** First data packet seen, per direction (0: to server, 1: to client). */
  firstDone0 = false;
  firstDone1 = false;
  /** The name that triggered, and the caller's decision for it. */
  sni: string | null = null;
  decision: T | null = null;
  /** Free slot for the caller (e.g. a policer). */
  user: unknown = null;
  /** Set by packet(): direction of the last packet. */
  lastToServer = true;
  /** Payload length of the last packet. */
  lastPayloadLen = 0;

  constructor(ia: Uint8Array, ra: Uint8Array, ip: number, rp: number, hash: number, now: number) {
    this.ia = ia;
    this.ra = ra;
    this.ip = ip;
    this.rp = rp;
    this.hash = hash;
    this.lastSeen = now;
  }
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

function eq(a: Uint8Array, b: Uint8Array, off: number, len: number): boolean {
  if (a.length !== len) return false;
  for (let i = 0; i < len; i++) if (a[i] !== b[off + i]) return false;
  return true;
}

export class Tspu2021Inspector<T> {
  private readonly windowPackets: number;
  private readonly junkBytes: number;
  private readonly idleMs: number;
  private readonly maxFlows: number;
  private readonly table = new Map<number, TspuFlow<T>[]>();
  private count = 0;
  private lastSweep = 0;

  constructor(
    private readonly parse: SniParser,
    private readonly onSni: (sni: string, flow: TspuFlow<T>) => T | null,
    opts: Tspu2021Options = {},
  ) {
    this.windowPackets = opts.windowPackets ?? 15;
    this.junkBytes = opts.junkBytes ?? 101;
    this.idleMs = opts.idleMs ?? 600_000;
    this.maxFlows = opts.maxFlows ?? 1 << 18;
  }

  get size(): number {
    return this.count;
  }

  /**
   * Feed one raw IP packet. Returns the connection's state, or null when the packet belongs to no
   * tracked connection (not TCP, or the connection's SYN was not seen / it idled out).
   */
  packet(ip: Uint8Array, now: number): TspuFlow<T> | null {
    if (now - this.lastSweep > 10_000) this.sweep(now);
    let so: number, alen: number, l4: number, end: number;
    const v = ip.length > 0 ? ip[0] >> 4 : 0;
    if (v === 4) {
      if (ip.length < 20 || ip[9] !== 6) return null;
      if (((ip[6] & 0x3f) | ip[7]) !== 0) return null; // fragments: not inspected
      so = 12;
      alen = 4;
      l4 = (ip[0] & 15) * 4;
      end = Math.min(ip.length, (ip[2] << 8) | ip[3]);
    } else if (v === 6) {
      if (ip.length < 40 || ip[6] !== 6) return null;
      so = 8;
      alen = 16;
      l4 = 40;
      end = Math.min(ip.length, 40 + ((ip[4] << 8) | ip[5]));
    } else return null;
    if (l4 + 20 > end) return null;
    const sp = (ip[l4] << 8) | ip[l4 + 1];
    const dp = (ip[l4 + 2] << 8) | ip[l4 + 3];
    const flags = ip[l4 + 13];
    const doff = (ip[l4 + 12] >> 4) * 4;
    const pStart = l4 + doff;
    if (pStart > end) return null;
    const da = so + alen;
    // symmetric hash of the 4-tuple
    let h = (sp ^ dp) | 0;
    for (let i = 0; i < alen; i++) h = (Math.imul(h, 31) + (ip[so + i] ^ ip[da + i])) | 0;
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) | 0;
    let f: TspuFlow<T> | null = null;
    let toServer = true;
    const bucket = this.table.get(h);
    if (bucket) {
      for (const c of bucket) {
        if (c.ip === sp && c.rp === dp && eq(c.ia, ip, so, alen) && eq(c.ra, ip, da, alen)) {
          f = c;
          toServer = true;
          break;
        }
        if (c.ip === dp && c.rp === sp && eq(c.ia, ip, da, alen) && eq(c.ra, ip, so, alen)) {
          f = c;
          toServer = false;
          break;
        }
      }
    }
    if (f && now - f.lastSeen > this.idleMs) {
      this.remove(f);
      f = null;
    }
    const syn = (flags & 0x12) === 0x02;
    if (!f) {
      if (!syn || this.count >= this.maxFlows) return null;
      f = new TspuFlow<T>(ip.slice(so, so + alen), ip.slice(da, da + alen), sp, dp, h, now);
      if (bucket) bucket.push(f);
      else this.table.set(h, [f]);
      this.count++;
      toServer = true;
    }
    f.lastSeen = now;
    f.lastToServer = toServer;
    const payload = ip.subarray(pStart, end);
    f.lastPayloadLen = payload.length;
    if (!f.inspecting || payload.length === 0) return f;
    if (f.window > 0) {
      f.window--;
      if (isTlsRecord(payload)) this.trigger(f, payload);
      if (f.window === 0 && f.decision === null) f.inspecting = false;
      return f;
    }
    const first = toServer ? !f.firstDone0 : !f.firstDone1;
    if (!first) return f;
    if (isTlsRecord(payload) || isProxyPreamble(payload)) {
      if (toServer) f.firstDone0 = true;
      else f.firstDone1 = true;
      f.window = this.windowPackets;
      if (isTlsRecord(payload)) this.trigger(f, payload);
    } else if (payload.length >= this.junkBytes) {
      f.inspecting = false;
    }
    // a smaller non-TLS first packet leaves this direction's first packet still to come
    return f;
  }

  private trigger(f: TspuFlow<T>, payload: Uint8Array): void {
    const sni = firstRecordSni(payload, this.parse);
    if (sni === null) return;
    const d = this.onSni(sni, f);
    if (d !== null) {
      f.sni = sni;
      f.decision = d;
      f.inspecting = false;
      f.window = 0;
    }
  }

  private remove(f: TspuFlow<T>): void {
    const b = this.table.get(f.hash);
    if (!b) return;
    const i = b.indexOf(f);
    if (i >= 0) {
      b.splice(i, 1);
      this.count--;
    }
    if (b.length === 0) this.table.delete(f.hash);
  }

  /** Forget connections idle longer than idleMs. */
  sweep(now: number): void {
    this.lastSweep = now;
    for (const [h, b] of this.table) {
      for (let i = b.length - 1; i >= 0; i--) {
        if (now - b[i].lastSeen > this.idleMs) {
          b.splice(i, 1);
          this.count--;
        }
      }
      if (b.length === 0) this.table.delete(h);
    }
  }
}
