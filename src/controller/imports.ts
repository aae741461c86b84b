/**
 * @module controller/imports
 * Bulk import of a registry dump or list (every format `chokepoint registry import` reads, parsed by
 * the same importers) as a **sync** of one named source:
 * 1. the upload is parsed; a malformed line refuses the whole import (`file:line:column`), nothing
 *    is written;
 * 2. its entries are staged in chunks, each its own short transaction (so approvals and status
 *    reports interleave with a long import);
 * 3. one transaction applies the stage: new entries added, changed ones updated, entries of this
 *    source that are gone from the dump retired, the stage cleared, the import audited.
 * A controller killed during 1–2 leaves an `interrupted` import and an ignored stage (cleaned at the
 * next start); killed during 3 leaves the previous state (the transaction rolls back). Re-running the
 * same dump gives the same state as one uninterrupted run. An entry's `line` is where this source
 * first listed it (rows shift in every dump; a moved row is not a change).
 */
import { randomUUID } from 'node:crypto';
import { appendAudit } from './audit.js';
import type { Ctx } from './context.js';
import type { Queryable } from './db.js';
import { ApiError, badRequest } from './errors.js';
import { bumpRev, parseActionFields, parseExpires } from './registry.js';
import { sha256 } from './content.js';
import { IMPORT_FORMATS, ImportError, importFile, type ImportFormat } from '../policy/import/index.js';
import type { EntryProvenance, Imported } from '../policy/import/types.js';

export interface ImportOptions {
  format: ImportFormat;
  /** The source this dump replaces (sync key), e.g. `zi-dump`. */
  source: string;
  /** Name of the uploaded file, for messages. */
  filename: string;
  action: string;
  method: string | null;
  rate_bps: number | null;
  burst_bytes: number | null;
  expires: string | null;
  match?: 'exact' | 'suffix';
  skipUnsupported?: boolean;
  encoding?: string;
}

export function parseImportOptions(p: Record<string, string | undefined>): ImportOptions {
  const format = p.format as ImportFormat;
  if (!format || !IMPORT_FORMATS.includes(format))
    throw badRequest('format', `must be one of ${IMPORT_FORMATS.join(', ')}`);
  const source = p.source;
  if (!source || !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,100}$/.test(source) || source === 'manual')
    throw badRequest('source', "required: a name for this feed (letters, digits, . _ : -; not 'manual')");
  if (p.match !== undefined && p.match !== 'exact' && p.match !== 'suffix')
    throw badRequest('match', 'must be exact or suffix');
  return {
    format,
    source,
    filename: (p.filename ?? 'upload').replace(/[^\w.@+-]/g, '_').slice(0, 100) || 'upload',
    ...parseActionFields({ action: p.action, method: p.method, rate: p.rate, burst: p.burst }, ''),
    expires: parseExpires(p.expires, 'expires'),
    match: p.match as 'exact' | 'suffix' | undefined,
    skipUnsupported: p.skip_unsupported === 'true' || p.skip_unsupported === '1',
    encoding: p.encoding,
  };
}

/** Forget stages of imports that never finished (a controller killed mid-import). */
export async function cleanInterrupted(ctx: Ctx): Promise<number> {
  const rows = await ctx.db.all<{ id: string }>(
    "SELECT id FROM imports WHERE status IN ('parsing', 'staging', 'applying')",
  );
  for (const r of rows) {
    await ctx.db.tx(async (q) => {
      await q.run('DELETE FROM import_stage WHERE import_id = $1', [r.id]);
      await q.run("UPDATE imports SET status = 'interrupted', finished_at = $1 WHERE id = $2", [
        Date.now(),
        r.id,
      ]);
    });
  }
  return rows.length;
}

const CRASH_AFTER = Number(process.env.CHOKEPOINT_TEST_CRASH_AFTER_CHUNKS ?? 0);

/** Record a new import (status `parsing`); returns its id. */
export async function createImport(ctx: Ctx, o: ImportOptions, actor: string): Promise<string> {
  const id = randomUUID();
  await ctx.db.run(
    "INSERT INTO imports (id, source, format, status, started_at, created_by, options) VALUES ($1, $2, $3, 'parsing', $4, $5, $6)",
    [id, o.source, o.format, Date.now(), actor, JSON.stringify(o)],
  );
  return id;
}

interface StageRow {
  k: string;
  v: string;
  a: string | null;
  r: string | null;
  d: string | null;
  l: number;
}

