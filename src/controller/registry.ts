/**
 * @module controller/registry
 * Registry entries: one match item (a name with an explicit match type, or an address prefix) with
 * its action and its own provenance — authority, reference (request/decision), legal basis, decided
 * date, requested by, expiry — and a status (`active` / `retired`). Every change bumps the registry
 * revision and is audited. Values are normalised with the policy modules' own functions, so an entry
 * the registry accepts is one the policy loader accepts.
 */
import { appendAudit } from './audit.js';
import type { Ctx } from './context.js';
import type { Queryable, Row } from './db.js';
import { ENTRY_KINDS, type EntryKind, type EntryLite } from './content.js';
import { ApiError, badRequest, notFound } from './errors.js';
import { normalizeName, normalizePattern } from '../policy/names.js';
import { formatCidr, parseCidr } from '../policy/ip.js';
import { parseRate, parseSize } from '../policy/units.js';
import { expiresAtMs } from '../policy/load.js';

export const ACTIONS = ['allow', 'log', 'block', 'throttle'] as const;
export const PROVENANCE_FIELDS = [
  'authority',
  'reference',
  'legal_basis',
  'decided',
  'requested_by',
] as const;

/** An entry as written: the fields the compiler needs (EntryLite) plus its provenance. */
export interface EntryInput extends EntryLite {
  authority: string | null;
  reference: string | null;
  legal_basis: string | null;
  decided: string | null;
  requested_by: string | null;
  takedown_id: number | null;
}

const str = (o: Record<string, unknown>, k: string, field: string): string | null => {
  const v = o[k];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw badRequest(field, 'must be a string');
  if (v.length > 2000) throw badRequest(field, 'longer than 2000 characters');
  return v;
};

/** Normalise an entry value of a kind; returns the canonical value or '!reason'. */
export function normalizeValue(kind: EntryKind, raw: string): string {
  if (kind === 'cidr') {
    const c = parseCidr(raw.trim());
    return typeof c === 'string' ? c : formatCidr(c);
  }
  if (kind === 'substring' || kind === 'endswith') return normalizePattern(raw);
  return normalizeName(raw);
}

/** Action fields shared by entries and imports; throws 400 naming the field. */
export function parseActionFields(
  o: Record<string, unknown>,
  prefix: string,
): Pick<EntryInput, 'action' | 'method' | 'rate_bps' | 'burst_bytes'> {
  const action = o.action ?? 'block';
  if (typeof action !== 'string' || !(ACTIONS as readonly string[]).includes(action))
    throw badRequest(`${prefix}action`, `must be one of ${ACTIONS.join(', ')}`);
  let method: string | null = null;
  if (o.method !== undefined && o.method !== null) {
    if (action !== 'block') throw badRequest(`${prefix}method`, "applies only to action 'block'");
    if (o.method !== 'rst' && o.method !== 'drop') throw badRequest(`${prefix}method`, 'must be rst or drop');
    method = o.method;
  }
  let rate: number | null = null;
  let burst: number | null = null;
  if (action === 'throttle') {
    if (o.rate === undefined || o.rate === null)
      throw badRequest(`${prefix}rate`, "action 'throttle' needs a rate (e.g. 128kbit)");
    const r = parseRate(o.rate);
    if (typeof r === 'string') throw badRequest(`${prefix}rate`, r.slice(1));
    rate = r;
    if (o.burst !== undefined && o.burst !== null) {
      const b = parseSize(o.burst);
      if (typeof b === 'string') throw badRequest(`${prefix}burst`, b.slice(1));
      burst = b;
    }
  } else if ((o.rate ?? null) !== null || (o.burst ?? null) !== null)
    throw badRequest(`${prefix}rate`, "rate/burst apply only to action 'throttle'");
  return { action, method, rate_bps: rate, burst_bytes: burst };
}

export function parseExpires(v: unknown, field: string): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || Number.isNaN(expiresAtMs(v)) || !/^\d{4}-\d{2}-\d{2}/.test(v))
    throw badRequest(field, 'must be YYYY-MM-DD (through that UTC day) or an RFC 3339 date-time');
  return v;
}

