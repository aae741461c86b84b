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

/** The two ASCII lower-case hex digits of each byte value, first digit in the low byte. */
const HEX_PAIR = Uint16Array.from({ length: 256 }, (_, v) => {
  const h = v.toString(16).padStart(2, '0');
  return h.charCodeAt(0) | (h.charCodeAt(1) << 8);
});

// One-shot crypto.hash (Node >= 20.12) is several times faster than createHash for short input.
const oneShot = (crypto as { hash?: (alg: string, data: Uint8Array, enc: 'hex') => string }).hash;

function hash12(s: Uint8Array): string {
  return (oneShot ? oneShot('sha256', s, 'hex') : crypto.createHash('sha256').update(s).digest('hex')).slice(
    0,
    12,
  );
}

/** The hashed text of a list, written as ASCII bytes (≤ 5 bytes a value): no string is built. */
const TEXT = new Uint8Array(65536 * 5 + 8);
const TEXT_VIEW = new DataView(TEXT.buffer);

/** Scratch for the sorted lists (JA4 is computed synchronously, one hello at a time). */
const SCRATCH = new Uint16Array(65536);

/** Lists up to this long are sorted by insertion (cheapest for real hellos); longer ones by radix sort. */
const INSERTION_MAX = 24;
/** Radix-sort scratch: the second buffer and the counts of the low and high bytes. */
const TMP = new Uint16Array(65536);
const C0 = new Int32Array(257);
const C1 = new Int32Array(257);

/** Whether C0 / C1 hold the byte counts of WIRE[0, n) (taken by the filtering pass). */
let counted = false;

/**
 * LSD radix sort (low byte, then high byte) of WIRE[0, n) into SCRATCH[0, n): O(n + 512), no
 * comparisons. WIRE keeps the wire order (the wire memo's key). The byte counts come from the
 * filtering pass; a list whose pass was skipped (a byte-for-byte repeat) is counted here.
 */
function radixSort(n: number): void {
  if (!counted) {
    C0.fill(0);
    C1.fill(0);
    C0B.fill(0);
    C1B.fill(0);
    for (let i = 0; i < n; i++) {
      const v = WIRE[i];
      C0[(v & 0xff) + 1]++;
      C1[(v >>> 8) + 1]++;
    }
  }
  counted = false;
  C0[0] += C0B[0];
  C1[0] += C1B[0];
  for (let k = 0; k < 256; k++) {
    C0[k + 1] += C0B[k + 1] + C0[k];
    C1[k + 1] += C1B[k + 1] + C1[k];
  }
  for (let i = 0; i < n; i++) {
    const v = WIRE[i];
    TMP[C0[v & 0xff]++] = v;
  }
  for (let i = 0; i < n; i++) {
    const v = TMP[i];
    SCRATCH[C1[v >>> 8]++] = v;
  }
}

/** A long list's non-GREASE values in wire order (radix-sort input, wire-memo key). */
const WIRE = new Uint16Array(65536);

/** What the last {@link filterList} call saw besides the values it kept. */
let sawSni = 0;
let sawAlpn = 0;
let sawVersions = false;
/** Whether the last filterList left the values in WIRE (long list, unsorted) or sorted in SCRATCH. */
let inWire = false;
/** FNV-1a of WIRE[0..n) after a long list. */
let wireHash = 0;
/**
 * The long list of each kind (ciphers, extensions) seen last, exactly as sent (GREASE included), with
 * what its filtering pass found and the hash it resolved to. A client repeating its list byte for byte
 * is recognised by one native comparison (memcmp), with no walk over the values. Fixed buffers (a
 * cipher list holds at most 32,767 values, an extension list 16,383): remembering a list allocates
 * nothing, so an attacker varying lists leaves no garbage here.
 */
interface LastList {
  valid: boolean;
  raw: Uint16Array;
  rawLen: number;
  /** The kept (non-GREASE …) values in wire order. */
  vals: Uint16Array;
  n: number;
  sawSni: number;
  sawAlpn: number;
  sawVersions: boolean;
  wireHash: number;
  sigs: Uint16Array | null;
  hash: string;
}
function lastList(): LastList {
  const raw = new Uint16Array(32768);
  const vals = new Uint16Array(32768);
  return {
    valid: false,
    raw,
    rawLen: 0,
    vals,
    n: 0,
    sawSni: 0,
    sawAlpn: 0,
    sawVersions: false,
    wireHash: 0,
    sigs: null,
    hash: '',
  };
}
const lastCiphers = lastList();
const lastExts = lastList();
/** The long list just filtered, when it is not a repeat (to remember once its hash is known). */
let current: Uint16Array | null = null;
/** The last-of-its-kind record the list just filtered repeated byte for byte (else null). */
let repeated: LastList | null = null;

