/**
 * @module dissect/tls
 * Parser for the body of a TLS ClientHello handshake message (RFC 8446 §4.1.2), shared by TLS
 * over TCP ({@link module:dissect/tls-stream}) and QUIC (the CRYPTO stream of Initial packets).
 *
 * Input is the handshake *body*, i.e. what follows the 4-byte handshake header (type + u24
 * length), and must be complete: every length inside it is checked against the body, and a
 * length that runs past the end throws {@link TruncatedError} (for a complete body the caller
 * treats that as malformed). Structural violations throw {@link TlsMalformedError}, whose
 * `anomaly` is a stable code.
 *
 * Values are kept raw: `sni` is exactly the bytes sent (one char per byte, latin1), including a
 * trailing dot or upper case; normalising is the caller's job. GREASE values stay in
 * `cipherSuites`, `extensions` and `signatureAlgorithms` (JA4 filters them) and are removed from
 * `supportedVersions`.
 *
 * Non-fatal anomaly codes (in `hello.anomalies`):
 * - `tls_sni_bad_chars`   SNI host_name has bytes outside printable ASCII (0x21..0x7e)
 * - `tls_sni_empty`       SNI host_name of length 0 (`sni` is then '')
 * - `tls_sni_multiple`    more than one host_name entry (the first is used)
 * - `tls_sni_no_hostname` server_name extension without a host_name entry
 * - `tls_alpn_empty`      an ALPN protocol name of length 0
 * - `tls_alpn_truncated`  more than {@link MAX_ALPN_NAMES} ALPN names: the first ones are kept, the
 *                         rest only checked for their framing
 * - `tls_duplicate_extension` an extension type appears twice (RFC 8446 forbids it)
 * - `tls_trailing_bytes`  bytes after the extensions block
 * - `tls_bad_extension`   ALPN / supported_versions / signature_algorithms content does not fit
 *                         its extension length (the value is left empty; parsing goes on)
 * Fatal codes (TlsMalformedError.anomaly): `tls_malformed_hello`, `tls_sni_invalid`.
 */
import { ByteReader, ascii } from '../util/bytes.js';
import { MalformedError, TruncatedError } from '../util/errors.js';
import type { ClientHello } from './types.js';
import { ja4 } from './ja4.js';

/** A structurally invalid ClientHello; `anomaly` is the stable code to report. */
export class TlsMalformedError extends MalformedError {
  constructor(
    readonly anomaly: string,
    message: string,
  ) {
    super(message);
  }
}

/** Extension type numbers used here (IANA TLS ExtensionType registry). */
export const EXT_SERVER_NAME = 0x0000;
export const EXT_SIGNATURE_ALGORITHMS = 0x000d;
export const EXT_ALPN = 0x0010;
export const EXT_SUPPORTED_VERSIONS = 0x002b;
export const EXT_ECH = 0xfe0d;

/** GREASE values (RFC 8701): 0x0a0a, 0x1a1a, ..., 0xfafa. */
export function isGrease(v: number): boolean {
  return (v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff);
}

function fail(anomaly: string, message: string): never {
  throw new TlsMalformedError(anomaly, message);
}

/**
 * Short lists (a real hello's) are views into a shared slab, not arrays of their own: a typed array
 * with its own buffer costs an ArrayBuffer object and a backing store each (three per hello). A slab
 * is replaced when full; the hellos still holding views keep the old one alive until they go.
 * 4 KiB, so that a refill happens within the first few dozen hellos, before V8 optimises the parser:
 * a refill first met in optimised code (a 64 KiB slab lasted ~600 hellos) deoptimised it and cost
 * a second compile of parseClientHelloBody (~30 ms of a 1.4 s run).
 */
const SLAB_BYTES = 1 << 12;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabOff = 0;
function u16s(n: number): Uint16Array {
  const bytes = (2 * n + 7) & ~7;
  if (slabOff + bytes > slab.byteLength) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabOff = 0;
  }
  const v = new Uint16Array(slab, slabOff, n);
  slabOff += bytes;
  return v;
}

