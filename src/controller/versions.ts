/**
 * @module controller/versions
 * Policy versions: an immutable snapshot (content-addressed files) of a submitted policy text or of
 * the registry plus settings. Lifecycle: `draft` → `submitted` (lint, blast radius and the diff
 * against the active version computed and stored) → `approved` (two different approvers, neither the
 * author; a version with an error finding also needs an admin's override with a reason, which is not
 * an approval) → `active` (published as a signed bundle) → `superseded` | `rolled_back`; or
 * `rejected`. Every step is audited in the transaction that makes it.
 */
import { appendAudit } from './audit.js';
import { buildBundle, warmCompiled } from './bundles.js';
import type { Ctx } from './context.js';
import type { Queryable, Row } from './db.js';
import { ApiError, badRequest, notFound } from './errors.js';
import {
  checkSubmittedText,
  loadContent,
  registryContent,
  reviewPolicy,
  sha256,
  trafficReference,
  type Files,
  type Settings,
} from './content.js';
import { activeEntries, registryRev } from './registry.js';
import { parsePolicy } from '../policy/load.js';
import { PolicyError } from '../policy/errors.js';
import type { Finding } from '../policy/lint.js';
import type { Policy } from '../policy/types.js';
import type { FileMeta } from '../bundle/verify.js';
import { setRegistryMatcher, setVersionMatcher, versionMatcher } from './matchers.js';

const conflict = (code: string, msg: string) => new ApiError(409, code, msg);

import { readFiles, storeFiles } from './blobs.js';

export { readFiles, storeFiles };

export async function getSettings(q: Queryable): Promise<Settings> {
  const r = await q.get<{ value: string }>("SELECT value FROM meta WHERE key = 'settings'");
  return JSON.parse(r?.value ?? '{}') as Settings;
}

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,100}\.(ya?ml|json)$/;

/** Settings for registry versions: checked by loading them as a policy with no rules. */
export async function putSettings(ctx: Ctx, body: unknown, actor: string): Promise<Settings> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badRequest('(body)', 'must be an object');
  const s = body as Record<string, unknown>;
  for (const k of Object.keys(s))
    if (!['protected', 'inspection', 'default', 'names', 'name'].includes(k))
      throw badRequest(k, 'unknown setting');
  const text = JSON.stringify({ ...s, rules: [] }, null, 1);
  try {
    checkSubmittedText(text, 'settings.json');
    await parsePolicy(text, 'settings.json');
  } catch (e) {
    if (e instanceof PolicyError)
      throw new ApiError(400, 'ERR_POLICY', e.message, `settings.json:${e.line}:${e.column}`);
    throw e;
  }
  return ctx.db.tx(async (q) => {
    const old = await getSettings(q);
    await q.run("UPDATE meta SET value = $1 WHERE key = 'settings'", [JSON.stringify(s)]);
    await appendAudit(ctx.db, q, {
      actor,
      action: 'settings.update',
      target: 'settings',
      before: old,
      after: s,
    });
    return s as Settings;
  });
}

/** Loaded policies of versions (immutable content), a few kept. */
const policyCache = new Map<string, Policy>();

export async function versionPolicy(ctx: Ctx, q: Queryable, id: number): Promise<Policy> {
  const v = await q.get<{ files: string; main: string }>('SELECT files, main FROM versions WHERE id = $1', [
    id,
  ]);
  if (!v) throw notFound(`version ${id}`);
  const k = `${ctx.db.kind}:${sha256(v.files)}`;
  const hit = policyCache.get(k);
  if (hit) return hit;
  const p = await loadContent(await readFiles(q, JSON.parse(v.files) as FileMeta[]), v.main);
  if (policyCache.size >= 2) policyCache.delete(policyCache.keys().next().value!);
  policyCache.set(k, p);
  return p;
}

export async function activeVersionId(q: Queryable): Promise<number | null> {
  const r = await q.get<{ id: number }>(
    "SELECT id FROM versions WHERE status = 'active' ORDER BY activated_at DESC LIMIT 1",
  );
  return r ? Number(r.id) : null;
}

