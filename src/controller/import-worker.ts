/**
 * @module controller/import-worker
 * Worker-thread entry of controller/import-offload: opens its own connection to the controller's
 * database (SQLite file or PostgreSQL) and runs `runImport` there. On SQLite: Each write or transaction first asks the main thread for
 * its handle's lock (message `lock` → `granted`, then `unlock`), so the two connections never wait on
 * each other inside SQLite.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DEFAULT_CONFIG, type Ctx } from './context.js';
import { PgDb, SqliteDb, type Db, type Queryable, type Row } from './db.js';
import { ApiError } from './errors.js';
import { runImport } from './imports.js';
import type { FromWorker, WorkerJob } from './import-offload.js';

const job = workerData as WorkerJob;
const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);

let seq = 0;
const waiting = new Map<number, () => void>();
port.on('message', (m: { t: string; n: number }) => {
  if (m.t === 'granted') {
    waiting.get(m.n)?.();
    waiting.delete(m.n);
  }
});
/** Take the main handle's lock; resolves to its release. */
function lock(): Promise<() => void> {
  const n = ++seq;
  return new Promise((resolve) => {
    waiting.set(n, () => resolve(() => post({ t: 'unlock', n })));
    post({ t: 'lock', n });
  });
}

/** The worker's connection, every write under the main handle's lock. */
class LockedDb implements Db {
  readonly kind = 'sqlite' as const;
  readonly forUpdate = '';
  constructor(private readonly inner: SqliteDb) {}
  all<T = Row>(sql: string, params?: unknown[]): Promise<T[]> {
    return this.inner.all<T>(sql, params);
  }
  get<T = Row>(sql: string, params?: unknown[]): Promise<T | undefined> {
    return this.inner.get<T>(sql, params);
  }
  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    const release = await lock();
    try {
      return await fn();
    } finally {
      release();
    }
  }
  run(sql: string, params?: unknown[]): Promise<number> {
    return this.locked(() => this.inner.run(sql, params));
  }
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    return this.locked(() => this.inner.tx(fn));
  }
  exec(sql: string): Promise<void> {
    return this.locked(() => this.inner.exec(sql));
  }
  async listen(): Promise<void> {}
  close(): Promise<void> {
    return this.inner.close();
  }
}

const db: Db = job.url ? new PgDb(job.url) : new LockedDb(new SqliteDb(job.file!));
const ctx = { db, config: { ...DEFAULT_CONFIG, importChunk: job.importChunk } } as unknown as Ctx;
try {
  const result = await runImport(ctx, job.path, null, job.opts, job.actor, job.id ? { id: job.id } : {});
  post({ t: 'done', result });
} catch (e) {
  const x = e as Error & { code?: string };
  post(
    e instanceof ApiError
      ? { t: 'error', status: e.status, code: e.code, message: e.message, field: e.field }
      : { t: 'error', code: x.code, message: x.message ?? String(e) },
  );
} finally {
  await db.close();
}
