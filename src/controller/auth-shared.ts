/**
 * @module controller/auth-shared
 * The failed-authentication limit across controller replicas. Each replica keeps its own
 * {@link FailureLimiter} (the fast path: a blocked client is refused without touching the
 * database); on PostgreSQL every failure is also counted in `auth_failures` (one fixed window per
 * client, `max` failures in `windowMs` over all replicas), and when that count reaches the limit the
 * replica that saw the failure blocks the client for the rest of the window, so N replicas no
 * longer allow N × `max` guesses. Only failures write; a blocked client's further attempts are
 * refused in memory. SQLite has one controller process: nothing to share.
 */
import { clientKey, type FailureLimiter } from './auth.js';
import type { Db } from './db.js';

/** Count one failure of `addr` cluster-wide; blocks it locally when the shared limit is reached. */
export async function shareFailure(
  db: Db,
  limiter: FailureLimiter,
  addr: string,
  now = Date.now(),
): Promise<void> {
  if (db.kind !== 'postgres') return;
  const client = clientKey(addr);
  const r = await db
    .get<{ window_start: number; count: number }>(
      `INSERT INTO auth_failures (client, window_start, count) VALUES ($1, $2, 1)
       ON CONFLICT (client) DO UPDATE SET
         count = CASE WHEN auth_failures.window_start <= $2 - $3 THEN 1 ELSE auth_failures.count + 1 END,
         window_start = CASE WHEN auth_failures.window_start <= $2 - $3 THEN $2 ELSE auth_failures.window_start END
       RETURNING window_start, count`,
      [client, now, limiter.windowMs],
    )
    .catch(() => undefined); // the database is down: the local limit still holds
  if (r && Number(r.count) >= limiter.max)
    limiter.blockUntil(addr, Number(r.window_start) + limiter.windowMs);
}

/** Forget windows that ended (called from the controller's periodic housekeeping). */
export async function pruneFailures(db: Db, windowMs: number, now = Date.now()): Promise<number> {
  if (db.kind !== 'postgres') return 0;
  return db.run('DELETE FROM auth_failures WHERE window_start <= $1', [now - windowMs]);
}
