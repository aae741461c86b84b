/**
 * @module dissect/quic-keys
 * QUIC versions this project can open, and their Initial packet protection keys.
 *
 * Initial keys are not secret: RFC 9001 §5.2 derives them from the Destination Connection ID of
 * the client's first Initial with a version-specific salt:
 *
 *   initial_secret = HKDF-Extract(salt, dcid)
 *   client_secret  = HKDF-Expand-Label(initial_secret, "client in", "", 32)
 *   key = HKDF-Expand-Label(client_secret, "<p> key", "", 16)   (AES-128-GCM)
 *   iv  = HKDF-Expand-Label(client_secret, "<p> iv",  "", 12)
 *   hp  = HKDF-Expand-Label(client_secret, "<p> hp",  "", 16)   (AES-128 header protection)
 *
 * where `<p>` is "quic" (v1 and drafts) or "quicv2" (RFC 9369). HKDF-Expand-Label is the TLS 1.3
 * construction (RFC 8446 §7.1). {@link deriveInitialKeys} runs it on the allocation-free HMAC-SHA256 of
 * dissect/quic-sha256 (the salt's pad states cached per version: 14 SHA-256 compressions per flow);
 * {@link hkdfExtract} / {@link hkdfExpandLabel} are the general forms on node:crypto, which the tests
 * hold the fast path to. Header protection uses the plain-JS AES block of dissect/quic-aes-block.
 *
 * Version table (long-header type bits differ for v2: Initial is 0b01 there, 0b00 in v1):
 *   0x00000001 v1 (RFC 9000/9001)            salt 38762cf7…, "quic"
 *   0x6b3343cf v2 (RFC 9369)                  salt 0dede3de…, "quicv2", v2 types
 *   0x709a50c4 v2 drafts 01–07 (ngtcp2 0.12 "v2draft")  salt a707c203…, "quicv2", v2 types
 *   0xff00001d–0xff000020 drafts 29–32        salt afbfec28…, "quic"
 *   0xff000021–0xff000022 drafts 33–34        v1 salt, "quic"
 *   0xff000016 draft 22, 0xfaceb001 mvfst-22  salt 7fbcdb0e…, "quic"
 *   0xff000017–0xff00001c drafts 23–28, 0xfaceb002 mvfst-27, 0xfaceb00e mvfst-exp  salt c3eef712…
 *   0x54303530 Google T050, 0x54303531 T051 (TLS over IETF-style Initials)  own salts, "quic",
 *   0x51303530 Google Q050 (same protection; the CRYPTO stream holds a QUIC-crypto CHLO)
 *              CRYPTO frames with type 0x08
 * IETF draft salts are from the drafts (draft-ietf-quic-tls-NN §5.2); mvfst and Google T05x salts
 * are as Wireshark and nDPI use them, and are confirmed by the AEAD tags of the captures in the
 * nDPI corpus opening with them (a wrong salt cannot yield a valid tag).
 */
import { createHmac } from 'node:crypto';
import { aes128EncryptBlock } from './quic-aes-block.js';
import { HMAC_MAX_MSG, hmac, hmacPads } from './quic-sha256.js';

/** Long-header packet types in version-independent form (v1 numbering). */
export const PT_INITIAL = 0;
export const PT_0RTT = 1;
export const PT_HANDSHAKE = 2;
export const PT_RETRY = 3;

export interface QuicVersionInfo {
  version: number;
  name: string;
  salt: Buffer;
  /** Label prefix: 'quic' or 'quicv2'. */
  labelPrefix: string;
  /** Wire type bits (0..3) of an Initial packet for this version. */
  initialBits: number;
  /** wire type bits -> PT_* */
  typeOf: readonly number[];
  /** PT_* -> wire type bits */
  bitsOf: readonly number[];
  /** Frame type of CRYPTO frames: 0x06, except Google's T05x (0x08, gQUIC numbering). */
  cryptoFrameType: number;
}

