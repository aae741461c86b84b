/**
 * @module controller/status-write
 * Storing a box's status report (`POST /v1/status`) in `nodes`. While a registry import's apply
 * transaction holds the SQLite handle (controller/import-offload; seconds at 10^6 entries) a report
 * is not kept waiting: it is answered at once (`deferred: true`) and written when the handle is
 * released — the latest report of each node, since a later one replaces an earlier one anyway. A
 * controller that dies meanwhile loses only those reports, which the boxes send again on their next
 * interval.
 */
import { SqliteDb, type Db } from './db.js';

const UPSERT = `INSERT INTO nodes (labels, active_version, last_download, last_activation, errors, counters, last_seen, addr, name, traffic) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)
         ON CONFLICT (name) DO UPDATE SET labels = excluded.labels, active_version = excluded.active_version, last_download = excluded.last_download,
           last_activation = excluded.last_activation, errors = excluded.errors, counters = excluded.counters, last_seen = excluded.last_seen, addr = excluded.addr,
           traffic = excluded.traffic`;

/**
 * Reports deferred at most (distinct nodes; each row holds up to 64 KiB of `traffic`): past it a
 * report waits for the release like any write, so a flood of node names cannot grow memory.
 */
export const MAX_DEFERRED = 10_000;

/** node → the latest deferred report's row values, per database handle. */
const pending = new WeakMap<Db, Map<string, unknown[]>>();

/**
 * Write one report's row (`vals` in UPSERT's order). Returns true when written now, false when
 * deferred until the handle's release.
 */
export async function writeStatus(db: Db, node: string, vals: unknown[]): Promise<boolean> {
  const until = db instanceof SqliteDb ? db.heldUntil : null;
  if (!until) {
    await db.run(UPSERT, vals);
    return true;
  }
  let m = pending.get(db);
  if (m && m.size >= MAX_DEFERRED && !m.has(node)) {
    await db.run(UPSERT, vals); // queued behind the hold: written (and answered) after it
    return true;
  }
  if (!m) {
    const batch = new Map<string, unknown[]>();
    m = batch;
    pending.set(db, batch);
    void until.then(async () => {
      pending.delete(db);
      await db
        .tx(async (q) => {
          for (const v of batch.values()) await q.run(UPSERT, v);
        })
        .catch(() => {
          /* closed meanwhile: the boxes report again */
        });
    });
  }
  m.delete(node);
  m.set(node, vals);
  return false;
}
