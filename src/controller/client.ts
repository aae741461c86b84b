/**
 * @module controller/client
 * The API client `chokepoint ctl` uses: bearer token, JSON in and out, refusals as
 * {@link ClientError} (HTTP status + the server's `{code, message, field}`), uploads streamed from a
 * file with a progress callback.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { ChokepointError } from '../util/errors.js';

export class ClientError extends ChokepointError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    readonly field?: string,
  ) {
    super(code, message);
  }
}

export class Client {
  constructor(
    readonly url: string,
    readonly token: string | null,
  ) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { ...extra };
    if (this.token) h.authorization = `Bearer ${this.token}`;
    return h;
  }

  private async parse(r: Response): Promise<any> {
    const text = await r.text();
    let j: any = null;
    try {
      j = text ? JSON.parse(text) : null;
    } catch {
      j = { error: { code: 'ERR_HTTP', message: text.slice(0, 300) } };
    }
    if (!r.ok) {
      const e = j?.error ?? {};
      throw new ClientError(r.status, e.code ?? `HTTP_${r.status}`, e.message ?? `HTTP ${r.status}`, e.field);
    }
    return j;
  }

  async call(method: string, path: string, body?: unknown): Promise<any> {
    let r: Response;
    try {
      r = await fetch(this.url.replace(/\/$/, '') + path, {
        method,
        headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ClientError(0, 'ERR_CONNECT', `cannot reach the controller at ${this.url}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`);
    }
    return this.parse(r);
  }

  /** Stream a file as the request body. */
  async upload(path: string, file: string, onProgress?: (sent: number, total: number) => void): Promise<any> {
    const total = (await stat(file)).size;
    let sent = 0;
    const stream = createReadStream(file, { highWaterMark: 1 << 20 });
    stream.on('data', (d) => {
      sent += (d as Buffer).length;
      onProgress?.(sent, total);
    });
    let r: Response;
    try {
      r = await fetch(this.url.replace(/\/$/, '') + path, {
        method: 'POST',
        headers: this.headers({ 'content-type': 'application/octet-stream', 'content-length': String(total) }),
        body: Readable.toWeb(stream) as unknown as ReadableStream,
        duplex: 'half',
      } as RequestInit);
    } catch (e) {
      throw new ClientError(0, 'ERR_CONNECT', `upload to ${this.url} failed: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`);
    }
    return this.parse(r);
  }
}
