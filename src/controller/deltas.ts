/**
 * @module controller/deltas
 * Serves deltas between two stored list blobs (bundle/delta `makeDelta`), for `GET
 * /v1/deltas/FROM/TO`. A delta is a pure function of its two content hashes, so the answer is
 * immutable and any HTTP cache can keep it; the last few computed ones are also kept in memory (a
 * fleet asks for the same pair once per box). Null when a blob is unknown or not a sorted list.
 */
import { makeDelta } from '../bundle/delta.js';
import type { Queryable } from './db.js';

const CACHE_MAX = 16;
/** One cache per database handle: two controllers in one process never share deltas. */
const caches = new WeakMap<Queryable, Map<string, Buffer | null>>();

export async function deltaBetween(q: Queryable, from: string, to: string): Promise<Buffer | null> {
  let cache = caches.get(q);
  if (!cache) caches.set(q, (cache = new Map()));
  const key = `${from}-${to}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const a = await q.get<{ data: Buffer }>('SELECT data FROM blobs WHERE sha256 = $1', [from]);
  const b = await q.get<{ data: Buffer }>('SELECT data FROM blobs WHERE sha256 = $1', [to]);
  if (!a || !b) return null; // unknown now may be stored later: not cached
  const d = makeDelta(Buffer.from(a.data), Buffer.from(b.data));
  cache.set(key, d);
  if (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value!);
  return d;
}
