/**
 * @module controller/dashboard
 * The web dashboard's own endpoints, mounted beside the API: the page and its static assets (`/`,
 * `/ui/app.js`, `/ui/style.css`, with a strict Content-Security-Policy: no inline script, no
 * third-party origins), sign-in with a token (`POST /ui/session` → session cookie + CSRF token),
 * who is signed in (`GET /ui/session`), sign-out (`DELETE /ui/session`, CSRF-checked), and
 * server-sent events (`GET /ui/events`: a `bundle` event on every new bundle, a `tick` every 5 s)
 * that tell the page to refresh. Everything else the page shows comes from the `/v1` API itself,
 * with the same role checks.
 */
import type { Context, Hono } from 'hono';
import { setCookie, deleteCookie } from 'hono/cookie';
import { streamSSE } from 'hono/streaming';
import { authenticate, type FailureLimiter } from './auth.js';
import { shareFailure } from './auth-shared.js';
import { BUNDLE_CHANNEL, type Ctx } from './context.js';
import { readJson } from './http.js';
import {
  createSession,
  csrfRefusal,
  endSession,
  sessionOf,
  SESSION_COOKIE,
  SESSION_TTL_MS,
} from './session.js';
import { APP_JS } from './ui/app-js.js';
import { INDEX_HTML, STYLE_CSS } from './ui/page.js';

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

function addr(c: Context): string {
  return (
    (c.env as { incoming?: { socket?: { remoteAddress?: string } } })?.incoming?.socket?.remoteAddress ??
    'unknown'
  );
}

function asset(c: Context, body: string, type: string): Response {
  return c.body(body, 200, {
    'content-type': type,
    'content-security-policy': CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'same-origin',
    'cache-control': 'no-cache',
  });
}

export function mountDashboard(app: Hono, ctx: Ctx, limiter: FailureLimiter): void {
  const ttl = ctx.config.sessionTtlMs ?? SESSION_TTL_MS;
  app.get('/', (c) => asset(c, INDEX_HTML, 'text/html; charset=utf-8'));
  app.get('/ui/app.js', (c) => asset(c, APP_JS, 'text/javascript; charset=utf-8'));
  app.get('/ui/style.css', (c) => asset(c, STYLE_CSS, 'text/css; charset=utf-8'));

  app.post('/ui/session', async (c) => {
    const a = addr(c);
    if (limiter.blocked(a))
      return c.json(
        { error: { code: 'ERR_RATE_LIMITED', message: 'too many failed sign-ins; try later' } },
        429,
      );
    // JSON only: a cross-site HTML form cannot send it, so nobody can sign a victim in as someone else
    if (!(c.req.header('content-type') ?? '').startsWith('application/json'))
      return c.json(
        {
          error: {
            code: 'ERR_BAD_REQUEST',
            message: 'send {"token": …} as application/json',
            field: '(body)',
          },
        },
        415,
      );
    const body = (await readJson(c.req.raw, 4096)) as { token?: unknown } | null;
    const token = typeof body?.token === 'string' ? body.token.trim() : '';
    const who = token ? await authenticate(ctx.db, token) : null;
    if (!who || who.role === 'node') {
      limiter.fail(a);
      await shareFailure(ctx.db, limiter, a);
      return c.json(
        { error: { code: 'ERR_UNAUTHENTICATED', message: 'unknown, revoked or node token', field: 'token' } },
        401,
      );
    }
    const s = await createSession(ctx.db, who, ttl);
    setCookie(c, SESSION_COOKIE, s.id, {
      httpOnly: true,
      secure: new URL(c.req.url).protocol === 'https:',
      sameSite: 'Strict',
      path: '/',
      maxAge: Math.floor(ttl / 1000),
    });
    return c.json({ name: who.name, role: who.role, csrf: s.csrf, expires_at: s.expiresAt });
  });

  app.get('/ui/session', async (c) => {
    const s = await sessionOf(ctx.db, c);
    if (!s) return c.json({ error: { code: 'ERR_UNAUTHENTICATED', message: 'not signed in' } }, 401);
    return c.json({ name: s.who.name, role: s.who.role, csrf: s.csrf, expires_at: s.expiresAt });
  });

  app.delete('/ui/session', async (c) => {
    const s = await sessionOf(ctx.db, c);
    if (s) {
      const why = csrfRefusal(c, s);
      if (why) return c.json({ error: { code: 'ERR_CSRF', message: `refused: ${why}` } }, 403);
      await endSession(ctx.db, c);
    }
    deleteCookie(c, SESSION_COOKIE, { path: '/' });
    return c.json({ signed_out: true });
  });

  app.get('/ui/events', async (c) => {
    const s = await sessionOf(ctx.db, c);
    if (!s) return c.json({ error: { code: 'ERR_UNAUTHENTICATED', message: 'not signed in' } }, 401);
    return streamSSE(c, async (stream) => {
      let open = true;
      const onBundle = (v: number) => void stream.writeSSE({ event: 'bundle', data: String(v) });
      ctx.events.on(BUNDLE_CHANNEL, onBundle);
      stream.onAbort(() => {
        open = false;
      });
      try {
        while (open && Date.now() < s.expiresAt) {
          await stream.writeSSE({ event: 'tick', data: String(Date.now()) });
          await stream.sleep(5000);
        }
      } finally {
        ctx.events.off(BUNDLE_CHANNEL, onBundle);
      }
    });
  });
}