function bytesOf(a: Uint16Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Whether two lists hold the same values: one native comparison, not a walk. */
function sameList(a: Uint16Array, b: Uint16Array): boolean {
  return a.length === b.length && Buffer.compare(bytesOf(a), bytesOf(b)) === 0;
}

/**
 * One pass over a list: GREASE dropped; `exts` (the extension list): SNI and ALPN dropped too and how
 * many there were noted (sawSni, sawAlpn; a duplicate stays in JA4's count), and whether
 * supported_versions is present (sawVersions). Returns how many values were kept. Real lists are short
 * and sorted by insertion into SCRATCH; an attacker-sized list (thousands of ciphers or extensions, in
 * descending order) is copied to WIRE with its hash, to be looked up in the wire
 * memo or radix-sorted (O(n) on the bounded scratch buffers): no input is quadratic. A long list equal
 * to the last one of its kind skips the pass (its values are copied back into WIRE only if a lookup
 * needs them).
 */
function filterList(values: Uint16Array, exts: boolean): number {
  let n = 0;
  const big = values.length > INSERTION_MAX;
  sawSni = sawAlpn = 0;
  sawVersions = false;
  inWire = big;
  repeated = null;
  counted = false;
  current = big ? values : null;
  if (big) {
    const last = exts ? lastExts : lastCiphers;
    if (last.valid && sameList(values, last.raw.subarray(0, last.rawLen))) {
      sawSni = last.sawSni;
      sawAlpn = last.sawAlpn;
      sawVersions = last.sawVersions;
      wireHash = last.wireHash;
      repeated = last;
      current = null; // already the last of its kind
      return last.n;
    }
  }
  if (big) return exts ? wireExts(values) : wireCiphers(values);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if ((v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff)) continue; // GREASE
    if (exts) {
      if (v === 0x0000) {
        sawSni++;
        continue;
      }
      if (v === 0x0010) {
        sawAlpn++;
        continue;
      }
      if (v === 0x002b) sawVersions = true;
    }
    let j = n++;
    while (j > 0 && SCRATCH[j - 1] > v) {
      SCRATCH[j] = SCRATCH[j - 1];
      j--;
    }
    SCRATCH[j] = v;
  }
  return n;
}

/*
 * The filtering pass of a long list, one loop per kind (no per-value test of which kind it is):
 * GREASE dropped, the kept values copied to WIRE in wire order, their FNV-1a hash (the wire memo's
 * key) and the radix sort's byte counts taken in the same walk.
 */
function wireCiphers(values: Uint16Array): number {
  const w = WIRE;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if ((v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff)) continue; // GREASE
    w[n++] = v;
  }
  countWire(n);
  return n;
}

/** {@link wireCiphers} for the extension list: SNI and ALPN dropped and counted, supported_versions noted. */
function wireExts(values: Uint16Array): number {
  const w = WIRE;
  let n = 0;
  let sni = 0;
  let alpn = 0;
  let versions = false;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if ((v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff)) continue; // GREASE
    if (v === 0x0000) {
      sni++;
      continue;
    }
    if (v === 0x0010) {
      alpn++;
      continue;
    }
    if (v === 0x002b) versions = true;
    w[n++] = v;
  }
  sawSni = sni;
  sawAlpn = alpn;
  sawVersions = versions;
  countWire(n);
  return n;
}

/** WIRE[0, n) as 32-bit words (two values each, little-endian: the first in the low half). */
const WIRE32 = new Uint32Array(WIRE.buffer);
/** Second copies of the byte counts: alternate values count into C0 / C1 and these (see countWire). */
const C0B = new Int32Array(257);
const C1B = new Int32Array(257);

/**
 * The wire hash (FNV-1a over pairs of values) and the radix sort's byte counts of WIRE[0, n), from
 * 32-bit loads. Each pair is one multiply of the hash chain, and the two values of a pair count into
 * two copies of each histogram, summed in radixSort: a list of equal or neighbouring values (an
 * attacker's) would otherwise make every increment wait for the previous one to the same counter.
 */
