/**
 * @module controller/takedowns
 * Takedown requests: what an authority asked for, before it becomes registry entries. Lifecycle
 * `received` → `reviewed` → `enacted` | `rejected`; entries created for a request carry its id
 * (`takedown_id`), so a request lists the entries it produced and an entry names its request.
 */
import { appendAudit } from './audit.js';
import type { Ctx } from './context.js';
import type { Row } from './db.js';
import { ApiError, badRequest, notFound } from './errors.js';

const NEXT: Record<string, string[]> = {
  received: ['reviewed', 'rejected'],
  reviewed: ['enacted', 'rejected'],
  enacted: [],
  rejected: [],
};
const FIELDS = ['authority', 'reference', 'legal_basis', 'requested_by', 'details'] as const;

export async function createTakedown(ctx: Ctx, body: unknown, actor: string): Promise<Row> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badRequest('(body)', 'must be an object');
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!(FIELDS as readonly string[]).includes(k)) throw badRequest(k, 'unknown field');
  for (const k of FIELDS)
    if (o[k] !== undefined && typeof o[k] !== 'string') throw badRequest(k, 'must be a string');
  if (!o.authority) throw badRequest('authority', 'required');
  return ctx.db.tx(async (q) => {
    const now = Date.now();
    // RETURNING: the row this insert made, not a later look-up that a concurrent insert could win
    const row = await q.get(
      "INSERT INTO takedowns (status, authority, reference, legal_basis, requested_by, details, received_at, updated_at, created_by) VALUES ('received', $1, $2, $3, $4, $5, $6, $6, $7) RETURNING *",
      [
        o.authority,
        o.reference ?? null,
        o.legal_basis ?? null,
        o.requested_by ?? null,
        o.details ?? null,
        now,
        actor,
      ],
    );
    await appendAudit(ctx.db, q, {
      actor,
      action: 'takedown.create',
      target: `takedown:${row!.id}`,
      after: row,
    });
    return row!;
  });
}

export async function getTakedown(ctx: Ctx, id: number): Promise<Row> {
  const t = await ctx.db.get('SELECT * FROM takedowns WHERE id = $1', [id]);
  if (!t) throw notFound(`takedown ${id}`);
  const entries = await ctx.db.all(
    'SELECT id, kind, value, action, status FROM entries WHERE takedown_id = $1 ORDER BY id LIMIT 1000',
    [id],
  );
  return { ...t, entries };
}

export async function listTakedowns(ctx: Ctx, status?: string): Promise<Row[]> {
  return status
    ? ctx.db.all('SELECT * FROM takedowns WHERE status = $1 ORDER BY id DESC LIMIT 1000', [status])
    : ctx.db.all('SELECT * FROM takedowns ORDER BY id DESC LIMIT 1000');
}

export async function transitionTakedown(ctx: Ctx, id: number, body: unknown, actor: string): Promise<Row> {
  const o = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (typeof o.status !== 'string' || !(o.status in NEXT))
    throw badRequest('status', 'must be reviewed, enacted or rejected');
  if (o.note !== undefined && typeof o.note !== 'string') throw badRequest('note', 'must be a string');
  return ctx.db.tx(async (q) => {
    const old = await q.get(`SELECT * FROM takedowns WHERE id = $1${ctx.db.forUpdate}`, [id]);
    if (!old) throw notFound(`takedown ${id}`);
    if (!NEXT[old.status as string].includes(o.status as string))
      throw new ApiError(
        409,
        'ERR_STATE',
        `takedown ${id} is ${String(old.status)}: cannot become ${String(o.status)}`,
        'status',
      );
    await q.run('UPDATE takedowns SET status = $1, note = $2, updated_at = $3 WHERE id = $4', [
      o.status,
      o.note ?? old.note ?? null,
      Date.now(),
      id,
    ]);
    const row = await q.get('SELECT * FROM takedowns WHERE id = $1', [id]);
    await appendAudit(ctx.db, q, {
      actor,
      action: `takedown.${String(o.status)}`,
      target: `takedown:${id}`,
      before: old,
      after: row,
    });
    return row!;
  });
}
