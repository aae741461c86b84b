/**
 * @module controller/bundles
 * Signed bundles, after OPA's bundles with TUF's defences. A bundle is a **manifest** — monotonic
 * `version`, the policy version it carries, `created`, `expires`, every file's SHA-256 and size, the
 * approvals and override, the audit head, the `format_version` of the compiled content — signed with
 * the online Ed25519 signing key, plus the root-signed trust document that certifies that key. Files
 * are content-addressed blobs (`GET /v1/blobs/SHA256`, immutable, cacheable). Bundle numbers are
 * allocated under a lock, so replicas never hand out the same one; a new bundle is announced with
 * NOTIFY so long-polls on every replica wake. The format and `verifyBundle` (what a box runs) live in
 * bundle/verify, shared with the box.
 */
import { appendAudit } from './audit.js';
import { compiledFor } from './compiled.js';
import { BUNDLE_CHANNEL, type Ctx } from './context.js';
import type { Queryable } from './db.js';
import { ApiError } from './errors.js';
import { signText } from './keys.js';
import { BUNDLE_FORMAT_VERSION, type Envelope, type FileMeta, type Manifest } from '../bundle/verify.js';

export {
  BUNDLE_FORMAT_VERSION,
  BundleError,
  verifyBundle,
  verifyFile,
  type Envelope,
  type FileMeta,
  type Manifest,
} from '../bundle/verify.js';

/** Extra sections of a bundle (bundle/verify's contract); both absent: a bundle as before. */
export interface BundleExtras {
  /** A version id the boxes evaluate in shadow beside `policyVersion` (never enforced). */
  shadow?: number | null;
  /** The rollout and stage the bundle is built for (h-rollout's orchestration decides). */
  rollout?: { id: number; stage: number; report_every_s?: number } | null;
}

/**
 * Compile a version's registry for its bundles ahead of the transaction that builds them (the
 * compile can take seconds; on SQLite an open transaction holds the one connection, so every other
 * query would wait). Best effort: whatever fails here is met again, and reported, by the bundle's own
 * compile inside the transaction, which then finds this one's result in the cache.
 */
export async function warmCompiled(
  ctx: Ctx,
  ...policyVersions: (number | null | undefined)[]
): Promise<void> {
  for (const id of policyVersions) {
    if (id === null || id === undefined || !Number.isInteger(Number(id))) continue;
    try {
      const v = await ctx.db.get<{ files: string; main: string }>(
        'SELECT files, main FROM versions WHERE id = $1',
        [Number(id)],
      );
      if (v) await compiledFor(ctx.db, v.main, JSON.parse(v.files) as FileMeta[]);
    } catch {
      // see above: the transaction's own compile reports it
    }
  }
}

/**
 * Build and sign bundle N+1 for `policyVersion` inside the caller's transaction (which must already
 * hold the audit row of the decision, so the manifest's audit head covers it). With
 * `extras.shadow`, the manifest carries that version's main file and files (hashes and sizes, the
 * blobs are already stored) as its `shadow` section; `extras.rollout` is copied as is. Use
 * {@link signBundle} for a bundle in its own transaction.
 */
export async function buildBundle(
  ctx: Ctx,
  q: Queryable,
  policyVersion: number,
  kind: Manifest['kind'],
  actor: string,
  extras: BundleExtras = {},
): Promise<{ version: number; manifest: Manifest }> {
  const key = await q.get<{ keyid: string; private_key: string }>(
    "SELECT keyid, private_key FROM signing_keys WHERE status = 'active' ORDER BY created_at DESC LIMIT 1",
  );
  const trust = await q.get<{ version: number; doc: string; signature: string }>(
    'SELECT version, doc, signature FROM trust ORDER BY version DESC LIMIT 1',
  );
  if (!key || !trust)
    throw new ApiError(
      409,
      'ERR_NO_SIGNING_KEY',
      'no signing key: run `chokepoint controller signing-key rotate --root ROOT.key` on the controller host',
    );
  const v = await q.get<{
    id: number;
    files: string;
    main: string;
    author: string;
    override_reason: string | null;
    override_by: string | null;
    override_at: number | null;
  }>(
    'SELECT id, files, main, author, override_reason, override_by, override_at FROM versions WHERE id = $1',
    [policyVersion],
  );
  if (!v) throw new ApiError(404, 'ERR_NOT_FOUND', `version ${policyVersion} not found`);
  // compiled before the bundle lock (versions are immutable; compiling 10^6 names takes seconds)
  const compiled = await compiledFor(q, v.main, JSON.parse(v.files) as FileMeta[]);
  if (ctx.db.kind === 'postgres') await q.run('SELECT pg_advisory_xact_lock(727002)');
  let shadow: Manifest['shadow'] = null;
  if (extras.shadow !== undefined && extras.shadow !== null) {
    const sv = await q.get<{ id: number; files: string; main: string }>(
      'SELECT id, files, main FROM versions WHERE id = $1',
      [extras.shadow],
    );
    if (!sv) throw new ApiError(404, 'ERR_NOT_FOUND', `shadow version ${extras.shadow} not found`);
    shadow = { policy_version: Number(sv.id), main: sv.main, files: JSON.parse(sv.files) as FileMeta[] };
  }
  const approvals = await q.all<{ user_name: string; at: number }>(
    'SELECT user_name, at FROM approvals WHERE version_id = $1 ORDER BY at',
    [policyVersion],
  );
  const last = await q.get<{ n: number | null }>('SELECT MAX(version) AS n FROM bundles');
  const number = Number(last?.n ?? 0) + 1;
  const now = Date.now();
  const head = await appendAudit(ctx.db, q, {
    actor,
    action: `bundle.${kind}`,
    target: `bundle:${number}`,
    after: {
      bundle: number,
      policy_version: policyVersion,
      keyid: key.keyid,
      ...(shadow ? { shadow_version: shadow.policy_version } : {}),
      ...(extras.rollout ? { rollout: extras.rollout } : {}),
    },
  });
  const m: Manifest = {
    type: 'chokepoint-bundle',
    format_version: BUNDLE_FORMAT_VERSION,
    version: number,
    kind,
    policy_version: policyVersion,
    created: new Date(now).toISOString(),
    expires: new Date(now + ctx.config.bundleTtlMs).toISOString(),
    main: v.main,
    files: JSON.parse(v.files) as FileMeta[],
    author: v.author,
    approvals: approvals.map((a) => ({ user: a.user_name, at: new Date(Number(a.at)).toISOString() })),
    override: v.override_reason
      ? { by: v.override_by!, reason: v.override_reason, at: new Date(Number(v.override_at)).toISOString() }
      : null,
    audit_head: head,
    signing_keyid: key.keyid,
    trust_version: trust.version,
  };
  if (shadow) m.shadow = shadow;
  if (compiled) m.compiled = compiled;
  if (extras.rollout)
    m.rollout = {
      id: extras.rollout.id,
      stage: extras.rollout.stage,
      ...(extras.rollout.report_every_s !== undefined
        ? { report_every_s: extras.rollout.report_every_s }
        : {}),
    };
  const text = JSON.stringify(m);
  await q.run(
    'INSERT INTO bundles (version, policy_version, kind, manifest, signature, keyid, trust_version, created_at, expires_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)',
    [
      number,
      policyVersion,
      kind,
      text,
      signText(key.private_key, text),
      key.keyid,
      trust.version,
      now,
      now + ctx.config.bundleTtlMs,
    ],
  );
  await ctx.notifyBundle(q, number);
  return { version: number, manifest: m };
}

