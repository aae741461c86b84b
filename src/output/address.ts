/**
 * @module output/address
 * Address formatting: 32-bit words → dotted IPv4 or RFC 5952 IPv6 text, and → bytes.
 */

export function ipv4ToString(w: number): string {
  return `${w >>> 24}.${(w >>> 16) & 255}.${(w >>> 8) & 255}.${w & 255}`;
}

/**
 * RFC 5952: lowercase, leading zeros dropped, the longest run (≥2) of zero groups as "::" (first if tied);
 * IPv4-mapped addresses in the mixed notation of §5 (::ffff:192.0.2.1).
 */
export function ipv6ToString(w: ArrayLike<number>): string {
  if (w[0] === 0 && w[1] === 0 && w[2] === 0xffff) return `::ffff:${ipv4ToString(w[3])}`;
  const g = G;
  for (let i = 0; i < 4; i++) {
    g[2 * i] = w[i] >>> 16;
    g[2 * i + 1] = w[i] & 0xffff;
  }
  let bestS = -1;
  let bestL = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestL) {
      bestS = i;
      bestL = j - i;
    }
    i = j;
  }
  if (bestL < 2) return groups(0, 8);
  return groups(0, bestS) + '::' + groups(bestS + bestL, 8);
}

/** Scratch groups of the address being formatted. */
const G = new Uint16Array(8);

/** Groups [from, to) of G in hex joined by ':' ('' when empty). */
function groups(from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) s += (i > from ? ':' : '') + G[i].toString(16);
  return s;
}

export function addrToString(ver: number, w: ArrayLike<number>): string {
  return ver === 4 ? ipv4ToString(w[3]) : ipv6ToString(w);
}

/**
 * The address words `w` as 4 (IPv4) or 16 bytes, written into `into` (of that length) when given: a
 * record's two addresses go into scratch arrays, not two new ArrayBuffers per flow.
 */
export function addrToBytes(ver: number, w: ArrayLike<number>, into?: Uint8Array): Uint8Array {
  if (ver === 4) {
    const x = w[3];
    const o = into ?? new Uint8Array(4);
    o[0] = x >>> 24;
    o[1] = (x >>> 16) & 255;
    o[2] = (x >>> 8) & 255;
    o[3] = x & 255;
    return o;
  }
  const out = into ?? new Uint8Array(16);
  for (let i = 0; i < 4; i++) {
    out[i * 4] = w[i] >>> 24;
    out[i * 4 + 1] = (w[i] >>> 16) & 255;
    out[i * 4 + 2] = (w[i] >>> 8) & 255;
    out[i * 4 + 3] = w[i] & 255;
  }
  return out;
}