const V1_TYPES = [PT_INITIAL, PT_0RTT, PT_HANDSHAKE, PT_RETRY] as const;
// RFC 9369 §3.2: Initial 0b01, 0-RTT 0b10, Handshake 0b11, Retry 0b00.
const V2_TYPES = [PT_RETRY, PT_INITIAL, PT_0RTT, PT_HANDSHAKE] as const;
const V1_BITS = [0, 1, 2, 3] as const;
const V2_BITS = [1, 2, 3, 0] as const;

const SALT_V1 = Buffer.from('38762cf7f55934b34d179ae6a4c80cadccbb7f0a', 'hex');
const SALT_V2 = Buffer.from('0dede3def700a6db819381be6e269dcbf9bd2ed9', 'hex');
const SALT_V2_DRAFT = Buffer.from('a707c203a59b47184a1d62ca570406ea7ae3e5d3', 'hex');
const SALT_D29 = Buffer.from('afbfec289993d24c9e9786f19c6111e04390a899', 'hex');
const SALT_D22 = Buffer.from('7fbcdb0e7c66bbe9193a96cd21519ebd7a02644a', 'hex');
const SALT_D23 = Buffer.from('c3eef712c72ebb5a11a7d2432bb46365bef9f502', 'hex');
const SALT_T050 = Buffer.from('7ff579e5acd072915580304c43a2367c60488310', 'hex');
const SALT_T051 = Buffer.from('7a4edef4e7ccee5fa4506c19124fc8ccda6e033d', 'hex');
const SALT_Q050 = Buffer.from('504574efd066fe2f9d945cfcdbd3a7f0d3b56b45', 'hex');

export const QUIC_V1 = 0x00000001;
export const QUIC_V2 = 0x6b3343cf;
export const QUIC_V2_DRAFT = 0x709a50c4;
export const QUIC_DRAFT_29 = 0xff00001d;

function v1like(version: number, name: string, salt: Buffer, cryptoFrameType = 0x06): QuicVersionInfo {
  return {
    version,
    name,
    salt,
    labelPrefix: 'quic',
    initialBits: 0,
    typeOf: V1_TYPES,
    bitsOf: V1_BITS,
    cryptoFrameType,
  };
}
function v2like(version: number, name: string, salt: Buffer): QuicVersionInfo {
  return {
    version,
    name,
    salt,
    labelPrefix: 'quicv2',
    initialBits: 1,
    typeOf: V2_TYPES,
    bitsOf: V2_BITS,
    cryptoFrameType: 0x06,
  };
}

const TABLE: QuicVersionInfo[] = [
  v1like(QUIC_V1, 'v1', SALT_V1),
  v2like(QUIC_V2, 'v2', SALT_V2),
  v2like(QUIC_V2_DRAFT, 'v2-draft', SALT_V2_DRAFT),
  v1like(0xff00001d, 'draft-29', SALT_D29),
  v1like(0xff00001e, 'draft-30', SALT_D29),
  v1like(0xff00001f, 'draft-31', SALT_D29),
  v1like(0xff000020, 'draft-32', SALT_D29),
  v1like(0xff000021, 'draft-33', SALT_V1),
  v1like(0xff000022, 'draft-34', SALT_V1),
  v1like(0xff000016, 'draft-22', SALT_D22),
  v1like(0xff000017, 'draft-23', SALT_D23),
  v1like(0xff000018, 'draft-24', SALT_D23),
  v1like(0xff000019, 'draft-25', SALT_D23),
  v1like(0xff00001a, 'draft-26', SALT_D23),
  v1like(0xff00001b, 'draft-27', SALT_D23),
  v1like(0xff00001c, 'draft-28', SALT_D23),
  v1like(0xfaceb001, 'mvfst-22', SALT_D22),
  v1like(0xfaceb002, 'mvfst-27', SALT_D23),
  v1like(0xfaceb00e, 'mvfst-exp', SALT_D23),
  v1like(0x54303530, 'google-T050', SALT_T050, 0x08),
  v1like(0x54303531, 'google-T051', SALT_T051, 0x08),
  // Google Q050: IETF-style protected Initials whose CRYPTO stream carries a QUIC-crypto CHLO
  v1like(0x51303530, 'google-Q050', SALT_Q050, 0x08),
];

