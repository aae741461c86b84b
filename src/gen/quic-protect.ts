/**
 * @module gen/quic-protect
 * The generator's own QUIC Initial packet protection (RFC 9001 §5, RFC 9369 §3.3), written apart
 * from `dissect/quic-keys` and `dissect/quic-packet` on purpose: the synthetic captures are the
 * ground truth the dissector is tested against, so they must not be built with the code they check.
 * Shared with the dissector are only node:crypto's primitives (HMAC-SHA256, AES-128) and the
 * published constants (salts, labels). The derivation follows the RFC text literally and differs in
 * form from the dissector's: HKDF-Expand as one HMAC block (every Initial secret is ≤ 32 bytes),
 * header protection with AES-128-ECB (the dissector uses the equivalent CTR keystream), the nonce
 * built from a 64-bit packet number with BigInt. Checked against the RFC 9001 Appendix A, RFC 9369
 * Appendix A and draft vectors and against tshark in `quic-protect.test.ts` / `quic-initial.test.ts`.
 */
import { createCipheriv, createHmac } from 'node:crypto';

/** The parameters of one QUIC version as far as Initial protection is concerned. */
export interface GenQuicVersion {
  version: number;
  /** HKDF-Extract salt of the Initial secret. */
  salt: string;
  /** Label prefix: "quic" (v1 and drafts) or "quicv2" (RFC 9369). */
  prefix: 'quic' | 'quicv2';
  /** Long-header type bits of an Initial packet: 0b00 (v1) or 0b01 (v2, RFC 9369 §3.2). */
  initialType: 0 | 1;
  /** Frame type carrying the handshake: CRYPTO 0x06, or 0x08 in Google's T05x/Q050. */
  cryptoFrame: 0x06 | 0x08;
}

// Salts as published: RFC 9001 §5.2, RFC 9369 §3.3.1, draft-ietf-quic-v2-01..07, draft-ietf-quic-tls-22..34;
// mvfst and Google T050/T051/Q050 as used by their implementations (and by Wireshark).
const S_V1 = '38762cf7f55934b34d179ae6a4c80cadccbb7f0a';
const S_V2 = '0dede3def700a6db819381be6e269dcbf9bd2ed9';
const S_V2D = 'a707c203a59b47184a1d62ca570406ea7ae3e5d3';
const S_D29 = 'afbfec289993d24c9e9786f19c6111e04390a899';
const S_D23 = 'c3eef712c72ebb5a11a7d2432bb46365bef9f502';
const S_D22 = '7fbcdb0e7c66bbe9193a96cd21519ebd7a02644a';

const v1 = (version: number, salt: string, cryptoFrame: 0x06 | 0x08 = 0x06): GenQuicVersion => ({
  version,
  salt,
  prefix: 'quic',
  initialType: 0,
  cryptoFrame,
});

const VERSIONS: GenQuicVersion[] = [
  v1(0x00000001, S_V1),
  { version: 0x6b3343cf, salt: S_V2, prefix: 'quicv2', initialType: 1, cryptoFrame: 0x06 },
  { version: 0x709a50c4, salt: S_V2D, prefix: 'quicv2', initialType: 1, cryptoFrame: 0x06 },
  v1(0xff000016, S_D22),
  v1(0xfaceb001, S_D22),
  v1(0xfaceb002, S_D23),
  v1(0xfaceb00e, S_D23),
  v1(0x54303530, '7ff579e5acd072915580304c43a2367c60488310', 0x08),
  v1(0x54303531, '7a4edef4e7ccee5fa4506c19124fc8ccda6e033d', 0x08),
  v1(0x51303530, '504574efd066fe2f9d945cfcdbd3a7f0d3b56b45', 0x08),
];
for (let d = 23; d <= 28; d++) VERSIONS.push(v1(0xff000000 + d, S_D23));
for (let d = 29; d <= 32; d++) VERSIONS.push(v1(0xff000000 + d, S_D29));
for (let d = 33; d <= 34; d++) VERSIONS.push(v1(0xff000000 + d, S_V1));

/** The generator's parameters for `version`, or undefined if it cannot build Initials for it. */
export function genQuicVersion(version: number): GenQuicVersion | undefined {
  return VERSIONS.find((v) => v.version === version >>> 0);
}

/** HKDF-Extract(salt, ikm) = HMAC-SHA256(salt, ikm) (RFC 5869 §2.2). */
export function extract(salt: Uint8Array, ikm: Uint8Array): Buffer {
  return createHmac('sha256', salt).update(ikm).digest();
}

/**
 * HKDF-Expand-Label(secret, label, "", length) of TLS 1.3 (RFC 8446 §7.1) for length ≤ 32: the
 * HkdfLabel struct, then HKDF-Expand's first block T(1) = HMAC(secret, HkdfLabel || 0x01), truncated.
 */
export function expandLabel(secret: Uint8Array, label: string, length: number): Buffer {
  if (length > 32) throw new RangeError('expandLabel: one SHA-256 block only');
  const name = 'tls13 ' + label;
  const hkdfLabel = Buffer.concat([
    Buffer.from([length >> 8, length & 0xff, name.length]),
    Buffer.from(name, 'ascii'),
    Buffer.from([0]), // empty context
  ]);
  const t1 = createHmac('sha256', secret)
    .update(hkdfLabel)
    .update(Buffer.from([1]))
    .digest();
  return t1.subarray(0, length);
}

