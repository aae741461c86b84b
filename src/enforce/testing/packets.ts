/**
 * @module enforce/testing/packets
 * Hand-built IPv4/TCP packets for unit tests of the inline path (header fields written from RFC 791 /
 * RFC 793 layouts; checksums are not computed, the code under test ignores them).
 */

export const SYN = 0x02;
export const ACK = 0x10;
export const PSH = 0x08;
export const RST = 0x04;
export const FIN = 0x01;

export interface TcpSpec {
  src: [number, number, number, number];
  dst: [number, number, number, number];
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  flags: number;
  payload?: Uint8Array;
}

export function tcp4(s: TcpSpec): Uint8Array {
  const pl = s.payload ?? new Uint8Array(0);
  const b = new Uint8Array(40 + pl.length);
  const dv = new DataView(b.buffer);
  b[0] = 0x45;
  dv.setUint16(2, b.length);
  b[8] = 64;
  b[9] = 6;
  b.set(s.src, 12);
  b.set(s.dst, 16);
  dv.setUint16(20, s.sport);
  dv.setUint16(22, s.dport);
  dv.setUint32(24, (s.seq ?? 1000) >>> 0);
  dv.setUint32(28, (s.ack ?? 0) >>> 0);
  b[32] = 5 << 4;
  b[33] = s.flags;
  dv.setUint16(34, 65535);
  b.set(pl, 40);
  return b;
}

/** A client (10.0.0.1:40000) ↔ server (10.0.0.2:443) conversation builder with running sequence numbers. */
export class Conv {
  cseq = 1000;
  sseq = 5000;
  constructor(
    readonly sport = 40000,
    readonly cli: [number, number, number, number] = [10, 0, 0, 1],
    readonly srv: [number, number, number, number] = [10, 0, 0, 2],
  ) {}
  syn(): Uint8Array {
    return tcp4({
      src: this.cli,
      dst: this.srv,
      sport: this.sport,
      dport: 443,
      seq: this.cseq - 1,
      flags: SYN,
    });
  }
  synAck(): Uint8Array {
    return tcp4({
      src: this.srv,
      dst: this.cli,
      sport: 443,
      dport: this.sport,
      seq: this.sseq - 1,
      ack: this.cseq,
      flags: SYN | ACK,
    });
  }
  ack(): Uint8Array {
    return tcp4({
      src: this.cli,
      dst: this.srv,
      sport: this.sport,
      dport: 443,
      seq: this.cseq,
      ack: this.sseq,
      flags: ACK,
    });
  }
  /** Client data at the current sequence (advances it), or at an explicit offset from the first byte. */
  c(payload: Uint8Array, flags = ACK | PSH, at?: number): Uint8Array {
    const seq = at === undefined ? this.cseq : 1000 + at;
    if (at === undefined) this.cseq += payload.length;
    return tcp4({
      src: this.cli,
      dst: this.srv,
      sport: this.sport,
      dport: 443,
      seq,
      ack: this.sseq,
      flags,
      payload,
    });
  }
  s(payload: Uint8Array, flags = ACK | PSH): Uint8Array {
    const p = tcp4({
      src: this.srv,
      dst: this.cli,
      sport: 443,
      dport: this.sport,
      seq: this.sseq,
      ack: this.cseq,
      flags,
      payload,
    });
    this.sseq += payload.length;
    return p;
  }
}
