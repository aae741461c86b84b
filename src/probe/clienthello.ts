/**
 * @module probe/clienthello
 * The probe's own TLS 1.3 ClientHello builder: the probe needs byte-exact control over each trigger
 * (SNI spelling, no SNI, padding, a session token in `random`/`legacy_session_id`, TLS or QUIC
 * flavour), so it builds the handshake message itself. The shape follows a typical browser hello
 * (TLS 1.3 + 1.2 suites, x25519 key share, ALPN); key material is random: the probe-server never
 * terminates TLS, it only needs a hello that middleboxes parse as real.
 *
 * The 16-byte session token is written four times (random[0..16], random[16..32],
 * session_id[0..16], session_id[16..32]) so that at least one copy stays contiguous in the byte
 * stream however the hello is cut into records or segments (cuts ≥ 16 bytes apart).
 */
import { randomBytes } from 'node:crypto';

export interface HelloOptions {
  /** server_name; null = no SNI extension at all. */
  sni: string | null;
  /** 16-byte token identifying the probe session (see module doc). */
  token: Uint8Array;
  /** ALPN protocols (default h2, http/1.1; QUIC: h3). */
  alpn?: string[];
  /** Pad (padding extension, RFC 7685) so the handshake message is at least this many bytes. */
  padTo?: number;
  /** QUIC flavour: TLS 1.3 only, quic_transport_parameters, ALPN h3. */
  quic?: { scid: Uint8Array };
}

const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
const u24 = (n: number) => [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];

function ext(type: number, body: number[] | Uint8Array): number[] {
  return [...u16(type), ...u16(body.length), ...body];
}

function quicVarint(n: number): number[] {
  if (n < 64) return [n];
  if (n < 16384) return [0x40 | (n >> 8), n & 0xff];
  return [0x80 | ((n >>> 24) & 0x3f), (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

function transportParams(scid: Uint8Array): number[] {
  const tp = (id: number, v: number[]) => [...quicVarint(id), ...quicVarint(v.length), ...v];
  return [
    ...tp(0x01, quicVarint(30000)), // max_idle_timeout
    ...tp(0x04, quicVarint(1048576)), // initial_max_data
    ...tp(0x05, quicVarint(262144)),
    ...tp(0x06, quicVarint(262144)),
    ...tp(0x07, quicVarint(262144)),
    ...tp(0x08, quicVarint(100)),
    ...tp(0x09, quicVarint(100)),
    ...tp(0x0f, [...scid]), // initial_source_connection_id
  ];
}

/** Build the ClientHello handshake message (type 1 + 3-byte length + body). */
export function buildHello(o: HelloOptions): Uint8Array {
  if (o.token.length !== 16) throw new RangeError('token must be 16 bytes');
  const tok = [...o.token];
  const quic = o.quic !== undefined;
  const suites = quic
    ? [0x1301, 0x1302, 0x1303]
    : [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0x009c, 0x002f];
  const alpn = o.alpn ?? (quic ? ['h3'] : ['h2', 'http/1.1']);
  const exts: number[] = [];
  if (o.sni !== null) {
    const name = [...Buffer.from(o.sni, 'latin1')];
    exts.push(...ext(0x0000, [...u16(name.length + 3), 0, ...u16(name.length), ...name]));
  }
  if (!quic) {
    exts.push(...ext(0x0017, [])); // extended_master_secret
    exts.push(...ext(0xff01, [0])); // renegotiation_info
  }
  exts.push(...ext(0x000a, [...u16(4), ...u16(0x001d), ...u16(0x0017)]));
  if (!quic) exts.push(...ext(0x000b, [1, 0]));
  if (!quic) exts.push(...ext(0x0023, []));
  const alpnList = alpn.flatMap((p) => [p.length, ...Buffer.from(p, 'latin1')]);
  exts.push(...ext(0x0010, [...u16(alpnList.length), ...alpnList]));
  const sigs = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601];
  exts.push(...ext(0x000d, [...u16(sigs.length * 2), ...sigs.flatMap(u16)]));
  const share = [...randomBytes(32)];
  exts.push(...ext(0x0033, [...u16(36), ...u16(0x001d), ...u16(32), ...share]));
  exts.push(...ext(0x002d, [1, 1]));
  exts.push(...ext(0x002b, quic ? [2, 0x03, 0x04] : [4, 0x03, 0x04, 0x03, 0x03]));
  if (quic) exts.push(...ext(0x0039, transportParams(o.quic!.scid)));
  const sessionId = quic ? [] : [...tok, ...tok];
  const head = [
    0x03,
    0x03,
    ...tok,
    ...tok,
    sessionId.length,
    ...sessionId,
    ...u16(suites.length * 2),
    ...suites.flatMap(u16),
    1,
    0,
  ];
  // padding: body = head + 2 (ext len) + exts; message = 4 + body
  if (o.padTo !== undefined) {
    const without = 4 + head.length + 2 + exts.length;
    if (without < o.padTo) {
      const padLen = Math.max(0, o.padTo - without - 4);
      exts.push(...ext(0x0015, new Uint8Array(padLen)));
    }
  }
  const body = [...head, ...u16(exts.length), ...exts];
  return Uint8Array.from([1, ...u24(body.length), ...body]);
}

/** Wrap handshake bytes in TLS records (content type 22), each carrying at most `maxFragment` bytes. */
export function toRecords(hs: Uint8Array, maxFragment = 16384, recordVersion = 0x0301): Uint8Array {
  const parts: number[] = [];
  for (let off = 0; off < hs.length; off += maxFragment) {
    const frag = hs.subarray(off, Math.min(hs.length, off + maxFragment));
    parts.push(0x16, ...u16(recordVersion), ...u16(frag.length), ...frag);
  }
  return Uint8Array.from(parts);
}

/** Wrap handshake bytes in two records, cut at handshake offset `at`. */
export function toTwoRecords(hs: Uint8Array, at: number): Uint8Array {
  const a = hs.subarray(0, at);
  const b = hs.subarray(at);
  return Uint8Array.from([0x16, 3, 1, ...u16(a.length), ...a, 0x16, 3, 1, ...u16(b.length), ...b]);
}

/** Offset of the server_name host bytes inside the handshake message, or -1. */
export function sniOffset(hs: Uint8Array, sni: string): number {
  return Buffer.from(hs).indexOf(Buffer.from(sni, 'latin1'));
}