async function stageChunk(ctx: Ctx, q: Queryable, id: string, rows: StageRow[]): Promise<void> {
  const json = JSON.stringify(rows);
  if (ctx.db.kind === 'postgres')
    await q.run(
      `INSERT INTO import_stage (import_id, kind, value, authority, reference, decided, line)
       SELECT $1, r.k, r.v, r.a, r.r, r.d, r.l FROM json_to_recordset($2::json) AS r(k text, v text, a text, r text, d text, l int)`,
      [id, json],
    );
  else
    await q.run(
      `INSERT INTO import_stage (import_id, kind, value, authority, reference, decided, line)
       SELECT $1, j.value ->> 'k', j.value ->> 'v', j.value ->> 'a', j.value ->> 'r', j.value ->> 'd', j.value ->> 'l' FROM json_each($2) AS j`,
      [id, json],
    );
}

function* stageRows(imp: Imported): Generator<StageRow> {
  const kinds: [string, Map<string, EntryProvenance>][] = [
    ['exact', imp.exact],
    ['suffix', imp.suffix],
    ['subdomains', imp.subdomains],
    ['cidr', imp.cidr],
  ];
  for (const [k, m] of kinds)
    for (const [v, p] of m)
      yield { k, v, a: p.authority ?? null, r: p.reference ?? null, d: p.decided ?? null, l: p.line };
}

export interface ImportResult {
  id: string;
  status: string;
  rows: number;
  entries: number;
  added: number;
  updated: number;
  retired: number;
  kept_other_source: number;
  notes: Record<string, number>;
  sha256: string;
}

/**
 * Import the uploaded file at `path` (already size-checked). `onProgress` gets (staged, total).
 * `failAfterChunks` (tests) throws after that many staged chunks, as a crash would.
 */
