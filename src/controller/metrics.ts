/**
 * @module controller/metrics
 * Prometheus `/metrics` for the fleet controller (prom-client), one registry per server instance (never
 * the global default one, so several controllers in one process do not clash). Names follow
 * Prometheus' conventions (`chokepoint_controller_` prefix, base unit in the name, `_total` on counters
 * only; `promtool check metrics` clean, see metrics.test.ts and docs/CONTROLLER.md). Labels are
 * low-cardinality only: method, route *template* (`/v1/versions/:id`, `unmatched` for no route),
 * status code, auth failure reason, `current` — never a token, a user or node name, or an address.
 * Storage-backed values (bundle version, boxes, audit rows) are read at scrape time.
 */
import type { Context, MiddlewareHandler } from 'hono';
import client from 'prom-client';
import { currentBundle } from './bundles.js';
import { BUNDLE_CHANNEL, type Ctx } from './context.js';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
export type AuthFailure = 'missing_token' | 'invalid_token' | 'rate_limited';

export class ControllerMetrics {
  readonly registry = new client.Registry();
  readonly requests: client.Counter<'method' | 'route' | 'status'>;
  readonly duration: client.Histogram<'method' | 'route'>;
  readonly authFailures: client.Counter<'reason'>;
  /** Route template of a request, set by the route's handler (raw paths never become labels). */
  private readonly routes = new WeakMap<Request, string>();

  constructor(readonly ctx: Ctx) {
    const reg = this.registry;
    this.requests = new client.Counter({
      name: 'chokepoint_controller_http_requests_total',
      help: 'HTTP requests answered, by method, route template and status code',
      labelNames: ['method', 'route', 'status'],
      registers: [reg],
    });
    this.duration = new client.Histogram({
      name: 'chokepoint_controller_http_request_duration_seconds',
      help: 'Time to answer an HTTP request (long-polls included), by method and route template',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers: [reg],
    });
    this.authFailures = new client.Counter({
      name: 'chokepoint_controller_auth_failures_total',
      help: 'Refused authentications: missing_token, invalid_token (unknown or revoked), rate_limited (429)',
      labelNames: ['reason'],
      registers: [reg],
    });
    for (const reason of ['missing_token', 'invalid_token', 'rate_limited'])
      this.authFailures.inc({ reason }, 0);
    const events = ctx.events;
    new client.Gauge({
      name: 'chokepoint_controller_bundle_waiters',
      help: 'Long-polls (GET /v1/bundle?wait=) waiting for a newer bundle',
      registers: [reg],
      collect(this: client.Gauge) {
        this.set(events.listenerCount(BUNDLE_CHANNEL));
      },
    });
    const db = ctx.db;
    new client.Gauge({
      name: 'chokepoint_controller_bundle_version',
      help: 'Version of the current signed bundle (0 when nothing is published)',
      registers: [reg],
      async collect(this: client.Gauge) {
        this.set((await currentBundle(db))?.version ?? 0);
      },
    });
    new client.Gauge<'current'>({
      name: 'chokepoint_controller_boxes',
      help: 'Boxes that reported status, by whether their active version is the current bundle',
      labelNames: ['current'],
      registers: [reg],
      async collect(this: client.Gauge<'current'>) {
        const cur = (await currentBundle(db))?.version ?? null;
        const rows = await db.all<{ active_version: number | null }>('SELECT active_version FROM nodes');
        let yes = 0;
        for (const r of rows) if (cur !== null && Number(r.active_version) === cur) yes++;
        this.set({ current: 'true' }, yes);
        this.set({ current: 'false' }, rows.length - yes);
      },
    });
    new client.Gauge({
      name: 'chokepoint_controller_audit_rows',
      help: 'Rows in the append-only audit log (its head sequence number)',
      registers: [reg],
      async collect(this: client.Gauge) {
        const h = await db.get<{ seq: number }>('SELECT seq FROM audit_head WHERE id = 1');
        this.set(Number(h?.seq ?? 0));
      },
    });
  }

  /** Record the route template that answers this request (call first thing in the handler). */
  markRoute(c: Context, template: string): void {
    this.routes.set(c.req.raw, template);
  }

  /** Hono middleware: counts and times every request under its route template. */
  middleware(): MiddlewareHandler {
    return async (c, next) => {
      const t0 = process.hrtime.bigint();
      try {
        await next();
      } finally {
        const method = METHODS.has(c.req.method) ? c.req.method : 'other';
        const route = this.routes.get(c.req.raw) ?? 'unmatched';
        this.requests.inc({ method, route, status: String(c.res.status) });
        this.duration.observe({ method, route }, Number(process.hrtime.bigint() - t0) / 1e9);
      }
    };
  }

  /** The exposition as a Response (text format 0.0.4). */
  async response(): Promise<Response> {
    return new Response(await this.registry.metrics(), {
      status: 200,
      headers: { 'Content-Type': this.registry.contentType, 'Cache-Control': 'no-store' },
    });
  }
}

const BY_CTX = new WeakMap<Ctx, ControllerMetrics>();

/** The metrics of a controller instance (created on first use). */
export function metricsOf(ctx: Ctx): ControllerMetrics {
  let m = BY_CTX.get(ctx);
  if (!m) BY_CTX.set(ctx, (m = new ControllerMetrics(ctx)));
  return m;
}
