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

// One-shot crypto.hash (Node >= 20.12) is several times faster than createHash for short input.
const oneShot = (crypto as { hash?: (alg: string, data: string, enc: 'hex') => string }).hash;

function hash12(s: string): string {
  return (oneShot ? oneShot('sha256', s, 'hex') : crypto.createHash('sha256').update(s).digest('hex')).slice(
    0,
    12,
  );
}

/** Scratch for the sorted lists (JA4 is computed synchronously, one hello at a time). */
const SCRATCH = new Uint16Array(65536);

/** Lists up to this long are sorted by insertion (cheapest for real hellos); longer ones by radix sort. */
const INSERTION_MAX = 24;
/** Radix-sort scratch: the second buffer and the counts of the low and high bytes. */
const TMP = new Uint16Array(65536);
const C0 = new Int32Array(257);
const C1 = new Int32Array(257);

/**
 * LSD radix sort (low byte, then high byte) of SCRATCH[0, n), whose byte counts are already in C0/C1
 * (counted while the values were copied in): O(n + 512), no comparisons.
 */
function radixSort(n: number): void {
  for (let k = 0; k < 256; k++) {
    C0[k + 1] += C0[k];
    C1[k + 1] += C1[k];
  }
  for (let i = 0; i < n; i++) {
    const v = SCRATCH[i];
    TMP[C0[v & 0xff]++] = v;
  }
  for (let i = 0; i < n; i++) {
    const v = TMP[i];
    SCRATCH[C1[v >>> 8]++] = v;
  }
}

/** What the last {@link sortedNonGrease} call over extensions saw besides the list it sorted. */
let sawSni = 0;
let sawAlpn = 0;
let sawVersions = false;

/**
 * Non-GREASE values sorted ascending into `SCRATCH[0..]`; returns how many. Real lists are short and
 * sorted by insertion; an attacker-sized list (thousands of ciphers or extensions, in descending order)
 * goes to a radix sort, O(n) on the bounded scratch buffers, so no input is quadratic. `exts`: the
 * extension list — SNI and ALPN are left out of the sorted list, and whether SNI, ALPN and
 * supported_versions are present is noted (sawSni, sawAlpn: how many; sawVersions), so JA4 walks each list once.
 */
function sortedNonGrease(values: number[], exts: boolean): number {
  let n = 0;
  const big = values.length > INSERTION_MAX;
  sawSni = sawAlpn = 0;
  sawVersions = false;
  if (big) {
    C0.fill(0);
    C1.fill(0);
  }
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if ((v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff)) continue; // GREASE
    if (exts) {
      if (v === 0x0000) {
        sawSni++; // counted: a duplicate extension stays in the list and in JA4's count
        continue;
      }
      if (v === 0x0010) {
        sawAlpn++;
        continue;
      }
      if (v === 0x002b) sawVersions = true;
    }
    let j = n++;
    if (big) {
      SCRATCH[j] = v;
      C0[(v & 0xff) + 1]++;
      C1[(v >>> 8) + 1]++;
      continue;
    }
    while (j > 0 && SCRATCH[j - 1] > v) {
      SCRATCH[j] = SCRATCH[j - 1];
      j--;
    }
    SCRATCH[j] = v;
  }
  if (big) radixSort(n);
  return n;
}

/** Memo of list hashes keyed by a 32-bit hash of the values, verified against the stored values. */
interface MemoEntry {
  /** Length of the first list (the rest, after the separator slot, are signature algorithms). */
  n: number;
  values: Uint16Array;
  hash: string;
}
const listMemo = new Map<number, MemoEntry>();

/**
 * JA4 list hash of SCRATCH[0..n) (+ '_' + sigs when given): the first 12 hex digits of SHA-256 of the
 * comma-separated 4-digit hex values. Real traffic repeats a few client stacks' lists, so the result
 * is memoised by value (bounded: emptied at 4,096 entries) and most flows skip the string and hash.
 */
function listHash(n: number, sigs: number[] | null): string {
  let total = n;
  if (sigs) {
    SCRATCH[total++] = 0xffff; // separator (not a valid extension or algorithm code point here)
    for (let i = 0; i < sigs.length; i++) if (!isGrease(sigs[i])) SCRATCH[total++] = sigs[i];
    if (total === n + 1) total = n; // no signature algorithms: no '_' part
  }
  let h = 0x811c9dc5;
  for (let i = 0; i < total; i++) h = Math.imul(h ^ SCRATCH[i], 0x01000193);
  h = (h ^ total ^ (n << 16)) | 0;
  const e = listMemo.get(h);
  if (e !== undefined && e.n === n && e.values.length === total) {
    let same = true;
    for (let i = 0; i < total; i++)
      if (e.values[i] !== SCRATCH[i]) {
        same = false;
        break;
      }
    if (same) return e.hash;
  }
  let str = '';
  for (let i = 0; i < total; i++) {
    const v = SCRATCH[i];
    if (i === n) {
      str += '_';
      continue;
    }
    if (i > 0 && i !== n + 1) str += ',';
    str += HEX2[(v >> 8) & 0xff] + HEX2[v & 0xff];
  }
  const hash = hash12(str);
  if (listMemo.size >= 4096) listMemo.clear();
  listMemo.set(h, { n, values: SCRATCH.slice(0, total), hash });
  return hash;
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

/**
 * FoxIO JA4 fingerprint of a ClientHello. Each list is walked once (to filter and sort it) and the
 * counts and flags come from that walk, so an attacker-sized list costs a few passes, not one per field.
 */
export function ja4(hello: Omit<ClientHello, 'ja4'>, transport: 't' | 'q'): string {
  // b first: it uses SCRATCH[0..nCiphers), which the extension sort then overwrites
  const nCiphers = sortedNonGrease(hello.cipherSuites, false);
  const b = nCiphers === 0 ? '000000000000' : listHash(nCiphers, null);

  const nx = sortedNonGrease(hello.extensions, true);
  const sni = sawSni > 0;
  const nExts = nx + sawSni + sawAlpn;
  let version = hello.legacyVersion;
  if (sawVersions) {
    let max = -1;
    for (const v of hello.supportedVersions) if (!isGrease(v) && v > max) max = v;
    if (max >= 0) version = max;
  }
  const c = nx === 0 ? '000000000000' : listHash(nx, hello.signatureAlgorithms);
  const a =
    transport +
    ja4VersionCode(version) +
    (sni ? 'd' : 'i') +
    twoDigits(nCiphers) +
    twoDigits(nExts) +
    ja4AlpnCode(hello.alpn[0]);
  return a + '_' + b + '_' + c;
}