function countWire(n: number): void {
  const c0 = C0;
  const c1 = C1;
  const c0b = C0B;
  const c1b = C1B;
  c0.fill(0);
  c1.fill(0);
  c0b.fill(0);
  c1b.fill(0);
  const w32 = WIRE32;
  const pairs = n >>> 1;
  let h = 0x811c9dc5;
  for (let i = 0; i < pairs; i++) {
    const x = w32[i];
    h = Math.imul(h ^ x, 0x01000193);
    c0[(x & 0xff) + 1]++;
    c1[((x >>> 8) & 0xff) + 1]++;
    c0b[((x >>> 16) & 0xff) + 1]++;
    c1b[(x >>> 24) + 1]++;
  }
  if (n & 1) {
    const v = WIRE[n - 1];
    h = Math.imul(h ^ v, 0x01000193);
    c0[(v & 0xff) + 1]++;
    c1[(v >>> 8) + 1]++;
  }
  wireHash = (h ^ n) | 0;
  counted = true;
}

/** Remember the long list just filtered (n values kept, in WIRE) as the last of its kind. */
function remember(exts: boolean, n: number, hash: string, sigs: Uint16Array | null): void {
  if (repeated !== null) {
    repeated.sigs = sigs; // same list, other signature algorithms
    repeated.hash = hash;
    repeated = null;
    return;
  }
  if (current === null) return;
  const l = exts ? lastExts : lastCiphers;
  if (current.length > l.raw.length) return; // longer than any list a hello can hold: not remembered
  l.raw.set(current);
  l.rawLen = current.length;
  l.vals.set(WIRE.subarray(0, n));
  l.n = n;
  l.sawSni = sawSni;
  l.sawAlpn = sawAlpn;
  l.sawVersions = sawVersions;
  l.wireHash = wireHash;
  l.sigs = sigs;
  l.hash = hash;
  l.valid = true;
  current = null;
}

/**
 * The memos hold copies of the lists they key on; both are emptied at 4,096 entries or
 * {@link MEMO_VALUES} stored values, whichever comes first, so an attacker sending distinct huge lists
 * cannot grow them past ~2 MiB each.
 */
const MEMO_ENTRIES = 4096;
const MEMO_VALUES = 1 << 20;

/** Memo of list hashes keyed by a 32-bit hash of the sorted values, verified against the stored values. */
interface MemoEntry {
  /** Length of the first list (the rest, after the separator slot, are signature algorithms). */
  n: number;
  values: Uint16Array;
  hash: string;
}
const listMemo = new Map<number, MemoEntry>();
let listMemoValues = 0;

/**
 * Memo of long lists' hashes keyed by their non-GREASE values in wire order (and, for extensions, the
 * signature algorithms), verified against the stored copy: a client stack that repeats its long list
 * skips the sort. A list the memo has not seen (an attacker varying it) is sorted as before.
 */
interface WireEntry {
  values: Uint16Array;
  sigs: Uint16Array | null;
  hash: string;
}
const wireMemo = new Map<number, WireEntry>();
let wireMemoValues = 0;

/** Wire-memo keys seen once (direct-mapped, 4,096 slots): a long list is stored on its second sighting. */
const SEEN = new Int32Array(4096);

function seenBefore(key: number): boolean {
  const slot = key & 4095;
  if (SEEN[slot] === key) return true;
  SEEN[slot] = key;
  return false;
}

function sameSigs(a: Uint16Array | null, b: Uint16Array | null): boolean {
  return a === null || b === null ? a === b : sameList(a, b);
}

