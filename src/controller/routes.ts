/**
 * @module controller/routes
 * The API as one table: method, path, the role it needs, what it does, and its handler. The server
 * mounts it behind authentication; the OpenAPI document and the auth-matrix test read the same table.
 */
import type { Context } from 'hono';
import type { Ctx } from './context.js';
import type { Need, Principal } from './auth.js';
import { createToken, isRole } from './auth.js';
import { appendAudit, verifyChain, type AuditRow } from './audit.js';
import { ApiError, badRequest, notFound } from './errors.js';
import { bodyToFile, readJson } from './http.js';
import { addEntry, getEntry, parseEntry, searchEntries, updateEntry } from './registry.js';
import { createImport, getImport, parseImportOptions } from './imports.js';
import { importInBackground } from './import-offload.js';
import { writeStatus } from './status-write.js';
import { createTakedown, getTakedown, listTakedowns, transitionTakedown } from './takedowns.js';
import {
  approveVersion,
  createVersion,
  exportVersion,
  getSettings,
  listVersions,
  overrideVersion,
  publishVersion,
  putSettings,
  rejectVersion,
  rollback,
  submitVersion,
  versionOut,
} from './versions.js';
import { why } from './why.js';
import { shadowResults } from './shadow-results.js';
import { emergencyStop } from './emergency.js';
import { controlRollout, getRollout, intendedBundle, listRollouts, startRollout } from './rollouts.js';
import { currentBundle } from './bundles.js';
import { deltaBetween } from './deltas.js';
import { BUNDLE_CHANNEL } from './context.js';
import { metricsOf } from './metrics.js';

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  need: Need;
  summary: string;
  /** What the body is: JSON (default for POST/PUT/PATCH), a raw upload, or nothing. */
  body?: 'json' | 'upload' | 'none';
  query?: string[];
  /** Media type of a 200 answer when it is not JSON. */
  produces?: string;
  handler: (ctx: Ctx, c: Context, who: Principal | null, body: unknown) => Promise<Response | unknown>;
}

function intParam(c: Context, name: string): number {
  const v = c.req.param(name) ?? '';
  if (!/^\d{1,12}$/.test(v)) throw badRequest(name, 'must be a positive integer');
  return Number(v);
}

function intQuery(c: Context, name: string): number | undefined {
  const v = c.req.query(name);
  if (v === undefined || v === '') return undefined;
  if (!/^\d{1,12}$/.test(v)) throw badRequest(name, 'must be a non-negative integer');
  return Number(v);
}

const obj = (b: unknown): Record<string, unknown> =>
  typeof b === 'object' && b !== null && !Array.isArray(b) ? (b as Record<string, unknown>) : {};

/**
 * Wait until a bundle newer than `have` is signalled, `ms` pass, or the client goes away (`signal`).
 * Waiters are capped in total and per token (`config.maxWaiters`): one more is refused with 503, so
 * opening and dropping many `?wait=` requests cannot pile up listeners and timers.
 */
async function waitForBundle(
  ctx: Ctx,
  have: number,
  ms: number,
  token: number,
  signal: AbortSignal,
): Promise<void> {
  if (ms <= 0 || signal.aborted) return;
  const lim = ctx.config.maxWaiters;
  const mine = ctx.waitersByToken.get(token) ?? 0;
  if (ctx.waiters >= lim.total || mine >= lim.perToken)
    throw new ApiError(
      503,
      'ERR_TOO_MANY_WAITERS',
      ctx.waiters >= lim.total
        ? `${ctx.waiters} long-polls already waiting (limit ${lim.total}); retry later`
        : `this token already has ${mine} long-polls waiting (limit ${lim.perToken}); retry later`,
      'wait',
    );
  ctx.waiters++;
  ctx.waitersByToken.set(token, mine + 1);
  await new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      ctx.events.off(BUNDLE_CHANNEL, on);
      signal.removeEventListener('abort', done);
      ctx.waiters--;
      const k = (ctx.waitersByToken.get(token) ?? 1) - 1;
      if (k > 0) ctx.waitersByToken.set(token, k);
      else ctx.waitersByToken.delete(token);
      resolve();
    }
    function on(v: number) {
      if (v > have) done();
    }
    ctx.events.on(BUNDLE_CHANNEL, on);
    signal.addEventListener('abort', done, { once: true });
  });
}

