/**
 * @module controller/db
 * One storage interface over two engines: embedded SQLite (better-sqlite3, WAL, a file in the data
 * directory) and PostgreSQL (pg pool). SQL is written once in the portable subset with `$1…$n`
 * placeholders; for SQLite they are rewritten to positional `?`. Transactions run one at a time per
 * process on SQLite (BEGIN IMMEDIATE; other callers wait for the connection) and on a dedicated pooled
 * client on PostgreSQL. Integers come back as JS numbers on both (BIGINT parsed), byte columns as Buffer.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';

export type Row = Record<string, unknown>;

/** What a query runs on: the database, or one transaction. */
export interface Queryable {
  all<T = Row>(sql: string, params?: unknown[]): Promise<T[]>;
  get<T = Row>(sql: string, params?: unknown[]): Promise<T | undefined>;
  /** Returns the number of rows changed. */
  run(sql: string, params?: unknown[]): Promise<number>;
}

export interface Db extends Queryable {
  readonly kind: 'sqlite' | 'postgres';
  /** Run `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /** Run a script of several statements (migrations). */
  exec(sql: string): Promise<void>;
  /**
   * Subscribe to a cross-process signal (PostgreSQL LISTEN; in-process only on SQLite). On
   * PostgreSQL the listening connection is re-opened when it is lost (a server restart), and then
   * every subscriber is called once with the payload `''`: a signal may have been missed meanwhile.
   */
  listen(channel: string, fn: (payload: string) => void): Promise<void>;
  /** `SELECT … FOR UPDATE` where the engine has it (PostgreSQL), nothing on SQLite. */
  readonly forUpdate: string;
  close(): Promise<void>;
}

/** Rewrite `$n` placeholders to `?` and order the parameters to match. */
export function toPositional(sql: string, params: unknown[]): { sql: string; params: unknown[] } {
  const out: unknown[] = [];
  const text = sql.replace(/\$(\d+)/g, (_m, n: string) => {
    out.push(params[Number(n) - 1]);
    return '?';
  });
  return { sql: text, params: out };
}

function sqliteValue(v: unknown): unknown {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v === undefined) return null;
  return v;
}

class Mutex {
  private tail: Promise<void> = Promise.resolve();
  lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const prev = this.tail;
    this.tail = prev.then(() => next);
    return prev.then(() => release);
  }
}

export class SqliteDb implements Db {
  readonly kind = 'sqlite' as const;
  readonly forUpdate = '';
  readonly db: Database.Database;
  private readonly mutex = new Mutex();
  private inTx = false;
  private readonly stmts = new Map<string, Database.Statement>();
  private readonly listeners = new Map<string, ((p: string) => void)[]>();
  /** set while another connection (the import worker) writes under this handle's lock: {@link hold} */
  private held = false;
  private released: Promise<void> | null = null;
  private reader: Database.Database | null = null;
  private readonly readerStmts = new Map<string, Database.Statement>();

  constructor(readonly file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 10000');
    this.db.pragma('foreign_keys = ON');
    // a 10^6-row import touches every page of the entries indexes: keep them in memory
    this.db.pragma('cache_size = -262144');
    this.db.pragma('temp_store = MEMORY');
  }

