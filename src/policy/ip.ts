/**
 * @module policy/ip
 * IP addresses and CIDRs. Two kinds of parser:
 * - {@link parseCidr}: for rule and list files (allocates, validates strictly, canonicalises). An
 *   IPv4-mapped IPv6 prefix (`::ffff:10.0.0.0/104`) becomes the IPv4 prefix it denotes (`10.0.0.0/8`).
 *   A prefix with host bits set (`10.0.0.1/8`) is refused (it is usually a typo).
 * - {@link parseV4Fast} / {@link parseV6Fast}: for the per-flow hot path; no allocation, write into
 *   caller-provided scratch.
 */
import { ipv4ToString, ipv6ToString } from '../output/address.js';

export interface Cidr4 {
  v: 4;
  /** Network address as an unsigned 32-bit integer. */
  addr: number;
  len: number;
}
export interface Cidr6 {
  v: 6;
  /** Four 32-bit words, most significant first. */
  w: [number, number, number, number];
  len: number;
}
export type Cidr = Cidr4 | Cidr6;

function maskV4(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** Parse dotted-quad strictly (no leading zeros beyond '0', 4 parts). Returns -1 when invalid. */
export function parseV4Strict(s: string): number {
  const parts = s.split('.');
  if (parts.length !== 4) return -1;
  let v = 0;
  for (const p of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return -1;
    const n = Number(p);
    if (n > 255) return -1;
    v = v * 256 + n;
  }
  return v;
}

/** Parse an IPv6 address strictly into 8 16-bit groups; null when invalid. */
export function parseV6Strict(s: string): number[] | null {
  if (s.includes('%')) s = s.slice(0, s.indexOf('%'));
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return null;
  let tail: number[] = [];
  const v4m = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4m) {
    const v4 = parseV4Strict(v4m[2]);
    if (v4 < 0) return null;
    tail = [Math.floor(v4 / 65536), v4 % 65536];
    s = v4m[1].endsWith('::') ? v4m[1] : v4m[1].slice(0, -1);
  }
  const dbl = s.indexOf('::');
  if (dbl !== s.lastIndexOf('::')) return null;
  const parseGroups = (t: string): number[] | null => {
    if (t === '') return [];
    const out: number[] = [];
    for (const g of t.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  let groups: number[];
  if (dbl >= 0) {
    const a = parseGroups(s.slice(0, dbl));
    const b = parseGroups(s.slice(dbl + 2));
    if (!a || !b) return null;
    const fill = 8 - a.length - b.length - tail.length;
    if (fill < 1) return null;
    groups = [...a, ...new Array<number>(fill).fill(0), ...b, ...tail];
  } else {
    const a = parseGroups(s);
    if (!a) return null;
    groups = [...a, ...tail];
  }
  return groups.length === 8 ? groups : null;
}

export const formatV4 = ipv4ToString;

/** RFC 5952 text form of 8 groups (the flow records' formatter, so rules and records print alike). */
export function formatV6(g: number[]): string {
  return ipv6ToString([
    ((g[0] << 16) | g[1]) >>> 0,
    ((g[2] << 16) | g[3]) >>> 0,
    ((g[4] << 16) | g[5]) >>> 0,
    ((g[6] << 16) | g[7]) >>> 0,
  ]);
}

/**
 * Parse `addr` or `addr/len` (v4 or v6). Returns a Cidr or a string starting with '!' (the reason).
 * `mask: true` clears host bits instead of refusing them (used by registry import).
 */
export function parseCidr(text: string, mask = false): Cidr | string {
  const t = text.trim();
  const slash = t.indexOf('/');
  const addrText = slash >= 0 ? t.slice(0, slash) : t;
  const lenText = slash >= 0 ? t.slice(slash + 1) : null;
  if (lenText !== null && !/^\d{1,3}$/.test(lenText)) return `!invalid prefix length in '${text}'`;
  if (!addrText.includes(':')) {
    const a = parseV4Strict(addrText);
    if (a < 0) return `!invalid IPv4 address '${addrText}'`;
    const len = lenText === null ? 32 : Number(lenText);
    if (len > 32) return `!IPv4 prefix length ${len} > 32 in '${text}'`;
    const m = maskV4(len);
    if ((a & ~m) >>> 0 !== 0 && !mask)
      return `!host bits set in '${text}' (did you mean ${formatV4((a & m) >>> 0)}/${len}?)`;
    return { v: 4, addr: (a & m) >>> 0, len };
  }
  const g = parseV6Strict(addrText);
  if (!g) return `!invalid IPv6 address '${addrText}'`;
  let len = lenText === null ? 128 : Number(lenText);
  if (len > 128) return `!IPv6 prefix length ${len} > 128 in '${text}'`;
  const w: [number, number, number, number] = [
    g[0] * 65536 + g[1],
    g[2] * 65536 + g[3],
    g[4] * 65536 + g[5],
    g[6] * 65536 + g[7],
  ];
  const masked = w.map((x, i) => {
    const bits = Math.max(0, Math.min(32, len - 32 * i));
    return (x & maskV4(bits)) >>> 0;
  }) as [number, number, number, number];
  if (!mask && masked.some((x, i) => x !== w[i])) {
    const mg: number[] = [];
    for (const x of masked) mg.push(x >>> 16, x & 0xffff);
    return `!host bits set in '${text}' (did you mean ${formatV6(mg)}/${len}?)`;
  }
  // IPv4-mapped (::ffff:0:0/96 and below) denotes IPv4 space.
  if (len >= 96 && masked[0] === 0 && masked[1] === 0 && masked[2] === 0xffff) {
    len -= 96;
    return { v: 4, addr: masked[3], len };
  }
  return { v: 6, w: masked, len };
}

export function formatCidr(c: Cidr): string {
  if (c.v === 4) return `${formatV4(c.addr)}/${c.len}`;
  const g: number[] = [];
  for (const x of c.w) g.push(x >>> 16, x & 0xffff);
  return `${formatV6(g)}/${c.len}`;
}

/** True when the IPv6 prefix contains all of ::ffff:0:0/96 (so it covers every IPv4 address). */
export function v6CoversMapped(c: Cidr6): boolean {
  if (c.len > 96) return false;
  const mapped = [0, 0, 0xffff, 0];
  for (let i = 0; i < 3; i++) {
    const bits = Math.max(0, Math.min(32, c.len - 32 * i));
    const m = maskV4(bits);
    if ((mapped[i] & m) >>> 0 !== c.w[i]) return false;
  }
  return true;
}

// ---------------------------------------------------------------- hot path parsers

/** Parse a dotted-quad IPv4 address without allocating; -1 when it is not one. */
export function parseV4Fast(s: string): number {
  const n = s.length;
  if (n < 7 || n > 15) return -1;
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      v = v * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return -1;
    } else return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return v * 256 + part;
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Parse an IPv6 address (with `::`, an embedded dotted quad, an optional `%zone`) into `out`
 * (4 words) without allocating. `g` is 8-slot scratch. Returns false when it is not one.
 */
export function parseV6Fast(s: string, out: Uint32Array, g: Uint16Array): boolean {
  let n = s.length;
  for (let i = 0; i < n; i++) {
    if (s.charCodeAt(i) === 37) {
      n = i;
      break;
    }
  }
  let gi = 0;
  let dbl = -1;
  let i = 0;
  if (n >= 2 && s.charCodeAt(0) === 58 && s.charCodeAt(1) === 58) {
    dbl = 0;
    i = 2;
  } else if (n > 0 && s.charCodeAt(0) === 58) return false;
  while (i < n) {
    // one group, or an embedded IPv4 address at the end
    let val = 0;
    let digits = 0;
    const start = i;
    while (i < n) {
      const h = hexVal(s.charCodeAt(i));
      if (h < 0) break;
      val = val * 16 + h;
      i++;
      if (++digits > 4) break;
    }
    if (i < n && s.charCodeAt(i) === 46) {
      // embedded IPv4: re-parse from start
      if (gi > 6) return false;
      let v = 0;
      let part = 0;
      let pd = 0;
      let dots = 0;
      for (let k = start; k < n; k++) {
        const c = s.charCodeAt(k);
        if (c === 46) {
          if (pd === 0 || ++dots > 3) return false;
          v = v * 256 + part;
          part = 0;
          pd = 0;
        } else if (c >= 48 && c <= 57) {
          part = part * 10 + (c - 48);
          if (++pd > 3 || part > 255) return false;
        } else return false;
      }
      if (dots !== 3 || pd === 0) return false;
      v = v * 256 + part;
      g[gi++] = v >>> 16;
      g[gi++] = v & 0xffff;
      break;
    }
    if (digits === 0 || digits > 4 || gi >= 8) return false;
    g[gi++] = val;
    if (i >= n) break;
    if (s.charCodeAt(i) !== 58) return false;
    i++;
    if (i < n && s.charCodeAt(i) === 58) {
      if (dbl >= 0) return false;
      dbl = gi;
      i++;
    } else if (i >= n) return false;
  }
  if (dbl >= 0) {
    if (gi > 7) return false;
    const move = gi - dbl;
    const shift = 8 - gi;
    for (let k = move - 1; k >= 0; k--) g[dbl + shift + k] = g[dbl + k];
    for (let k = 0; k < shift; k++) g[dbl + k] = 0;
  } else if (gi !== 8) return false;
  out[0] = ((g[0] << 16) | g[1]) >>> 0;
  out[1] = ((g[2] << 16) | g[3]) >>> 0;
  out[2] = ((g[4] << 16) | g[5]) >>> 0;
  out[3] = ((g[6] << 16) | g[7]) >>> 0;
  return true;
}
