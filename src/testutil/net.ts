/**
 * @module testutil/net
 * Hand-rolled packet builders for tests (written from the RFCs, independent of src/gen): IPv4 (with
 * fragmentation fields), IPv6 (with extension headers), TCP, UDP, and the link layers and tunnels the
 * decoder handles. Checksums are filled where cheap (IPv4 header), else left zero (the decoder does not
 * verify them; tshark is told not to either).
 */

export function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const arrs = parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p)));
  const out = new Uint8Array(arrs.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const a of arrs) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

export function u16(v: number): number[] {
  return [(v >> 8) & 255, v & 255];
}
export function u32(v: number): number[] {
  return [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
}

/** IPv4 or IPv6 text → bytes. */
export function ipBytes(ip: string): Uint8Array {
  if (!ip.includes(':')) {
    const p = ip.split('.').map(Number);
    if (p.length !== 4) throw new Error(ip);
    return Uint8Array.from(p);
  }
  const [h, t] = ip.split('::');
  const hs = h ? h.split(':') : [];
  const ts = t !== undefined && t !== '' ? t.split(':') : [];
  const g = t === undefined ? hs : [...hs, ...Array(8 - hs.length - ts.length).fill('0'), ...ts];
  const out = new Uint8Array(16);
  g.forEach((x, i) => {
    const v = parseInt(x, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 255;
  });
  return out;
}

/** Address text → the engine's four 32-bit words (IPv4 in word 3). */
export function ipWords(ip: string): number[] {
  const b = ipBytes(ip);
  if (b.length === 4) return [0, 0, 0, ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0];
  return [0, 1, 2, 3].map(
    (i) => ((b[4 * i] << 24) | (b[4 * i + 1] << 16) | (b[4 * i + 2] << 8) | b[4 * i + 3]) >>> 0,
  );
}

export function tcp(
  sport: number,
  dport: number,
  seq: number,
  ack: number,
  flags: number,
  payload: Uint8Array = new Uint8Array(0),
  options: number[] = [],
): Uint8Array {
  const hl = 20 + options.length;
  if (hl % 4) throw new Error('tcp options must be padded');
  return concat(
    u16(sport),
    u16(dport),
    u32(seq),
    u32(ack),
    [(hl / 4) << 4, flags],
    u16(65535),
    [0, 0, 0, 0],
    options,
    payload,
  );
}

export function udp(sport: number, dport: number, payload: Uint8Array, lenOverride?: number): Uint8Array {
  return concat(u16(sport), u16(dport), u16(lenOverride ?? 8 + payload.length), [0, 0], payload);
}

export interface V4Opts {
  id?: number;
  mf?: boolean;
  df?: boolean;
  /** Fragment offset in bytes (multiple of 8). */
  fragOff?: number;
  ttl?: number;
  /** Override the total-length field. */
  totalLen?: number;
  /** IP options (padded to 4 bytes). */
  options?: number[];
}

function csum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i] << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

export function ipv4(
  src: string,
  dst: string,
  proto: number,
  payload: Uint8Array,
  o: V4Opts = {},
): Uint8Array {
  const opts = o.options ?? [];
  const hl = 20 + opts.length;
  const flags = (o.df ? 0x4000 : 0) | (o.mf ? 0x2000 : 0) | ((o.fragOff ?? 0) / 8);
  const h = concat(
    [0x40 | (hl / 4), 0],
    u16(o.totalLen ?? hl + payload.length),
    u16(o.id ?? 0x1234),
    u16(flags),
    [o.ttl ?? 64, proto, 0, 0],
    ipBytes(src),
    ipBytes(dst),
    opts,
  );
  const c = csum(h);
  h[10] = c >> 8;
  h[11] = c & 255;
  return concat(h, payload);
}

/** An IPv6 extension header (hop-by-hop 0, routing 43, destination options 60): 8*(hdrExtLen+1) bytes. */
export function ext6(next: number, hdrExtLen = 0): Uint8Array {
  const b = new Uint8Array(8 * (hdrExtLen + 1));
  b[0] = next;
  b[1] = hdrExtLen;
  b[2] = 1; // PadN option for hop-by-hop/dest-opts (type 1), harmless for routing (routing type 1... not inspected)
  b[3] = b.length - 4;
  return b;
}

export function frag6(next: number, offset: number, more: boolean, id: number): Uint8Array {
  return concat([next, 0], u16(offset | (more ? 1 : 0)), u32(id));
}

/** IPv6 header; `nh` is the first next-header value and `rest` everything after the fixed header. */
export function ipv6(src: string, dst: string, nh: number, rest: Uint8Array, hop = 64): Uint8Array {
  return concat([0x60, 0, 0, 0], u16(rest.length), [nh, hop], ipBytes(src), ipBytes(dst), rest);
}

export const MAC1 = [0x02, 0, 0, 0, 0, 1];
export const MAC2 = [0x02, 0, 0, 0, 0, 2];

export function eth(ethertype: number, payload: Uint8Array, tags: [number, number][] = []): Uint8Array {
  const t = tags.flatMap(([tpid, vid]) => [...u16(tpid), ...u16(vid)]);
  return concat(MAC2, MAC1, t, u16(ethertype), payload);
}

export function etOf(ip: Uint8Array): number {
  return ip[0] >> 4 === 6 ? 0x86dd : 0x0800;
}
