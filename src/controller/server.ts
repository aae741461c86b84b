/**
 * @module controller/server
 * `chokepoint controller serve`: the hono app over Node's HTTP(S) server. Mounts the route table
 * behind bearer-token authentication (401 without a valid token, 403 for a role that is too low, 429
 * for a client with too many failed attempts), turns refusals into `{error: {code, message, field}}`,
 * serves `/openapi.json`, wires PostgreSQL LISTEN/NOTIFY (or the in-process signal on SQLite) to the
 * long-polls, re-signs the current bundle before it expires, and cleans up interrupted imports at start.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Hono, type Context } from 'hono';
import { createAdaptorServer } from '@hono/node-server';
import { allowed, authenticate, FailureLimiter, type Principal } from './auth.js';
import { pruneFailures, shareFailure } from './auth-shared.js';
import { BUNDLE_CHANNEL, Ctx, type ControllerConfig } from './context.js';
import type { Db } from './db.js';
import { ApiError } from './errors.js';
import { openApi } from './openapi.js';
import { ROUTES, parseRouteBody } from './routes.js';
import { migrate } from './schema.js';
import { cleanInterrupted } from './imports.js';
import { resignIfDue } from './bundles.js';
import { tickRollouts } from './rollouts.js';
import { PolicyError } from '../policy/errors.js';
import { metricsOf } from './metrics.js';
import { csrfRefusal, sessionOf } from './session.js';
import { mountDashboard } from './dashboard.js';

export interface ServeOptions {
  host?: string;
  port?: number;
  tls?: { cert: string; key: string } | null;
  /** Interval of the re-sign check (ms); default min(60 s, ttl/10). */
  resignEveryMs?: number;
  /** How often this replica tries an orchestrator step (ms; default 1000). */
  rolloutTickMs?: number;
  log?: (msg: string) => void;
}

export interface RunningController {
  ctx: Ctx;
  url: string;
  server: Server;
  close(): Promise<void>;
}

const CREATES = new Set([
  '/v1/tokens',
  '/v1/registry/entries',
  '/v1/takedowns',
  '/v1/versions',
  '/v1/rollouts',
]);

function clientAddr(c: Context): string {
  return (
    (c.env as { incoming?: { socket?: { remoteAddress?: string } } })?.incoming?.socket?.remoteAddress ??
    'unknown'
  );
}

export function buildApp(ctx: Ctx, log: (m: string) => void = () => {}): Hono {
  const app = new Hono();
  const limiter = new FailureLimiter(ctx.config.authFailures.max, ctx.config.authFailures.windowMs);
  const doc = openApi(ROUTES);
  const metrics = metricsOf(ctx);
  app.use('*', metrics.middleware());
  app.get('/openapi.json', (c) => (metrics.markRoute(c, '/openapi.json'), c.json(doc)));
  mountDashboard(app, ctx, limiter);
  for (const r of ROUTES) {
    app.on(r.method, r.path, async (c) => {
      metrics.markRoute(c, r.path);
      let who: Principal | null = null;
      if (r.need !== 'public') {
        const addr = clientAddr(c);
        if (limiter.blocked(addr)) {
          metrics.authFailures.inc({ reason: 'rate_limited' });
          return c.json(
            {
              error: {
                code: 'ERR_RATE_LIMITED',
                message: 'too many failed authentications from this address; try again later',
              },
            },
            429,
            {
              'Retry-After': String(Math.ceil(limiter.windowMs / 1000)),
            },
          );
        }
        const h = c.req.header('authorization') ?? '';
        const m = /^Bearer\s+(\S+)$/i.exec(h);
        who = m ? await authenticate(ctx.db, m[1]) : null;
        if (!m && !h) {
          // the dashboard: a session cookie, with CSRF checks on state changes
          const s = await sessionOf(ctx.db, c);
          if (s && r.method !== 'GET') {
            const why = csrfRefusal(c, s);
            if (why) return c.json({ error: { code: 'ERR_CSRF', message: `refused: ${why}` } }, 403);
          }
          who = s?.who ?? null;
        }
        if (!who) {
          limiter.fail(addr);
          await shareFailure(ctx.db, limiter, addr);
          metrics.authFailures.inc({ reason: m ? 'invalid_token' : 'missing_token' });
          return c.json(
            {
              error: {
                code: 'ERR_UNAUTHENTICATED',
                message: m ? 'invalid or revoked token' : 'missing bearer token',
              },
            },
            401,
            {
              'WWW-Authenticate': 'Bearer',
            },
          );
        }
        if (!allowed(who.role, r.need))
          return c.json(
            {
              error: {
                code: 'ERR_FORBIDDEN',
                message: `${r.method} ${r.path} needs role ${r.need}; ${who.name} is ${who.role}`,
              },
            },
            403,
          );
      }
      const body = await parseRouteBody(ctx, r, c.req.raw);
      const out = await r.handler(ctx, c, who, body);
      if (out instanceof Response) return out;
      return c.json(out as object, r.method === 'POST' && CREATES.has(r.path) ? 201 : 200);
    });
  }
  app.notFound((c) =>
    c.json({ error: { code: 'ERR_NOT_FOUND', message: `no endpoint ${c.req.method} ${c.req.path}` } }, 404),
  );
  app.onError((e, c) => {
    if (e instanceof ApiError)
      return c.json({ error: { code: e.code, message: e.message, field: e.field } }, e.status);
    if (e instanceof PolicyError)
      return c.json(
        { error: { code: e.code, message: e.message, field: `${e.file}:${e.line}:${e.column}` } },
        400,
      );
    log(`error: ${c.req.method} ${c.req.path}: ${(e as Error).stack ?? String(e)}`);
    return c.json({ error: { code: 'ERR_INTERNAL', message: (e as Error).message } }, 500);
  });
  return app;
}