export function parseEntry(body: unknown, prefix = ''): EntryInput {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badRequest(prefix || '(body)', 'must be an object');
  const o = body as Record<string, unknown>;
  const kind = o.kind;
  if (typeof kind !== 'string' || !(ENTRY_KINDS as readonly string[]).includes(kind))
    throw badRequest(`${prefix}kind`, `must be one of ${ENTRY_KINDS.join(', ')}`);
  if (typeof o.value !== 'string') throw badRequest(`${prefix}value`, 'must be a string');
  const value = normalizeValue(kind as EntryKind, o.value);
  if (value.startsWith('!')) throw badRequest(`${prefix}value`, value.slice(1));
  const e: EntryInput = {
    kind: kind as EntryKind,
    value,
    ...parseActionFields(o, prefix),
    expires: parseExpires(o.expires, `${prefix}expires`),
    authority: str(o, 'authority', `${prefix}authority`),
    reference: str(o, 'reference', `${prefix}reference`),
    legal_basis: str(o, 'legal_basis', `${prefix}legal_basis`),
    decided: str(o, 'decided', `${prefix}decided`),
    requested_by: str(o, 'requested_by', `${prefix}requested_by`),
    takedown_id: null,
  };
  if (o.takedown_id !== undefined && o.takedown_id !== null) {
    if (!Number.isInteger(o.takedown_id)) throw badRequest(`${prefix}takedown_id`, 'must be an integer');
    e.takedown_id = o.takedown_id as number;
  }
  const known = new Set([
    'kind',
    'value',
    'action',
    'method',
    'rate',
    'burst',
    'expires',
    'takedown_id',
    ...PROVENANCE_FIELDS,
  ]);
  for (const k of Object.keys(o)) if (!known.has(k)) throw badRequest(`${prefix}${k}`, 'unknown field');
  return e;
}

export async function bumpRev(q: Queryable): Promise<number> {
  await q.run("UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) WHERE key = 'registry_rev'");
  const r = await q.get<{ value: string }>("SELECT value FROM meta WHERE key = 'registry_rev'");
  return Number(r!.value);
}

export async function registryRev(q: Queryable): Promise<number> {
  const r = await q.get<{ value: string }>("SELECT value FROM meta WHERE key = 'registry_rev'");
  return Number(r!.value);
}

export function entryOut(r: Row): Row {
  return r;
}

const ENTRY_COLS =
  'id, kind, value, action, method, rate_bps, burst_bytes, authority, reference, legal_basis, decided, requested_by, expires, status, source, line, takedown_id, created_at, updated_at, created_rev, updated_rev';

export async function getEntry(q: Queryable, id: number): Promise<Row> {
  const r = await q.get(`SELECT ${ENTRY_COLS} FROM entries WHERE id = $1`, [id]);
  if (!r) throw notFound(`entry ${id}`);
  return r;
}

/** Add an entry (or bring a retired one back). 409 when an active entry has the same kind and value. */
export async function addEntry(ctx: Ctx, e: EntryInput, actor: string): Promise<Row> {
  return ctx.db.tx(async (q) => {
    if (e.takedown_id !== null && !(await q.get('SELECT id FROM takedowns WHERE id = $1', [e.takedown_id])))
      throw badRequest('takedown_id', `takedown ${e.takedown_id} does not exist`);
    const old = await q.get(`SELECT ${ENTRY_COLS} FROM entries WHERE kind = $1 AND value = $2`, [
      e.kind,
      e.value,
    ]);
    if (old && old.status === 'active')
      throw new ApiError(
        409,
        'ERR_EXISTS',
        `an active ${e.kind} entry for '${e.value}' exists (id ${old.id})`,
        'value',
      );
    const rev = await bumpRev(q);
    const now = Date.now();
    const vals = [
      e.action,
      e.method,
      e.rate_bps,
      e.burst_bytes,
      e.authority,
      e.reference,
      e.legal_basis,
      e.decided,
      e.requested_by,
      e.expires,
      e.takedown_id,
      now,
      rev,
    ];
    if (old) {
      await q.run(
        `UPDATE entries SET action=$1, method=$2, rate_bps=$3, burst_bytes=$4, authority=$5, reference=$6, legal_basis=$7, decided=$8, requested_by=$9, expires=$10, takedown_id=$11, updated_at=$12, updated_rev=$13, status='active', source='manual', line=NULL WHERE id=$14`,
        [...vals, old.id],
      );
    } else {
      await q.run(
        `INSERT INTO entries (action, method, rate_bps, burst_bytes, authority, reference, legal_basis, decided, requested_by, expires, takedown_id, updated_at, updated_rev, created_at, created_rev, kind, value, status, source)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$12,$13,$14,$15,'active','manual')`,
        [...vals, e.kind, e.value],
      );
    }
    const row = await q.get(`SELECT ${ENTRY_COLS} FROM entries WHERE kind = $1 AND value = $2`, [
      e.kind,
      e.value,
    ]);
    await appendAudit(ctx.db, q, {
      actor,
      action: 'entry.add',
      target: `entry:${row!.id}`,
      before: old ?? null,
      after: row,
    });
    return row!;
  });
}