/** One direction's Initial secrets (RFC 9001 §5.2). */
export interface GenInitialKeys {
  initialSecret: Buffer;
  secret: Buffer;
  key: Buffer;
  iv: Buffer;
  hp: Buffer;
}

/** Initial keys of the client (or server) for the client's first Destination Connection ID. */
export function initialKeys(
  v: GenQuicVersion,
  dcid: Uint8Array,
  side: 'client' | 'server' = 'client',
): GenInitialKeys {
  const initialSecret = extract(Buffer.from(v.salt, 'hex'), dcid);
  const secret = expandLabel(initialSecret, `${side} in`, 32);
  return {
    initialSecret,
    secret,
    key: expandLabel(secret, `${v.prefix} key`, 16),
    iv: expandLabel(secret, `${v.prefix} iv`, 12),
    hp: expandLabel(secret, `${v.prefix} hp`, 16),
  };
}

/** Header-protection mask: the first 5 bytes of AES-128-ECB(hp, sample) (RFC 9001 §5.4.3). */
export function hpMask(hp: Uint8Array, sample: Uint8Array): Buffer {
  const ecb = createCipheriv('aes-128-ecb', hp, null);
  ecb.setAutoPadding(false);
  return ecb.update(sample).subarray(0, 5);
}

/** AEAD nonce: the 62-bit packet number, left-padded to the IV's 12 bytes, XORed with the IV (RFC 9001 §5.3). */
export function nonce(iv: Uint8Array, pn: number): Buffer {
  const padded = Buffer.alloc(12);
  padded.writeBigUInt64BE(BigInt(pn), 4);
  for (let i = 0; i < 12; i++) padded[i] ^= iv[i];
  return padded;
}

/** QUIC variable-length integer (RFC 9000 §16), in exactly `size` bytes (1, 2, 4 or 8). */
export function varint(value: number | bigint, size: 1 | 2 | 4 | 8): Buffer {
  if (typeof value === 'number' && !Number.isSafeInteger(value))
    throw new RangeError(`varint ${value}: not an integer`);
  const v = BigInt(value);
  if (v < 0n || v >= 1n << BigInt(size * 8 - 2))
    throw new RangeError(`varint ${value} does not fit in ${size} bytes`);
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  const out = b.subarray(8 - size);
  out[0] |= { 1: 0, 2: 1, 4: 2, 8: 3 }[size] << 6;
  return out;
}

/** The shortest varint size that holds `value`. */
export function varintSize(value: number): 1 | 2 | 4 | 8 {
  return value < 64 ? 1 : value < 16384 ? 2 : value < 2 ** 30 ? 4 : 8;
}

/** What {@link protectInitial} needs for one client Initial packet. */
export interface InitialPacket {
  v: GenQuicVersion;
  keys: GenInitialKeys;
  dcid: Uint8Array;
  scid: Uint8Array;
  token: Uint8Array;
  pn: number;
  pnLength: 1 | 2 | 3 | 4;
  /** Plaintext frames (≥ 4 − pnLength bytes, so that the 16-byte sample fits). */
  plaintext: Uint8Array;
}

/**
 * One protected long-header Initial packet: header (Length as a 2-byte varint, as in the RFC
 * examples), AES-128-GCM payload with the header as associated data, then header protection.
 */
export function protectInitial(p: InitialPacket): Buffer {
  const length = p.pnLength + p.plaintext.length + 16;
  const pnBytes = Buffer.alloc(4);
  pnBytes.writeUInt32BE(p.pn % 2 ** 32);
  const header = Buffer.concat([
    Buffer.from([0xc0 | (p.v.initialType << 4) | (p.pnLength - 1)]),
    Buffer.from([
      p.v.version >>> 24,
      (p.v.version >>> 16) & 0xff,
      (p.v.version >>> 8) & 0xff,
      p.v.version & 0xff,
    ]),
    Buffer.from([p.dcid.length]),
    p.dcid,
    Buffer.from([p.scid.length]),
    p.scid,
    varint(p.token.length, varintSize(p.token.length)),
    p.token,
    varint(length, 2),
    pnBytes.subarray(4 - p.pnLength),
  ]);
  const gcm = createCipheriv('aes-128-gcm', p.keys.key, nonce(p.keys.iv, p.pn));
  gcm.setAAD(header);
  const sealed = Buffer.concat([gcm.update(p.plaintext), gcm.final(), gcm.getAuthTag()]);
  const packet = Buffer.concat([header, sealed]);
  const pnAt = header.length - p.pnLength;
  const mask = hpMask(p.keys.hp, packet.subarray(pnAt + 4, pnAt + 20));
  packet[0] ^= mask[0] & 0x0f; // long header: the low 4 bits
  for (let i = 0; i < p.pnLength; i++) packet[pnAt + i] ^= mask[1 + i];
  return packet;
}