/** Whether this host stores a u16 low byte first (then a native swap16 turns wire order into values). */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function readU16List(r: ByteReader, what: string): Uint16Array {
  if ((r.remaining & 1) !== 0) fail('tls_malformed_hello', `${what}: odd length ${r.remaining}`);
  // bounds are checked once for the whole list (the reader covers exactly it)
  const b = r.buf;
  const n = r.remaining >> 1;
  if (n === 0) return NO_VALUES;
  const out = n > 256 ? new Uint16Array(n) : u16s(n);
  if (n > 256) {
    // an attacker-sized list: one native copy and, on a little-endian host, one native byte swap,
    // instead of a JavaScript loop over thousands of values
    const bytes = new Uint8Array(out.buffer);
    bytes.set(b.subarray(r.pos, r.end));
    if (LITTLE_ENDIAN) Buffer.from(out.buffer).swap16();
  } else for (let i = 0, p = r.pos; i < n; i++, p += 2) out[i] = (b[p] << 8) | b[p + 1];
  r.pos = r.end;
  return out;
}

/** One bit per extension type seen in the hello being parsed (cleared after each hello). */
const EXT_SEEN = new Uint8Array(8192);
/**
 * The hello's extension types in wire order while it is parsed (an extensions block of at most 65,535
 * bytes holds at most 16,383 four-byte headers); copied out once at the end.
 */
const EXT_TYPES = new Uint16Array(16384);
const NO_VALUES = new Uint16Array(0);

function parseServerName(r: ByteReader, anomalies: string[]): string | null {
  // lengths are checked before each read (no exception per entry on a malformed list)
  const b = r.buf;
  if (r.remaining < 2) fail('tls_sni_invalid', 'server_name: list length exceeds extension');
  const listLen = (b[r.pos] << 8) | b[r.pos + 1];
  if (listLen > r.remaining - 2) fail('tls_sni_invalid', 'server_name: list length exceeds extension');
  if (listLen !== r.remaining - 2) fail('tls_sni_invalid', 'server_name: bytes after the list');
  let p = r.pos + 2;
  const end = r.end;
  let sni: string | null = null;
  let count = 0;
  while (p < end) {
    if (p + 3 > end) fail('tls_sni_invalid', 'server_name: entry exceeds list');
    const type = b[p];
    const s = p + 3;
    const e = s + ((b[p + 1] << 8) | b[p + 2]);
    if (e > end) fail('tls_sni_invalid', 'server_name: entry exceeds list');
    p = e;
    if (type !== 0) continue; // unknown name types are skipped (RFC 6066 allows only host_name today)
    count++;
    if (sni !== null) continue;
    if (e === s) anomalies.push('tls_sni_empty');
    for (let i = s; i < e; i++) {
      const c = b[i];
      if (c < 0x21 || c > 0x7e) {
        anomalies.push('tls_sni_bad_chars');
        break;
      }
    }
    sni = ascii(b, s, e);
  }
  r.pos = end;
  if (count === 0) anomalies.push('tls_sni_no_hostname');
  else if (count > 1) anomalies.push('tls_sni_multiple');
  return sni;
}

/**
 * ALPN names kept of one ClientHello. Clients offer a handful (browsers 2–3); an extension can hold
 * ~5,000 three-byte names, and a flow keeps its list until it ends: 3,900 names cost ~128 KiB per
 * flow and half the CPU of a flood of such hellos in garbage collection. JA4 reads only the first.
 */
export const MAX_ALPN_NAMES = 64;

function parseAlpn(r: ByteReader, anomalies: string[]): string[] {
  const list = r.vec(2);
  if (r.remaining !== 0) fail('tls_malformed_hello', 'alpn: bytes after the list');
  const out: string[] = [];
  let empty = false;
  let truncated = false;
  while (list.remaining > 0) {
    const p = list.vec(1);
    if (p.remaining === 0 && !empty) {
      empty = true;
      anomalies.push('tls_alpn_empty');
    }
    if (out.length < MAX_ALPN_NAMES) out.push(ascii(p.buf, p.pos, p.end));
    else if (!truncated) {
      truncated = true;
      anomalies.push('tls_alpn_truncated');
    }
  }
  return out;
}

/** An extension body that is one vector (`lenBytes`-byte length) of u16 values and nothing after it. */
function readU16Ext(data: ByteReader, lenBytes: 1 | 2, what: string): Uint16Array {
  const list = data.vec(lenBytes);
  if (data.remaining !== 0) fail('tls_malformed_hello', `${what}: trailing bytes`);
  return readU16List(list, what);
}

/**
 * A broken inner structure in an extension we decode but do not need for the name (ALPN,
 * supported_versions, signature_algorithms): note it and go on, as tshark and nDPI do, so the
 * SNI of an otherwise framed hello is still reported.
 */
