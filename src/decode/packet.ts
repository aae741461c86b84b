/**
 * @module decode/packet
 * The decoded view of one packet, a single object reused for every packet (no per-packet allocation).
 * Addresses are kept as 32-bit words: IPv4 in word 3 (words 0..2 zero), IPv6 in words 0..3.
 */

export const enum Decoded {
  /** A TCP or UDP packet over IP: the fields below are valid. */
  Ok = 1,
  /** Not something the engine tracks (ARP, ICMP, other L4, a fragment still incomplete...). */
  Skip = 0,
  /** Malformed: `anomaly` names what. */
  Bad = -1,
}

export class Packet {
  ipVer = 0;
  proto = 0;
  readonly src = new Uint32Array(4);
  readonly dst = new Uint32Array(4);
  sport = 0;
  dport = 0;
  tcpFlags = 0;
  seq = 0;
  ack = 0;
  ttl = 0;
  /** Buffer holding the payload (the capture view, or a reassembly buffer for fragments). */
  buf: Uint8Array = EMPTY;
  payOff = 0;
  payLen = 0;
  /** Offset of the innermost IP header in `buf`, and its total length. */
  ipOff = 0;
  ipLen = 0;
  /** Tunnel depth of the innermost IP header (0 = not tunnelled). */
  tunnel = 0;
  /** Reassembled from IP fragments. */
  reassembled = false;
  /** A static anomaly code when decoding found something wrong (the packet may still be Ok). */
  anomaly: string | null = null;
}

export const EMPTY = new Uint8Array(0);

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

/** LINKTYPE_* values (tcpdump.org link-layer header types). */
export const LINKTYPE = {
  NULL: 0,
  ETHERNET: 1,
  PPP: 9,
  RAW_OPENBSD: 12,
  RAW_BSD: 14,
  PPP_HDLC: 50,
  PPP_ETHER: 51,
  RAW: 101,
  IEEE802_11: 105,
  RADIOTAP: 127,
  C_HDLC: 104,
  LOOP: 108,
  LINUX_SLL: 113,
  PPI: 192,
  ERF: 197,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;
