/**
 * @module controller/auth
 * People and machines: users with one role each, API tokens stored as SHA-256 hashes (a token is 32
 * random bytes, shown once), role checks, and a per-client limit on failed authentications.
 *
 * Roles: `viewer` < `editor` < `approver` < `admin` (each can do what the ones before it can), and
 * `node` for boxes, which may only fetch bundles and report status.
 */
import { createHash, randomBytes } from 'node:crypto';
import { isIPv6 } from 'node:net';
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
 * The key a client's failures are counted under: an IPv4 address as is (also when IPv4-mapped), an
 * IPv6 address by its /64 (one host usually holds a whole /64, so counting single addresses would let
 * it rotate through them).
 */
export function clientKey(addr: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(addr);
  if (mapped) return mapped[1];
  const pct = addr.indexOf('%');
  const a = (pct >= 0 ? addr.slice(0, pct) : addr).toLowerCase();
  if (!isIPv6(a)) return addr;
  const dbl = a.indexOf('::');
  let groups: string[];
  if (dbl < 0) groups = a.split(':');
  else {
    const head = dbl > 0 ? a.slice(0, dbl).split(':') : [];
    const tail = a.slice(dbl + 2) ? a.slice(dbl + 2).split(':') : [];
    // an embedded IPv4 tail counts as two groups; it is past the /64 either way
    const tailGroups = tail.length && tail[tail.length - 1].includes('.') ? tail.length + 1 : tail.length;
    groups = [...head, ...Array<string>(Math.max(0, 8 - head.length - tailGroups)).fill('0'), ...tail];
  }
  return (
    groups
      .slice(0, 4)
      .map((g) => Number.parseInt(g, 16).toString(16))
      .join(':') + '::/64'
  );
}

/**
 * Failed authentications per client ({@link clientKey}: IPv6 by /64): at most `max` in a sliding
 * `windowMs`; beyond that the client is refused (429) until the window passes, whatever it sends.
 * Memory is bounded: past `maxClients` the least recently seen client is forgotten (a client that
 * was seen more recently than others stays tracked; fresh addresses push out the idlest first).
 */
export class FailureLimiter {
  private readonly fails = new Map<string, number[]>();
  constructor(
    readonly max = 10,
    readonly windowMs = 60_000,
    readonly maxClients = 10_000,
  ) {}

  /** Clients tracked now. */
  get size(): number {
    return this.fails.size;
  }

  blocked(addr: string, now = Date.now()): boolean {
    const client = clientKey(addr);
    const l = this.fails.get(client);
    if (!l) return false;
    while (l.length && l[0] <= now - this.windowMs) l.shift();
    if (l.length === 0) {
      this.fails.delete(client);
      return false;
    }
    this.fails.delete(client); // most recently seen last
    this.fails.set(client, l);
    return l.length >= this.max;
  }

  /** Refuse `addr` from now until `until` (a limit reached on another replica, controller/auth-shared). */
  blockUntil(addr: string, until: number): void {
    const client = clientKey(addr);
    this.fails.delete(client);
    if (this.fails.size >= this.maxClients) this.fails.delete(this.fails.keys().next().value!);
    // `max` failures at a time that leaves the window at `until`
    this.fails.set(client, Array<number>(this.max).fill(until - this.windowMs));
  }

  fail(addr: string, now = Date.now()): void {
    const client = clientKey(addr);
    let l = this.fails.get(client);
    if (l) this.fails.delete(client);
    else {
      if (this.fails.size >= this.maxClients) this.fails.delete(this.fails.keys().next().value!);
      l = [];
    }
    this.fails.set(client, l);
    l.push(now);
    if (l.length > this.max) l.shift();
  }
}
