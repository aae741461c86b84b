/**
 * @module controller/audit
 * The append-only, hash-chained audit log. Every change is written in the same transaction as the
 * change itself: the row carries the hash of the previous row, and its own hash covers that and every
 * field, so editing a row breaks its hash and deleting one breaks the chain after it. The head (last
 * seq and hash) is kept in `audit_head` (locked row: appends from several replicas serialise) and is
 * copied into every bundle manifest, so a deleted *last* row is detectable from any box's copy.
 * {@link verifyChain} is pure, so `ctl audit verify` checks the rows it downloaded itself.
 */
import { createHash } from 'node:crypto';
import type { Db, Queryable } from './db.js';

export const GENESIS = '0'.repeat(64);

export interface AuditRow {
  seq: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  before: string | null;
  after: string | null;
  prev_hash: string;
  hash: string;
}

export interface AuditHead {
  seq: number;
  hash: string;
}

/** The hash of a row: SHA-256 over the JSON array of its fields, the previous hash first. */
export function rowHash(r: Omit<AuditRow, 'hash'>): string {
  return createHash('sha256')
    .update(JSON.stringify([r.prev_hash, r.seq, r.at, r.actor, r.action, r.target, r.before, r.after]))
    .digest('hex');
}

function text(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Append one row inside the caller's transaction. */
export async function appendAudit(
  db: Db,
  q: Queryable,
  e: { actor: string; action: string; target?: string | null; before?: unknown; after?: unknown },
): Promise<AuditHead> {
  const head = await q.get<{ seq: number; hash: string }>(
    `SELECT seq, hash FROM audit_head WHERE id = 1${db.forUpdate}`,
  );
  if (!head) throw new Error('audit head missing');
  const row: Omit<AuditRow, 'hash'> = {
    seq: Number(head.seq) + 1,
    at: Date.now(),
    actor: e.actor,
    action: e.action,
    target: e.target ?? null,
    before: text(e.before),
    after: text(e.after),
    prev_hash: head.hash,
  };
  const hash = rowHash(row);
  await q.run(
    'INSERT INTO audit (seq, at, actor, action, target, before, after, prev_hash, hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)',
    [row.seq, row.at, row.actor, row.action, row.target, row.before, row.after, row.prev_hash, hash],
  );
  await q.run('UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1', [row.seq, hash]);
  return { seq: row.seq, hash };
}

export interface VerifyResult {
  ok: boolean;
  rows: number;
  head: AuditHead;
  /** The first bad row (or the seq where a row is missing) and why. */
  bad: { seq: number; reason: string } | null;
}

/**
 * Check rows (in seq order, starting at 1) against each other and, when given, against heads seen
 * elsewhere (the `audit_head` row, bundle manifests): each must be a row of the chain, or the chain's
 * end when it claims a later seq than the last row.
 */
export function verifyChain(
  rows: AuditRow[],
  heads: { label: string; head: AuditHead }[] = [],
): VerifyResult {
  let prev = GENESIS;
  let expect = 1;
  const bySeq = new Map<number, string>();
  for (const r of rows) {
    if (r.seq !== expect) {
      return {
        ok: false,
        rows: rows.length,
        head: { seq: expect - 1, hash: prev },
        bad: {
          seq: expect,
          reason:
            r.seq > expect ? `row ${expect} is missing (next row is ${r.seq})` : `row ${r.seq} out of order`,
        },
      };
    }
    if (r.prev_hash !== prev)
      return {
        ok: false,
        rows: rows.length,
        head: { seq: expect - 1, hash: prev },
        bad: { seq: r.seq, reason: `prev_hash does not match the hash of row ${r.seq - 1}` },
      };
    const h = rowHash(r);
    if (h !== r.hash)
      return {
        ok: false,
        rows: rows.length,
        head: { seq: expect - 1, hash: prev },
        bad: { seq: r.seq, reason: 'row content does not match its hash (edited)' },
      };
    bySeq.set(r.seq, r.hash);
    prev = r.hash;
    expect++;
  }
  const last = { seq: expect - 1, hash: prev };
  for (const { label, head } of heads) {
    if (head.seq > last.seq)
      return {
        ok: false,
        rows: rows.length,
        head: last,
        bad: {
          seq: last.seq + 1,
          reason: `${label} records row ${head.seq}, but the log ends at row ${last.seq} (rows deleted)`,
        },
      };
    if (head.seq > 0 && bySeq.get(head.seq) !== head.hash)
      return {
        ok: false,
        rows: rows.length,
        head: last,
        bad: { seq: head.seq, reason: `${label} records a different hash for row ${head.seq}` },
      };
  }
  return { ok: true, rows: rows.length, head: last, bad: null };
}
