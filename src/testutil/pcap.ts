/**
 * @module testutil/pcap
 * Hand-written capture files for tests: classic pcap in either byte order with micro- or nanosecond
 * timestamps, and pcapng blocks (SHB, IDB with if_tsresol, EPB, SPB, obsolete PB) in either byte order.
 * Written from the file-format specifications (pcap: tcpdump.org; pcapng: IETF draft), independent of
 * the project's reader and writer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPacket {
  data: Uint8Array;
  /** Seconds and fractional part in the file's unit (µs or ns). */
  sec: number;
  frac: number;
  origLen?: number;
}

/** Classic pcap file bytes. */
export function pcapFile(
  opts: { le: boolean; nano: boolean; linktype: number; snaplen?: number },
  pkts: TestPacket[],
): Buffer {
  const parts: Buffer[] = [];
  const h = Buffer.alloc(24);
  const w32 = (b: Buffer, v: number, o: number) =>
    opts.le ? b.writeUInt32LE(v >>> 0, o) : b.writeUInt32BE(v >>> 0, o);
  const w16 = (b: Buffer, v: number, o: number) => (opts.le ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
  w32(h, opts.nano ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  w16(h, 2, 4);
  w16(h, 4, 6);
  w32(h, opts.snaplen ?? 65535, 16);
  w32(h, opts.linktype, 20);
  parts.push(h);
  for (const p of pkts) {
    const r = Buffer.alloc(16);
    w32(r, p.sec, 0);
    w32(r, p.frac, 4);
    w32(r, p.data.length, 8);
    w32(r, p.origLen ?? p.data.length, 12);
    parts.push(r, Buffer.from(p.data));
  }
  return Buffer.concat(parts);
}

/** A pcapng writer for one section at a time, in a chosen byte order. */
export class PcapngBuilder {
  private parts: Buffer[] = [];
  constructor(private le = true) {}

  private block(type: number, body: Buffer): this {
    const pad = (4 - (body.length % 4)) % 4;
    const len = 12 + body.length + pad;
    const b = Buffer.alloc(len);
    this.u32(b, type, 0);
    this.u32(b, len, 4);
    body.copy(b, 8);
    this.u32(b, len, len - 4);
    this.parts.push(b);
    return this;
  }
  private u32(b: Buffer, v: number, o: number): void {
    if (this.le) b.writeUInt32LE(v >>> 0, o);
    else b.writeUInt32BE(v >>> 0, o);
  }
  private u16(b: Buffer, v: number, o: number): void {
    if (this.le) b.writeUInt16LE(v, o);
    else b.writeUInt16BE(v, o);
  }
  private options(opts: { code: number; value: Uint8Array }[]): Buffer {
    if (!opts.length) return Buffer.alloc(0);
    const out: Buffer[] = [];
    for (const o of opts) {
      const h = Buffer.alloc(4);
      this.u16(h, o.code, 0);
      this.u16(h, o.value.length, 2);
      out.push(h, Buffer.from(o.value), Buffer.alloc((4 - (o.value.length % 4)) % 4));
    }
    out.push(Buffer.alloc(4)); // opt_endofopt
    return Buffer.concat(out);
  }

  /** Section Header Block; switches this builder to byte order `le`. */
  shb(le = this.le): this {
    this.le = le;
    const body = Buffer.alloc(16);
    this.u32(body, 0x1a2b3c4d, 0);
    this.u16(body, 1, 4);
    this.u16(body, 0, 6);
    body.fill(0xff, 8, 16); // section length -1
    return this.block(0x0a0d0d0a, body);
  }

  /**
   * Interface Description Block; `tsresol` the raw if_tsresol byte (omitted: default 6 = µs),
   * `tsoffset` the if_tsoffset option (seconds, signed 64-bit).
   */
  idb(linktype: number, tsresol?: number, snaplen = 0, tsoffset?: bigint): this {
    const fixed = Buffer.alloc(8);
    this.u16(fixed, linktype, 0);
    this.u32(fixed, snaplen, 4);
    const opts = [{ code: 2, value: new TextEncoder().encode('eth-test') }];
    if (tsresol !== undefined) opts.push({ code: 9, value: Uint8Array.of(tsresol) });
    if (tsoffset !== undefined) {
      const v = Buffer.alloc(8);
      if (this.le) v.writeBigInt64LE(tsoffset);
      else v.writeBigInt64BE(tsoffset);
      opts.push({ code: 14, value: v });
    }
    return this.block(1, Buffer.concat([fixed, this.options(opts)]));
  }

  /** Enhanced Packet Block with a 64-bit timestamp in the interface's units. */
  epb(ifId: number, ts: bigint, data: Uint8Array, origLen = data.length): this {
    const fixed = Buffer.alloc(20);
    this.u32(fixed, ifId, 0);
    this.u32(fixed, Number(ts >> 32n), 4);
    this.u32(fixed, Number(ts & 0xffffffffn), 8);
    this.u32(fixed, data.length, 12);
    this.u32(fixed, origLen, 16);
    const pad = Buffer.alloc((4 - (data.length % 4)) % 4);
    const opts = this.options([{ code: 1, value: new TextEncoder().encode('c') }]);
    return this.block(6, Buffer.concat([fixed, Buffer.from(data), pad, opts]));
  }

  /** Simple Packet Block (interface 0, no timestamp). */
  spb(data: Uint8Array, origLen = data.length): this {
    const fixed = Buffer.alloc(4);
    this.u32(fixed, origLen, 0);
    return this.block(3, Buffer.concat([fixed, Buffer.from(data)]));
  }

  /** A block of an unknown/ignored type (e.g. Name Resolution Block, type 4). */
  other(type: number, body: Uint8Array): this {
    return this.block(type, Buffer.from(body));
  }

  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** A temporary directory removed by the returned cleanup function. */
export function tempDir(prefix = 'chokepoint-test-'): {
  dir: string;
  path: (name: string) => string;
  cleanup: () => void;
} {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, path: (n) => join(dir, n), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic filler bytes. */
export function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 255;
  }
  return out;
}