const BY_VERSION = new Map<number, QuicVersionInfo>(TABLE.map((v) => [v.version, v]));

/** The parameters of a supported version, or undefined. `version` is an unsigned 32-bit value. */
export function quicVersionInfo(version: number): QuicVersionInfo | undefined {
  return BY_VERSION.get(version >>> 0);
}

/** All supported versions (for tests and documentation). */
export function supportedQuicVersions(): readonly QuicVersionInfo[] {
  return TABLE;
}

/**
 * Wire type bits of an Initial packet for `version` (0..3), or -1 if not supported. Takes the
 * version as read (signed or unsigned 32-bit) and compares int32 values only, so it allocates
 * nothing (a Map lookup would box versions above 2^30). Kept equal to the table by a test.
 */
export function initialTypeBits(version: number): number {
  const v = version | 0;
  if (
    v === 1 ||
    (v >= (0xff000016 | 0) && v <= (0xff000022 | 0)) ||
    v === (0xfaceb001 | 0) ||
    v === (0xfaceb002 | 0) ||
    v === (0xfaceb00e | 0) ||
    v === 0x54303530 ||
    v === 0x54303531 ||
    v === 0x51303530
  )
    return 0;
  if (v === 0x6b3343cf || v === 0x709a50c4) return 1;
  return -1;
}

/** HKDF-Extract (RFC 5869 §2.2) with SHA-256. */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Buffer {
  return createHmac('sha256', salt).update(ikm).digest();
}

/**
 * HKDF-Expand-Label (RFC 8446 §7.1) with SHA-256:
 * HKDF-Expand(secret, HkdfLabel{ uint16 length; opaque label<7..255> = "tls13 " + label;
 * opaque context<0..255> }, length).
 */
export function hkdfExpandLabel(
  secret: Uint8Array,
  label: string,
  context: Uint8Array,
  length: number,
): Buffer {
  const full = Buffer.from('tls13 ' + label, 'latin1');
  const info = Buffer.alloc(2 + 1 + full.length + 1 + context.length);
  info.writeUInt16BE(length, 0);
  info[2] = full.length;
  full.copy(info, 3);
  info[3 + full.length] = context.length;
  info.set(context, 4 + full.length);
  // HKDF-Expand (RFC 5869 §2.3): T(i) = HMAC(PRK, T(i-1) | info | i)
  const out = Buffer.alloc(length);
  let prev: Buffer = Buffer.alloc(0);
  let filled = 0;
  for (let i = 1; filled < length; i++) {
    prev = createHmac('sha256', secret).update(prev).update(info).update(Buffer.of(i)).digest();
    filled += prev.copy(out, filled);
  }
  return out;
}

/** Packet protection keys of one direction. */
export interface InitialKeys {
  secret: Buffer;
  key: Buffer;
  iv: Buffer;
  hp: Buffer;
}

const EMPTY = new Uint8Array(0);

/** HkdfLabel{length, "tls13 " + label, empty context} followed by HKDF-Expand's counter byte 0x01. */
function expandInfo(label: string, length: number): Uint8Array {
  const full = Buffer.from('tls13 ' + label, 'latin1');
  const info = new Uint8Array(2 + 1 + full.length + 1 + 1);
  info[0] = length >> 8;
  info[1] = length & 0xff;
  info[2] = full.length;
  info.set(full, 3);
  info[3 + full.length] = 0; // empty context
  info[4 + full.length] = 1; // T(1): every output here is at most one SHA-256 block
  return info;
}

