/**
 * @module controller/import-offload
 * A registry import on embedded SQLite runs in a worker thread (controller/import-worker) with its
 * own connection to the same database file, so parsing a 10^6-line dump and the one big apply
 * statement do not stall the controller's event loop (measured: the longest /v1/health answer during
 * a 10^6-name import was 12.9 s in-process). Every write of the worker takes the main handle's lock
 * first ({@link SqliteDb.hold}): the controller's own writes wait for it asynchronously and its
 * read-only queries are answered meanwhile from the last committed state. The import itself is the
 * one implementation, controller/imports `runImport`. On PostgreSQL the worker has its own pool and
 * no lock (the server handles concurrency); parsing the dump off the loop is what it buys there.
 * In-memory databases (and the TypeScript sources under tsx) run it in-process.
 */
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import type { Ctx } from './context.js';
import { PgDb, SqliteDb } from './db.js';
import { ApiError } from './errors.js';
import { runImport, type ImportOptions, type ImportResult } from './imports.js';

/** What the worker is given (structured-cloned). */
export interface WorkerJob {
  /** SQLite file, or (`url`) the PostgreSQL database */
  file?: string;
  url?: string;
  path: string;
  opts: ImportOptions;
  actor: string;
  id?: string;
  importChunk: number;
}

/** Messages from the worker. */
export type FromWorker =
  | { t: 'lock'; n: number }
  | { t: 'unlock'; n: number }
  | { t: 'done'; result: ImportResult }
  | { t: 'error'; status?: number; code?: string; message: string; field?: string };

const WORKER = new URL('./import-worker.js', import.meta.url);

/** Imports run in a worker thread by this process (for tests and diagnostics). */
export const offloadStats = { workers: 0 };

/** True when the worker can run here (compiled JS beside this module, a file-backed SQLite or PostgreSQL). */
function canOffload(ctx: Ctx): boolean {
  if (!fileURLToPath(import.meta.url).endsWith('.js')) return false;
  if (ctx.db instanceof PgDb) return true;
  return ctx.db instanceof SqliteDb && ctx.db.file !== ':memory:' && ctx.db.file !== '';
}

/** Run one import (see `runImport`), in a worker thread where {@link canOffload}. */
export async function importInBackground(
  ctx: Ctx,
  path: string,
  opts: ImportOptions,
  actor: string,
  id?: string,
): Promise<ImportResult> {
  if (!canOffload(ctx)) return runImport(ctx, path, null, opts, actor, id ? { id } : {});
  const db = ctx.db;
  const job: WorkerJob = {
    ...(db instanceof PgDb ? { url: db.url } : { file: (db as SqliteDb).file }),
    path,
    opts,
    actor,
    id,
    importChunk: ctx.config.importChunk,
  };
  const w = new Worker(WORKER, { workerData: job });
  offloadStats.workers++;
  const held = new Map<number, () => void>();
  try {
    return await new Promise<ImportResult>((resolve, reject) => {
      w.on('message', (m: FromWorker) => {
        if (m.t === 'lock')
          void (db as SqliteDb).hold().then((release) => {
            held.set(m.n, release);
            w.postMessage({ t: 'granted', n: m.n });
          });
        else if (m.t === 'unlock') {
          held.get(m.n)?.();
          held.delete(m.n);
        } else if (m.t === 'done') resolve(m.result);
        else
          reject(
            m.status
              ? new ApiError(m.status as ApiError['status'], m.code ?? 'ERR_IMPORT', m.message, m.field)
              : Object.assign(new Error(m.message), m.code ? { code: m.code } : {}),
          );
      });
      w.on('error', reject);
      w.on('exit', (code) => reject(new Error(`import worker exited (code ${code}) before answering`)));
    });
  } finally {
    // a worker that died holding the lock must not keep the controller's writes waiting
    for (const release of held.values()) release();
    held.clear();
    await w.terminate();
  }
}
