/**
 * @module dissect/quic-aes-block
 * AES-128 encryption of one block, in plain JS, for QUIC header protection (RFC 9001 §5.4.3: the mask is
 * AES-ECB(hp, sample)). A packet needs one block under a key used once or twice per flow, where a
 * node:crypto cipher object costs several microseconds to set up; here the key schedule and the block
 * take well under one and allocate nothing. Tables (S-box, T-tables) are computed at load from the
 * field arithmetic of FIPS-197. Checked against node:crypto's aes-128-ecb on random keys and blocks
 * and against the RFC 9001 masks in the tests. Not constant-time: Initial keys are public (derived
 * from the connection ID on the wire), so there is nothing to leak.
 */

const SBOX = new Uint8Array(256);
const T0 = new Int32Array(256);
const T1 = new Int32Array(256);
const T2 = new Int32Array(256);
const T3 = new Int32Array(256);

{
  // S-box: multiplicative inverse in GF(2^8) (walked with generator 3) then the affine map
  let p = 1;
  let q = 1;
  do {
    p = p ^ ((p << 1) & 0xff) ^ (p & 0x80 ? 0x1b : 0);
    q ^= q << 1;
    q ^= q << 2;
    q ^= q << 4;
    q &= 0xff;
    if (q & 0x80) q ^= 0x09;
    const r = (x: number, n: number): number => ((x << n) | (x >> (8 - n))) & 0xff;
    SBOX[p] = q ^ r(q, 1) ^ r(q, 2) ^ r(q, 3) ^ r(q, 4) ^ 0x63;
  } while (p !== 1);
  SBOX[0] = 0x63;
  for (let i = 0; i < 256; i++) {
    const s = SBOX[i];
    const s2 = ((s << 1) ^ (s & 0x80 ? 0x1b : 0)) & 0xff;
    const s3 = s2 ^ s;
    const t = (s2 << 24) | (s << 16) | (s << 8) | s3;
    T0[i] = t;
    T1[i] = (t >>> 8) | (t << 24);
    T2[i] = (t >>> 16) | (t << 16);
    T3[i] = (t >>> 24) | (t << 8);
  }
}

const RK = new Int32Array(44);
const RCON = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36];

function expandKey(key: Uint8Array, ko: number): void {
  for (let i = 0; i < 4; i++) {
    const j = ko + i * 4;
    RK[i] = (key[j] << 24) | (key[j + 1] << 16) | (key[j + 2] << 8) | key[j + 3];
  }
  for (let i = 4; i < 44; i++) {
    let t = RK[i - 1];
    if ((i & 3) === 0) {
      t =
        ((SBOX[(t >>> 16) & 0xff] << 24) |
          (SBOX[(t >>> 8) & 0xff] << 16) |
          (SBOX[t & 0xff] << 8) |
          SBOX[t >>> 24]) ^
        (RCON[(i >>> 2) - 1] << 24);
    }
    RK[i] = RK[i - 4] ^ t;
  }
}

/**
 * out[oo, oo + 16) = AES-128(key[ko, ko + 16), block[bo, bo + 16)). `out` may be `block`.
 */
export function aes128EncryptBlock(
  key: Uint8Array,
  ko: number,
  block: Uint8Array,
  bo: number,
  out: Uint8Array,
  oo: number,
): void {
  expandKey(key, ko);
  const rk = RK;
  let s0 = word(block, bo) ^ rk[0];
  let s1 = word(block, bo + 4) ^ rk[1];
  let s2 = word(block, bo + 8) ^ rk[2];
  let s3 = word(block, bo + 12) ^ rk[3];
  for (let r = 1; r < 10; r++) {
    const k = r * 4;
    const t0 = T0[s0 >>> 24] ^ T1[(s1 >>> 16) & 0xff] ^ T2[(s2 >>> 8) & 0xff] ^ T3[s3 & 0xff] ^ rk[k];
    const t1 = T0[s1 >>> 24] ^ T1[(s2 >>> 16) & 0xff] ^ T2[(s3 >>> 8) & 0xff] ^ T3[s0 & 0xff] ^ rk[k + 1];
    const t2 = T0[s2 >>> 24] ^ T1[(s3 >>> 16) & 0xff] ^ T2[(s0 >>> 8) & 0xff] ^ T3[s1 & 0xff] ^ rk[k + 2];
    const t3 = T0[s3 >>> 24] ^ T1[(s0 >>> 16) & 0xff] ^ T2[(s1 >>> 8) & 0xff] ^ T3[s2 & 0xff] ^ rk[k + 3];
    s0 = t0;
    s1 = t1;
    s2 = t2;
    s3 = t3;
  }
  // last round: SubBytes + ShiftRows, no MixColumns
  const o0 = last(s0, s1, s2, s3) ^ rk[40];
  const o1 = last(s1, s2, s3, s0) ^ rk[41];
  const o2 = last(s2, s3, s0, s1) ^ rk[42];
  const o3 = last(s3, s0, s1, s2) ^ rk[43];
  put(out, oo, o0);
  put(out, oo + 4, o1);
  put(out, oo + 8, o2);
  put(out, oo + 12, o3);
}

function word(b: Uint8Array, o: number): number {
  return (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
}

function last(a: number, b: number, c: number, d: number): number {
  return (
    (SBOX[a >>> 24] << 24) | (SBOX[(b >>> 16) & 0xff] << 16) | (SBOX[(c >>> 8) & 0xff] << 8) | SBOX[d & 0xff]
  );
}

function put(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}
