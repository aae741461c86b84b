/**
 * @module decode/decoder
 * Link layer → IP → TCP/UDP decoding into a reused {@link Packet}. Handles Ethernet (802.1Q/QinQ, MPLS,
 * PPPoE, LLC/SNAP), Linux SLL/SLL2, raw IPv4/IPv6, BSD null/loopback, PPP, Cisco HDLC, ERF, PPI, 802.11
 * (plain and radiotap); IPv6
 * extension headers; tunnels (IP-in-IP, 6in4, GRE incl. transparent Ethernet and ERSPAN, GTP-U, VXLAN,
 * Teredo, CAPWAP data); IPv4/IPv6 fragment reassembly (bounded). The flow is always the innermost TCP/UDP 5-tuple.
 * Malformed input never throws: it returns {@link Decoded.Bad} with a static anomaly code.
 */
import { Decoded, LINKTYPE, Packet } from './packet.js';
import { FragmentReassembler } from './ipfrag.js';

const MAX_DEPTH = 6;

export class Decoder {
  /** Fragment reassembly; its cap hits (`ipfrag_evicted`, `ipfrag_timeout`, `ipfrag_too_large`) are counted in `anomalies`. */
  readonly frags = new FragmentReassembler(256, 30_000, (code) => this.count(code));
  /** Counts of anomalies by code (static strings). */
  readonly anomalies = new Map<string, number>();
  /** Exclusive end of the bytes that belong to the current frame (or inner tunnel payload). */
  private lim = 0;

  /** Decode one captured frame. `tsMs` only drives fragment expiry. */
  decode(data: Uint8Array, linktype: number, tsMs: number, p: Packet, off = 0, end = data.length): Decoded {
    p.anomaly = null;
    p.tunnel = 0;
    p.reassembled = false;
    this.lim = end;
    const r = this.link(data, off, linktype, tsMs, p);
    if (r === Decoded.Bad && p.anomaly) this.count(p.anomaly);
    return r;
  }

  private count(code: string): void {
    this.anomalies.set(code, (this.anomalies.get(code) ?? 0) + 1);
  }

  private bad(p: Packet, code: string): Decoded {
    p.anomaly = code;
    return Decoded.Bad;
  }

  private link(b: Uint8Array, o0: number, lt: number, ts: number, p: Packet): Decoded {
    const n = this.lim - o0;
    switch (lt) {
      case LINKTYPE.ETHERNET:
        return this.ether(b, o0, ts, p, 0);
      case LINKTYPE.RAW:
      case LINKTYPE.RAW_OPENBSD:
      case LINKTYPE.RAW_BSD:
      case LINKTYPE.IPV4:
      case LINKTYPE.IPV6:
        return this.ipGuess(b, o0, ts, p, 0);
      case LINKTYPE.NULL:
      case LINKTYPE.LOOP: {
        if (n < 4) return this.bad(p, 'link_truncated');
        // address family in host (NULL) or network (LOOP) byte order: accept either
        const af = b[o0] !== 0 ? b[o0] | (b[o0 + 1] << 8) : (b[o0 + 2] << 8) | b[o0 + 3];
        if (af === 2) return this.ipv4(b, o0 + 4, ts, p, 0);
        if (af === 10 || af === 24 || af === 28 || af === 30 || af === 23)
          return this.ipv6(b, o0 + 4, ts, p, 0);
        return Decoded.Skip;
      }
      case LINKTYPE.LINUX_SLL:
        if (n < 16) return this.bad(p, 'link_truncated');
        return this.ethertype(b, o0 + 16, (b[o0 + 14] << 8) | b[o0 + 15], ts, p, 0);
      case LINKTYPE.LINUX_SLL2:
        if (n < 20) return this.bad(p, 'link_truncated');
        return this.ethertype(b, o0 + 20, (b[o0] << 8) | b[o0 + 1], ts, p, 0);
      case LINKTYPE.PPP:
      case LINKTYPE.PPP_HDLC:
        return this.ppp(b, o0, ts, p, 0);
      case LINKTYPE.C_HDLC:
        if (n < 4) return this.bad(p, 'link_truncated');
        return this.ethertype(b, o0 + 4, (b[o0 + 2] << 8) | b[o0 + 3], ts, p, 0);
      case LINKTYPE.PPP_ETHER:
        if (n < 8) return this.bad(p, 'link_truncated');
        return this.ppp(b, o0 + 6, ts, p, 0);
      case LINKTYPE.ERF: {
        if (n < 16) return this.bad(p, 'link_truncated');
        let off = o0 + 16;
        let type = b[o0 + 8];
        while (type & 0x80) {
          if (off + 8 > this.lim) return this.bad(p, 'link_truncated');
          type = b[off];
          off += 8;
        }
        type &= 0x7f;
        if (type === 2 || type === 16) return this.ether(b, off + 2, ts, p, 0); // ETH, COLOR_ETH
        if (type === 1) return this.ppp(b, off, ts, p, 0); // HDLC_POS
        if (type === 22) return this.ipGuess(b, off, ts, p, 0); // IPV4
        return Decoded.Skip;
      }
      case LINKTYPE.IEEE802_11:
        return this.wifi(b, o0, ts, p, 0);
      case LINKTYPE.RADIOTAP: {
        if (n < 4) return this.bad(p, 'link_truncated');
        const hl = b[o0 + 2] | (b[o0 + 3] << 8);
        if (hl < 8 || hl > n) return this.bad(p, 'link_malformed');
        return this.wifi(b, o0 + hl, ts, p, 0);
      }
      case LINKTYPE.PPI: {
        if (n < 8) return this.bad(p, 'link_truncated');
        const hl = b[o0 + 2] | (b[o0 + 3] << 8);
        const dlt = b[o0 + 4] | (b[o0 + 5] << 8) | (b[o0 + 6] << 16) | (b[o0 + 7] << 24);
        if (hl < 8 || hl > n || dlt === LINKTYPE.PPI) return this.bad(p, 'link_malformed');
        return this.link(b, o0 + hl, dlt, ts, p);
      }
      default:
        return Decoded.Skip;
    }
  }