export async function versionOut(q: Queryable, id: number, full = true): Promise<Row> {
  const v = await q.get('SELECT * FROM versions WHERE id = $1', [id]);
  if (!v) throw notFound(`version ${id}`);
  const approvals = await q.all(
    'SELECT user_name AS user, at FROM approvals WHERE version_id = $1 ORDER BY at',
    [id],
  );
  const out: Row = {
    id: v.id,
    status: v.status,
    author: v.author,
    origin: v.origin,
    note: v.note,
    registry_rev: v.registry_rev,
    main: v.main,
    files: JSON.parse(v.files as string),
    errors: v.errors,
    warnings: v.warnings,
    baseline_version: v.baseline_version,
    override: v.override_reason ? { by: v.override_by, reason: v.override_reason, at: v.override_at } : null,
    rejected_reason: v.rejected_reason,
    approvals,
    created_at: v.created_at,
    submitted_at: v.submitted_at,
    approved_at: v.approved_at,
    activated_at: v.activated_at,
    ended_at: v.ended_at,
    bundle_version: v.bundle_version,
  };
  if (full) {
    const lint = v.lint ? JSON.parse(v.lint as string) : null;
    out.findings = lint?.findings ?? null;
    out.diff = v.diff ? JSON.parse(v.diff as string) : null;
  }
  return out;
}

export async function listVersions(ctx: Ctx, status?: string): Promise<Row[]> {
  const ids = status
    ? await ctx.db.all<{ id: number }>(
        'SELECT id FROM versions WHERE status = $1 ORDER BY id DESC LIMIT 200',
        [status],
      )
    : await ctx.db.all<{ id: number }>('SELECT id FROM versions ORDER BY id DESC LIMIT 200');
  const out: Row[] = [];
  for (const r of ids) out.push(await versionOut(ctx.db, Number(r.id), false));
  return out;
}

/**
 * Create a version: `{policy: TEXT, filename?}` (YAML or JSON, no list files) or `{from_registry: true}`.
 * With `submit` (default true) it is submitted at once.
 */
export async function createVersion(ctx: Ctx, body: unknown, actor: string): Promise<Row> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badRequest('(body)', 'must be an object');
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!['policy', 'filename', 'from_registry', 'note', 'submit', 'traffic'].includes(k))
      throw badRequest(k, 'unknown field');
  if (o.traffic !== undefined && typeof o.traffic !== 'string')
    throw badRequest('traffic', 'flow records as JSON lines (chokepoint analyze output)');
  let trafficBlob: Files | null = null;
  if (typeof o.traffic === 'string') {
    try {
      trafficReference(o.traffic, 'traffic.jsonl');
    } catch (e) {
      if (e instanceof PolicyError)
        throw new ApiError(
          400,
          'ERR_BAD_REQUEST',
          `traffic: ${e.message}`,
          `traffic.jsonl:${e.line}:${e.column}`,
        );
      throw e;
    }
    trafficBlob = new Map([['traffic.jsonl', Buffer.from(o.traffic)]]);
  }
  if (o.note !== undefined && typeof o.note !== 'string') throw badRequest('note', 'must be a string');
  let files: Files;
  let main: string;
  let origin: string;
  let rev: number | null = null;
  const pre: Finding[] = [];
  if (o.from_registry === true) {
    if (o.policy !== undefined) throw badRequest('policy', 'give either policy or from_registry');
    origin = 'registry';
    const [entries, settings, r] = await Promise.all([
      activeEntries(ctx.db),
      getSettings(ctx.db),
      registryRev(ctx.db),
    ]);
    rev = r;
    const c = registryContent(entries, settings, { registryRev: r });
    files = c.files;
    main = c.main;
    if (c.expired)
      pre.push({
        severity: 'info',
        code: 'entries-expired',
        rule_id: null,
        message: `${c.expired} registry entr${c.expired === 1 ? 'y has' : 'ies have'} expired and left this version`,
        examples: [],
        count: c.expired,
      });
    if (c.expiring.length)
      pre.push({
        severity: 'warning',
        code: 'entries-expiring',
        rule_id: null,
        message: `${c.expiring.length} registry entr${c.expiring.length === 1 ? 'y expires' : 'ies expire'} within 7 days and will leave the next version`,
        examples: c.expiring.slice(0, 10).map((x) => `${x.kind} ${x.value} (expires ${x.expires})`),
        count: c.expiring.length,
      });
  } else {
    if (typeof o.policy !== 'string')
      throw badRequest('policy', 'required: the policy text (YAML or JSON), or from_registry: true');
    const filename = o.filename === undefined ? 'policy.yaml' : String(o.filename);
    if (!SAFE_NAME.test(filename))
      throw badRequest('filename', 'a plain file name ending in .yaml, .yml or .json');
    try {
      checkSubmittedText(o.policy, filename);
      await parsePolicy(o.policy, filename);
    } catch (e) {
      if (e instanceof PolicyError)
        throw new ApiError(400, 'ERR_POLICY', e.message, `${e.file}:${e.line}:${e.column}`);
      throw e;
    }
    origin = 'file';
    files = new Map([[filename, Buffer.from(o.policy)]]);
    main = filename;
  }
  const id = await ctx.db.tx(async (q) => {
    const metas = await storeFiles(q, files);
    const traffic = trafficBlob ? (await storeFiles(q, trafficBlob))[0] : null;
    const now = Date.now();
    // RETURNING: the id this insert made, not a later look-up that a concurrent insert could win
    const row = await q.get<{ id: number }>(
      "INSERT INTO versions (status, author, origin, registry_rev, main, files, note, lint, created_at) VALUES ('draft', $1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
      [
        actor,
        origin,
        rev,
        main,
        JSON.stringify(metas),
        (o.note as string) ?? null,
        JSON.stringify({ pre, traffic }),
        now,
      ],
    );
    await appendAudit(ctx.db, q, {
      actor,
      action: 'version.create',
      target: `version:${row!.id}`,
      after: { origin, main, files: metas, registry_rev: rev, note: o.note ?? null },
    });
    return Number(row!.id);
  });
  if (o.submit === false) return versionOut(ctx.db, id);
  return submitVersion(ctx, id, actor);
}

