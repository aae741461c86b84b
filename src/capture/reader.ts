/**
 * @module capture/reader
 * Streaming reader for classic pcap (both byte orders, micro/nanosecond) and pcapng (SHB/IDB/EPB/SPB and
 * the obsolete PB, several interfaces with their own link types and timestamp resolutions, several
 * sections). Reads a file descriptor synchronously in fixed chunks (bounded memory whatever the capture
 * size) and hands each packet to a callback as a range of the chunk buffer, valid only during the call.
 * Every header field is read through the one bounded cursor (util/bytes ByteReader, in the file's or
 * section's byte order), one reader reused for the whole file and bounded by the buffered bytes or by
 * the block being read, so a field can never be read past its record or block.
 */
import { openSync, readSync, closeSync, fstatSync } from 'node:fs';
import { InputError } from '../util/errors.js';
import { ByteReader } from '../util/bytes.js';

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
  const m = new ByteReader(w.buf, w.start, w.end).u32();
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
  const r = new ByteReader(w.buf, w.start, w.end);
  const m = r.u32();
  const le = m === 0xd4c3b2a1 || m === 0x4d3cb2a1;
  const nano = m === 0xa1b23c4d || m === 0x4d3cb2a1;
  r.skip(16); // version, thiszone, sigfigs, snaplen
  const linktype = r.u32o(le) & 0x0fffffff;
  w.start = r.pos;
  const stats: ReadStats = { packets: 0, bytes: 0, format: 'pcap', truncated: null };
  const fracDiv = nano ? 1e6 : 1e3;
  let nextProgress = 64 << 20;
  for (;;) {
    if (!w.ensure(16)) {
      if (w.end > w.start) stats.truncated = 'file ends inside a record header';
      break;
    }
    r.reset(w.buf, w.start, w.end);
    const sec = r.u32o(le);
    const frac = r.u32o(le);
    const incl = r.u32o(le);
    const orig = r.u32o(le);
    if (incl > MAX_RECORD) {
      stats.truncated = `record ${stats.packets + 1} claims ${incl} bytes`;
      break;
    }
    if (!w.ensure(16 + incl)) {
      stats.truncated = `file ends inside record ${stats.packets + 1}`;
      break;
    }
    r.reset(w.buf, w.start + 16, w.end); // the window may have moved or grown
    const d = r.pos;
    r.skip(incl);
    w.start = r.pos;
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

interface Iface {
  linktype: number;
  snaplen: number;
  /** Multiply the 64-bit timestamp by this to get milliseconds. */
  toMs: number;
  /** if_tsoffset (seconds added to every timestamp) in milliseconds. */
  offMs: number;
}

/** An Interface Description Block's body (reader after the block length, bounded by the block). */
function readIdb(r: ByteReader, le: boolean): Iface {
  const iface: Iface = { linktype: r.u16o(le), snaplen: 0, toMs: 1e-3, offMs: 0 };
  r.skip(2); // reserved
  iface.snaplen = r.u32o(le);
  r.end -= 4; // the trailing block length
  // options: code, length, value padded to 4 bytes; a malformed option ends the list
  while (r.remaining >= 4) {
    const code = r.u16o(le);
    const olen = r.u16o(le);
    if (code === 0 || r.remaining < olen) break;
    const next = r.pos + Math.min((olen + 3) & ~3, r.remaining);
    if (code === 9 && olen >= 1) {
      const res = r.u8();
      const units = res & 0x80 ? Math.pow(2, -(res & 0x7f)) : Math.pow(10, -res);
      iface.toMs = units * 1000;
    } else if (code === 14 && olen === 8) {
      // if_tsoffset: signed 64-bit seconds, in the section's byte order
      let hi: number;
      let lo: number;
      if (le) {
        lo = r.u32le();
        hi = r.i32le();
      } else {
        hi = r.i32();
        lo = r.u32();
      }
      iface.offMs = (hi * 4294967296 + lo) * 1000;
    }
    r.seek(next);
  }
  return iface;
}

function readPcapng(
  w: Window,
  name: string,
  sink: PacketSink,
  onProgress?: (bytes: number) => void,
): ReadStats {
  const stats: ReadStats = { packets: 0, bytes: 0, format: 'pcapng', truncated: null };
  const r = new ByteReader(w.buf);
  let le = true;
  let ifaces: Iface[] = [];
  let nextProgress = 64 << 20;
  for (;;) {
    if (!w.ensure(12)) {
      if (w.end > w.start) stats.truncated = 'file ends inside a block header';
      break;
    }
    r.reset(w.buf, w.start, w.end);
    const type = r.u32o(le);
    if (type === 0x0a0d0d0a) {
      // the byte-order magic after the block length says how to read that length (a rare block: its
      // own reader)
      const bom = new ByteReader(w.buf, w.start + 8, w.end).u32();
      if (bom === 0x1a2b3c4d) le = false;
      else if (bom === 0x4d3c2b1a) le = true;
      else {
        stats.truncated = 'section header with a bad byte-order magic';
        break;
      }
      ifaces = [];
    }
    const len = r.u32o(le);
    if (len < 12 || len % 4 !== 0 || len > MAX_RECORD) {
      if (stats.packets === 0 && type !== 0x0a0d0d0a) throw new InputError(`${name}: malformed pcapng block`);
      stats.truncated = `malformed block of length ${len} after ${stats.packets} packets`;
      break;
    }
    if (!w.ensure(len)) {
      stats.truncated = `file ends inside a block after ${stats.packets} packets`;
      break;
    }
    const b = w.buf;
    const s = w.start;
    // the block's body: from after type and length to the block's end (trailing length included)
    r.reset(b, s + 8, s + len);
    w.start += len;
    if (type === 1) {
      if (len < 20) continue;
      ifaces.push(readIdb(r, le));
    } else if (type === 6 || type === 2) {
      // Enhanced Packet Block / obsolete Packet Block (interface id u16, drops u16)
      if (len < 32) continue;
      const ifId = type === 6 ? r.u32o(le) : r.u16o(le);
      if (type === 2) r.skip(2);
      const iface = ifaces[ifId];
      const tsHi = r.u32o(le);
      const tsLo = r.u32o(le);
      const cap = r.u32o(le);
      const orig = r.u32o(le);
      if (!iface || 28 + cap > len) {
        stats.truncated = `packet block refers to a missing interface or overruns its block`;
        continue;
      }
      stats.packets++;
      stats.bytes += cap;
      sink.packet(
        b,
        r.pos,
        r.pos + cap,
        iface.linktype,
        (tsHi * 4294967296 + tsLo) * iface.toMs + iface.offMs,
        orig,
      );
    } else if (type === 3) {
      // Simple Packet Block
      const iface = ifaces[0];
      if (!iface || len < 16) continue;
      const orig = r.u32o(le);
      let cap = Math.min(orig, len - 16);
      if (iface.snaplen > 0) cap = Math.min(cap, iface.snaplen);
      stats.packets++;
      stats.bytes += cap;
      sink.packet(b, r.pos, r.pos + cap, iface.linktype, 0, orig);
    }
    if (onProgress && w.fileBytes >= nextProgress) {
      nextProgress = w.fileBytes + (64 << 20);
      onProgress(w.fileBytes);
    }
  }
  onProgress?.(w.fileBytes);
  return stats;
}