  private ether(b: Uint8Array, off: number, ts: number, p: Packet, depth: number): Decoded {
    if (off + 14 > this.lim) return this.bad(p, 'eth_truncated');
    const et = (b[off + 12] << 8) | b[off + 13];
    if (et < 0x0600) {
      // 802.3 length: LLC/SNAP
      const o = off + 14;
      if (o + 8 <= this.lim && b[o] === 0xaa && b[o + 1] === 0xaa && b[o + 2] === 0x03)
        return this.ethertype(b, o + 8, (b[o + 6] << 8) | b[o + 7], ts, p, depth);
      return Decoded.Skip;
    }
    return this.ethertype(b, off + 14, et, ts, p, depth);
  }

  private ethertype(b: Uint8Array, off: number, et: number, ts: number, p: Packet, depth: number): Decoded {
    for (let guard = 0; guard < 8; guard++) {
      switch (et) {
        case 0x0800:
          return this.ipv4(b, off, ts, p, depth);
        case 0x86dd:
          return this.ipv6(b, off, ts, p, depth);
        case 0x8100:
        case 0x88a8:
        case 0x9100:
        case 0x9200:
          if (off + 4 > this.lim) return this.bad(p, 'vlan_truncated');
          et = (b[off + 2] << 8) | b[off + 3];
          off += 4;
          continue;
        case 0x8847:
        case 0x8848: {
          // MPLS label stack, then guess IP version
          for (let i = 0; i < 16; i++) {
            if (off + 4 > this.lim) return this.bad(p, 'mpls_truncated');
            const bos = b[off + 2] & 1;
            off += 4;
            if (bos) return this.ipGuess(b, off, ts, p, depth);
          }
          return this.bad(p, 'mpls_malformed');
        }
        case 0x8864:
          // PPPoE session: 6-byte header then a PPP frame, whose protocol field some stacks send
          // after an address/control field (ff 03) or compressed to one byte (RFC 1661 ACFC/PFC)
          if (off + 8 > this.lim) return this.bad(p, 'pppoe_truncated');
          return this.ppp(b, off + 6, ts, p, depth);
        case 0x6558:
          return depth < MAX_DEPTH ? this.ether(b, off, ts, p, depth + 1) : this.bad(p, 'tunnel_too_deep');
        default:
          return Decoded.Skip;
      }
    }
    return this.bad(p, 'vlan_too_deep');
  }

