/**
 * @module output/jsonl
 * Buffered JSON-lines writer to a file descriptor (stdout by default): records are serialised once,
 * encoded straight into one reused 128 KiB buffer (no joined batch string, no per-batch Buffer) and
 * written in batches of at least 64 KiB with synchronous writes (bounded memory, ordering kept).
 */
import { writeSync } from 'node:fs';
import { isEpipe, outputClosed } from '../util/epipe.js';

const BATCH = 65536;
const NEWLINE = Buffer.from('\n');

export class JsonlWriter {
  private readonly buf = Buffer.allocUnsafe(2 * BATCH);
  private size = 0;
  constructor(private readonly fd = 1) {}

  write(obj: unknown): void {
    this.line(JSON.stringify(obj));
  }

  /** One line already serialised (without its newline). */
  line(s: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit
    if (this.size + 3 * s.length + 1 > this.buf.length) {
      this.flush();
      if (3 * s.length + 1 > this.buf.length) {
        writeAllSync(this.fd, s + '\n');
        return;
      }
    }
    this.size += this.buf.write(s, this.size);
    this.buf[this.size++] = 10;
    if (this.size >= BATCH) this.flush();
  }

  /** One line already serialised as UTF-8 bytes (`src[0, n)`, without its newline). */
  bytes(src: Buffer, n: number): void {
    if (this.size + n + 1 > this.buf.length) {
      this.flush();
      if (n + 1 > this.buf.length) {
        writeBytesSync(this.fd, Buffer.concat([src.subarray(0, n), NEWLINE]));
        return;
      }
    }
    src.copy(this.buf, this.size, 0, n);
    this.size += n;
    this.buf[this.size++] = 10;
    if (this.size >= BATCH) this.flush();
  }

  flush(): void {
    if (this.size === 0) return;
    const n = this.size;
    this.size = 0;
    writeBytesSync(this.fd, this.buf.subarray(0, n));
  }
}

/** Write all of `text` to `fd` synchronously; a closed reader (EPIPE) ends the process quietly (util/epipe). */
export function writeAllSync(fd: number, text: string): void {
  writeBytesSync(fd, Buffer.from(text));
}

/** Write all of `buf` to `fd` synchronously, as {@link writeAllSync}. */
function writeBytesSync(fd: number, buf: Buffer): void {
  while (buf.length) {
    try {
      const n = writeSync(fd, buf);
      buf = buf.subarray(n);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') continue;
      if (isEpipe(e)) {
        outputClosed();
        return;
      }
      throw e;
    }
  }
}