/** Compute lint + blast radius + diff against the active version, store them, mark submitted. */
export async function submitVersion(ctx: Ctx, id: number, actor: string): Promise<Row> {
  const v = await ctx.db.get<{
    status: string;
    author: string;
    lint: string | null;
    origin: string;
    registry_rev: number | null;
  }>('SELECT status, author, lint, origin, registry_rev FROM versions WHERE id = $1', [id]);
  if (!v) throw notFound(`version ${id}`);
  if (v.status !== 'draft') throw conflict('ERR_STATE', `version ${id} is ${v.status}, not draft`);
  let p: Policy;
  try {
    p = await versionPolicy(ctx, ctx.db, id);
  } catch (e) {
    if (e instanceof PolicyError)
      throw new ApiError(400, 'ERR_POLICY', e.message, `${e.file}:${e.line}:${e.column}`);
    throw e;
  }
  const activeId = await activeVersionId(ctx.db);
  const baselineMatcher = activeId !== null ? (versionMatcher(ctx.db.kind, activeId) ?? null) : null;
  const baseline = activeId !== null && !baselineMatcher ? await versionPolicy(ctx, ctx.db, activeId) : null;
  const settings = await getSettings(ctx.db);
  const stored = (v.lint ? JSON.parse(v.lint) : {}) as { pre?: Finding[]; traffic?: FileMeta | null };
  const pre = stored.pre ?? [];
  const traffic = stored.traffic
    ? trafficReference(
        (await readFiles(ctx.db, [stored.traffic])).get('traffic.jsonl')!.toString('utf8'),
        'attached traffic',
      )
    : null;
  const review = reviewPolicy(p, {
    reference: ctx.config.reference,
    baseline,
    baselineVersion: activeId,
    baselineMatcher,
    traffic,
    protectedNames: settings.protected?.exact,
    extraFindings: pre,
  });
  setVersionMatcher(ctx.db.kind, id, review.compiled);
  if (v.origin === 'registry' && v.registry_rev !== null)
    setRegistryMatcher(ctx.db.kind, Number(v.registry_rev), review.compiled);
  return ctx.db.tx(async (q) => {
    const cur = await q.get<{ status: string }>(
      `SELECT status FROM versions WHERE id = $1${ctx.db.forUpdate}`,
      [id],
    );
    if (cur!.status !== 'draft') throw conflict('ERR_STATE', `version ${id} is ${cur!.status}, not draft`);
    await q.run(
      "UPDATE versions SET status = 'submitted', lint = $1, diff = $2, errors = $3, warnings = $4, baseline_version = $5, submitted_at = $6 WHERE id = $7",
      [
        JSON.stringify({ pre, traffic: stored.traffic ?? null, findings: review.findings }),
        JSON.stringify({ ...review.diff, traffic: review.traffic_diff }),
        review.errors,
        review.warnings,
        activeId,
        Date.now(),
        id,
      ],
    );
    await appendAudit(ctx.db, q, {
      actor,
      action: 'version.submit',
      target: `version:${id}`,
      before: { status: 'draft' },
      after: {
        status: 'submitted',
        errors: review.errors,
        warnings: review.warnings,
        changed: review.diff.changed,
        baseline_version: activeId,
      },
    });
    return versionOut(q, id);
  });
}