export async function runImport(
  ctx: Ctx,
  path: string,
  bytes: Buffer | null,
  o: ImportOptions,
  actor: string,
  hooks: { onProgress?: (staged: number, total: number) => void; failAfterChunks?: number; id?: string } = {},
): Promise<ImportResult> {
  const id = hooks.id ?? (await createImport(ctx, o, actor));
  const fail = async (status: string, err: string) =>
    ctx.db.tx(async (q) => {
      await q.run('DELETE FROM import_stage WHERE import_id = $1', [id]);
      await q.run('UPDATE imports SET status = $1, error = $2, finished_at = $3 WHERE id = $4', [
        status,
        err,
        Date.now(),
        id,
      ]);
    });
  let imp: Imported;
  let raw: Buffer;
  try {
    const r = await importFile(path, o.format, {
      match: o.match,
      skipUnsupported: o.skipUnsupported,
      encoding: o.encoding,
    });
    imp = r.imp;
    raw = bytes ?? r.bytes;
  } catch (e) {
    if (e instanceof ImportError) {
      const msg = `${o.filename}:${e.line}:${e.column}: ${e.detail}`;
      await fail('failed', msg);
      await ctx.db.run('UPDATE imports SET error_field = $1 WHERE id = $2', [
        `${o.filename}:${e.line}:${e.column}`,
        id,
      ]);
      throw new ApiError(400, 'ERR_IMPORT', msg, `${o.filename}:${e.line}:${e.column}`);
    }
    await fail('failed', (e as Error).message);
    throw e;
  }
  const total = imp.exact.size + imp.suffix.size + imp.subdomains.size + imp.cidr.size;
  await ctx.db.run("UPDATE imports SET status = 'staging', rows_read = $1, entries = $2 WHERE id = $3", [
    imp.rows,
    total,
    id,
  ]);
  try {
    let chunk: StageRow[] = [];
    let staged = 0;
    let chunks = 0;
    const flush = async () => {
      if (!chunk.length) return;
      const c = chunk;
      chunk = [];
      await ctx.db.tx((q) => stageChunk(ctx, q, id, c));
      staged += c.length;
      chunks++;
      await ctx.db.run('UPDATE imports SET staged = $1 WHERE id = $2', [staged, id]);
      hooks.onProgress?.(staged, total);
      if (hooks.failAfterChunks !== undefined && chunks >= hooks.failAfterChunks)
        throw Object.assign(new Error('simulated crash during staging'), { simulatedCrash: true });
      // test hook for the crash test: the process dies here as if killed (no cleanup runs)
      if (CRASH_AFTER > 0 && chunks >= CRASH_AFTER) process.kill(process.pid, 'SIGKILL');
      await new Promise((r) => setImmediate(r));
    };
    for (const r of stageRows(imp)) {
      chunk.push(r);
      if (chunk.length >= ctx.config.importChunk) await flush();
    }
    await flush();
    const digest = sha256(raw);
    if (ctx.db.kind === 'postgres') await ctx.db.run('ANALYZE import_stage');
    const result = await ctx.db.tx(async (q) => {
      await q.run("UPDATE imports SET status = 'applying' WHERE id = $1", [id]);
      const t = Date.now();
      const count = async () => Number((await q.get<{ n: number }>('SELECT COUNT(*) AS n FROM entries'))!.n);
      const before = await count();
      const others = await q.get(
        "SELECT 1 AS x FROM entries WHERE source <> $1 AND status = 'active' LIMIT 1",
        [o.source],
      );
      const kept = !others
        ? 0
        : Number(
            (await q.get<{ n: number }>(
              "SELECT COUNT(*) AS n FROM import_stage s JOIN entries e ON e.kind = s.kind AND e.value = s.value WHERE s.import_id = $1 AND e.status = 'active' AND e.source <> $2",
              [id, o.source],
            ))!.n,
          );
      const rev = await bumpRev(q);
      const changed = await q.run(
        `INSERT INTO entries (kind, value, action, method, rate_bps, burst_bytes, authority, reference, decided, expires, status, source, line, created_at, updated_at, created_rev, updated_rev)
         SELECT s.kind, s.value, CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS BIGINT), CAST($5 AS BIGINT), s.authority, s.reference, s.decided,
           CAST($6 AS TEXT), 'active', CAST($7 AS TEXT), s.line, CAST($8 AS BIGINT), CAST($8 AS BIGINT), CAST($9 AS BIGINT), CAST($9 AS BIGINT)
         FROM import_stage s WHERE s.import_id = $1 AND true
         ON CONFLICT (kind, value) DO UPDATE SET action = excluded.action, method = excluded.method, rate_bps = excluded.rate_bps,
           burst_bytes = excluded.burst_bytes, authority = excluded.authority, reference = excluded.reference, decided = excluded.decided,
           expires = excluded.expires, status = 'active', source = excluded.source,
           line = CASE WHEN entries.source = excluded.source THEN entries.line ELSE excluded.line END, updated_at = excluded.updated_at,
           updated_rev = excluded.updated_rev
         WHERE (entries.source = excluded.source OR entries.status = 'retired') AND (entries.status <> 'active' OR entries.source <> excluded.source
           OR entries.action <> excluded.action OR entries.method IS DISTINCT FROM excluded.method OR entries.rate_bps IS DISTINCT FROM excluded.rate_bps
           OR entries.burst_bytes IS DISTINCT FROM excluded.burst_bytes OR entries.expires IS DISTINCT FROM excluded.expires
           OR entries.authority IS DISTINCT FROM excluded.authority OR entries.reference IS DISTINCT FROM excluded.reference
           OR entries.decided IS DISTINCT FROM excluded.decided)`,
        [id, o.action, o.method, o.rate_bps, o.burst_bytes, o.expires, o.source, t, rev],
      );
      const added = (await count()) - before;
      const updated = changed - added;
      const retired = await q.run(
        `UPDATE entries SET status = 'retired', updated_at = $3, updated_rev = $4
         WHERE source = $2 AND status = 'active' AND NOT EXISTS (SELECT 1 FROM import_stage s WHERE s.import_id = $1 AND s.kind = entries.kind AND s.value = entries.value)`,
        [id, o.source, t, rev],
      );
      await q.run('DELETE FROM import_stage WHERE import_id = $1', [id]);
      await q.run(
        "UPDATE imports SET status = 'done', added = $1, updated = $2, retired = $3, finished_at = $4 WHERE id = $5",
        [added, updated, retired, Date.now(), id],
      );
      await q.run('UPDATE imports SET result = $1 WHERE id = $2', [
        JSON.stringify({ notes: imp.notes, kept_other_source: kept, sha256: digest }),
        id,
      ]);
      const res: ImportResult = {
        id,
        status: 'done',
        rows: imp.rows,
        entries: total,
        added,
        updated,
        retired,
        kept_other_source: kept,
        notes: imp.notes,
        sha256: digest,
      };
      await appendAudit(ctx.db, q, {
        actor,
        action: 'registry.import',
        target: `source:${o.source}`,
        before: null,
        after: {
          ...res,
          format: o.format,
          file: o.filename,
          updated_at_source: imp.updated,
          registry_rev: rev,
        },
      });
      return res;
    });
    return result;
  } catch (e) {
    if (!(e as { simulatedCrash?: boolean }).simulatedCrash)
      await fail('failed', (e as Error).message).catch(() => {});
    throw e;
  }
}

export async function getImport(ctx: Ctx, id: string) {
  const r = await ctx.db.get('SELECT * FROM imports WHERE id = $1', [id]);
  if (!r) throw new ApiError(404, 'ERR_NOT_FOUND', `import ${id} not found`);
  return r;
}
