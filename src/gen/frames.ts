/**
 * @module gen/frames
 * Builds Ethernet (optionally 802.1Q-tagged) frames carrying IPv4/IPv6 + TCP/UDP, with a correct IPv4
 * header checksum and TCP/UDP checksums. Used by the synthetic-capture generator and by tests.
 */

export interface Endpoint {
  /** Dotted IPv4 or IPv6 text. */
  ip: string;
  port: number;
}

export interface FrameOptions {
  vlan?: number[];
  ttl?: number;
}

const MAC_A = Uint8Array.of(0x02, 0, 0, 0, 0, 1);
const MAC_B = Uint8Array.of(0x02, 0, 0, 0, 0, 2);

export function parseIp(ip: string): Uint8Array {
  if (ip.includes(':')) {
    const out = new Uint8Array(16);
    const [head, tail] = ip.split('::') as [string, string | undefined];
    const hs = head ? head.split(':') : [];
    const ts = tail !== undefined && tail !== '' ? tail.split(':') : [];
    const groups = [...hs, ...Array(8 - hs.length - ts.length).fill('0'), ...ts];
    if (tail === undefined && hs.length !== 8) throw new Error(`bad IPv6 ${ip}`);
    groups.forEach((g, i) => {
      const v = parseInt(g, 16);
      out[i * 2] = v >> 8;
      out[i * 2 + 1] = v & 255;
    });
    return out;
  }
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((x) => !(x >= 0 && x <= 255))) throw new Error(`bad IPv4 ${ip}`);
  return Uint8Array.from(parts);
}

function csum(buf: Uint8Array, start: number, end: number, init = 0): number {
  let s = init;
  for (let i = start; i + 1 < end; i += 2) s += (buf[i] << 8) | buf[i + 1];
  if ((end - start) & 1) s += buf[end - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

export interface TcpSeg {
  seq: number;
  ack: number;
  flags: number;
  payload?: Uint8Array;
  window?: number;
}

/** Build an L3 (raw IP) packet: IPv4 or IPv6 header + L4 header + payload. */
export function ipPacket(src: Endpoint, dst: Endpoint, proto: 6 | 17, l4: Uint8Array, ttl = 64): Uint8Array {
  const s = parseIp(src.ip);
  const d = parseIp(dst.ip);
  const v6 = s.length === 16;
  const hl = v6 ? 40 : 20;
  const out = new Uint8Array(hl + l4.length);
  if (v6) {
    out[0] = 0x60;
    out[4] = l4.length >> 8;
    out[5] = l4.length & 255;
    out[6] = proto;
    out[7] = ttl;
    out.set(s, 8);
    out.set(d, 24);
  } else {
    out[0] = 0x45;
    const tot = 20 + l4.length;
    out[2] = tot >> 8;
    out[3] = tot & 255;
    out[6] = 0x40; // DF
    out[8] = ttl;
    out[9] = proto;
    out.set(s, 12);
    out.set(d, 16);
    const c = ~csum(out, 0, 20) & 0xffff;
    out[10] = c >> 8;
    out[11] = c & 255;
  }
  out.set(l4, hl);
  // L4 checksum over the pseudo-header
  let pseudo = 0;
  pseudo = csum(s, 0, s.length, pseudo);
  pseudo = csum(d, 0, d.length, pseudo);
  pseudo += proto + l4.length;
  const ck = ~csum(out, hl, out.length, pseudo) & 0xffff;
  const co = hl + (proto === 6 ? 16 : 6);
  const v = proto === 17 && ck === 0 ? 0xffff : ck;
  out[co] = v >> 8;
  out[co + 1] = v & 255;
  return out;
}

export function tcpHeader(src: Endpoint, dst: Endpoint, seg: TcpSeg): Uint8Array {
  const pl = seg.payload ?? new Uint8Array(0);
  const t = new Uint8Array(20 + pl.length);
  t[0] = src.port >> 8;
  t[1] = src.port & 255;
  t[2] = dst.port >> 8;
  t[3] = dst.port & 255;
  const w32 = (o: number, v: number) => {
    t[o] = (v >>> 24) & 255;
    t[o + 1] = (v >>> 16) & 255;
    t[o + 2] = (v >>> 8) & 255;
    t[o + 3] = v & 255;
  };
  w32(4, seg.seq >>> 0);
  w32(8, seg.ack >>> 0);
  t[12] = 5 << 4;
  t[13] = seg.flags;
  const win = seg.window ?? 65535;
  t[14] = win >> 8;
  t[15] = win & 255;
  t.set(pl, 20);
  return t;
}

export function udpHeader(src: Endpoint, dst: Endpoint, payload: Uint8Array): Uint8Array {
  const u = new Uint8Array(8 + payload.length);
  u[0] = src.port >> 8;
  u[1] = src.port & 255;
  u[2] = dst.port >> 8;
  u[3] = dst.port & 255;
  u[4] = u.length >> 8;
  u[5] = u.length & 255;
  u.set(payload, 8);
  return u;
}

/** Wrap an IP packet in Ethernet (+ VLAN tags). `fromA` picks the MAC direction. */
export function ether(ip: Uint8Array, fromA: boolean, vlan: number[] = []): Uint8Array {
  const out = new Uint8Array(14 + vlan.length * 4 + ip.length);
  out.set(fromA ? MAC_B : MAC_A, 0);
  out.set(fromA ? MAC_A : MAC_B, 6);
  let o = 12;
  for (let i = 0; i < vlan.length; i++) {
    const tpid = vlan.length > 1 && i === 0 ? 0x88a8 : 0x8100;
    out[o] = tpid >> 8;
    out[o + 1] = tpid & 255;
    out[o + 2] = (vlan[i] >> 8) & 0x0f;
    out[o + 3] = vlan[i] & 255;
    o += 4;
  }
  const et = ip[0] >> 4 === 6 ? 0x86dd : 0x0800;
  out[o] = et >> 8;
  out[o + 1] = et & 255;
  out.set(ip, o + 2);
  return out;
}

export function tcpFrame(
  src: Endpoint,
  dst: Endpoint,
  seg: TcpSeg,
  fromClient: boolean,
  opts: FrameOptions = {},
): Uint8Array {
  return ether(ipPacket(src, dst, 6, tcpHeader(src, dst, seg), opts.ttl), fromClient, opts.vlan);
}

export function udpFrame(
  src: Endpoint,
  dst: Endpoint,
  payload: Uint8Array,
  fromClient: boolean,
  opts: FrameOptions = {},
): Uint8Array {
  return ether(ipPacket(src, dst, 17, udpHeader(src, dst, payload), opts.ttl), fromClient, opts.vlan);
}