export const ROUTES: Route[] = [
  {
    method: 'GET',
    path: '/v1/health',
    need: 'public',
    summary: 'liveness and storage engine',
    handler: async (ctx) => ({ ok: true, storage: ctx.db.kind }),
  },
  {
    method: 'GET',
    path: '/v1/whoami',
    need: 'node',
    summary: 'the caller: user name and role',
    handler: async (_ctx, _c, who) => ({ name: who!.name, role: who!.role }),
  },
  {
    method: 'GET',
    path: '/metrics',
    need: 'node',
    body: 'none',
    produces: 'text/plain; version=0.0.4',
    summary:
      'Prometheus text exposition (requests, long-poll waiters, bundle version, boxes on the current version, audit rows, auth failures); any valid token',
    handler: async (ctx) => metricsOf(ctx).response(),
  },
  // ---- tokens
  {
    method: 'GET',
    path: '/v1/tokens',
    need: 'admin',
    summary: 'list users and their tokens (never the token values)',
    handler: async (ctx) => ({
      tokens: await ctx.db.all(
        'SELECT t.id, u.name AS user, u.role, t.label, t.created_at, t.last_used_at, t.revoked_at FROM tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id',
      ),
    }),
  },
  {
    method: 'POST',
    path: '/v1/tokens',
    need: 'admin',
    summary: 'create a token for a user (created with the role if new); the token is shown once',
    handler: async (ctx, _c, who, body) => {
      const o = obj(body);
      if (typeof o.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(o.name))
        throw badRequest('name', 'required: letters, digits, . _ @ -');
      if (typeof o.role !== 'string' || !isRole(o.role))
        throw badRequest('role', 'must be viewer, editor, approver, admin or node');
      if (o.label !== undefined && typeof o.label !== 'string') throw badRequest('label', 'must be a string');
      return createToken(ctx.db, {
        name: o.name,
        role: o.role,
        label: o.label as string | undefined,
        actor: who!.name,
      });
    },
  },
  {
    method: 'DELETE',
    path: '/v1/tokens/:id',
    need: 'admin',
    body: 'none',
    summary: 'revoke a token',
    handler: async (ctx, c, who) => {
      const id = intParam(c, 'id');
      return ctx.db.tx(async (q) => {
        const t = await q.get('SELECT id, revoked_at FROM tokens WHERE id = $1', [id]);
        if (!t) throw notFound(`token ${id}`);
        if (t.revoked_at) return { id, revoked: true };
        await q.run('UPDATE tokens SET revoked_at = $1 WHERE id = $2', [Date.now(), id]);
        await appendAudit(ctx.db, q, { actor: who!.name, action: 'token.revoke', target: `token:${id}` });
        return { id, revoked: true };
      });
    },
  },
  // ---- registry
  {
    method: 'GET',
    path: '/v1/registry/entries',
    need: 'viewer',
    summary: 'search entries (q = part of the value, kind, status, source; paged with after)',
    query: ['q', 'kind', 'status', 'source', 'limit', 'after'],
    handler: async (ctx, c) =>
      searchEntries(ctx, {
        q: c.req.query('q'),
        kind: c.req.query('kind'),
        status: c.req.query('status'),
        source: c.req.query('source'),
        limit: intQuery(c, 'limit'),
        after: intQuery(c, 'after'),
      }),
  },
  {
    method: 'POST',
    path: '/v1/registry/entries',
    need: 'editor',
    summary:
      'add an entry: {kind, value, action, method?, rate?, burst?, expires?, authority, reference, legal_basis, decided, requested_by, takedown_id?}',
    handler: async (ctx, _c, who, body) => addEntry(ctx, parseEntry(body), who!.name),
  },
  {
    method: 'GET',
    path: '/v1/registry/entries/:id',
    need: 'viewer',
    summary: 'one entry with its provenance',
    handler: async (ctx, c) => getEntry(ctx.db, intParam(c, 'id')),
  },
  {
    method: 'PATCH',
    path: '/v1/registry/entries/:id',
    need: 'editor',
    summary: 'change provenance, expiry, action or status (active | retired)',
    handler: async (ctx, c, who, body) => updateEntry(ctx, intParam(c, 'id'), body, who!.name),
  },
  {
    method: 'POST',
    path: '/v1/registry/import',
    need: 'editor',
    body: 'upload',
    summary:
      'bulk import (sync of one source): the raw file as the body, options in the query; async=true answers 202 {id} once the upload is stored (progress: GET /v1/registry/imports/ID)',
    query: [
      'format',
      'source',
      'filename',
      'action',
      'method',
      'rate',
      'burst',
      'expires',
      'match',
      'skip_unsupported',
      'encoding',
      'async',
    ],
    handler: async (ctx, c, who) => {
      const opts = parseImportOptions(c.req.query());
      const up = await bodyToFile(c.req.raw, ctx.config.importLimit);
      if (c.req.query('async') === 'true') {
        const id = await createImport(ctx, opts, who!.name);
        importInBackground(ctx, up.path, opts, who!.name, id)
          .catch(() => {
            /* recorded in the imports row */
          })
          .finally(() => void up.cleanup());
        return c.json({ id, status: 'parsing' }, 202);
      }
      try {
        return await importInBackground(ctx, up.path, opts, who!.name);
      } finally {
        await up.cleanup();
      }
    },
  },
  {
    method: 'GET',
    path: '/v1/registry/imports/:id',
    need: 'viewer',
    summary: 'an import and its progress',
    handler: async (ctx, c) => getImport(ctx, c.req.param('id') ?? ''),
  },
  {
    method: 'GET',
    path: '/v1/registry/why',
    need: 'viewer',
    summary: 'why is this blocked: the active version’s decision and the matching entries with provenance',
    query: ['name', 'ip', 'proto', 'port'],
    handler: async (ctx, c) =>
      why(ctx, {
        name: c.req.query('name'),
        ip: c.req.query('ip'),
        proto: c.req.query('proto'),
        port: intQuery(c, 'port'),
      }),
  },
  // ---- takedowns
  {
    method: 'GET',
    path: '/v1/takedowns',
    need: 'viewer',
    summary: 'list takedown requests',
    query: ['status'],
    handler: async (ctx, c) => ({ takedowns: await listTakedowns(ctx, c.req.query('status')) }),
  },
  {
    method: 'POST',
    path: '/v1/takedowns',
    need: 'editor',
    summary: 'record a takedown request: {authority, reference, legal_basis, requested_by, details}',
    handler: async (ctx, _c, who, body) => createTakedown(ctx, body, who!.name),
  },
  {
    method: 'GET',
    path: '/v1/takedowns/:id',
    need: 'viewer',
    summary: 'a takedown request and the entries it produced',
    handler: async (ctx, c) => getTakedown(ctx, intParam(c, 'id')),
  },
  {
    method: 'POST',
    path: '/v1/takedowns/:id/status',
    need: 'editor',
    summary: 'move a takedown request on: {status: reviewed | enacted | rejected, note}',
    handler: async (ctx, c, who, body) => transitionTakedown(ctx, intParam(c, 'id'), body, who!.name),
  },
  // ---- settings
  {
    method: 'GET',
    path: '/v1/settings',
    need: 'viewer',
    summary: 'settings of registry versions (protected list, inspection, default)',
    handler: async (ctx) => getSettings(ctx.db),
  },
  {
    method: 'PUT',
    path: '/v1/settings',
    need: 'admin',
    summary: 'replace the settings of registry versions',
    handler: async (ctx, _c, who, body) => putSettings(ctx, body, who!.name),
  },
  // ---- versions
  {
    method: 'GET',
    path: '/v1/versions',
    need: 'viewer',
    summary: 'list versions (newest first)',
    query: ['status'],
    handler: async (ctx, c) => ({ versions: await listVersions(ctx, c.req.query('status')) }),
  },
  {
    method: 'POST',
    path: '/v1/versions',
    need: 'editor',
    summary:
      'create (and by default submit) a version: {policy: TEXT, filename?} or {from_registry: true}; note?, submit?',
    handler: async (ctx, _c, who, body) => createVersion(ctx, body, who!.name),
  },
  {
    method: 'GET',
    path: '/v1/versions/:id',
    need: 'viewer',
    summary: 'a version with its findings, diff, approvals and override',
    handler: async (ctx, c) => versionOut(ctx.db, intParam(c, 'id')),
  },
  {
    method: 'GET',
    path: '/v1/versions/:id/shadow',
    need: 'viewer',
    summary:
      'shadow results of a version aggregated over the nodes evaluating it (counters, per-rule changed flows with top names) beside its offline diff',
    handler: async (ctx, c) => shadowResults(ctx.db, intParam(c, 'id')),
  },
  {
    method: 'GET',
    path: '/v1/versions/:id/export',
    need: 'viewer',
    summary: 'the version’s files (policy and lists), to lint or simulate locally',
    handler: async (ctx, c) => exportVersion(ctx, intParam(c, 'id')),
  },
  {
    method: 'POST',
    path: '/v1/versions/:id/submit',
    need: 'editor',
    body: 'none',
    summary: 'submit a draft: lint, blast radius and diff against the active version',
    handler: async (ctx, c, who) => submitVersion(ctx, intParam(c, 'id'), who!.name),
  },
  {
    method: 'POST',
    path: '/v1/versions/:id/approve',
    need: 'approver',
    body: 'none',
    summary: 'approve (two different approvers, not the author)',
    handler: async (ctx, c, who) => approveVersion(ctx, intParam(c, 'id'), who!.name),
  },
  {
    method: 'POST',
    path: '/v1/versions/:id/override',
    need: 'admin',
    summary: 'record an override of the error findings: {reason} (not an approval)',
    handler: async (ctx, c, who, body) =>
      overrideVersion(ctx, intParam(c, 'id'), obj(body).reason, who!.name),
  },
  {
    method: 'POST',
    path: '/v1/versions/:id/reject',
    need: 'approver',
    summary: 'reject: {reason}',
    handler: async (ctx, c, who, body) => rejectVersion(ctx, intParam(c, 'id'), obj(body).reason, who!.name),
  },
  {
    method: 'POST',
    path: '/v1/versions/:id/publish',
    need: 'approver',
    body: 'none',
    summary: 'publish an approved version: it becomes active as a new signed bundle',
    handler: async (ctx, c, who) => publishVersion(ctx, intParam(c, 'id'), who!.name),
  },
  {
    method: 'POST',
    path: '/v1/rollback',
    need: 'approver',
    summary: 'roll back to the previous version (published as a new, higher bundle): {reason}',
    handler: async (ctx, _c, who, body) => rollback(ctx, obj(body).reason, who!.name),
  },
  {
    method: 'POST',
    path: '/v1/emergency-stop',
    need: 'approver',
    summary:
      'kill switch: publish a signed allow-all bundle (a new, higher version) to every node at once, audited: {reason}',
    handler: async (ctx, _c, who, body) => emergencyStop(ctx, obj(body).reason, who!.name),
  },
  // ---- rollouts
  {
    method: 'POST',
    path: '/v1/rollouts',
    need: 'approver',
    summary:
      'start a staged rollout of an approved version: {version_id, plan?} (plan: YAML/JSON text or object)',
    handler: async (ctx, _c, who, body) => startRollout(ctx, body, who!.name),
  },
  {
    method: 'GET',
    path: '/v1/rollouts',
    need: 'viewer',
    summary: 'rollouts, newest first (without samples)',
    handler: async (ctx) => ({ rollouts: await listRollouts(ctx.db) }),
  },
  {
    method: 'GET',
    path: '/v1/rollouts/:id',
    need: 'viewer',
    summary:
      'a rollout: plan, stages (state, bake, nodes), analysis samples {at,node,metric,value,baseline,threshold,pass}, state, reason',
    handler: async (ctx, c) => getRollout(ctx.db, intParam(c, 'id')),
  },
  ...(['pause', 'resume', 'abort', 'rollback'] as const).map((op): Route => ({
    method: 'POST',
    path: `/v1/rollouts/:id/${op}`,
    need: 'approver',
    body: op === 'abort' || op === 'rollback' ? 'json' : 'none',
    summary: `${op} a rollout${op === 'abort' || op === 'rollback' ? ' (nodes that took the version get the previous content as a new, higher bundle): {reason?}' : ''}`,
    handler: async (ctx, c, who, body) =>
      controlRollout(
        ctx,
        intParam(c, 'id'),
        op,
        who!.name,
        op === 'abort' || op === 'rollback' ? obj(body).reason : undefined,
      ),
  })),
  // ---- audit
  {
    method: 'GET',
    path: '/v1/audit',
    need: 'viewer',
    summary: 'audit rows in order (after = last seq seen, limit ≤ 5000)',
    query: ['after', 'limit', 'target'],
    handler: async (ctx, c) => {
      const after = intQuery(c, 'after') ?? 0;
      const limit = Math.min(intQuery(c, 'limit') ?? 1000, 5000);
      const target = c.req.query('target');
      const rows = target
        ? await ctx.db.all<AuditRow>(
            `SELECT * FROM audit WHERE seq > $1 AND target = $2 ORDER BY seq LIMIT ${limit}`,
            [after, target],
          )
        : await ctx.db.all<AuditRow>(`SELECT * FROM audit WHERE seq > $1 ORDER BY seq LIMIT ${limit}`, [
            after,
          ]);
      return { rows, next: rows.length === limit ? rows[rows.length - 1].seq : null };
    },
  },
  {
    method: 'GET',
    path: '/v1/audit/heads',
    need: 'viewer',
    summary: 'the audit head as stored, and as carried by the current bundle manifest',
    handler: async (ctx) => {
      const h = await ctx.db.get<{ seq: number; hash: string }>(
        'SELECT seq, hash FROM audit_head WHERE id = 1',
      );
      const b = await currentBundle(ctx.db);
      return {
        stored: h ? { seq: Number(h.seq), hash: h.hash } : null,
        bundle: b
          ? { version: b.version, head: (JSON.parse(b.manifest) as { audit_head: unknown }).audit_head }
          : null,
      };
    },
  },
  {
    method: 'GET',
    path: '/v1/audit/verify',
    need: 'viewer',
    summary:
      'verify the whole audit chain against the stored head and the current bundle: ok, rows, first bad row',
    handler: async (ctx) => {
      const rows: AuditRow[] = [];
      for (let after = 0; ;) {
        const page = await ctx.db.all<AuditRow>(
          'SELECT * FROM audit WHERE seq > $1 ORDER BY seq LIMIT 5000',
          [after],
        );
        for (const r of page) rows.push({ ...r, seq: Number(r.seq), at: Number(r.at) });
        if (page.length < 5000) break;
        after = Number(page[page.length - 1].seq);
      }
      const h = await ctx.db.get<{ seq: number; hash: string }>(
        'SELECT seq, hash FROM audit_head WHERE id = 1',
      );
      const heads = h ? [{ label: 'audit_head', head: { seq: Number(h.seq), hash: h.hash } }] : [];
      return verifyChain(rows, heads);
    },
  },
  // ---- keys
  {
    method: 'GET',
    path: '/v1/keys',
    need: 'viewer',
    summary: 'the root public key, the current trust document and the signing keys (public halves)',
    handler: async (ctx) => ({
      root_public_key:
        (await ctx.db.get<{ value: string }>("SELECT value FROM meta WHERE key = 'root_public_key'"))
          ?.value ?? null,
      trust:
        (await ctx.db.get('SELECT version, doc, signature FROM trust ORDER BY version DESC LIMIT 1')) ?? null,
      signing_keys: await ctx.db.all(
        'SELECT keyid, public_key, status, created_at FROM signing_keys ORDER BY created_at DESC',
      ),
    }),
  },
  // ---- box-facing
  {
    method: 'GET',
    path: '/v1/bundle',
    need: 'node',
    body: 'none',
    summary:
      'the current signed bundle manifest; If-None-Match + wait=SECONDS long-polls until a newer one (304 on timeout; 503 when too many long-polls wait)',
    query: ['wait'],
    handler: async (ctx, c, who) => {
      const wait = Math.min(intQuery(c, 'wait') ?? 0, ctx.config.maxWaitS);
      const inm = c.req.header('if-none-match');
      // the bundle intended for this node (its rollout stage), else the fleet bundle
      const mine = async () => currentBundle(ctx.db, await intendedBundle(ctx.db, who!.name));
      let b = await mine();
      const have = inm ? Number(/^(?:W\/)?"(\d+)"$/.exec(inm.trim())?.[1] ?? -1) : -1;
      const until = Date.now() + wait * 1000;
      // a new bundle for other nodes wakes the wait; keep waiting while this node's is unchanged
      while (b && have === b.version && Date.now() < until && !c.req.raw.signal.aborted) {
        await waitForBundle(ctx, have, until - Date.now(), who!.tokenId, c.req.raw.signal);
        if (c.req.raw.signal.aborted) break; // the client is gone: nothing to look up for it
        b = await mine();
      }
      if (!b) return c.json({ error: { code: 'ERR_NO_BUNDLE', message: 'nothing published yet' } }, 404);
      const etag = `"${b.version}"`;
      if (have === b.version) return c.body(null, 304, { ETag: etag });
      return c.json({ manifest: b.manifest, signature: b.signature, keyid: b.keyid, trust: b.trust }, 200, {
        ETag: etag,
        'Cache-Control': 'no-cache',
      });
    },
  },
  {
    method: 'GET',
    path: '/v1/blobs/:sha256',
    need: 'node',
    summary: 'a bundle file by its SHA-256 (immutable)',
    handler: async (ctx, c) => {
      const h = c.req.param('sha256') ?? '';
      if (!/^[0-9a-f]{64}$/.test(h)) throw badRequest('sha256', 'must be 64 hex digits');
      const b = await ctx.db.get<{ data: Buffer }>('SELECT data FROM blobs WHERE sha256 = $1', [h]);
      if (!b) throw notFound(`blob ${h}`);
      return c.body(new Uint8Array(b.data), 200, {
        'Content-Type': 'application/octet-stream',
        'Cache-Control': 'public, max-age=31536000, immutable',
        ETag: `"${h}"`,
      });
    },
  },
  // h-delta: deltas between two list files (immutable, content-addressed by the pair)
  {
    method: 'GET',
    path: '/v1/deltas/:from/:to',
    need: 'node',
    summary:
      'a delta between two sorted list blobs by their SHA-256 (immutable); 404 when either is unknown or not a sorted list',
    handler: async (ctx, c) => {
      const from = c.req.param('from') ?? '';
      const to = c.req.param('to') ?? '';
      if (!/^[0-9a-f]{64}$/.test(from)) throw badRequest('from', 'must be 64 hex digits');
      if (!/^[0-9a-f]{64}$/.test(to)) throw badRequest('to', 'must be 64 hex digits');
      const d = await deltaBetween(ctx.db, from, to);
      if (!d) throw notFound(`delta ${from.slice(0, 16)}… → ${to.slice(0, 16)}…`);
      return c.body(new Uint8Array(d), 200, {
        'Content-Type': 'text/plain; charset=utf-8',
        'Cache-Control': 'public, max-age=31536000, immutable',
        ETag: `"${from}-${to}"`,
      });
    },
  },
  {
    method: 'POST',
    path: '/v1/status',
    need: 'node',
    summary:
      'a box reports: {node, labels, active_version, last_download, last_activation, errors, counters, traffic}',
    handler: async (ctx, c, _who, body) => {
      const o = obj(body);
      if (typeof o.node !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(o.node))
        throw badRequest('node', 'required: the node name');
      if (o.active_version !== undefined && o.active_version !== null && !Number.isInteger(o.active_version))
        throw badRequest('active_version', 'must be an integer');
      for (const k of ['last_download', 'last_activation'])
        if (o[k] !== undefined && o[k] !== null && typeof o[k] !== 'string')
          throw badRequest(k, 'must be an ISO date-time string');
      if (o.errors !== undefined && !Array.isArray(o.errors)) throw badRequest('errors', 'must be a list');
      if (o.counters !== undefined && (typeof o.counters !== 'object' || Array.isArray(o.counters)))
        throw badRequest('counters', 'must be an object');
      if (o.labels !== undefined && (typeof o.labels !== 'object' || Array.isArray(o.labels)))
        throw badRequest('labels', 'must be an object');
      if (
        o.traffic !== undefined &&
        o.traffic !== null &&
        (typeof o.traffic !== 'object' || Array.isArray(o.traffic))
      )
        throw badRequest('traffic', 'must be an object or null');
      if (o.traffic && JSON.stringify(o.traffic).length > 64 * 1024)
        throw badRequest('traffic', 'at most 64 KiB');
      const ts = (v: unknown) =>
        typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? Date.parse(v) : null;
      const vals = [
        JSON.stringify(o.labels ?? {}),
        o.active_version ?? null,
        ts(o.last_download),
        ts(o.last_activation),
        JSON.stringify(o.errors ?? []),
        JSON.stringify(o.counters ?? {}),
        Date.now(),
        (c.env as { incoming?: { socket?: { remoteAddress?: string } } })?.incoming?.socket?.remoteAddress ??
          null,
        o.node,
        o.traffic === undefined || o.traffic === null ? null : JSON.stringify(o.traffic),
      ];
      return { ok: true, ...((await writeStatus(ctx.db, o.node, vals)) ? {} : { deferred: true }) };
    },
  },
  {
    method: 'GET',
    path: '/v1/nodes',
    need: 'viewer',
    summary:
      'every box that reported: labels, active and intended bundle version, drift, last download/activation, last error, last seen',
    handler: async (ctx) => {
      const cur = await currentBundle(ctx.db);
      const rows = await ctx.db.all(
        'SELECT n.*, b.bundle AS assigned FROM nodes n LEFT JOIN node_bundles b ON b.node = n.name ORDER BY n.name',
      );
      return {
        current_bundle: cur?.version ?? null,
        nodes: rows.map((r) => {
          const errors = JSON.parse(r.errors as string) as unknown[];
          const active = r.active_version === null ? null : Number(r.active_version);
          // a node in a rollout stage is meant to run the stage bundle, every other the fleet bundle
          const intended =
            r.assigned !== null && r.assigned !== undefined ? Number(r.assigned) : (cur?.version ?? null);
          const { assigned: _a, traffic, ...rest } = r;
          return {
            ...rest,
            traffic: typeof traffic === 'string' ? JSON.parse(traffic) : null,
            active_version: active,
            last_seen: Number(r.last_seen),
            labels: JSON.parse(r.labels as string),
            errors,
            last_error: errors.length ? errors[errors.length - 1] : null,
            counters: JSON.parse(r.counters as string),
            intended_version: intended,
            drift: intended !== null && active !== intended,
          };
        }),
      };
    },
  },
];

export function routeNeedsJson(r: Route): boolean {
  return r.body === undefined
    ? r.method === 'POST' || r.method === 'PUT' || r.method === 'PATCH'
    : r.body === 'json';
}

export async function parseRouteBody(ctx: Ctx, r: Route, req: Request): Promise<unknown> {
  if (!routeNeedsJson(r)) return null;
  return readJson(req, ctx.config.bodyLimit);
}

export { ApiError };