  /** IEEE 802.11 data frame → LLC/SNAP → ethertype. Management/control frames are skipped. */
  private wifi(
    b: Uint8Array,
    off: number,
    ts: number,
    p: Packet,
    depth: number,
    maybeSwapped = false,
  ): Decoded {
    if (off + 24 > this.lim) return this.bad(p, 'wifi_truncated');
    let fc0 = b[off];
    let fc1 = b[off + 1];
    if (maybeSwapped && ((fc0 >> 2) & 3) !== 2 && ((fc1 >> 2) & 3) === 2) {
      // some CAPWAP access points send the frame-control field byte-swapped
      fc0 = b[off + 1];
      fc1 = b[off];
    }
    if (((fc0 >> 2) & 3) !== 2) return Decoded.Skip;
    if (fc1 & 0x40) return Decoded.Skip; // protected: encrypted payload
    const subtype = fc0 >> 4;
    let hl = 24;
    if ((fc1 & 3) === 3) hl += 6;
    if (subtype & 8) {
      hl += 2;
      if (fc1 & 0x80) hl += 4;
    }
    if (subtype & 4) return Decoded.Skip; // null data
    const o = off + hl;
    if (o + 8 > this.lim) return this.bad(p, 'wifi_truncated');
    if (b[o] !== 0xaa || b[o + 1] !== 0xaa || b[o + 2] !== 0x03) return Decoded.Skip;
    return this.ethertype(b, o + 8, (b[o + 6] << 8) | b[o + 7], ts, p, depth);
  }

  private ppp(b: Uint8Array, off: number, ts: number, p: Packet, depth: number): Decoded {
    if (off + 2 > this.lim) return this.bad(p, 'ppp_truncated');
    if (b[off] === 0xff && b[off + 1] === 0x03) off += 2;
    if (off + 1 > this.lim) return this.bad(p, 'ppp_truncated');
    if (b[off] & 1) return this.pppProto(b, off + 1, b[off], ts, p, depth); // compressed protocol field
    if (off + 2 > this.lim) return this.bad(p, 'ppp_truncated');
    return this.pppProto(b, off + 2, (b[off] << 8) | b[off + 1], ts, p, depth);
  }

  private pppProto(b: Uint8Array, off: number, proto: number, ts: number, p: Packet, depth: number): Decoded {
    if (proto === 0x0021) return this.ipv4(b, off, ts, p, depth);
    if (proto === 0x0057) return this.ipv6(b, off, ts, p, depth);
    return Decoded.Skip;
  }

  private ipGuess(b: Uint8Array, off: number, ts: number, p: Packet, depth: number): Decoded {
    if (off >= this.lim) return this.bad(p, 'ip_truncated');
    const v = b[off] >> 4;
    if (v === 4) return this.ipv4(b, off, ts, p, depth);
    if (v === 6) return this.ipv6(b, off, ts, p, depth);
    return Decoded.Skip;
  }

  private ipv4(b: Uint8Array, off: number, ts: number, p: Packet, depth: number): Decoded {
    if (off + 20 > this.lim) return this.bad(p, 'ipv4_truncated');
    if (b[off] >> 4 !== 4) return this.bad(p, 'ipv4_bad_version');
    const ihl = (b[off] & 0x0f) * 4;
    if (ihl < 20) return this.bad(p, 'ipv4_bad_header_length');
    let total = (b[off + 2] << 8) | b[off + 3];
    if (total === 0 && this.lim - off > 65535) total = this.lim - off; // TSO capture
    if (total < ihl) return this.bad(p, 'ipv4_bad_total_length');
    let end = off + total;
    if (end > this.lim) {
      // snaplen-truncated capture: keep what we have, flag it
      end = this.lim;
      p.anomaly = 'ipv4_truncated_capture';
      if (off + ihl > end) return this.bad(p, 'ipv4_truncated');
    }
    const proto = b[off + 9];
    p.ipVer = 4;
    p.ttl = b[off + 8];
    const src = p.src;
    const dst = p.dst;
    src[0] = src[1] = src[2] = 0;
    dst[0] = dst[1] = dst[2] = 0;
    src[3] = ((b[off + 12] << 24) | (b[off + 13] << 16) | (b[off + 14] << 8) | b[off + 15]) >>> 0;
    dst[3] = ((b[off + 16] << 24) | (b[off + 17] << 16) | (b[off + 18] << 8) | b[off + 19]) >>> 0;
    p.ipOff = off;
    p.ipLen = end - off;
    const fragField = (b[off + 6] << 8) | b[off + 7];
    const mf = (fragField & 0x2000) !== 0;
    const fragOff = (fragField & 0x1fff) * 8;
    if (mf || fragOff) {
      const id = (b[off + 4] << 8) | b[off + 5];
      const whole = this.frags.add(4, src, dst, id, proto, fragOff, mf, b.subarray(off + ihl, end), ts);
      if (!whole) return Decoded.Skip;
      p.reassembled = true;
      this.lim = whole.length;
      return this.l4(whole, 0, whole.length, proto, ts, p, depth);
    }
    return this.l4(b, off + ihl, end, proto, ts, p, depth);
  }

