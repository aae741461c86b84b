/**
 * @module capture/reader
 * Streaming reader for classic pcap (both byte orders, micro/nanosecond) and pcapng (SHB/IDB/EPB/SPB and
 * the obsolete PB, several interfaces with their own link types and timestamp resolutions, several
 * sections). Reads a file descriptor synchronously in fixed chunks (bounded memory whatever the capture
 * size) and hands each packet to a callback as a range of the chunk buffer, valid only during the call.
 */
import { openSync, readSync, closeSync, fstatSync } from 'node:fs';
import { InputError } from '../util/errors.js';

export interface PacketSink {
  /**
   * One captured packet: bytes [off, end) of `buf`, valid only during the call (no view is made, so
   * nothing is allocated per packet); `linktype` a LINKTYPE_* value; `tsMs` the capture time in
   * milliseconds since the epoch (fractional); `origLen` the wire length.
   */
  packet(buf: Uint8Array, off: number, end: number, linktype: number, tsMs: number, origLen: number): void;
}

export interface ReadStats {
  packets: number;
  bytes: number;
  format: 'pcap' | 'pcapng';
  /** Set when the file ended inside a record or a block was malformed; reading stopped there. */
  truncated: string | null;
}

const CHUNK = 1 << 20;
const MAX_RECORD = 64 << 20;

/** A refillable window over a file descriptor. */
class Window {
  buf: Buffer = Buffer.allocUnsafe(CHUNK);
  start = 0;
  end = 0;
  eof = false;
  fileBytes = 0;
  constructor(private readonly fd: number) {}

