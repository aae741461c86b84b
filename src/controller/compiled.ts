/**
 * @module controller/compiled
 * The compiled registry a bundle carries: the policy version's files (main first, then the manifest's
 * order, under the boxes' bundle root) compiled once into the policy/compiled format with every rule
 * indexed (`now: 0`; a box's loader drops the rules expired by its own clock) and a fixed compile
 * stamp, so the same version gives the same bytes. Stored as a content-addressed blob beside the
 * text files and listed in the signed manifest (`compiled`) with its size and SHA-256. Kept per
 * process by content, so re-signing does not compile 10^6 names again.
 *
 * The compile itself (seconds for 10^6 names) runs in a worker thread (controller/compile-worker)
 * when the text is large, so the event loop keeps answering; and the bundle paths warm this cache
 * before their transaction (controller/bundles `warmCompiled`), so no transaction — which on SQLite
 * holds the one connection — is open while it runs. A compile already under way for the same content
 * is joined, not repeated.
 */
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { BUNDLE_ROOT, type FileMeta } from '../bundle/verify.js';
import { compileFiles } from '../policy/compiled.js';
import { sha256 } from './content.js';
import type { Queryable } from './db.js';
import { readFiles } from './blobs.js';

/** Name of the compiled file in a manifest's `compiled` entry. */
export const COMPILED_NAME = 'registry.compiled';

/** Compiled entries by the content of the version's file list (a few kept). */
const cache = new Map<string, FileMeta>();
/**
 * Content that did not compile (a few kept): the bundle paths warm the cache on every rollout tick,
 * and a version whose text does not compile must not be compiled again each time.
 */
const failed = new Set<string>();
/** Compiles under way, by the same key: a second caller joins the first. */
const inflight = new Map<string, Promise<Uint8Array>>();

/** What the compile worker is given (structured-cloned) and what it answers. */
export interface CompileJob {
  files: [string, string][];
  opts: { now: number; compiledAt: string; shared: false };
}
export type CompileReply = { ok: true; bytes: Uint8Array } | { ok: false; message: string };

/**
 * Where the compile runs: text of at least `offThreadChars` characters goes to a worker thread (when
 * the compiled JS of the worker is beside this module: not under tsx); smaller text, where a worker's
 * start-up would cost more than the compile, in-process. `beforeCompile` is awaited first (tests:
 * hold a compile at a known point).
 */
export const compileSettings: { offThreadChars: number; beforeCompile: (() => Promise<void>) | null } = {
  offThreadChars: 1 << 20,
  beforeCompile: null,
};
/** Compiles run, and how many of them in a worker thread (for tests and diagnostics). */
export const compileStats = { compiles: 0, offThread: 0 };

const WORKER = new URL('./compile-worker.js', import.meta.url);

async function compileText(files: [string, string][]): Promise<Uint8Array> {
  if (compileSettings.beforeCompile) await compileSettings.beforeCompile();
  compileStats.compiles++;
  const opts = { now: 0, compiledAt: '1970-01-01T00:00:00.000Z', shared: false } as const;
  let chars = 0;
  for (const [, t] of files) chars += t.length;
  if (chars < compileSettings.offThreadChars || !fileURLToPath(import.meta.url).endsWith('.js'))
    return compileFiles(files, opts);
  compileStats.offThread++;
  const job: CompileJob = { files, opts };
  const w = new Worker(WORKER, { workerData: job });
  try {
    return await new Promise<Uint8Array>((resolve, reject) => {
      w.once('message', (m: CompileReply) => (m.ok ? resolve(m.bytes) : reject(new Error(m.message))));
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`compile worker exited with code ${code}`)));
    });
  } finally {
    void w.terminate();
  }
}

/**
 * The compiled file of a version's text files, stored as a blob; null when the text does not compile
 * (the boxes then compile the text themselves and refuse it as before).
 */
export async function compiledFor(
  q: Queryable,
  main: string,
  files: FileMeta[],
  log?: (msg: string) => void,
): Promise<FileMeta | null> {
  const key = sha256(JSON.stringify([main, files.map((f) => f.sha256)]));
  if (failed.has(key)) return null; // the same content does not compile (versions are immutable)
  const hit = cache.get(key);
  if (hit) {
    const have = await q.get<{ n: number }>('SELECT 1 AS n FROM blobs WHERE sha256 = $1', [hit.sha256]);
    if (have) return hit;
  }
  const data = await readFiles(q, files);
  // compiled only from the content the manifest lists: a blob altered in storage gives no compiled
  // file (the boxes refuse that file anyway), and nothing wrong is cached
  for (const f of files)
    if (sha256(data.get(f.name)!) !== f.sha256) {
      log?.(`bundle: no compiled registry (${f.name} in storage does not match its hash)`);
      return null;
    }
  const text: [string, string][] = [];
  const m = data.get(main);
  if (!m) return null;
  text.push([posix.join(BUNDLE_ROOT, main), m.toString('utf8')]);
  for (const f of files)
    if (f.name !== main) text.push([posix.join(BUNDLE_ROOT, f.name), data.get(f.name)!.toString('utf8')]);
  let bytes: Uint8Array;
  try {
    let p = inflight.get(key);
    if (!p) {
      p = compileText(text).finally(() => inflight.delete(key));
      inflight.set(key, p);
    }
    bytes = await p;
  } catch (e) {
    log?.(`bundle: no compiled registry (${(e as Error).message})`);
    if (failed.size >= 64) failed.clear();
    failed.add(key);
    return null;
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const h = sha256(buf);
  await q.run('INSERT INTO blobs (sha256, size, data) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING', [
    h,
    buf.length,
    buf,
  ]);
  const meta: FileMeta = { name: COMPILED_NAME, sha256: h, size: buf.length };
  if (cache.size >= 4) cache.delete(cache.keys().next().value!);
  cache.set(key, meta);
  return meta;
}