/**
 * Sign and publish bundle N+1 for `policyVersion` (optionally with a shadow version and rollout tag)
 * in its own transaction, with its audit entry: the small entry point for whoever decides when (a
 * rollout stage, a test). Returns the bundle number and manifest.
 */
export async function signBundle(
  ctx: Ctx,
  policyVersion: number,
  kind: Manifest['kind'],
  actor: string,
  extras: BundleExtras = {},
): Promise<{ version: number; manifest: Manifest }> {
  await warmCompiled(ctx, policyVersion, extras.shadow);
  return ctx.db.tx((q) => buildBundle(ctx, q, policyVersion, kind, actor, extras));
}

/**
 * The fleet bundle (the newest one that is not a rollout's stage or shadow bundle), or with `version` that
 * bundle (a node's rollout assignment).
 */
export async function currentBundle(
  q: Queryable,
  version?: number | null,
): Promise<(Envelope & { version: number; expires_at: number }) | undefined> {
  const b = await q.get<{
    version: number;
    manifest: string;
    signature: string;
    keyid: string;
    trust_version: number;
    expires_at: number;
  }>(
    version === undefined || version === null
      ? "SELECT version, manifest, signature, keyid, trust_version, expires_at FROM bundles WHERE kind NOT IN ('stage','shadow') ORDER BY version DESC LIMIT 1"
      : 'SELECT version, manifest, signature, keyid, trust_version, expires_at FROM bundles WHERE version = $1',
    version === undefined || version === null ? [] : [version],
  );
  if (!b) return undefined;
  const t = await q.get<{ doc: string; signature: string }>(
    'SELECT doc, signature FROM trust ORDER BY version DESC LIMIT 1',
  );
  return {
    version: Number(b.version),
    expires_at: Number(b.expires_at),
    manifest: b.manifest,
    signature: b.signature,
    keyid: b.keyid,
    trust: { doc: t!.doc, signature: t!.signature },
  };
}

/**
 * Re-sign the current content as a new bundle when less than half of the lifetime is left, or when
 * the bundle was signed with a key that is no longer the active one (rotation). Returns the new
 * bundle version, or null. Safe on several replicas: the check is repeated under the bundle lock.
 */
export async function resignIfDue(ctx: Ctx, now = Date.now()): Promise<number | null> {
  const due = async (q: Queryable) => {
    const b = await q.get<{
      version: number;
      policy_version: number;
      keyid: string;
      expires_at: number;
      created_at: number;
    }>(
      "SELECT version, policy_version, keyid, expires_at, created_at FROM bundles WHERE kind NOT IN ('stage','shadow') ORDER BY version DESC LIMIT 1",
    );
    if (!b) return null;
    const active = await q.get<{ keyid: string }>(
      "SELECT keyid FROM signing_keys WHERE status = 'active' ORDER BY created_at DESC LIMIT 1",
    );
    const left = Number(b.expires_at) - now;
    if (left < ctx.config.bundleTtlMs / 2 || (active && active.keyid !== b.keyid)) return b;
    return null;
  };
  const first = await due(ctx.db);
  if (!first) return null;
  await warmCompiled(ctx, Number(first.policy_version));
  return ctx.db.tx(async (q) => {
    if (ctx.db.kind === 'postgres') await q.run('SELECT pg_advisory_xact_lock(727002)');
    const b = await due(q);
    if (!b) return null;
    const r = await buildBundle(ctx, q, Number(b.policy_version), 'resign', 'controller');
    await q.run('UPDATE versions SET bundle_version = $1 WHERE id = $2', [r.version, b.policy_version]);
    return r.version;
  });
}

export { BUNDLE_CHANNEL };