  private stmt(sql: string): Database.Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      if (this.stmts.size > 500) this.stmts.clear();
      this.stmts.set(sql, s);
    }
    return s;
  }

  private q(): Queryable {
    return {
      all: async <T>(sql: string, params: unknown[] = []) => {
        const p = toPositional(sql, params);
        return this.stmt(p.sql).all(...p.params.map(sqliteValue)) as T[];
      },
      get: async <T>(sql: string, params: unknown[] = []) => {
        const p = toPositional(sql, params);
        return this.stmt(p.sql).get(...p.params.map(sqliteValue)) as T | undefined;
      },
      run: async (sql: string, params: unknown[] = []) => {
        const p = toPositional(sql, params);
        const s = this.stmt(p.sql);
        if (s.reader) {
          s.all(...p.params.map(sqliteValue));
          return 0;
        }
        return s.run(...p.params.map(sqliteValue)).changes;
      },
    };
  }

  private async outside<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    const release = await this.mutex.lock();
    try {
      return await fn(this.q());
    } finally {
      release();
    }
  }

  all<T = Row>(sql: string, params?: unknown[]): Promise<T[]> {
    const r = this.held ? this.readNow(sql, params, true) : undefined;
    if (r) return Promise.resolve(r.rows as T[]);
    return this.outside((q) => q.all<T>(sql, params));
  }
  get<T = Row>(sql: string, params?: unknown[]): Promise<T | undefined> {
    const r = this.held ? this.readNow(sql, params, false) : undefined;
    if (r) return Promise.resolve(r.rows as T | undefined);
    return this.outside((q) => q.get<T>(sql, params));
  }

  /**
   * Hold this handle's lock for another connection to the same file (the import worker,
   * controller/import-offload): no transaction or write of this handle runs until the release, so
   * neither side ever busy-waits on the other (a synchronous wait would stall the event loop);
   * meanwhile read-only statements outside a transaction are answered at once by a read-only
   * connection (WAL: they see the last committed state).
   */
  async hold(): Promise<() => void> {
    const release = await this.mutex.lock();
    this.held = true;
    let freed!: () => void;
    this.released = new Promise<void>((r) => (freed = r));
    return () => {
      this.held = false;
      this.released = null;
      release();
      freed();
    };
  }

  /** Null when nothing holds the handle, else a promise of the release ({@link hold}). */
  get heldUntil(): Promise<void> | null {
    return this.held ? this.released : null;
  }

  /** A read-only statement on the reader connection, or undefined when `sql` writes. */
  private readNow(sql: string, params: unknown[] | undefined, all: boolean): { rows: unknown } | undefined {
    const p = toPositional(sql, params ?? []);
    let s = this.readerStmts.get(p.sql);
    if (!s) {
      this.reader ??= new Database(this.file, { readonly: true, fileMustExist: true });
      const w = this.stmt(p.sql); // the main connection's cached statement says whether it writes
      if (!w.readonly || !w.reader) return undefined;
      s = this.reader.prepare(p.sql);
      if (this.readerStmts.size > 200) this.readerStmts.clear();
      this.readerStmts.set(p.sql, s);
    }
    const v = p.params.map(sqliteValue);
    return { rows: all ? s.all(...v) : s.get(...v) };
  }
  run(sql: string, params?: unknown[]): Promise<number> {
    return this.outside((q) => q.run(sql, params));
  }

  async tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    const release = await this.mutex.lock();
    try {
      if (this.inTx) throw new Error('nested transaction');
      this.db.exec('BEGIN IMMEDIATE');
      this.inTx = true;
      try {
        const r = await fn(this.q());
        this.db.exec('COMMIT');
        return r;
      } catch (e) {
        this.db.exec('ROLLBACK');
        throw e;
      } finally {
        this.inTx = false;
      }
    } finally {
      release();
    }
  }

  async exec(sql: string): Promise<void> {
    await this.outside(async () => this.db.exec(sql));
  }

  async listen(channel: string, fn: (payload: string) => void): Promise<void> {
    const l = this.listeners.get(channel) ?? [];
    l.push(fn);
    this.listeners.set(channel, l);
  }

  /** In-process delivery of a signal (SQLite has one controller process). */
  emit(channel: string, payload: string): void {
    for (const fn of this.listeners.get(channel) ?? []) fn(payload);
  }

  async close(): Promise<void> {
    this.reader?.close();
    this.db.close();
  }
}