/** How long close() waits for running request handlers before it returns anyway. */
const CLOSE_DRAIN_MS = 30_000;

/** Migrate, wire signals, listen. */
export async function startController(
  db: Db,
  config: ControllerConfig,
  o: ServeOptions = {},
): Promise<RunningController> {
  const log = o.log ?? (() => {});
  await migrate(db);
  const ctx = new Ctx(db, config);
  await cleanInterrupted(ctx);
  // '' after the listening connection was re-opened: a bundle may have been missed, wake every
  // long-poll (each re-reads its bundle and keeps waiting when it is unchanged)
  await db.listen(BUNDLE_CHANNEL, (p) =>
    ctx.events.emit(BUNDLE_CHANNEL, p === '' ? Number.MAX_SAFE_INTEGER : Number(p)),
  );
  const app = buildApp(ctx, log);
  // requests whose handler is still running: close() waits for them, so that a long-poll woken by
  // the close (its client cut off) does not read the database after the caller has closed it
  let inflight = 0;
  let drained: (() => void) | null = null;
  const fetch = async (req: Request, env: unknown): Promise<Response> => {
    inflight++;
    try {
      return await app.fetch(req, env as never);
    } finally {
      if (--inflight === 0 && drained) drained();
    }
  };
  const server = (
    o.tls
      ? createAdaptorServer({
          fetch,
          createServer: createHttpsServer,
          serverOptions: { cert: readFileSync(o.tls.cert), key: readFileSync(o.tls.key) },
        })
      : createAdaptorServer({ fetch })
  ) as Server;
  server.requestTimeout = (config.maxWaitS + 60) * 1000;
  server.keepAliveTimeout = 65_000;
  server.maxConnections = 20_000;
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(o.port ?? 8443, o.host ?? '127.0.0.1', () => res());
  });
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  const url = `${o.tls ? 'https' : 'http'}://${host}:${a.port}`;
  const every = o.resignEveryMs ?? Math.max(1000, Math.min(60_000, config.bundleTtlMs / 10));
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    resignIfDue(ctx)
      .then((v) => v !== null && log(`re-signed the current content as bundle ${v}`))
      .then(() => pruneFailures(ctx.db, config.authFailures.windowMs))
      .catch((e) => log(`re-sign failed: ${(e as Error).message}`))
      .finally(() => (busy = false));
  }, every);
  timer.unref();
  // the rollout orchestrator: every replica ticks; the advisory lock lets one step at a time
  let ticking = false;
  const rolloutTimer = setInterval(() => {
    if (ticking) return;
    ticking = true;
    tickRollouts(ctx)
      .catch((e) => log(`rollout step failed (retried next tick): ${(e as Error).message}`))
      .finally(() => (ticking = false));
  }, o.rolloutTickMs ?? 1000);
  rolloutTimer.unref();
  return {
    ctx,
    url,
    server,
    async close() {
      clearInterval(timer);
      clearInterval(rolloutTimer);
      server.closeAllConnections?.();
      await new Promise<void>((r) => server.close(() => r()));
      if (inflight > 0) {
        // bounded: a handler stuck on something else must not hold the shutdown forever
        let t: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((r) => (drained = r)),
          new Promise<void>((r) => (t = setTimeout(r, CLOSE_DRAIN_MS))),
        ]);
        clearTimeout(t);
        if (inflight > 0) log(`close: ${inflight} request(s) still running after ${CLOSE_DRAIN_MS} ms`);
      }
    },
  };
}
