/**
 * @module fleet/client
 * The box's side of the controller's box-facing API (docs/CONTROLLER.md): `GET /v1/bundle` with
 * If-None-Match + `wait` (long-poll), `GET /v1/blobs/SHA256` read with a byte cap (a file larger than
 * its manifest says is cut off, not buffered: no endless-data attack; the bundle answer and error
 * answers are capped the same way), `POST /v1/status`. Every
 * request has a deadline and can be aborted (stop).
 */
import { ChokepointError } from '../util/errors.js';

export class FleetNetError extends ChokepointError {}

/** Largest bundle answer (the envelope: manifest + signatures + trust document) read, in bytes. */
export const MAX_BUNDLE_ANSWER = 8 * 1024 * 1024;
/** Largest error answer read for its message, in bytes (the rest is dropped). */
const MAX_ERROR_ANSWER = 64 * 1024;

/** Read a body up to `max` + 1 bytes: `over` says there was more (the rest is not read). */
async function readCapped(r: Response, max: number): Promise<{ data: Buffer; over: boolean }> {
  const chunks: Buffer[] = [];
  let n = 0;
  if (!r.body) return { data: Buffer.alloc(0), over: false };
  const reader = r.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    chunks.push(Buffer.from(value));
    if (n > max) {
      await reader.cancel();
      return { data: Buffer.concat(chunks), over: true };
    }
  }
  return { data: Buffer.concat(chunks), over: false };
}

export interface BundleAnswer {
  status: 200 | 304 | 404;
  etag: string | null;
  body: unknown;
}

export class ControllerClient {
  private readonly base: string;
  constructor(
    url: string,
    private readonly token: string,
  ) {
    this.base = url.replace(/\/+$/, '');
  }

  private async req(
    path: string,
    init: RequestInit,
    deadlineMs: number,
    signal?: AbortSignal,
  ): Promise<Response> {
    const sig = signal
      ? AbortSignal.any([signal, AbortSignal.timeout(deadlineMs)])
      : AbortSignal.timeout(deadlineMs);
    try {
      return await fetch(this.base + path, {
        ...init,
        headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${this.token}` },
        signal: sig,
      });
    } catch (e) {
      const c = (e as { cause?: { code?: string } }).cause?.code;
      throw new FleetNetError(
        'ERR_FLEET_UNREACHABLE',
        `controller ${this.base}: ${c ?? (e as Error).message}`,
        {
          cause: e,
        },
      );
    }
  }

  private async fail(r: Response, what: string): Promise<never> {
    let msg = '';
    try {
      const { data, over } = await readCapped(r, MAX_ERROR_ANSWER);
      if (!over) {
        const j = JSON.parse(data.toString('utf8')) as { error?: { code?: string; message?: string } };
        msg = `${j.error?.code ?? ''} ${j.error?.message ?? ''}`.trim();
      }
    } catch {
      /* not JSON, or the connection failed: the status says enough */
    }
    throw new FleetNetError('ERR_FLEET_HTTP', `${what}: HTTP ${r.status}${msg ? ` (${msg})` : ''}`);
  }

  /** The current bundle envelope, or 304 when `etag` is still current after waiting up to `waitS`. */
  async bundle(etag: string | null, waitS: number, signal?: AbortSignal): Promise<BundleAnswer> {
    const headers: Record<string, string> = {};
    if (etag) headers['if-none-match'] = etag;
    const r = await this.req(`/v1/bundle?wait=${waitS}`, { headers }, (waitS + 15) * 1000, signal);
    if (r.status === 304) return { status: 304, etag: r.headers.get('etag') ?? etag, body: null };
    if (r.status === 404) {
      await r.body?.cancel();
      return { status: 404, etag: null, body: null };
    }
    if (r.status !== 200) return this.fail(r, 'GET /v1/bundle');
    let body: unknown;
    let got: { data: Buffer; over: boolean };
    try {
      got = await readCapped(r, MAX_BUNDLE_ANSWER);
    } catch (e) {
      throw new FleetNetError('ERR_FLEET_UNREACHABLE', `GET /v1/bundle: ${(e as Error).message}`, {
        cause: e,
      });
    }
    if (got.over)
      throw new FleetNetError(
        'ERR_FLEET_HTTP',
        `GET /v1/bundle: the answer is larger than ${MAX_BUNDLE_ANSWER} bytes`,
      );
    try {
      body = JSON.parse(got.data.toString('utf8'));
    } catch {
      throw new FleetNetError('ERR_FLEET_HTTP', 'GET /v1/bundle: the answer is not JSON');
    }
    return { status: 200, etag: r.headers.get('etag'), body };
  }

  /** A blob, read up to `maxBytes` + 1 (the caller checks the exact size and hash). */
  async blob(sha256: string, maxBytes: number, signal?: AbortSignal): Promise<Buffer> {
    const r = await this.req(`/v1/blobs/${sha256}`, {}, 120_000, signal);
    if (r.status !== 200) return this.fail(r, `GET /v1/blobs/${sha256.slice(0, 16)}…`);
    return (await readCapped(r, maxBytes)).data; // longer than the manifest says: the size check refuses it
  }

  async status(report: unknown, signal?: AbortSignal): Promise<void> {
    const r = await this.req(
      '/v1/status',
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(report) },
      15_000,
      signal,
    );
    if (r.status !== 200) return this.fail(r, 'POST /v1/status');
    await r.body?.cancel();
  }
}