const pgTypes = {
  getTypeParser(oid: number, format?: string) {
    // int8 (20) and numeric (1700) as numbers: our counters and timestamps stay below 2^53
    if (oid === 20 || oid === 1700) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

export class PgDb implements Db {
  readonly kind = 'postgres' as const;
  readonly forUpdate = ' FOR UPDATE';
  readonly pool: pg.Pool;
  private listener: pg.Client | null = null;
  private readonly listeners = new Map<string, ((p: string) => void)[]>();
  private closing = false;
  private relistenTimer: NodeJS.Timeout | null = null;

  constructor(readonly url: string) {
    this.pool = new pg.Pool({ connectionString: url, max: 10, types: pgTypes as pg.CustomTypesConfig });
    this.pool.on('error', () => {
      /* idle client errors (server restart) are reported on the next query */
    });
  }

  private static q(c: pg.Pool | pg.PoolClient): Queryable {
    return {
      all: async <T>(sql: string, params: unknown[] = []) => (await c.query(sql, params)).rows as T[],
      get: async <T>(sql: string, params: unknown[] = []) =>
        (await c.query(sql, params)).rows[0] as T | undefined,
      run: async (sql: string, params: unknown[] = []) => (await c.query(sql, params)).rowCount ?? 0,
    };
  }

  all<T = Row>(sql: string, params?: unknown[]): Promise<T[]> {
    return PgDb.q(this.pool).all<T>(sql, params);
  }
  get<T = Row>(sql: string, params?: unknown[]): Promise<T | undefined> {
    return PgDb.q(this.pool).get<T>(sql, params);
  }
  run(sql: string, params?: unknown[]): Promise<number> {
    return PgDb.q(this.pool).run(sql, params);
  }

  async tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      try {
        const r = await fn(PgDb.q(c));
        await c.query('COMMIT');
        return r;
      } catch (e) {
        await c.query('ROLLBACK').catch(() => {});
        throw e;
      }
    } finally {
      c.release();
    }
  }

  async exec(sql: string): Promise<void> {
    await this.pool.query(sql);
  }

  async listen(channel: string, fn: (payload: string) => void): Promise<void> {
    const l = this.listeners.get(channel) ?? [];
    l.push(fn);
    this.listeners.set(channel, l);
    if (!/^[a-z_]+$/.test(channel)) throw new Error(`bad channel name ${channel}`);
    if (!this.listener) await this.connectListener();
    else await this.listener.query(`LISTEN ${channel}`);
  }

  /** Open the listening connection and LISTEN on every subscribed channel. */
  private async connectListener(): Promise<void> {
    const c = new pg.Client({ connectionString: this.url });
    c.on('error', () => {
      /* a lost connection also ends it: handled on 'end' */
    });
    await c.connect();
    c.on('notification', (n) => {
      for (const f of this.listeners.get(n.channel) ?? []) f(n.payload ?? '');
    });
    c.on('end', () => {
      if (this.listener !== c) return;
      this.listener = null;
      this.relisten(0);
    });
    this.listener = c;
    try {
      for (const ch of this.listeners.keys()) await c.query(`LISTEN ${ch}`);
    } catch (e) {
      this.listener = null;
      await c.end().catch(() => {});
      throw e;
    }
  }

  /** Re-open a lost listening connection (backoff 250 ms → 30 s), then tell every subscriber. */
  private relisten(attempt: number): void {
    if (this.closing) return;
    this.relistenTimer = setTimeout(
      () => {
        this.relistenTimer = null;
        this.connectListener().then(
          () => {
            for (const fns of this.listeners.values()) for (const f of fns) f('');
          },
          () => this.relisten(attempt + 1),
        );
      },
      Math.min(30_000, 250 * 2 ** attempt),
    );
    this.relistenTimer.unref();
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.relistenTimer) clearTimeout(this.relistenTimer);
    const l = this.listener;
    this.listener = null;
    if (l) await l.end().catch(() => {});
    await this.pool.end();
  }
}

export interface OpenOptions {
  /** postgres://… ; when absent, SQLite in `dataDir`. */
  databaseUrl?: string | null;
  dataDir?: string;
}

export function openDb(o: OpenOptions): Db {
  if (o.databaseUrl) return new PgDb(o.databaseUrl);
  const dir = o.dataDir ?? './chokepoint-data';
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return new SqliteDb(join(dir, 'controller.db'));
}
