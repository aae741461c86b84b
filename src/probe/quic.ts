/**
 * @module probe/quic
 * QUIC v1 client Initial packets for the probe (RFC 9000 §17.2.2, protection per RFC 9001 §5):
 * the ClientHello goes into CRYPTO frames, split over one or more Initial packets, each padded to
 * a 1200-byte datagram, AEAD-sealed with the Initial keys derived from the Destination Connection
 * ID and header-protected. Middleboxes that decrypt Initials (as QUIC SNI filters do) see a real
 * ClientHello. The probe puts its session token in the DCID.
 */
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';

const INITIAL_SALT_V1 = Buffer.from('38762cf7f55934b34d179ae6a4c80cadccbb7f0a', 'hex');

function hkdfExtract(salt: Buffer, ikm: Uint8Array): Buffer {
  return createHmac('sha256', salt).update(ikm).digest();
}

function hkdfExpand(prk: Buffer, info: Buffer, len: number): Buffer {
  const out: Buffer[] = [];
  let prev = Buffer.alloc(0);
  for (let i = 1; out.length * 32 < len; i++) {
    prev = createHmac('sha256', prk)
      .update(Buffer.concat([prev, info, Buffer.from([i])]))
      .digest();
    out.push(prev);
  }
  return Buffer.concat(out).subarray(0, len);
}

/** HKDF-Expand-Label (RFC 8446 §7.1) with an empty context. */
export function expandLabel(secret: Buffer, label: string, len: number): Buffer {
  const full = Buffer.from('tls13 ' + label, 'latin1');
  const info = Buffer.concat([Buffer.from([len >> 8, len & 0xff, full.length]), full, Buffer.from([0])]);
  return hkdfExpand(secret, info, len);
}

export interface InitialKeys {
  key: Buffer;
  iv: Buffer;
  hp: Buffer;
}

/** Client Initial keys for QUIC v1 from the client's first Destination Connection ID. */
export function clientInitialKeys(dcid: Uint8Array): InitialKeys {
  const initial = hkdfExtract(INITIAL_SALT_V1, dcid);
  const client = expandLabel(initial, 'client in', 32);
  return {
    key: expandLabel(client, 'quic key', 16),
    iv: expandLabel(client, 'quic iv', 12),
    hp: expandLabel(client, 'quic hp', 16),
  };
}

function varint(n: number): number[] {
  if (n < 64) return [n];
  if (n < 16384) return [0x40 | (n >> 8), n & 0xff];
  return [0x80 | ((n >>> 24) & 0x3f), (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

export interface InitialOptions {
  dcid: Uint8Array;
  scid?: Uint8Array;
  /** The ClientHello handshake message (type 1 + length + body). */
  clientHello: Uint8Array;
  /** Number of Initial packets to spread the CRYPTO data over (default 1). */
  packets?: number;
  /** Datagram size each Initial is padded to (default 1200). */
  size?: number;
  version?: number;
}

/** Build sealed Initial datagrams (one Initial packet per datagram). */
export function buildInitials(o: InitialOptions): Uint8Array[] {
  const scid = o.scid ?? randomBytes(8);
  const version = o.version ?? 1;
  const size = o.size ?? 1200;
  const n = Math.max(1, o.packets ?? 1);
  const keys = clientInitialKeys(o.dcid);
  const ch = o.clientHello;
  const chunk = Math.ceil(ch.length / n);
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const off = i * chunk;
    const data = ch.subarray(off, Math.min(ch.length, off + chunk));
    const pn = i;
    const pnLen = 4;
    const header = [
      0xc0 | (pnLen - 1),
      (version >>> 24) & 0xff,
      (version >>> 16) & 0xff,
      (version >>> 8) & 0xff,
      version & 0xff,
      o.dcid.length,
      ...o.dcid,
      scid.length,
      ...scid,
      0, // token length
    ];
    const frame = [0x06, ...varint(off), ...varint(data.length), ...data];
    // payload length field is a 2-byte varint; total = header + 2 + pnLen + payload + 16 tag
    const fixed = header.length + 2 + pnLen + 16;
    const payloadLen = Math.max(frame.length, size - fixed);
    const payload = Buffer.alloc(payloadLen); // zero bytes = PADDING frames
    Buffer.from(frame).copy(payload);
    const lengthField = pnLen + payloadLen + 16;
    const hdr = Buffer.from([...header, 0x40 | (lengthField >> 8), lengthField & 0xff, 0, 0, 0, pn]);
    const nonce = Buffer.from(keys.iv);
    for (let k = 0; k < 4; k++) nonce[nonce.length - 1 - k] ^= (pn >>> (8 * k)) & 0xff;
    const c = createCipheriv('aes-128-gcm', keys.key, nonce);
    c.setAAD(hdr);
    const sealed = Buffer.concat([c.update(payload), c.final(), c.getAuthTag()]);
    const pkt = Buffer.concat([hdr, sealed]);
    const pnOffset = hdr.length - pnLen;
    const sample = pkt.subarray(pnOffset + 4, pnOffset + 20);
    const ecb = createCipheriv('aes-128-ecb', keys.hp, null);
    const mask = ecb.update(sample);
    pkt[0] ^= mask[0] & 0x0f;
    for (let k = 0; k < pnLen; k++) pkt[pnOffset + k] ^= mask[1 + k];
    out.push(pkt);
  }
  return out;
}
