/**
 * @module controller/session
 * Dashboard sessions: signing in with an API token gives a random session id in an HttpOnly,
 * SameSite=Strict cookie (Secure over TLS) and a CSRF token the page sends back in `X-CSRF-Token` on
 * every state change. Only SHA-256 hashes of session ids are stored; a session ends at its expiry,
 * when its token is revoked, or on sign-out. Bearer clients never touch this module.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { getCookie } from 'hono/cookie';
import type { Db } from './db.js';
import { hashToken, isRole, type Principal } from './auth.js';

export const SESSION_COOKIE = 'cp_session';
export const CSRF_HEADER = 'x-csrf-token';
/** Default session lifetime: 8 hours. */
export const SESSION_TTL_MS = 8 * 3_600_000;

export interface Session {
  who: Principal;
  csrf: string;
  expiresAt: number;
}

export async function createSession(
  db: Db,
  who: Principal,
  ttlMs: number,
): Promise<{ id: string; csrf: string; expiresAt: number }> {
  const id = randomBytes(32).toString('base64url');
  const csrf = randomBytes(24).toString('base64url');
  const now = Date.now();
  const expiresAt = now + ttlMs;
  await db.run('DELETE FROM sessions WHERE expires_at < $1', [now]);
  await db.run(
    'INSERT INTO sessions (id_hash, token_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)',
    [hashToken(id), who.tokenId, csrf, now, expiresAt],
  );
  return { id, csrf, expiresAt };
}

/** The session of the request's cookie, or null (none, unknown, expired, token revoked, user disabled). */
export async function sessionOf(db: Db, c: Context, now = Date.now()): Promise<Session | null> {
  const id = getCookie(c, SESSION_COOKIE);
  if (!id || id.length > 100) return null;
  const r = await db.get<{ tid: number; uid: number; name: string; role: string; csrf: string; exp: number }>(
    `SELECT t.id AS tid, u.id AS uid, u.name AS name, u.role AS role, s.csrf AS csrf, s.expires_at AS exp
     FROM sessions s JOIN tokens t ON t.id = s.token_id JOIN users u ON u.id = t.user_id
     WHERE s.id_hash = $1 AND t.revoked_at IS NULL AND u.disabled = 0`,
    [hashToken(id)],
  );
  if (!r || !isRole(r.role) || r.role === 'node' || Number(r.exp) <= now) return null;
  return {
    who: { userId: r.uid, name: r.name, role: r.role, tokenId: r.tid },
    csrf: r.csrf,
    expiresAt: Number(r.exp),
  };
}

export async function endSession(db: Db, c: Context): Promise<void> {
  const id = getCookie(c, SESSION_COOKIE);
  if (id) await db.run('DELETE FROM sessions WHERE id_hash = $1', [hashToken(id)]);
}

/**
 * Why a cookie-authenticated state change is refused, or null when it may proceed: the CSRF header
 * must equal the session's token, and an `Origin` (or, lacking it, `Referer`) must be this server.
 */
export function csrfRefusal(c: Context, s: Session): string | null {
  const host = c.req.header('host') ?? '';
  const origin = c.req.header('origin') ?? c.req.header('referer');
  if (origin) {
    let h: string;
    try {
      h = new URL(origin).host;
    } catch {
      return 'unreadable Origin';
    }
    if (h !== host) return `cross-site request (Origin ${origin})`;
  }
  const got = Buffer.from(c.req.header(CSRF_HEADER) ?? '');
  const want = Buffer.from(s.csrf);
  if (got.length !== want.length || !timingSafeEqual(got, want)) return 'missing or wrong X-CSRF-Token';
  return null;
}
