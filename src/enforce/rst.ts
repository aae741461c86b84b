/**
 * @module enforce/rst
 * TCP reset injection toward the end the kernel's REJECT does not reach. REJECT --reject-with
 * tcp-reset answers the packet's sender (the client, for a ClientHello); the server, whose half of
 * the connection is established and waiting, gets a RST crafted here with the client's address and
 * the sequence number the server expects next (RFC 5961: an exact match resets, anything else only
 * draws a challenge ACK). Also crafts any IPv4 TCP segment ({@link buildTcp4}: the HTTP redirect
 * answered in the server's name). Sent through a raw IPv4 socket (IP_HDRINCL) from the box. IPv4 only.
 */
import koffi from 'koffi';

interface RawLib {
  socket: (d: number, t: number, p: number) => number;
  sendto: (fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array, alen: number) => number;
  close: (fd: number) => number;
}

let raw: RawLib | null = null;
function rawLib(): RawLib {
  if (raw) return raw;
  const libc = koffi.load('libc.so.6');
  raw = {
    socket: libc.func('int socket(int, int, int)'),
    sendto: libc.func('long sendto(int, const uint8_t *, size_t, int, const uint8_t *, uint32_t)'),
    close: libc.func('int close(int)'),
  } as unknown as RawLib;
  return raw;
}

function csumAdd(sum: number, b: Uint8Array, off: number, len: number): number {
  for (let i = 0; i + 1 < len; i += 2) sum += (b[off + i] << 8) | b[off + i + 1];
  if (len & 1) sum += b[off + len - 1] << 8;
  return sum;
}
function csumFold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** TCP flag bits of crafted segments. */
export const TCP_FIN = 0x01;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

/**
 * Fill the TCP checksum of the segment at `tcp` (`len` bytes) over the pseudo-header: the source and
 * destination addresses at `addr` (8 bytes for IPv4, 32 for IPv6), protocol 6 and the segment length.
 */
function tcpChecksum(
  b: Uint8Array,
  dv: DataView,
  addr: number,
  addrLen: number,
  tcp: number,
  len: number,
): void {
  dv.setUint16(tcp + 16, 0);
  let s = csumAdd(0, b, addr, addrLen);
  s += 6 + len;
  s = csumAdd(s, b, tcp, len);
  dv.setUint16(tcp + 16, csumFold(s));
}

/** A 20-byte TCP header at `o`: ports, seq, ack, `flags`, window 0 for a reset and 502 otherwise. */
function writeTcp(b: Uint8Array, dv: DataView, o: number, sport: number, dport: number, seq: number, ack: number, flags: number): void {
  dv.setUint16(o, sport);
  dv.setUint16(o + 2, dport);
  dv.setUint32(o + 4, seq >>> 0);
  dv.setUint32(o + 8, ack >>> 0);
  b[o + 12] = 5 << 4;
  b[o + 13] = flags;
  dv.setUint16(o + 14, flags & TCP_RST ? 0 : 502);
} // prettier-ignore

/** The TCP header at `o` cut to a bare RST|ACK: no options, window 0, urgent 0 (ports, seq, ack kept). */
function cutToRst(b: Uint8Array, dv: DataView, o: number): void {
  b[o + 12] = 5 << 4;
  b[o + 13] = TCP_RST | TCP_ACK;
  dv.setUint16(o + 14, 0); // window
  dv.setUint16(o + 18, 0); // urgent
}

/**
 * Build an IPv4+TCP segment (pure; exported for tests): 20-byte IP header (DF, TTL 64), 20-byte TCP
 * header with `flags`, window 0 for a reset and 502 otherwise, `payload` after it; checksums filled.
 */
export function buildTcp4(
  src: Uint8Array,
  dst: Uint8Array,
  sport: number,
  dport: number,
  seq: number,
  ack: number,
  flags: number,
  payload?: Uint8Array,
): Uint8Array {
  const pl = payload?.length ?? 0;
  const b = new Uint8Array(40 + pl);
  const dv = new DataView(b.buffer);
  b[0] = 0x45;
  dv.setUint16(2, 40 + pl);
  dv.setUint16(6, 0x4000); // DF
  b[8] = 64;
  b[9] = 6;
  b.set(src, 12);
  b.set(dst, 16);
  dv.setUint16(10, csumFold(csumAdd(0, b, 0, 20)));
  writeTcp(b, dv, 20, sport, dport, seq, ack, flags);
  if (payload) b.set(payload, 40);
  tcpChecksum(b, dv, 12, 8, 20, 20 + pl);
  return b;
}

/**
 * Rewrite an IPv4 TCP packet in place into a RST|ACK with the same addresses, ports, seq and ack
 * (options and payload cut, window 0, checksums fixed). Returns the new length, or 0 when the packet
 * is not IPv4 TCP (or is truncated): the caller drops it then.
 */
