/**
 * @module controller/context
 * What every controller module works with: the database, the configuration (reference list, bundle
 * lifetime, limits), and the in-process signal bus that wakes long-polls (fed by PostgreSQL
 * LISTEN/NOTIFY from other replicas, or directly on SQLite).
 */
import { EventEmitter } from 'node:events';
import type { Db, Queryable } from './db.js';
import { SqliteDb } from './db.js';
import type { Reference } from '../policy/reference.js';

export interface ControllerConfig {
  /** Reference names for lint, blast radius and the diff (most important first). */
  reference: Reference;
  /** Bundle lifetime (ms); the controller re-signs when less than half of it is left. */
  bundleTtlMs: number;
  /** Largest JSON / policy body accepted (bytes). */
  bodyLimit: number;
  /** Largest bulk-import upload (bytes). */
  importLimit: number;
  /** Longest long-poll wait a client may ask for (s). */
  maxWaitS: number;
  /** Long-polls waiting at once, in total and per token; one more is refused with 503. */
  maxWaiters: { total: number; perToken: number };
  /** Rows per staged import chunk. */
  importChunk: number;
  /** Failed authentications allowed per client address and window before 429. */
  authFailures: { max: number; windowMs: number };
}

export const DEFAULT_CONFIG: Omit<ControllerConfig, 'reference'> = {
  bundleTtlMs: 7 * 86_400_000,
  bodyLimit: 16 * 1024 * 1024,
  importLimit: 1024 * 1024 * 1024,
  maxWaitS: 300,
  maxWaiters: { total: 10_000, perToken: 8 },
  importChunk: 20_000,
  authFailures: { max: 10, windowMs: 60_000 },
};

export const BUNDLE_CHANNEL = 'chokepoint_bundle';

export class Ctx {
  readonly events = new EventEmitter();
  /** Long-polls waiting now: in total, and per token id (entries removed at 0). */
  waiters = 0;
  readonly waitersByToken = new Map<number, number>();
  constructor(
    readonly db: Db,
    readonly config: ControllerConfig,
  ) {
    this.events.setMaxListeners(0);
  }

  /** Signal a new bundle: NOTIFY (delivered to every replica at commit) or in-process on SQLite. */
  async notifyBundle(q: Queryable, version: number): Promise<void> {
    if (this.db.kind === 'postgres')
      await q.run(`SELECT pg_notify('${BUNDLE_CHANNEL}', $1)`, [String(version)]);
    else {
      const db = this.db as SqliteDb;
      setImmediate(() => db.emit(BUNDLE_CHANNEL, String(version)));
    }
  }
}
