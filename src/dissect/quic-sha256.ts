/**
 * @module dissect/quic-sha256
 * HMAC-SHA256 for short messages, in plain JS, for the QUIC Initial key schedule (dissect/quic-keys):
 * a key's inner and outer pad states are computed once ({@link hmacPads}), then each HMAC of a message
 * of at most {@link HMAC_MAX_MSG} bytes costs two SHA-256 compressions and allocates nothing. One QUIC
 * flow's Initial keys (extract + four expand labels) take 14 compressions, a few microseconds, where
 * node:crypto's `createHmac` costs several microseconds per call in object set-up alone. Checked
 * against node:crypto on random keys and messages and against the RFC 9001 vectors in the tests.
 */

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);
const IV = new Int32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

/** Longest message {@link hmac} takes: one block after the pad, with room for the padding. */
export const HMAC_MAX_MSG = 55;

const W = new Int32Array(64);
const BLOCK = new Uint8Array(64);
const ST = new Int32Array(8);

/** One SHA-256 compression of BLOCK into ST. */
function compress(): void {
  const w = W;
  const b = BLOCK;
  for (let i = 0; i < 16; i++) {
    const j = i * 4;
    w[i] = (b[j] << 24) | (b[j + 1] << 16) | (b[j + 2] << 8) | b[j + 3];
  }
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15];
    const y = w[i - 2];
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
  }
  const st = ST;
  let a = st[0];
  let bb = st[1];
  let c = st[2];
  let d = st[3];
  let e = st[4];
  let f = st[5];
  let g = st[6];
  let h = st[7];
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (h + S1 + ch + K[i] + w[i]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & bb) ^ (a & c) ^ (bb & c);
    const t2 = (S0 + maj) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = bb;
    bb = a;
    a = (t1 + t2) | 0;
  }
  st[0] = (st[0] + a) | 0;
  st[1] = (st[1] + bb) | 0;
  st[2] = (st[2] + c) | 0;
  st[3] = (st[3] + d) | 0;
  st[4] = (st[4] + e) | 0;
  st[5] = (st[5] + f) | 0;
  st[6] = (st[6] + g) | 0;
  st[7] = (st[7] + h) | 0;
}

/**
 * The inner (words 0–7) and outer (8–15) SHA-256 states of HMAC key `key` (at most 64 bytes, as every
 * key of the QUIC key schedule is: salts of 20 bytes, secrets of 32) into `out`.
 */
export function hmacPads(key: Uint8Array, out: Int32Array = new Int32Array(16)): Int32Array {
  if (key.length > 64) throw new RangeError('hmacPads: key longer than 64 bytes');
  for (let p = 0; p < 2; p++) {
    const x = p === 0 ? 0x36 : 0x5c;
    for (let i = 0; i < 64; i++) BLOCK[i] = (i < key.length ? key[i] : 0) ^ x;
    ST.set(IV);
    compress();
    out.set(ST, p * 8);
  }
  return out;
}

/** Finish a hash whose state is ST after one 64-byte block: `len` message bytes already in BLOCK. */
function finalBlock(len: number): void {
  BLOCK[len] = 0x80;
  BLOCK.fill(0, len + 1, 60);
  const bits = (64 + len) * 8;
  BLOCK[60] = bits >>> 24;
  BLOCK[61] = (bits >>> 16) & 0xff;
  BLOCK[62] = (bits >>> 8) & 0xff;
  BLOCK[63] = bits & 0xff;
  compress();
}

/**
 * HMAC-SHA256(key of `pads`, msg[off, off + len)) into out[outOff, outOff + outLen) (outLen ≤ 32:
 * the digest's first bytes). `len` ≤ {@link HMAC_MAX_MSG}.
 */
export function hmac(
  pads: Int32Array,
  msg: Uint8Array,
  off: number,
  len: number,
  out: Uint8Array,
  outOff: number,
  outLen: number,
): void {
  if (len > HMAC_MAX_MSG) throw new RangeError('hmac: message longer than one block');
  for (let i = 0; i < len; i++) BLOCK[i] = msg[off + i];
  for (let i = 0; i < 8; i++) ST[i] = pads[i];
  finalBlock(len);
  for (let i = 0; i < 8; i++) {
    const v = ST[i];
    const j = i * 4;
    BLOCK[j] = v >>> 24;
    BLOCK[j + 1] = (v >>> 16) & 0xff;
    BLOCK[j + 2] = (v >>> 8) & 0xff;
    BLOCK[j + 3] = v & 0xff;
  }
  for (let i = 0; i < 8; i++) ST[i] = pads[8 + i];
  finalBlock(32);
  for (let i = 0; i < outLen; i++) out[outOff + i] = (ST[i >>> 2] >>> (24 - 8 * (i & 3))) & 0xff;
}