  /** Ensure at least n bytes are buffered from `start`; false at EOF with fewer. */
  ensure(n: number): boolean {
    if (this.end - this.start >= n) return true;
    if (n > this.buf.length) {
      if (n > MAX_RECORD) return false;
      const nb = Buffer.allocUnsafe(Math.max(n, this.buf.length * 2));
      this.buf.copy(nb, 0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
      this.buf = nb;
    } else if (this.start > 0) {
      this.buf.copy(this.buf, 0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    while (this.end - this.start < n && !this.eof) {
      let got: number;
      try {
        got = readSync(this.fd, this.buf, this.end, this.buf.length - this.end, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
          continue;
        }
        if ((e as NodeJS.ErrnoException).code === 'EOF') got = 0;
        else throw e;
      }
      if (got === 0) this.eof = true;
      this.end += got;
      this.fileBytes += got;
    }
    return this.end - this.start >= n;
  }
}

/** Read a capture from a path ('-' for stdin) and feed every packet to the sink. */
export function readCaptureFile(
  path: string,
  sink: PacketSink,
  onProgress?: (bytes: number, total: number) => void,
): ReadStats {
  let fd: number;
  try {
    fd = path === '-' ? 0 : openSync(path, 'r');
  } catch (e) {
    throw new InputError(`${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    let total = 0;
    if (path !== '-') {
      const st = fstatSync(fd);
      if (st.isDirectory()) throw new InputError(`${path}: is a directory, not a capture file`);
      total = st.size;
    }
    return readCaptureFd(fd, path, sink, onProgress ? (b) => onProgress(b, total) : undefined);
  } catch (e) {
    // a read error (EIO, EISDIR on odd file systems) names the path too
    if (e instanceof InputError) throw e;
    throw new InputError(`${path}: ${(e as Error).message}`, { cause: e });
  } finally {
    if (path !== '-') closeSync(fd);
  }
}

export function readCaptureFd(
  fd: number,
  name: string,
  sink: PacketSink,
  onProgress?: (bytes: number) => void,
): ReadStats {
  const w = new Window(fd);
  if (!w.ensure(4)) throw new InputError(`${name}: not a capture file (empty or shorter than a header)`);
  const m = w.buf.readUInt32BE(w.start);
  if (m === 0x0a0d0d0a) return readPcapng(w, name, sink, onProgress);
  if (m === 0xa1b2c3d4 || m === 0xd4c3b2a1 || m === 0xa1b23c4d || m === 0x4d3cb2a1)
    return readPcap(w, name, sink, onProgress);
  throw new InputError(`${name}: not a pcap or pcapng file (magic 0x${m.toString(16).padStart(8, '0')})`);
}

function readPcap(
  w: Window,
  name: string,
  sink: PacketSink,
  onProgress?: (bytes: number) => void,
): ReadStats {
  if (!w.ensure(24)) throw new InputError(`${name}: truncated pcap header`);
  const m = w.buf.readUInt32BE(w.start);
  const le = m === 0xd4c3b2a1 || m === 0x4d3cb2a1;
  const nano = m === 0xa1b23c4d || m === 0x4d3cb2a1;
  const b0 = w.buf;
  const linktype = (le ? b0.readUInt32LE(w.start + 20) : b0.readUInt32BE(w.start + 20)) & 0x0fffffff;
  w.start += 24;
  const stats: ReadStats = { packets: 0, bytes: 0, format: 'pcap', truncated: null };
  const fracDiv = nano ? 1e6 : 1e3;
  let nextProgress = 64 << 20;
  for (;;) {
    if (!w.ensure(16)) {
      if (w.end > w.start) stats.truncated = 'file ends inside a record header';
      break;
    }
    const b = w.buf;
    const s = w.start;
    const sec = le ? b.readUInt32LE(s) : b.readUInt32BE(s);
    const frac = le ? b.readUInt32LE(s + 4) : b.readUInt32BE(s + 4);
    const incl = le ? b.readUInt32LE(s + 8) : b.readUInt32BE(s + 8);
    const orig = le ? b.readUInt32LE(s + 12) : b.readUInt32BE(s + 12);
    if (incl > MAX_RECORD) {
      stats.truncated = `record ${stats.packets + 1} claims ${incl} bytes`;
      break;
    }
    if (!w.ensure(16 + incl)) {
      stats.truncated = `file ends inside record ${stats.packets + 1}`;
      break;
    }
    const d = w.start + 16;
    w.start = d + incl;
    stats.packets++;
    stats.bytes += incl;
    sink.packet(w.buf, d, d + incl, linktype, sec * 1000 + frac / fracDiv, orig);
    if (onProgress && w.fileBytes >= nextProgress) {
      nextProgress = w.fileBytes + (64 << 20);
      onProgress(w.fileBytes);
    }
  }
  onProgress?.(w.fileBytes);
  return stats;
}

function rd32(b: Buffer, o: number, le: boolean): number {
  return le ? b.readUInt32LE(o) : b.readUInt32BE(o);
}
function rd16(b: Buffer, o: number, le: boolean): number {
  return le ? b.readUInt16LE(o) : b.readUInt16BE(o);
}

interface Iface {
  linktype: number;
  snaplen: number;
  /** Multiply the 64-bit timestamp by this to get milliseconds. */
  toMs: number;
  /** if_tsoffset (seconds added to every timestamp) in milliseconds. */
  offMs: number;
}

function readPcapng(
  w: Window,
  name: string,
  sink: PacketSink,
  onProgress?: (bytes: number) => void,
): ReadStats {
  const stats: ReadStats = { packets: 0, bytes: 0, format: 'pcapng', truncated: null };
  let le = true;
  let ifaces: Iface[] = [];
  let nextProgress = 64 << 20;
  for (;;) {
    if (!w.ensure(12)) {
      if (w.end > w.start) stats.truncated = 'file ends inside a block header';
      break;
    }
    let b = w.buf;
    let s = w.start;
    const type = le ? b.readUInt32LE(s) : b.readUInt32BE(s);
    if (type === 0x0a0d0d0a) {
      const bom = b.readUInt32BE(s + 8);
      if (bom === 0x1a2b3c4d) le = false;
      else if (bom === 0x4d3c2b1a) le = true;
      else {
        stats.truncated = 'section header with a bad byte-order magic';
        break;
      }
      ifaces = [];
    }
    const len = le ? b.readUInt32LE(s + 4) : b.readUInt32BE(s + 4);
    if (len < 12 || len % 4 !== 0 || len > MAX_RECORD) {
      if (stats.packets === 0 && type !== 0x0a0d0d0a) throw new InputError(`${name}: malformed pcapng block`);
      stats.truncated = `malformed block of length ${len} after ${stats.packets} packets`;
      break;
    }
    if (!w.ensure(len)) {
      stats.truncated = `file ends inside a block after ${stats.packets} packets`;
      break;
    }
    b = w.buf;
    s = w.start;
    w.start += len;
    if (type === 1) {
      // Interface Description Block
      const iface: Iface = {
        linktype: rd16(b, s + 8, le),
        snaplen: rd32(b, s + 12, le),
        toMs: 1e-3,
        offMs: 0,
      };
      let o = 16;
      while (o + 4 <= len - 4) {
        const code = rd16(b, s + o, le);
        const olen = rd16(b, s + o + 2, le);
        if (code === 0) break;
        if (code === 9 && olen >= 1) {
          const r = b[s + o + 4];
          const units = r & 0x80 ? Math.pow(2, -(r & 0x7f)) : Math.pow(10, -r);
          iface.toMs = units * 1000;
        } else if (code === 14 && olen === 8) {
          // if_tsoffset: signed 64-bit seconds, in the section's byte order
          const hi = le ? b.readInt32LE(s + o + 8) : b.readInt32BE(s + o + 4);
          const lo = le ? b.readUInt32LE(s + o + 4) : b.readUInt32BE(s + o + 8);
          iface.offMs = (hi * 4294967296 + lo) * 1000;
        }
        o += 4 + ((olen + 3) & ~3);
      }
      ifaces.push(iface);
    } else if (type === 6 || type === 2) {
      // Enhanced Packet Block / obsolete Packet Block
      if (len < 32) continue;
      const ifId = type === 6 ? rd32(b, s + 8, le) : rd16(b, s + 8, le);
      const iface = ifaces[ifId];
      const tsHi = rd32(b, s + 12, le);
      const tsLo = rd32(b, s + 16, le);
      const cap = rd32(b, s + 20, le);
      const orig = rd32(b, s + 24, le);
      if (!iface || 28 + cap > len) {
        stats.truncated = `packet block refers to a missing interface or overruns its block`;
        continue;
      }
      stats.packets++;
      stats.bytes += cap;
      sink.packet(
        b,
        s + 28,
        s + 28 + cap,
        iface.linktype,
        (tsHi * 4294967296 + tsLo) * iface.toMs + iface.offMs,
        orig,
      );
    } else if (type === 3) {
      // Simple Packet Block
      const iface = ifaces[0];
      if (!iface || len < 16) continue;
      const orig = rd32(b, s + 8, le);
      let cap = Math.min(orig, len - 16);
      if (iface.snaplen > 0) cap = Math.min(cap, iface.snaplen);
      stats.packets++;
      stats.bytes += cap;
      sink.packet(b, s + 12, s + 12 + cap, iface.linktype, 0, orig);
    }
    if (onProgress && w.fileBytes >= nextProgress) {
      nextProgress = w.fileBytes + (64 << 20);
      onProgress(w.fileBytes);
    }
  }
  onProgress?.(w.fileBytes);
  return stats;
}