async function lockVersion(ctx: Ctx, q: Queryable, id: number) {
  const v = await q.get<{
    id: number;
    status: string;
    author: string;
    errors: number | null;
    override_reason: string | null;
    override_by: string | null;
  }>(
    `SELECT id, status, author, errors, override_reason, override_by FROM versions WHERE id = $1${ctx.db.forUpdate}`,
    [id],
  );
  if (!v) throw notFound(`version ${id}`);
  return v;
}

export async function approveVersion(ctx: Ctx, id: number, actor: string): Promise<Row> {
  return ctx.db.tx(async (q) => {
    const v = await lockVersion(ctx, q, id);
    if (v.status !== 'submitted')
      throw conflict('ERR_STATE', `version ${id} is ${v.status}: only a submitted version can be approved`);
    if (v.override_by === actor)
      throw conflict(
        'ERR_OVERRIDER',
        `${actor} recorded the override of version ${id}: the override is not an approval, two other approvers are needed`,
      );
    if (v.author === actor)
      throw conflict(
        'ERR_OWN_VERSION',
        `version ${id} was written by ${actor}: an author cannot approve their own version`,
      );
    if (Number(v.errors ?? 0) > 0 && !v.override_reason)
      throw conflict(
        'ERR_NEEDS_OVERRIDE',
        `version ${id} has ${v.errors} error finding(s): an admin must record an override with a reason before it can be approved`,
      );
    if (await q.get('SELECT 1 AS x FROM approvals WHERE version_id = $1 AND user_name = $2', [id, actor]))
      throw conflict(
        'ERR_ALREADY_APPROVED',
        `${actor} has already approved version ${id}: a second approver is needed`,
      );
    const now = Date.now();
    await q.run('INSERT INTO approvals (version_id, user_name, at) VALUES ($1, $2, $3)', [id, actor, now]);
    const n = Number(
      (await q.get<{ n: number }>('SELECT COUNT(*) AS n FROM approvals WHERE version_id = $1', [id]))!.n,
    );
    if (n >= 2)
      await q.run("UPDATE versions SET status = 'approved', approved_at = $1 WHERE id = $2", [now, id]);
    await appendAudit(ctx.db, q, {
      actor,
      action: 'version.approve',
      target: `version:${id}`,
      before: { status: v.status, approvals: n - 1 },
      after: { status: n >= 2 ? 'approved' : v.status, approvals: n },
    });
    return versionOut(q, id);
  });
}

export async function overrideVersion(ctx: Ctx, id: number, reason: unknown, actor: string): Promise<Row> {
  if (typeof reason !== 'string' || reason.trim().length < 10)
    throw badRequest('reason', 'required: why the error findings are accepted (at least 10 characters)');
  return ctx.db.tx(async (q) => {
    const v = await lockVersion(ctx, q, id);
    if (v.status !== 'submitted')
      throw conflict('ERR_STATE', `version ${id} is ${v.status}: only a submitted version can be overridden`);
    if (Number(v.errors ?? 0) === 0)
      throw conflict('ERR_NO_ERRORS', `version ${id} has no error findings: nothing to override`);
    await q.run(
      'UPDATE versions SET override_reason = $1, override_by = $2, override_at = $3 WHERE id = $4',
      [reason.trim(), actor, Date.now(), id],
    );
    await appendAudit(ctx.db, q, {
      actor,
      action: 'version.override',
      target: `version:${id}`,
      before: { override: v.override_reason },
      after: { override: reason.trim(), errors: v.errors },
    });
    return versionOut(q, id);
  });
}

