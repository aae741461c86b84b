/**
 * @module controller/http
 * Request-body helpers with limits: a JSON body read up to a byte limit (413 beyond it, 400 naming
 * the position of a syntax error), and an upload streamed to a private temp file up to its own limit
 * (for bulk imports, never held in memory whole).
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError } from './errors.js';

function tooLarge(limit: number): ApiError {
  return new ApiError(413, 'ERR_TOO_LARGE', `request body larger than the limit of ${limit} bytes`);
}

/** Refuse a declared Content-Length over `limit` before reading anything. */
function checkDeclared(req: Request, limit: number): void {
  const len = Number(req.headers.get('content-length') ?? NaN);
  if (Number.isFinite(len) && len > limit) throw tooLarge(limit);
}

/** Hand each chunk of the body to `onChunk`, cancelling the stream (413) once past `limit`; returns the byte count. */
async function eachChunk(
  req: Request,
  limit: number,
  onChunk: (chunk: Uint8Array) => void | Promise<void>,
): Promise<number> {
  if (!req.body) return 0;
  let n = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return n;
    n += value.length;
    if (n > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge(limit);
    }
    await onChunk(value);
  }
}

export async function readBody(req: Request, limit: number): Promise<Buffer> {
  checkDeclared(req, limit);
  const parts: Buffer[] = [];
  await eachChunk(req, limit, (value) => {
    parts.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  });
  return Buffer.concat(parts);
}

export async function readJson(req: Request, limit: number): Promise<unknown> {
  const ct = req.headers.get('content-type') ?? '';
  if (ct && !ct.includes('json'))
    throw new ApiError(415, 'ERR_CONTENT_TYPE', `expected application/json, got ${ct}`);
  const text = (await readBody(req, limit)).toString('utf8');
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch (e) {
    const m = /position (\d+)/.exec((e as Error).message);
    let where = '';
    if (m) {
      const pos = Number(m[1]);
      const before = text.slice(0, pos);
      const line = before.split('\n').length;
      const col = pos - before.lastIndexOf('\n');
      where = ` at line ${line} column ${col}`;
    }
    throw new ApiError(400, 'ERR_BAD_JSON', `body: malformed JSON${where}: ${(e as Error).message}`, 'body');
  }
}

/** Stream the body to a temp file; returns its path and a cleanup function. */
export async function bodyToFile(
  req: Request,
  limit: number,
): Promise<{ path: string; size: number; cleanup: () => Promise<void> }> {
  checkDeclared(req, limit);
  const dir = await mkdtemp(join(tmpdir(), 'chokepoint-upload-'));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  const path = join(dir, 'upload');
  const out = createWriteStream(path, { mode: 0o600 });
  try {
    const n = await eachChunk(req, limit, async (value) => {
      if (!out.write(value)) await new Promise<void>((r) => out.once('drain', () => r()));
    });
    await new Promise<void>((res, rej) => out.end((e?: Error | null) => (e ? rej(e) : res())));
    return { path, size: n, cleanup };
  } catch (e) {
    out.destroy();
    await cleanup();
    throw e;
  }
}