  private ipv6(b: Uint8Array, off: number, ts: number, p: Packet, depth: number): Decoded {
    if (off + 40 > this.lim) return this.bad(p, 'ipv6_truncated');
    if (b[off] >> 4 !== 6) return this.bad(p, 'ipv6_bad_version');
    const plen = (b[off + 4] << 8) | b[off + 5];
    let end = off + 40 + plen;
    if (plen === 0) end = this.lim; // jumbogram or TSO: use what was captured
    if (end > this.lim) {
      end = this.lim;
      p.anomaly = 'ipv6_truncated_capture';
    }
    p.ipVer = 6;
    p.ttl = b[off + 7];
    const src = p.src;
    const dst = p.dst;
    for (let i = 0; i < 4; i++) {
      const s = off + 8 + i * 4;
      src[i] = ((b[s] << 24) | (b[s + 1] << 16) | (b[s + 2] << 8) | b[s + 3]) >>> 0;
      const d = s + 16;
      dst[i] = ((b[d] << 24) | (b[d + 1] << 16) | (b[d + 2] << 8) | b[d + 3]) >>> 0;
    }
    p.ipOff = off;
    p.ipLen = end - off;
    let nh = b[off + 6];
    let o = off + 40;
    for (let i = 0; i < 16; i++) {
      if (nh === 0 || nh === 43 || nh === 60 || nh === 135 || nh === 139 || nh === 140) {
        if (o + 8 > end) return this.bad(p, 'ipv6_ext_truncated');
        const next = b[o];
        o += (b[o + 1] + 1) * 8;
        nh = next;
        continue;
      }
      if (nh === 51) {
        // AH: length in 4-byte units minus 2
        if (o + 8 > end) return this.bad(p, 'ipv6_ext_truncated');
        const next = b[o];
        o += (b[o + 1] + 2) * 4;
        nh = next;
        continue;
      }
      if (nh === 44) {
        if (o + 8 > end) return this.bad(p, 'ipv6_ext_truncated');
        const next = b[o];
        const fo = ((b[o + 2] << 8) | b[o + 3]) & 0xfff8;
        const mf = (b[o + 3] & 1) !== 0;
        const id = ((b[o + 4] << 24) | (b[o + 5] << 16) | (b[o + 6] << 8) | b[o + 7]) >>> 0;
        o += 8;
        if (!mf && fo === 0) {
          nh = next; // atomic fragment
          continue;
        }
        const whole = this.frags.add(6, src, dst, id, 0, fo, mf, b.subarray(o, end), ts);
        if (!whole) return Decoded.Skip;
        p.reassembled = true;
        this.lim = whole.length;
        // the reassembled payload may start with more extension headers (e.g. destination options)
        b = whole;
        o = 0;
        end = whole.length;
        nh = next;
        continue;
      }
      break;
    }
    if (o > end) return this.bad(p, 'ipv6_ext_truncated');
    return this.l4(b, o, end, nh, ts, p, depth);
  }