export function rewriteToRst4(b: Uint8Array): number {
  if (b.length < 20 || b[0] >> 4 !== 4 || b[9] !== 6) return 0;
  const ihl = (b[0] & 15) * 4;
  if (ihl < 20 || b.length < ihl + 20) return 0;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = ihl + 20;
  dv.setUint16(2, n);
  dv.setUint16(10, 0);
  dv.setUint16(10, csumFold(csumAdd(0, b, 0, ihl)));
  cutToRst(b, dv, ihl);
  tcpChecksum(b, dv, 12, 8, ihl, 20);
  return n;
}

/**
 * The same for IPv6 (RFC 8200 fixed header, TCP directly after it: next header 6; a packet with
 * extension headers returns 0 and is dropped instead). Payload length set to 20, checksum over the
 * RFC 8200 §8.1 pseudo-header.
 */
export function rewriteToRst6(b: Uint8Array): number {
  if (b.length < 60 || b[0] >> 4 !== 6 || b[6] !== 6) return 0;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  dv.setUint16(4, 20);
  cutToRst(b, dv, 40);
  tcpChecksum(b, dv, 8, 32, 40, 20);
  return 60;
}

/** {@link rewriteToRst4} or {@link rewriteToRst6}, by the packet's IP version. */
export function rewriteToRst(b: Uint8Array): number {
  return b.length > 0 && b[0] >> 4 === 6 ? rewriteToRst6(b) : rewriteToRst4(b);
}

/**
 * Build an IPv6+TCP segment (pure; exported for tests): the RFC 8200 fixed header (hop limit 64, next
 * header TCP), the same TCP header as {@link buildTcp4}; checksum over the §8.1 pseudo-header.
 * Addresses as 16-byte arrays.
 */
export function buildTcp6(
  src: Uint8Array,
  dst: Uint8Array,
  sport: number,
  dport: number,
  seq: number,
  ack: number,
  flags: number,
  payload?: Uint8Array,
): Uint8Array {
  const pl = payload?.length ?? 0;
  const b = new Uint8Array(60 + pl);
  const dv = new DataView(b.buffer);
  b[0] = 0x60;
  dv.setUint16(4, 20 + pl);
  b[6] = 6;
  b[7] = 64;
  b.set(src, 8);
  b.set(dst, 24);
  writeTcp(b, dv, 40, sport, dport, seq, ack, flags);
  if (payload) b.set(payload, 60);
  tcpChecksum(b, dv, 8, 32, 40, 20 + pl);
  return b;
}

/** Build a 40-byte IPv4+TCP RST|ACK (pure; exported for tests). Addresses as 4-byte arrays. */
export function buildRst4(
  src: Uint8Array,
  dst: Uint8Array,
  sport: number,
  dport: number,
  seq: number,
  ack: number,
): Uint8Array {
  return buildTcp4(src, dst, sport, dport, seq, ack, TCP_RST | TCP_ACK);
}

/** Sends crafted resets; opened lazily, one raw socket per thread. */
export class RstInjector {
  private fd = -1;
  private fd6 = -1;
  private readonly sa = new Uint8Array(28);
  sent = 0;
  failed = 0;

  /** Send a RST from src:sport to dst:dport (IPv4 addresses as 4 bytes, IPv6 as 16). */
  send(src: Uint8Array, dst: Uint8Array, sport: number, dport: number, seq: number, ack: number): boolean {
    const f = TCP_RST | TCP_ACK;
    return this.sendPacket(
      dst.length === 16
        ? buildTcp6(src, dst, sport, dport, seq, ack, f)
        : buildRst4(src, dst, sport, dport, seq, ack),
      dst,
    );
  }

  /**
   * Send a crafted IP packet (from {@link buildTcp4} or {@link buildTcp6}) to `dst` (4 or 16 bytes).
   * IPv6: an AF_INET6 raw socket of protocol IPPROTO_RAW, on which Linux takes the packet's own header.
   */
  sendPacket(pkt: Uint8Array, dst: Uint8Array): boolean {
    const L = rawLib();
    const v6 = dst.length === 16;
    let fd = v6 ? this.fd6 : this.fd;
    if (fd < 0) {
      fd = L.socket(v6 ? 10 : 2, 3, 255); // AF_INET6 | AF_INET, SOCK_RAW, IPPROTO_RAW
      if (fd < 0) {
        this.failed++;
        return false;
      }
      if (v6) this.fd6 = fd;
      else this.fd = fd;
    }
    this.sa.fill(0);
    if (v6) {
      this.sa[0] = 10; // sin6_family AF_INET6 (little-endian u16); port, flowinfo 0
      this.sa.set(dst, 8); // sin6_addr; scope id 0
    } else {
      this.sa[0] = 2; // sin_family AF_INET (little-endian u16)
      this.sa.set(dst, 4);
    }
    const n = L.sendto(fd, pkt, pkt.length, 0, this.sa, v6 ? 28 : 16);
    if (n === pkt.length) this.sent++;
    else this.failed++;
    return n === pkt.length;
  }

  close(): void {
    if (this.fd >= 0) rawLib().close(this.fd);
    if (this.fd6 >= 0) rawLib().close(this.fd6);
    this.fd = -1;
    this.fd6 = -1;
  }
}
