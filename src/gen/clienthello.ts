/**
 * @module gen/clienthello
 * Builds TLS ClientHello handshake messages and wraps them in TLS records, for tests and the
 * synthetic-capture generator. The layout follows a current Chrome hello (GREASE, extension set,
 * optional X25519MLKEM768 post-quantum key share, GREASE-style ECH, padding) but is
 * deterministic: the same options give the same bytes (pass `random` to vary them).
 *
 * Strings (SNI, ALPN) are encoded one byte per char (char code & 0xff), so tests can put any byte
 * value, including non-ASCII and control bytes, into a name.
 */

export interface ClientHelloOptions {
  /** server_name host_name; null/undefined: no server_name extension. */
  sni?: string | null;
  /** ALPN protocol names; empty/undefined: no ALPN extension. */
  alpn?: string[];
  /** supported_versions values (default [0x0304, 0x0303]); [] omits the extension. */
  versions?: number[];
  /** Cipher suites in order (default: Chrome's 15). */
  cipherSuites?: number[];
  /** Add GREASE values like Chrome (cipher, extensions, groups, versions, key share). */
  grease?: boolean;
  /** Add a 1216-byte X25519MLKEM768 key share like Chrome (hello grows to ~1.8 KB). */
  pqKeyShare?: boolean;
  /** Add an encrypted_client_hello (0xfe0d) outer extension. */
  ech?: boolean;
  /** Add a padding extension so the handshake message is at least this many bytes. */
  padTo?: number;
  /** The 32-byte random (default: fixed bytes). Also seeds session id and key shares. */
  random?: Uint8Array;
  /** Extra empty extensions of these types, in this order, before the padding (hostile-input tests). */
  extraExtensions?: number[];
}

export const DEFAULT_CIPHER_SUITES = [
  0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d,
  0x002f, 0x0035,
];
export const DEFAULT_SIGNATURE_ALGORITHMS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601];
const GREASE_A = 0x1a1a;
const GREASE_B = 0x4a4a;
const GREASE_C = 0xdada;
const X25519 = 0x001d;
const X25519MLKEM768 = 0x11ec;