  private l4(
    b: Uint8Array,
    off: number,
    end: number,
    proto: number,
    ts: number,
    p: Packet,
    depth: number,
  ): Decoded {
    p.proto = proto;
    p.buf = b;
    if (proto === 6) {
      if (off + 20 > end) return this.bad(p, 'tcp_truncated');
      const doff = (b[off + 12] >> 4) * 4;
      if (doff < 20 || off + doff > end) return this.bad(p, 'tcp_bad_header_length');
      p.sport = (b[off] << 8) | b[off + 1];
      p.dport = (b[off + 2] << 8) | b[off + 3];
      p.seq = ((b[off + 4] << 24) | (b[off + 5] << 16) | (b[off + 6] << 8) | b[off + 7]) >>> 0;
      p.ack = ((b[off + 8] << 24) | (b[off + 9] << 16) | (b[off + 10] << 8) | b[off + 11]) >>> 0;
      p.tcpFlags = b[off + 13];
      p.payOff = off + doff;
      p.payLen = end - off - doff;
      return Decoded.Ok;
    }
    if (proto === 17) {
      if (off + 8 > end) return this.bad(p, 'udp_truncated');
      const sport = (b[off] << 8) | b[off + 1];
      const dport = (b[off + 2] << 8) | b[off + 3];
      let ulen = (b[off + 4] << 8) | b[off + 5];
      if (ulen < 8 || off + ulen > end) {
        if (ulen !== 0) p.anomaly = 'udp_bad_length';
        ulen = end - off;
      }
      const po = off + 8;
      const pe = off + ulen;
      if (depth < MAX_DEPTH) {
        // UDP tunnels: GTP-U, VXLAN, Teredo
        if (
          (dport === 2152 || sport === 2152) &&
          pe - po >= 8 &&
          (b[po] & 0xe0) === 0x20 &&
          b[po + 1] === 0xff
        ) {
          let o = po + 8;
          if (b[po] & 0x07) {
            if (o + 4 > pe) return this.bad(p, 'gtp_truncated');
            let ext = b[po] & 0x04 ? b[o + 3] : 0;
            o += 4;
            for (let i = 0; ext !== 0 && i < 8; i++) {
              if (o >= pe) return this.bad(p, 'gtp_truncated');
              const l = b[o] * 4;
              if (l === 0 || o + l > pe) return this.bad(p, 'gtp_malformed');
              ext = b[o + l - 1];
              o += l;
            }
          }
          p.tunnel = depth + 1;
          this.lim = pe;
          return this.ipGuess(b, o, ts, p, depth + 1);
        }
        if ((dport === 5247 || sport === 5247) && pe - po >= 8 && b[po] >> 4 === 0 && (b[po] & 0x0f) === 0) {
          // CAPWAP data (RFC 5415): 802.11 (T=1, WBID=1) or 802.3 payload after HLEN words
          const v = (b[po + 1] << 16) | (b[po + 2] << 8) | b[po + 3];
          const hlen = (v >> 19) * 4;
          const t = (v >> 8) & 1;
          const wbid = (v >> 9) & 31;
          if (hlen >= 8 && po + hlen < pe) {
            p.tunnel = depth + 1;
            this.lim = pe;
            if (t === 1 && wbid === 1) return this.wifi(b, po + hlen, ts, p, depth + 1, true);
            if (t === 0) return this.ether(b, po + hlen, ts, p, depth + 1);
          }
        }
        if (dport === 4789 && pe - po >= 16 && (b[po] & 0x08) !== 0) {
          p.tunnel = depth + 1;
          this.lim = pe;
          return this.ether(b, po + 8, ts, p, depth + 1);
        }
        if ((dport === 3544 || sport === 3544) && pe - po >= 40 && b[po] >> 4 === 6) {
          const plen = (b[po + 4] << 8) | b[po + 5];
          if (po + 40 + plen === pe) {
            p.tunnel = depth + 1;
            this.lim = pe;
            return this.ipv6(b, po, ts, p, depth + 1);
          }
        }
      }
      p.sport = sport;
      p.dport = dport;
      p.tcpFlags = 0;
      p.seq = 0;
      p.ack = 0;
      p.payOff = po;
      p.payLen = pe - po;
      return Decoded.Ok;
    }
    if (depth >= MAX_DEPTH) return this.bad(p, 'tunnel_too_deep');
    if (proto === 4) {
      p.tunnel = depth + 1;
      this.lim = end;
      return this.ipv4(b, off, ts, p, depth + 1);
    }
    if (proto === 41) {
      p.tunnel = depth + 1;
      this.lim = end;
      return this.ipv6(b, off, ts, p, depth + 1);
    }
    if (proto === 47) {
      this.lim = end;
      return this.gre(b, off, ts, p, depth + 1);
    }
    return Decoded.Skip;
  }

  private gre(b: Uint8Array, off: number, ts: number, p: Packet, depth: number): Decoded {
    if (off + 4 > this.lim) return this.bad(p, 'gre_truncated');
    const flags = b[off];
    const ver = b[off + 1] & 7;
    const pt = (b[off + 2] << 8) | b[off + 3];
    let o = off + 4;
    if (ver === 1) {
      // PPTP enhanced GRE: key always present, seq/ack optional, payload PPP
      o += 4;
      if (flags & 0x10) o += 4;
      if (b[off + 1] & 0x80) o += 4;
      if (o > this.lim) return this.bad(p, 'gre_truncated');
      if (pt !== 0x880b || o >= this.lim) return Decoded.Skip;
      p.tunnel = depth;
      return this.ppp(b, o, ts, p, depth);
    }
    if (flags & 0x80) o += 4; // checksum + reserved
    if (flags & 0x20) o += 4; // key
    if (flags & 0x10) o += 4; // sequence
    if (o > this.lim) return this.bad(p, 'gre_truncated');
    p.tunnel = depth;
    if (pt === 0x88be) {
      // ERSPAN type II: 8-byte header when the sequence bit is set; type I has none
      return this.ether(b, flags & 0x10 ? o + 8 : o, ts, p, depth);
    }
    if (pt === 0x22eb) {
      if (o + 12 > this.lim) return this.bad(p, 'gre_truncated');
      return this.ether(b, o + 12 + (b[o + 11] & 1 ? 8 : 0), ts, p, depth);
    }
    if (pt === 0x880b) return this.ppp(b, o, ts, p, depth);
    return this.ethertype(b, o, pt, ts, p, depth);
  }
}