/** JA4 hash of the n values the last {@link filterList} kept (+ '_' + sigs when given). */
function keptHash(n: number, sigs: Uint16Array | null, exts: boolean): string {
  if (!inWire) return listHash(n, sigs, true);
  if (repeated !== null) {
    if (sameSigs(repeated.sigs, sigs)) {
      const hash = repeated.hash;
      repeated = null;
      return hash;
    }
    WIRE.set(repeated.vals.subarray(0, n)); // the pass was skipped: the values for the lookup below
  }
  const key = wireHash;
  const e = wireMemo.get(key);
  if (e !== undefined && sameList(e.values, WIRE.subarray(0, n)) && sameSigs(e.sigs, sigs)) {
    remember(exts, n, e.hash, e.sigs);
    return e.hash;
  }
  radixSort(n);
  const hash = listHash(n, sigs, false); // a long list is memoised by wire order only (below)
  const sigsCopy = sigs === null ? null : sigs.slice();
  // kept in the memo from its second sighting: an attacker varying the list each time fills no memo
  // and allocates no copy of it, a stack repeating it is remembered
  if (seenBefore(key)) {
    if (wireMemo.size >= MEMO_ENTRIES || wireMemoValues + n > MEMO_VALUES) {
      wireMemo.clear();
      wireMemoValues = 0;
    }
    wireMemo.set(key, { values: WIRE.slice(0, n), sigs: sigsCopy, hash });
    wireMemoValues += n;
  }
  remember(exts, n, hash, sigsCopy);
  return hash;
}

/**
 * JA4 list hash of SCRATCH[0..n) (+ '_' + sigs when given): the first 12 hex digits of SHA-256 of the
 * comma-separated 4-digit hex values. Real traffic repeats a few client stacks' lists, so the result
 * is memoised by value (bounded, see MEMO_VALUES) and most flows skip the string and hash.
 */
function listHash(n: number, sigs: Uint16Array | null, memo: boolean): string {
  let total = n;
  if (sigs) {
    SCRATCH[total++] = 0xffff; // separator (not a valid extension or algorithm code point here)
    for (let i = 0; i < sigs.length; i++) if (!isGrease(sigs[i])) SCRATCH[total++] = sigs[i];
    if (total === n + 1) total = n; // no signature algorithms: no '_' part
  }
  let h = 0;
  if (memo) {
    h = 0x811c9dc5;
    for (let i = 0; i < total; i++) h = Math.imul(h ^ SCRATCH[i], 0x01000193);
    h = (h ^ total ^ (n << 16)) | 0;
    const e = listMemo.get(h);
    if (e !== undefined && e.n === n && e.values.length === total) {
      // short lists (real hellos) compare in a loop: cheaper than the views a native compare needs
      let same = true;
      if (total > 64) same = sameList(e.values, SCRATCH.subarray(0, total));
      else
        for (let i = 0; i < total; i++)
          if (e.values[i] !== SCRATCH[i]) {
            same = false;
            break;
          }
      if (same) return e.hash;
    }
  }
  // each value as 4 hex digits and a comma, one 32-bit store for the digits; the comma before the
  // separator slot becomes '_', the last one is cut
  let len = 0;
  for (let i = 0; i < total; i++) {
    if (i === n) {
      TEXT[len - 1] = 0x5f; // '_'
      continue;
    }
    const v = SCRATCH[i];
    TEXT_VIEW.setUint32(len, HEX_PAIR[v >>> 8] | (HEX_PAIR[v & 0xff] << 16), true);
    TEXT[len + 4] = 0x2c; // ','
    len += 5;
  }
  const hash = hash12(TEXT.subarray(0, len - 1));
  if (!memo) return hash;
  if (listMemo.size >= MEMO_ENTRIES || listMemoValues + total > MEMO_VALUES) {
    listMemo.clear();
    listMemoValues = 0;
  }
  listMemo.set(h, { n, values: SCRATCH.slice(0, total), hash });
  listMemoValues += total;
  return hash;
}

/** How many entries and list values the two memos hold (for tests and diagnostics). */
export function ja4MemoSize(): { entries: number; values: number } {
  return { entries: listMemo.size + wireMemo.size, values: listMemoValues + wireMemoValues };
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
  const nCiphers = filterList(hello.cipherSuites, false);
  const b = nCiphers === 0 ? '000000000000' : keptHash(nCiphers, null, false);

  const nx = filterList(hello.extensions, true);
  const sni = sawSni > 0;
  const nExts = nx + sawSni + sawAlpn;
  let version = hello.legacyVersion;
  if (sawVersions) {
    let max = -1;
    for (const v of hello.supportedVersions) if (!isGrease(v) && v > max) max = v;
    if (max >= 0) version = max;
  }
  const c = nx === 0 ? '000000000000' : keptHash(nx, hello.signatureAlgorithms, true);
  const a =
    transport +
    ja4VersionCode(version) +
    (sni ? 'd' : 'i') +
    twoDigits(nCiphers) +
    twoDigits(nExts) +
    ja4AlpnCode(hello.alpn[0]);
  return a + '_' + b + '_' + c;
}
