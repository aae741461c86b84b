/**
 * @module controller/client
 * The API client `chokepoint ctl` uses: bearer token, JSON in and out, refusals as
 * {@link ClientError} (HTTP status + the server's `{code, message, field}`), uploads streamed from a
 * file with a progress callback.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ChokepointError } from '../util/errors.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- API answers are JSON checked by each caller
export type Json = any;

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

  private async parse(r: Response): Promise<Json> {
    const text = await r.text();
    let j: Json;
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

  async call(method: string, path: string, body?: unknown): Promise<Json> {
    let r: Response;
    try {
      r = await fetch(this.url.replace(/\/$/, '') + path, {
        method,
        headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ClientError(
        0,
        'ERR_CONNECT',
        `cannot reach the controller at ${this.url}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`,
      );
    }
    return this.parse(r);
  }

  /**
   * Stream a file as the request body (node:http, no response timeout: a synchronous import of 10^6
   * rows answers only when it is applied).
   */
  async upload(
    path: string,
    file: string,
    onProgress?: (sent: number, total: number) => void,
  ): Promise<Json> {
    const total = (await stat(file)).size;
    const u = new URL(this.url.replace(/\/$/, '') + path);
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, {
      method: 'POST',
      headers: this.headers({ 'content-type': 'application/octet-stream', 'content-length': String(total) }),
    });
    const res = new Promise<{ status: number; text: string }>((resolve, reject) => {
      req.on('response', (r) => {
        let text = '';
        r.setEncoding('utf8');
        r.on('data', (d: string) => (text += d));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, text }));
        r.on('error', reject);
      });
      req.on('error', (e) =>
        reject(new ClientError(0, 'ERR_CONNECT', `upload to ${this.url} failed: ${e.message}`)),
      );
    });
    let sent = 0;
    const stream = createReadStream(file, { highWaterMark: 1 << 20 });
    stream.on('data', (d) => {
      sent += (d as Buffer).length;
      onProgress?.(sent, total);
    });
    stream.pipe(req);
    const r = await res;
    return this.parse(new Response(r.text, { status: r.status }));
  }

  /**
   * Upload with `async=true`, then follow the import's progress until it is done; `onStage` gets the
   * server's status, staged and total entries. Throws ClientError when the import fails.
   */
  async importFile(
    path: string,
    file: string,
    o: {
      onUpload?: (sent: number, total: number) => void;
      onStage?: (status: string, staged: number, total: number) => void;
      pollMs?: number;
    } = {},
  ): Promise<Json> {
    const sep = path.includes('?') ? '&' : '?';
    const { id } = await this.upload(`${path}${sep}async=true`, file, o.onUpload);
    for (;;) {
      const st = await this.call('GET', `/v1/registry/imports/${id}`);
      o.onStage?.(st.status, Number(st.staged ?? 0), Number(st.entries ?? 0));
      if (st.status === 'done') {
        const extra = st.result ? JSON.parse(st.result) : {};
        return {
          id,
          status: 'done',
          rows: st.rows_read,
          entries: st.entries,
          added: st.added,
          updated: st.updated,
          retired: st.retired,
          ...extra,
        };
      }
      if (st.status === 'failed' || st.status === 'interrupted')
        throw new ClientError(
          400,
          'ERR_IMPORT',
          `import ${id} ${st.status}: ${st.error ?? 'controller restarted'}`,
          st.error_field ?? undefined,
        );
      await new Promise((r) => setTimeout(r, o.pollMs ?? 1000));
    }
  }
}
