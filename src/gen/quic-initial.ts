/**
 * @module gen/quic-initial
 * Builds protected QUIC client Initial datagrams carrying a given ClientHello, for tests and the
 * synthetic-capture generator. The ClientHello (a full handshake message: type, u24 length,
 * body) is split into CRYPTO frames over `packets` Initial packets with consecutive packet
 * numbers; each packet is padded with PADDING frames so that its datagram is `datagramSize`
 * bytes (default 1200, the RFC 9000 §14.1 minimum), sealed with AES-128-GCM under the Initial
 * keys of `keyDcid` (default `dcid`) and header-protected (RFC 9001 §5).
 *
 * With `packets: 1`, packet number 2 and the CRYPTO frame of RFC 9001 Appendix A.2 this
 * reproduces the RFC's protected packet byte for byte (the Length field is always a 2-byte
 * varint, CRYPTO offset/length are minimal varints, as in the RFC).
 *
 * The protection is the generator's own (`gen/quic-protect`), not the dissector's: this is the
 * ground truth the dissector is checked against.
 */
import { genQuicVersion, initialKeys, protectInitial, varint, varintSize } from './quic-protect.js';

export interface QuicInitialOptions {
  /** QUIC version (default 1); must be one that gen/quic-protect knows. */
  version?: number;
  dcid: Uint8Array;
  scid?: Uint8Array;
  /** Full handshake message (type 1, u24 length, body). */
  clientHello: Uint8Array;
  /**
   * Split the CRYPTO data into this many Initial packets (default 1). Raised automatically if the
   * ClientHello does not fit into that many datagrams of `datagramSize`.
   */
  packets?: number;
  /** Emit the datagrams in reverse order (packet numbers stay ascending in send order of creation). */
  reverse?: boolean;
  /** Packet number of the first packet (default 0). */
  packetNumberStart?: number;
  /** Bytes of packet number on the wire (default 4). */
  packetNumberLength?: 1 | 2 | 3 | 4;
  /** Size of each datagram (default 1200). */
  datagramSize?: number;
  /** Token field (e.g. after a Retry); default empty. */
  token?: Uint8Array;
  /** DCID the keys are derived from, if not `dcid` (e.g. after the server chose a new ID). */
  keyDcid?: Uint8Array;
  /**
   * Split each packet's CRYPTO data into frames of at most this many bytes, written in descending
   * offset order (hostile-input tests: hundreds of tiny CRYPTO frames). Default: one frame per packet.
   */
  cryptoFrameBytes?: number;
}

/** Build the client Initial datagrams. Throws RangeError on an unsupported version or bad sizes. */
export function buildQuicInitials(opts: QuicInitialOptions): Uint8Array[] {
  const info = genQuicVersion(opts.version ?? 1);
  if (!info) throw new RangeError(`unsupported QUIC version 0x${(opts.version ?? 1).toString(16)}`);
  const scid = opts.scid ?? new Uint8Array(0);
  const token = opts.token ?? new Uint8Array(0);
  const pnLength = opts.packetNumberLength ?? 4;
  const size = opts.datagramSize ?? 1200;
  const pn0 = opts.packetNumberStart ?? 0;
  const keys = initialKeys(info, opts.keyDcid ?? opts.dcid);
  const hello = opts.clientHello;
  if (opts.dcid.length > 20 || scid.length > 20) throw new RangeError('connection ID longer than 20 bytes');

  // header: first byte, version, dcid len+dcid, scid len+scid, token length varint + token, Length (2), PN
  const headerLen =
    1 + 4 + 1 + opts.dcid.length + 1 + scid.length + varintSize(token.length) + token.length + 2 + pnLength;
  const room = size - headerLen - 16; // plaintext bytes per packet
  const frameOverhead = 1 + 4 + 2; // type, offset (≤4 bytes below 2^30), length (2 bytes for room < 16384)
  if (room - frameOverhead < 16 || room > 16383 - pnLength - 16)
    throw new RangeError(`datagram size ${size} unusable`);
  const fb = opts.cryptoFrameBytes;
  const perPacketMax =
    fb !== undefined && fb > 0 ? Math.floor(room / (fb + frameOverhead)) * fb : room - frameOverhead;
  let count = Math.max(1, Math.floor(opts.packets ?? 1));
  count = Math.max(count, Math.ceil(hello.length / perPacketMax));
  const chunk = Math.ceil(hello.length / count);

  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const off = Math.min(i * chunk, hello.length);
    const data = hello.subarray(off, Math.min(off + chunk, hello.length));
    const payload = new Uint8Array(room); // zero = PADDING
    let p = 0;
    const step = fb !== undefined && fb > 0 ? fb : data.length;
    for (let s = Math.floor(Math.max(0, data.length - 1) / step) * step; s >= 0; s -= step) {
      const piece = data.subarray(s, Math.min(s + step, data.length));
      payload[p++] = info.cryptoFrame;
      const o = varint(off + s, varintSize(off + s));
      payload.set(o, p);
      p += o.length;
      const l = varint(piece.length, varintSize(piece.length));
      payload.set(l, p);
      p += l.length;
      payload.set(piece, p);
      p += piece.length;
    }
    const sealed = protectInitial({
      v: info,
      keys,
      dcid: opts.dcid,
      scid,
      token,
      pn: pn0 + i,
      pnLength,
      plaintext: payload,
    });
    out.push(new Uint8Array(sealed.buffer, sealed.byteOffset, sealed.length));
  }
  if (opts.reverse) out.reverse();
  return out;
}