/** Change an entry's action, provenance, expiry or status (`retired` / `active`). */
export async function updateEntry(ctx: Ctx, id: number, body: unknown, actor: string): Promise<Row> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badRequest('(body)', 'must be an object');
  const o = body as Record<string, unknown>;
  return ctx.db.tx(async (q) => {
    const old = await getEntry(q, id);
    const set: Record<string, unknown> = {};
    for (const k of Object.keys(o)) {
      if ((PROVENANCE_FIELDS as readonly string[]).includes(k)) set[k] = str(o, k, k);
      else if (k === 'expires') set.expires = parseExpires(o.expires, 'expires');
      else if (k === 'status') {
        if (o.status !== 'active' && o.status !== 'retired')
          throw badRequest('status', 'must be active or retired');
        set.status = o.status;
      } else if (k === 'takedown_id') {
        if (o.takedown_id !== null && !Number.isInteger(o.takedown_id))
          throw badRequest('takedown_id', 'must be an integer or null');
        set.takedown_id = o.takedown_id;
      } else if (!['action', 'method', 'rate', 'burst'].includes(k))
        throw badRequest(k, 'unknown or read-only field');
    }
    if (['action', 'method', 'rate', 'burst'].some((k) => k in o)) {
      const a = parseActionFields({ action: old.action, ...o }, '');
      Object.assign(set, a);
    }
    const keys = Object.keys(set);
    if (keys.length === 0) return old;
    const rev = await bumpRev(q);
    const assigns = keys.map((k, i) => `${k} = $${i + 1}`).join(', ');
    await q.run(
      `UPDATE entries SET ${assigns}, updated_at = $${keys.length + 1}, updated_rev = $${keys.length + 2} WHERE id = $${keys.length + 3}`,
      [...keys.map((k) => set[k]), Date.now(), rev, id],
    );
    const row = await getEntry(q, id);
    await appendAudit(ctx.db, q, {
      actor,
      action: 'entry.update',
      target: `entry:${id}`,
      before: old,
      after: row,
    });
    return row;
  });
}

export interface SearchQuery {
  q?: string;
  kind?: string;
  status?: string;
  source?: string;
  limit?: number;
  after?: number;
}

export async function searchEntries(
  ctx: Ctx,
  s: SearchQuery,
): Promise<{ entries: Row[]; next: number | null }> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (cond: string, v: unknown) => {
    params.push(v);
    where.push(cond.replace('?', `$${params.length}`));
  };
  if (s.q) add('value LIKE ?', `%${s.q.replace(/[%_\\]/g, '')}%`);
  if (s.kind) add('kind = ?', s.kind);
  if (s.status) add('status = ?', s.status);
  if (s.source) add('source = ?', s.source);
  if (s.after) add('id > ?', s.after);
  const limit = Math.min(Math.max(s.limit ?? 100, 1), 1000);
  const rows = await ctx.db.all(
    `SELECT ${ENTRY_COLS} FROM entries ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id LIMIT ${limit + 1}`,
    params,
  );
  const more = rows.length > limit;
  if (more) rows.pop();
  return { entries: rows, next: more ? Number(rows[rows.length - 1].id) : null };
}

/** Every active entry in the shape the version builder takes (streamed in id order, in pages). */
export async function activeEntries(q: Queryable): Promise<EntryLite[]> {
  const out: EntryLite[] = [];
  let after = 0;
  for (;;) {
    const rows = await q.all<EntryLite & { id: number }>(
      "SELECT id, kind, value, action, method, rate_bps, burst_bytes, expires FROM entries WHERE status = 'active' AND id > $1 ORDER BY id LIMIT 50000",
      [after],
    );
    for (const r of rows) out.push(r);
    if (rows.length < 50000) break;
    after = rows[rows.length - 1].id;
  }
  return out;
}
