/**
 * @module dissect/ja4
 * JA4 TLS client fingerprint (FoxIO JA4 specification, technical_details/JA4.md):
 *
 *   a = transport ('t'|'q') + version (2 chars) + 'd'|'i' (SNI present) + #ciphers (2 digits)
 *       + #extensions (2 digits) + first&last char of the first ALPN value
 *   b = sha256(sorted cipher hex list)[0..12]
 *   c = sha256(sorted extension hex list without SNI/ALPN + '_' + signature algorithms in wire order)[0..12]
 *
 * GREASE values are ignored everywhere. Empty cipher / extension lists hash to '000000000000'.
 * Called once per flow, so it may allocate.
 */
import * as crypto from 'node:crypto';
import type { ClientHello } from './types.js';

function isGrease(v: number): boolean {
  return (v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff);
}

const HEX2: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Comma-joined 4-digit lowercase hex of the values (no intermediate arrays). */
function hexList(values: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i > 0) s += ',';
    s += HEX2[(v >> 8) & 0xff] + HEX2[v & 0xff];
  }
  return s;
}

// One-shot crypto.hash (Node >= 20.12) is several times faster than createHash for short input.
const oneShot = (crypto as { hash?: (alg: string, data: string, enc: 'hex') => string }).hash;

function hash12(s: string): string {
  const h = oneShot ? oneShot('sha256', s, 'hex') : crypto.createHash('sha256').update(s).digest('hex');
  return h.slice(0, 12);
}

/** Non-GREASE values, sorted ascending, as a typed array. */
function sortedNonGrease(values: number[], skipSniAlpn: boolean): Uint16Array {
  const out = new Uint16Array(values.length);
  let n = 0;
  for (const v of values) {
    if (isGrease(v)) continue;
    if (skipSniAlpn && (v === 0x0000 || v === 0x0010)) continue;
    out[n++] = v;
  }
  return out.subarray(0, n).sort();
}

function twoDigits(n: number): string {
  return n > 99 ? '99' : n < 10 ? '0' + n : String(n);
}

/** JA4 version code for a protocol version number. */
export function ja4VersionCode(v: number): string {
  switch (v) {
    case 0x0304:
      return '13';
    case 0x0303:
      return '12';
    case 0x0302:
      return '11';
    case 0x0301:
      return '10';
    case 0x0300:
      return 's3';
    case 0x0002:
      return 's2';
    case 0xfeff:
      return 'd1';
    case 0xfefd:
      return 'd2';
    case 0xfefc:
      return 'd3';
    default:
      return '00';
  }
}

function isAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** The two ALPN characters of JA4_a; `first` is the raw first ALPN value (one char per byte). */
export function ja4AlpnCode(first: string | undefined): string {
  if (first === undefined || first.length === 0) return '00';
  const a = first.charCodeAt(0);
  const z = first.charCodeAt(first.length - 1);
  if (isAlnum(a) && isAlnum(z)) return first[0] + first[first.length - 1];
  // Non-alphanumeric: first hex digit of the first byte and last hex digit of the last byte.
  const hexA = (a & 0xff).toString(16).padStart(2, '0');
  const hexZ = (z & 0xff).toString(16).padStart(2, '0');
  return hexA[0] + hexZ[1];
}

/** FoxIO JA4 fingerprint of a ClientHello. */
export function ja4(hello: Omit<ClientHello, 'ja4'>, transport: 't' | 'q'): string {
  let version = hello.legacyVersion;
  if (hello.extensions.includes(0x002b)) {
    let max = -1;
    for (const v of hello.supportedVersions) if (!isGrease(v) && v > max) max = v;
    if (max >= 0) version = max;
  }
  let nCiphers = 0;
  for (const c of hello.cipherSuites) if (!isGrease(c)) nCiphers++;
  let nExts = 0;
  for (const e of hello.extensions) if (!isGrease(e)) nExts++;
  const sniFlag = hello.extensions.includes(0x0000) ? 'd' : 'i';
  const a =
    transport +
    ja4VersionCode(version) +
    sniFlag +
    twoDigits(nCiphers) +
    twoDigits(nExts) +
    ja4AlpnCode(hello.alpn[0]);

  const b = nCiphers === 0 ? '000000000000' : hash12(hexList(sortedNonGrease(hello.cipherSuites, false)));

  const extsForHash = sortedNonGrease(hello.extensions, true);
  let c: string;
  if (extsForHash.length === 0) {
    c = '000000000000';
  } else {
    let s = hexList(extsForHash);
    const sigs = hello.signatureAlgorithms.filter((x) => !isGrease(x));
    if (sigs.length > 0) s += '_' + hexList(sigs);
    c = hash12(s);
  }
  return a + '_' + b + '_' + c;
}
