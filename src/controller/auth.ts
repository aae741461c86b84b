/**
 * @module controller/auth
 * People and machines: users with one role each, API tokens stored as SHA-256 hashes (a token is 32
 * random bytes, shown once), role checks, and a per-client limit on failed authentications.
 *
 * Roles: `viewer` < `editor` < `approver` < `admin` (each can do what the ones before it can), and
 * `node` for boxes, which may only fetch bundles and report status.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Db, Queryable } from './db.js';
import { appendAudit } from './audit.js';

export const ROLES = ['viewer', 'editor', 'approver', 'admin', 'node'] as const;
export type Role = (typeof ROLES)[number];
const RANK: Record<Role, number> = { node: 0, viewer: 1, editor: 2, approver: 3, admin: 4 };

export interface Principal {
  userId: number;
  name: string;
  role: Role;
  tokenId: number;
}

/** What an endpoint requires: a minimum human role, or `node` (boxes, and viewers and up). */
export type Need = 'public' | 'node' | Exclude<Role, 'node'>;

export function allowed(role: Role, need: Need): boolean {
  if (need === 'public') return true;
  if (need === 'node') return true; // every authenticated principal may read bundles / report
  if (role === 'node') return false;
  return RANK[role] >= RANK[need];
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function newToken(): string {
  return 'cpt_' + randomBytes(32).toString('base64url');
}

export function isRole(s: string): s is Role {
  return (ROLES as readonly string[]).includes(s);
}

/** Create (or reuse) the user `name` with `role` and give it a new token. Audited. */
export async function createToken(
  db: Db,
  o: { name: string; role: Role; label?: string; actor: string },
): Promise<{ token: string; id: number; user: string; role: Role }> {
  const token = newToken();
  return db.tx(async (q) => {
    const now = Date.now();
    let u = await q.get<{ id: number; role: string }>('SELECT id, role FROM users WHERE name = $1', [o.name]);
    if (!u) {
      await q.run('INSERT INTO users (name, role, created_at) VALUES ($1, $2, $3)', [o.name, o.role, now]);
      u = await q.get<{ id: number; role: string }>('SELECT id, role FROM users WHERE name = $1', [o.name]);
    } else if (u.role !== o.role) {
      await q.run('UPDATE users SET role = $1 WHERE id = $2', [o.role, u.id]);
    }
    await q.run('INSERT INTO tokens (user_id, hash, label, created_at) VALUES ($1, $2, $3, $4)', [
      u!.id,
      hashToken(token),
      o.label ?? null,
      now,
    ]);
    const t = await q.get<{ id: number }>('SELECT id FROM tokens WHERE hash = $1', [hashToken(token)]);
    await appendAudit(db, q, {
      actor: o.actor,
      action: 'token.create',
      target: `user:${o.name}`,
      before: u!.role !== o.role ? { role: u!.role } : null,
      after: { user: o.name, role: o.role, token_id: t!.id, label: o.label ?? null },
    });
    return { token, id: t!.id, user: o.name, role: o.role };
  });
}

export async function authenticate(q: Queryable, token: string): Promise<Principal | null> {
  const r = await q.get<{ tid: number; uid: number; name: string; role: string }>(
    `SELECT t.id AS tid, u.id AS uid, u.name AS name, u.role AS role FROM tokens t JOIN users u ON u.id = t.user_id
     WHERE t.hash = $1 AND t.revoked_at IS NULL AND u.disabled = 0`,
    [hashToken(token)],
  );
  if (!r || !isRole(r.role)) return null;
  return { userId: r.uid, name: r.name, role: r.role, tokenId: r.tid };
}

/**
 * Failed authentications per client address: at most `max` in a sliding `windowMs`; beyond that the
 * client is refused (429) until the window passes, whatever it sends. Memory is bounded (oldest
 * clients forgotten past `maxClients`).
 */
export class FailureLimiter {
  private readonly fails = new Map<string, number[]>();
  constructor(
    readonly max = 10,
    readonly windowMs = 60_000,
    readonly maxClients = 10_000,
  ) {}

  blocked(client: string, now = Date.now()): boolean {
    const l = this.fails.get(client);
    if (!l) return false;
    while (l.length && l[0] <= now - this.windowMs) l.shift();
    return l.length >= this.max;
  }

  fail(client: string, now = Date.now()): void {
    let l = this.fails.get(client);
    if (!l) {
      if (this.fails.size >= this.maxClients) this.fails.delete(this.fails.keys().next().value!);
      l = [];
      this.fails.set(client, l);
    }
    l.push(now);
    if (l.length > this.max) l.shift();
  }
}