/** The constant inputs of one label prefix's schedule. */
interface Schedule {
  saltPads: Int32Array;
  client: Uint8Array;
  server: Uint8Array;
  key: Uint8Array;
  iv: Uint8Array;
  hp: Uint8Array;
}

const SCHEDULES = new Map<QuicVersionInfo, Schedule>();

function schedule(info: QuicVersionInfo): Schedule {
  let s = SCHEDULES.get(info);
  if (s === undefined) {
    s = {
      saltPads: hmacPads(info.salt),
      client: expandInfo('client in', 32),
      server: expandInfo('server in', 32),
      key: expandInfo(info.labelPrefix + ' key', 16),
      iv: expandInfo(info.labelPrefix + ' iv', 12),
      hp: expandInfo(info.labelPrefix + ' hp', 16),
    };
    SCHEDULES.set(info, s);
  }
  return s;
}

const PADS = new Int32Array(16);
const INITIAL = new Uint8Array(32);

/** Initial keys for `dcid` (the client's first Destination Connection ID). */
export function deriveInitialKeys(
  info: QuicVersionInfo,
  dcid: Uint8Array,
  side: 'client' | 'server' = 'client',
): InitialKeys {
  if (dcid.length > HMAC_MAX_MSG) {
    // not a QUIC v1/v2 connection ID (at most 20 bytes): the general path
    const initial = hkdfExtract(info.salt, dcid);
    const secret = hkdfExpandLabel(initial, side === 'client' ? 'client in' : 'server in', EMPTY, 32);
    return {
      secret,
      key: hkdfExpandLabel(secret, info.labelPrefix + ' key', EMPTY, 16),
      iv: hkdfExpandLabel(secret, info.labelPrefix + ' iv', EMPTY, 12),
      hp: hkdfExpandLabel(secret, info.labelPrefix + ' hp', EMPTY, 16),
    };
  }
  const s = schedule(info);
  hmac(s.saltPads, dcid, 0, dcid.length, INITIAL, 0, 32); // HKDF-Extract
  hmacPads(INITIAL, PADS);
  const all = Buffer.allocUnsafe(32 + 16 + 12 + 16);
  const lbl = side === 'client' ? s.client : s.server;
  hmac(PADS, lbl, 0, lbl.length, all, 0, 32);
  const secret = all.subarray(0, 32);
  hmacPads(secret, PADS);
  hmac(PADS, s.key, 0, s.key.length, all, 32, 16);
  hmac(PADS, s.iv, 0, s.iv.length, all, 48, 12);
  hmac(PADS, s.hp, 0, s.hp.length, all, 60, 16);
  return { secret, key: all.subarray(32, 48), iv: all.subarray(48, 60), hp: all.subarray(60, 76) };
}

const MASK = new Uint8Array(16);

/**
 * The 5-byte header protection mask AES-ECB(hp, sample)[0..5] (RFC 9001 §5.4.3), where the sample is
 * d[sampleAt, sampleAt + 16), written to a scratch array that is returned (valid until the next call).
 * Allocation-free; checked against node:crypto and the RFC masks in the tests.
 */
export function headerProtectionMaskAt(hp: Uint8Array, d: Uint8Array, sampleAt: number): Uint8Array {
  aes128EncryptBlock(hp, 0, d, sampleAt, MASK, 0);
  return MASK;
}

/** The 5-byte header protection mask for `sample` (16 bytes), as a new Buffer. */
export function headerProtectionMask(hp: Uint8Array, sample: Uint8Array): Buffer {
  return Buffer.from(headerProtectionMaskAt(hp, sample, 0).subarray(0, 5));
}

/** AEAD nonce: the IV XORed with the packet number, left-padded to 12 bytes (RFC 9001 §5.3). */
export function packetNonce(iv: Uint8Array, pn: number): Buffer {
  const n = Buffer.from(iv);
  let v = pn;
  for (let i = 11; i >= 4 && v > 0; i--) {
    n[i] ^= v % 256;
    v = Math.floor(v / 256);
  }
  return n;
}
