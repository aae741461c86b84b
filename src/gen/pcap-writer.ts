/**
 * @module gen/pcap-writer
 * Writes classic pcap (microsecond, little-endian, LINKTYPE given) to a file descriptor in large batches.
 */
import { writeSync } from 'node:fs';

export class PcapWriter {
  private buf = Buffer.allocUnsafe(4 << 20);
  private len = 0;
  packets = 0;
  bytes = 0;

  constructor(
    private readonly fd: number,
    linktype = 1,
    snaplen = 262144,
  ) {
    const h = Buffer.alloc(24);
    h.writeUInt32LE(0xa1b2c3d4, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeUInt32LE(snaplen, 16);
    h.writeUInt32LE(linktype, 20);
    this.push(h);
  }

  private push(b: Uint8Array): void {
    if (this.len + b.length > this.buf.length) this.flush();
    if (b.length > this.buf.length) {
      writeSync(this.fd, b);
      return;
    }
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /** Append one frame captured at `tsUs` microseconds since the epoch. */
  write(frame: Uint8Array, tsUs: number): void {
    if (this.len + 16 + frame.length > this.buf.length) this.flush();
    const b = this.buf;
    const o = this.len;
    const sec = Math.floor(tsUs / 1e6);
    b.writeUInt32LE(sec >>> 0, o);
    b.writeUInt32LE(Math.floor(tsUs - sec * 1e6), o + 4);
    b.writeUInt32LE(frame.length, o + 8);
    b.writeUInt32LE(frame.length, o + 12);
    this.len += 16;
    this.push(frame);
    this.packets++;
    this.bytes += frame.length;
  }

  flush(): void {
    let off = 0;
    while (off < this.len) off += writeSync(this.fd, this.buf, off, this.len - off);
    this.len = 0;
  }
}