/** Growable big-endian writer with back-patched length prefixes. */
class Writer {
  private buf = new Uint8Array(2048);
  len = 0;
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.len++] = v & 0xff;
  }
  u16(v: number): void {
    this.u8(v >> 8);
    this.u8(v);
  }
  u24(v: number): void {
    this.u8(v >> 16);
    this.u16(v);
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  str(s: string): void {
    for (let i = 0; i < s.length; i++) this.u8(s.charCodeAt(i));
  }
  fill(n: number, v: number): void {
    for (let i = 0; i < n; i++) this.u8(v);
  }
  /** Write a length-prefixed block of `size` (1|2|3) bytes filled by `body`. */
  block(size: 1 | 2 | 3, body: () => void): void {
    const at = this.len;
    this.fill(size, 0);
    body();
    const n = this.len - at - size;
    if (n >= 1 << (8 * size)) throw new RangeError(`block of ${n} bytes exceeds u${8 * size}`);
    for (let i = 0; i < size; i++) this.buf[at + i] = (n >> (8 * (size - 1 - i))) & 0xff;
  }
  ext(type: number, body: () => void): void {
    this.u16(type);
    this.block(2, body);
  }
  patchU16(at: number, v: number): void {
    this.buf[at] = (v >> 8) & 0xff;
    this.buf[at + 1] = v & 0xff;
  }
  patchU24(at: number, v: number): void {
    this.buf[at] = (v >> 16) & 0xff;
    this.buf[at + 1] = (v >> 8) & 0xff;
    this.buf[at + 2] = v & 0xff;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** Deterministic pseudo-random bytes from a seed (xorshift32; not for cryptography). */
function fillPseudo(w: Writer, n: number, seed: number): void {
  let x = seed | 0 || 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    w.u8(x);
  }
}

/** Build a full ClientHello handshake message: type 1, u24 length, body. */
export function buildClientHello(opts: ClientHelloOptions = {}): Uint8Array {
  const sni = opts.sni ?? null;
  const alpn = opts.alpn ?? [];
  const versions = opts.versions ?? [0x0304, 0x0303];
  const ciphers = opts.cipherSuites ?? DEFAULT_CIPHER_SUITES;
  const grease = opts.grease ?? false;
  let random = opts.random;
  if (random === undefined) {
    random = new Uint8Array(32);
    for (let i = 0; i < 32; i++) random[i] = (i * 37 + 11) & 0xff;
  }
  if (random.length !== 32) throw new RangeError('random must be 32 bytes');
  const seed = (random[0] << 24) | (random[1] << 16) | (random[2] << 8) | random[3];
  const tls13 = versions.includes(0x0304);

  const w = new Writer();
  w.u8(1);
  const lenAt = w.len;
  w.u24(0);
  w.u16(0x0303); // legacy_version
  w.bytes(random);
  w.block(1, () => fillPseudo(w, 32, seed ^ 0x5a5a5a5a)); // legacy_session_id
  w.block(2, () => {
    if (grease) w.u16(GREASE_A);
    for (const c of ciphers) w.u16(c);
  });
  w.block(1, () => w.u8(0)); // compression: null
  const extsAt = w.len;
  w.u16(0);
  if (grease) w.ext(GREASE_A, () => {});
  if (sni !== null) {
    w.ext(0x0000, () =>
      w.block(2, () => {
        w.u8(0);
        w.block(2, () => w.str(sni));
      }),
    );
  }
  w.ext(0x0017, () => {}); // extended_master_secret
  w.ext(0xff01, () => w.u8(0)); // renegotiation_info
  w.ext(0x000a, () =>
    w.block(2, () => {
      if (grease) w.u16(GREASE_B);
      if (opts.pqKeyShare) w.u16(X25519MLKEM768);
      w.u16(X25519);
      w.u16(0x0017);
      w.u16(0x0018);
    }),
  );
  w.ext(0x000b, () => w.block(1, () => w.u8(0))); // ec_point_formats: uncompressed
  w.ext(0x0023, () => {}); // session_ticket
  if (alpn.length > 0) {
    w.ext(0x0010, () =>
      w.block(2, () => {
        for (const p of alpn) w.block(1, () => w.str(p));
      }),
    );
  }
  w.ext(0x0005, () => {
    w.u8(1);
    w.u16(0);
    w.u16(0);
  }); // status_request (OCSP)
  w.ext(0x000d, () => w.block(2, () => DEFAULT_SIGNATURE_ALGORITHMS.forEach((s) => w.u16(s))));
  w.ext(0x0012, () => {}); // signed_certificate_timestamp
  if (tls13) {
    w.ext(0x0033, () =>
      w.block(2, () => {
        if (grease) {
          w.u16(GREASE_B);
          w.block(2, () => w.u8(0));
        }
        if (opts.pqKeyShare) {
          w.u16(X25519MLKEM768);
          w.block(2, () => fillPseudo(w, 1216, seed ^ 0x1234567));
        }
        w.u16(X25519);
        w.block(2, () => fillPseudo(w, 32, seed ^ 0x7654321));
      }),
    );
    w.ext(0x002d, () => w.block(1, () => w.u8(1))); // psk_key_exchange_modes: psk_dhe_ke
  }
  if (versions.length > 0) {
    w.ext(0x002b, () =>
      w.block(1, () => {
        if (grease) w.u16(GREASE_C);
        for (const v of versions) w.u16(v);
      }),
    );
  }
  w.ext(0x001b, () => w.block(1, () => w.u16(2))); // compress_certificate: brotli
  if (opts.ech) {
    w.ext(0xfe0d, () => {
      w.u8(0); // outer
      w.u16(1); // HKDF-SHA256
      w.u16(1); // AES-128-GCM
      w.u8(seed & 0xff); // config_id
      w.block(2, () => fillPseudo(w, 32, seed ^ 0x2468ace)); // enc
      w.block(2, () => fillPseudo(w, 144, seed ^ 0x13579bd)); // payload
    });
  }
  if (grease) w.ext(GREASE_C, () => w.u8(0));
  if (opts.extraExtensions) for (const t of opts.extraExtensions) w.ext(t, () => {});
  if (opts.padTo !== undefined && w.len < opts.padTo) {
    const pad = Math.max(0, opts.padTo - w.len - 4);
    w.ext(0x0015, () => w.fill(pad, 0));
  }
  const extLen = w.len - extsAt - 2;
  if (extLen > 0xffff) throw new RangeError('extensions exceed 65535 bytes');
  w.patchU16(extsAt, extLen);
  w.patchU24(lenAt, w.len - 4);
  return w.result();
}

/**
 * Wrap a handshake message in TLS records (content type 22, record version 0x0301), each
 * carrying at most `maxFragment` bytes (1..16384, default 16384).
 */
export function wrapRecords(handshake: Uint8Array, maxFragment = 16384): Uint8Array {
  if (!Number.isInteger(maxFragment) || maxFragment < 1 || maxFragment > 16384) {
    throw new RangeError(`maxFragment must be 1..16384, got ${maxFragment}`);
  }
  const count = Math.max(1, Math.ceil(handshake.length / maxFragment));
  const out = new Uint8Array(handshake.length + 5 * count);
  let w = 0;
  for (let i = 0; i < count; i++) {
    const s = i * maxFragment;
    const e = Math.min(s + maxFragment, handshake.length);
    out[w++] = 22;
    out[w++] = 3;
    out[w++] = 1;
    out[w++] = (e - s) >> 8;
    out[w++] = (e - s) & 0xff;
    out.set(handshake.subarray(s, e), w);
    w += e - s;
  }
  return out;
}