function badExtension(e: unknown, anomalies: string[]): void {
  if (!(e instanceof TruncatedError) && !(e instanceof TlsMalformedError)) throw e;
  if (!anomalies.includes('tls_bad_extension')) anomalies.push('tls_bad_extension');
}

/**
 * Parse a complete ClientHello body. `transport` selects the JA4 prefix ('t' TCP, 'q' QUIC).
 * Throws TruncatedError (a length runs past the body) or TlsMalformedError.
 */
export function parseClientHelloBody(body: Uint8Array, transport: 't' | 'q'): ClientHello {
  const r = new ByteReader(body);
  const anomalies: string[] = [];
  const legacyVersion = r.u16();
  r.skip(32); // random
  const sid = r.vec(1);
  if (sid.remaining > 32) fail('tls_malformed_hello', `session id of ${sid.remaining} bytes`);
  const cipherSuites = readU16List(r.vec(2), 'cipher_suites');
  const comp = r.vec(1);
  if (comp.remaining === 0) fail('tls_malformed_hello', 'no compression methods');

  let sni: string | null = null;
  let alpn: string[] = [];
  const supportedVersions: number[] = [];
  let signatureAlgorithms: Uint16Array = NO_VALUES;
  let ech = false;
  let nExt = 0;

  try {
    if (r.remaining > 0) {
      const exts = r.vec(2);
      if (r.remaining > 0) anomalies.push('tls_trailing_bytes');
      // Walk extension headers by offset; a reader is only created for the extensions we decode.
      let p = exts.pos;
      const end = exts.end;
      while (p < end) {
        const ds = p + 4;
        const de = ds + ((body[p + 2] << 8) | body[p + 3]);
        if (ds > end || de > end) {
          // An extension header runs past the block: keep what the extensions before it said (the
          // SNI usually comes first), as tshark and nDPI do, and flag it.
          anomalies.push('tls_extensions_overrun');
          break;
        }
        const type = (body[p] << 8) | body[p + 1];
        p = de;
        EXT_TYPES[nExt++] = type;
        // duplicates: one bit per type (O(1) per extension whatever the list length)
        const bit = 1 << (type & 7);
        if ((EXT_SEEN[type >> 3] & bit) !== 0) {
          if (!anomalies.includes('tls_duplicate_extension')) anomalies.push('tls_duplicate_extension');
          continue; // the first occurrence wins
        }
        EXT_SEEN[type >> 3] |= bit;
        switch (type) {
          case EXT_SERVER_NAME:
            sni = parseServerName(new ByteReader(body, ds, de), anomalies);
            break;
          case EXT_ALPN:
            try {
              alpn = parseAlpn(new ByteReader(body, ds, de), anomalies);
            } catch (e) {
              badExtension(e, anomalies);
            }
            break;
          case EXT_SUPPORTED_VERSIONS:
            try {
              const vs = readU16Ext(new ByteReader(body, ds, de), 1, 'supported_versions');
              for (let i = 0; i < vs.length; i++) if (!isGrease(vs[i])) supportedVersions.push(vs[i]);
            } catch (e) {
              badExtension(e, anomalies);
            }
            break;
          case EXT_SIGNATURE_ALGORITHMS:
            try {
              signatureAlgorithms = readU16Ext(new ByteReader(body, ds, de), 2, 'signature_algorithms');
            } catch (e) {
              badExtension(e, anomalies);
            }
            break;
          case EXT_ECH:
            ech = true;
            break;
          default:
            break;
        }
      }
    }
  } finally {
    // leave the scratch clean for the next hello, also when a malformed extension threw
    for (let i = 0; i < nExt; i++) EXT_SEEN[EXT_TYPES[i] >> 3] = 0;
  }
  let extensions: Uint16Array = NO_VALUES;
  if (nExt > 0) {
    extensions = nExt > 256 ? new Uint16Array(nExt) : u16s(nExt);
    extensions.set(EXT_TYPES.subarray(0, nExt));
  }

  const hello: ClientHello = {
    legacyVersion,
    sni,
    alpn,
    supportedVersions,
    cipherSuites,
    extensions,
    signatureAlgorithms,
    ech,
    ja4: '',
    anomalies,
  };
  hello.ja4 = ja4(hello, transport);
  return hello;
}