export async function rejectVersion(ctx: Ctx, id: number, reason: unknown, actor: string): Promise<Row> {
  if (typeof reason !== 'string' || !reason.trim()) throw badRequest('reason', 'required');
  return ctx.db.tx(async (q) => {
    const v = await lockVersion(ctx, q, id);
    if (!['draft', 'submitted', 'approved'].includes(v.status))
      throw conflict('ERR_STATE', `version ${id} is ${v.status}: cannot be rejected`);
    await q.run(
      "UPDATE versions SET status = 'rejected', rejected_reason = $1, ended_at = $2 WHERE id = $3",
      [reason, Date.now(), id],
    );
    await appendAudit(ctx.db, q, {
      actor,
      action: 'version.reject',
      target: `version:${id}`,
      before: { status: v.status },
      after: { status: 'rejected', reason },
    });
    return versionOut(q, id);
  });
}

/** Make an approved version the active one: a new signed bundle; the previous active is superseded. */
export async function publishVersion(ctx: Ctx, id: number, actor: string): Promise<Row> {
  await warmCompiled(ctx, id);
  return ctx.db.tx(async (q) => {
    const v = await lockVersion(ctx, q, id);
    if (v.status !== 'approved')
      throw conflict('ERR_STATE', `version ${id} is ${v.status}: only an approved version can be published`);
    const prev = await activeVersionId(q);
    const now = Date.now();
    if (prev !== null)
      await q.run("UPDATE versions SET status = 'superseded', ended_at = $1 WHERE id = $2", [now, prev]);
    await appendAudit(ctx.db, q, {
      actor,
      action: 'version.publish',
      target: `version:${id}`,
      before: { active: prev },
      after: { active: id },
    });
    const b = await buildBundle(ctx, q, id, 'publish', actor);
    await q.run(
      "UPDATE versions SET status = 'active', activated_at = $1, bundle_version = $2 WHERE id = $3",
      [now, b.version, id],
    );
    return versionOut(q, id);
  });
}

/** The version a rollback makes active again: the most recently superseded one. */
const PREVIOUS_ACTIVE =
  "SELECT id FROM versions WHERE status = 'superseded' ORDER BY ended_at DESC, id DESC LIMIT 1";

/**
 * Roll back: the active version becomes `rolled_back`, the most recently superseded one is active
 * again — as a new, higher bundle, so a box's no-rollback check stays strict.
 */
export async function rollback(ctx: Ctx, reason: unknown, actor: string): Promise<Row> {
  if (typeof reason !== 'string' || !reason.trim()) throw badRequest('reason', 'required');
  await warmCompiled(ctx, (await ctx.db.get<{ id: number }>(PREVIOUS_ACTIVE))?.id);
  return ctx.db.tx(async (q) => {
    const cur = await activeVersionId(q);
    if (cur === null) throw conflict('ERR_STATE', 'no active version');
    const prev = await q.get<{ id: number }>(PREVIOUS_ACTIVE);
    if (!prev) throw conflict('ERR_STATE', 'no earlier version to roll back to');
    const now = Date.now();
    await q.run("UPDATE versions SET status = 'rolled_back', ended_at = $1 WHERE id = $2", [now, cur]);
    await appendAudit(ctx.db, q, {
      actor,
      action: 'version.rollback',
      target: `version:${cur}`,
      before: { active: cur },
      after: { active: Number(prev.id), reason },
    });
    const b = await buildBundle(ctx, q, Number(prev.id), 'rollback', actor);
    await q.run(
      "UPDATE versions SET status = 'active', activated_at = $1, ended_at = NULL, bundle_version = $2 WHERE id = $3",
      [now, b.version, prev.id],
    );
    return versionOut(q, Number(prev.id));
  });
}

/** The version's files as stored (for `ctl versions export`: lint and simulate them locally). */
export async function exportVersion(
  ctx: Ctx,
  id: number,
): Promise<{ main: string; files: { name: string; text: string }[] }> {
  const v = await ctx.db.get<{ files: string; main: string }>(
    'SELECT files, main FROM versions WHERE id = $1',
    [id],
  );
  if (!v) throw notFound(`version ${id}`);
  const files = await readFiles(ctx.db, JSON.parse(v.files) as FileMeta[]);
  return { main: v.main, files: [...files].map(([name, b]) => ({ name, text: b.toString('utf8') })) };
}
