/**
 * @module output/jsonl
 * Buffered JSON-lines writer to a file descriptor (stdout by default): records are serialised once and
 * written in ~64 KiB batches with synchronous writes (bounded memory, ordering kept).
 */
import { writeSync } from 'node:fs';
import { isEpipe, outputClosed } from '../util/epipe.js';

export class JsonlWriter {
  private chunks: string[] = [];
  private size = 0;
  constructor(private readonly fd = 1) {}

  write(obj: unknown): void {
    const s = JSON.stringify(obj) + '\n';
    this.chunks.push(s);
    this.size += s.length;
    if (this.size >= 65536) this.flush();
  }

  flush(): void {
    if (this.size === 0) return;
    const data = this.chunks.join('');
    this.chunks = [];
    this.size = 0;
    writeAllSync(this.fd, data);
  }
}

/** Write all of `text` to `fd` synchronously; a closed reader (EPIPE) ends the process quietly (util/epipe). */
export function writeAllSync(fd: number, text: string): void {
  let buf = Buffer.from(text);
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
