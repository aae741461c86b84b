/**
 * @module controller/schema
 * The controller's one schema, as numbered migrations written once for both engines. A few type
 * words differ between SQLite and PostgreSQL and are spelled as tokens: `{ID}` (auto-increment key),
 * `{BLOB}` (bytes), `{BIG}` (64-bit integer), `{UNLOGGED}` (PostgreSQL: the import stage, which a
 * crash may lose — an interrupted import is redone anyway), `{STAGE_KEY}` (the stage's key on
 * PostgreSQL, whose anti-join against it is a nested loop without it; SQLite builds a transient index
 * for its `NOT IN` instead, and staging 10^6 rows into a keyed table costs more than that). Migrations run in order inside a transaction each; on
 * PostgreSQL several replicas starting at once serialise on an advisory lock.
 */
import type { Db } from './db.js';

const MIGRATIONS: string[] = [
  // 1: everything
  `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE users (
  id {ID}, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL, created_at {BIG} NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0);
CREATE TABLE tokens (
  id {ID}, user_id INTEGER NOT NULL REFERENCES users(id), hash TEXT NOT NULL UNIQUE,
  label TEXT, created_at {BIG} NOT NULL, last_used_at {BIG}, revoked_at {BIG});
CREATE TABLE takedowns (
  id {ID}, status TEXT NOT NULL, authority TEXT, reference TEXT, legal_basis TEXT,
  requested_by TEXT, details TEXT, received_at {BIG} NOT NULL, updated_at {BIG} NOT NULL,
  created_by TEXT NOT NULL, note TEXT);
CREATE TABLE entries (
  id {ID}, kind TEXT NOT NULL, value TEXT NOT NULL, action TEXT NOT NULL, method TEXT,
  rate_bps {BIG}, burst_bytes {BIG}, authority TEXT, reference TEXT, legal_basis TEXT,
  decided TEXT, requested_by TEXT, expires TEXT, status TEXT NOT NULL, source TEXT NOT NULL,
  line INTEGER, takedown_id INTEGER REFERENCES takedowns(id), created_at {BIG} NOT NULL,
  updated_at {BIG} NOT NULL, created_rev {BIG} NOT NULL, updated_rev {BIG} NOT NULL,
  UNIQUE (kind, value));
CREATE INDEX entries_source ON entries (source, status);
CREATE TABLE imports (
  id TEXT PRIMARY KEY, source TEXT NOT NULL, format TEXT NOT NULL, status TEXT NOT NULL,
  rows_read {BIG} NOT NULL DEFAULT 0, staged {BIG} NOT NULL DEFAULT 0, added {BIG}, updated {BIG},
  retired {BIG}, entries {BIG}, result TEXT, error TEXT, error_field TEXT, started_at {BIG} NOT NULL, finished_at {BIG}, created_by TEXT NOT NULL,
  options TEXT NOT NULL);
CREATE {UNLOGGED} TABLE import_stage (
  import_id TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL, authority TEXT,
  reference TEXT, decided TEXT, line INTEGER{STAGE_KEY});
CREATE TABLE blobs (sha256 TEXT PRIMARY KEY, size {BIG} NOT NULL, data {BLOB} NOT NULL);
CREATE TABLE versions (
  id {ID}, status TEXT NOT NULL, author TEXT NOT NULL, origin TEXT NOT NULL,
  registry_rev {BIG}, main TEXT NOT NULL, files TEXT NOT NULL, note TEXT,
  lint TEXT, diff TEXT, errors INTEGER, warnings INTEGER, baseline_version INTEGER,
  override_reason TEXT, override_by TEXT, override_at {BIG}, rejected_reason TEXT,
  created_at {BIG} NOT NULL, submitted_at {BIG}, approved_at {BIG}, activated_at {BIG},
  ended_at {BIG}, bundle_version {BIG});
CREATE TABLE approvals (
  version_id INTEGER NOT NULL REFERENCES versions(id), user_name TEXT NOT NULL, at {BIG} NOT NULL,
  PRIMARY KEY (version_id, user_name));
CREATE TABLE signing_keys (
  keyid TEXT PRIMARY KEY, public_key TEXT NOT NULL, private_key TEXT NOT NULL,
  created_at {BIG} NOT NULL, status TEXT NOT NULL);
CREATE TABLE trust (version INTEGER PRIMARY KEY, doc TEXT NOT NULL, signature TEXT NOT NULL,
  created_at {BIG} NOT NULL);
CREATE TABLE bundles (
  version {BIG} PRIMARY KEY, policy_version INTEGER NOT NULL REFERENCES versions(id),
  kind TEXT NOT NULL, manifest TEXT NOT NULL, signature TEXT NOT NULL, keyid TEXT NOT NULL,
  trust_version INTEGER NOT NULL, created_at {BIG} NOT NULL, expires_at {BIG} NOT NULL);
CREATE TABLE nodes (
  name TEXT PRIMARY KEY, labels TEXT, active_version {BIG}, last_download {BIG},
  last_activation {BIG}, errors TEXT, counters TEXT, last_seen {BIG} NOT NULL, addr TEXT);
CREATE TABLE audit (
  seq {BIG} PRIMARY KEY, at {BIG} NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
  target TEXT, before TEXT, after TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE audit_head (id INTEGER PRIMARY KEY, seq {BIG} NOT NULL, hash TEXT NOT NULL);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
INSERT INTO meta (key, value) VALUES ('registry_rev', '0');
INSERT INTO meta (key, value) VALUES ('settings', '{}');
`,
  // h-shadow: nodes.traffic, the box's traffic counters (status report field traffic, JSON)
  `ALTER TABLE nodes ADD COLUMN traffic TEXT;`,
  `
-- h-rollout: staged rollouts (state in the database, so another replica continues one), their analysis samples, per-node intended bundles
CREATE TABLE rollouts (
  id {ID}, version_id INTEGER NOT NULL REFERENCES versions(id), prev_version_id INTEGER,
  plan TEXT NOT NULL, state TEXT NOT NULL, stage INTEGER NOT NULL, stage_started {BIG},
  last_sample {BIG}, bundle_version {BIG}, work TEXT NOT NULL, reason TEXT,
  created_by TEXT NOT NULL, created_at {BIG} NOT NULL, updated_at {BIG} NOT NULL);
CREATE TABLE rollout_samples (
  id {ID}, rollout_id INTEGER NOT NULL, stage INTEGER NOT NULL, at {BIG} NOT NULL, node TEXT NOT NULL,
  metric TEXT NOT NULL, value DOUBLE PRECISION, baseline DOUBLE PRECISION, threshold DOUBLE PRECISION,
  pass INTEGER NOT NULL, names TEXT);
CREATE INDEX rollout_samples_by_rollout ON rollout_samples (rollout_id, id);
CREATE TABLE node_bundles (node TEXT PRIMARY KEY, bundle {BIG} NOT NULL, rollout_id INTEGER NOT NULL)
`,
  `
-- h-dash: dashboard sessions (a cookie for a signed-in token; only its hash is stored)
CREATE TABLE sessions (
  id_hash TEXT PRIMARY KEY, token_id INTEGER NOT NULL REFERENCES tokens(id), csrf TEXT NOT NULL,
  created_at {BIG} NOT NULL, expires_at {BIG} NOT NULL);
CREATE INDEX sessions_expires ON sessions (expires_at);
`,
  `
-- failed authentications per client, shared by the replicas of one PostgreSQL (controller/auth-shared)
CREATE TABLE auth_failures (client TEXT PRIMARY KEY, window_start {BIG} NOT NULL, count INTEGER NOT NULL)
`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

function dialect(sql: string, kind: Db['kind']): string {
  const t =
    kind === 'sqlite'
      ? { ID: 'INTEGER PRIMARY KEY AUTOINCREMENT', BLOB: 'BLOB', BIG: 'INTEGER', UNLOGGED: '', STAGE_KEY: '' }
      : {
          ID: 'SERIAL PRIMARY KEY',
          BLOB: 'BYTEA',
          BIG: 'BIGINT',
          UNLOGGED: 'UNLOGGED',
          STAGE_KEY: ', PRIMARY KEY (import_id, kind, value)',
        };
  return sql.replace(/\{(ID|BLOB|BIG|UNLOGGED|STAGE_KEY)\}/g, (_m, k: keyof typeof t) => t[k]);
}

/** Bring the database to the current schema. Returns the versions applied. */
export async function migrate(db: Db): Promise<number[]> {
  const applied: number[] = [];
  await db.tx(async (q) => {
    if (db.kind === 'postgres') await q.run('SELECT pg_advisory_xact_lock(727001)');
    await q.run(
      `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at ${db.kind === 'sqlite' ? 'INTEGER' : 'BIGINT'} NOT NULL)`,
    );
    const have = new Set(
      (await q.all<{ version: number }>('SELECT version FROM schema_migrations')).map((r) => r.version),
    );
    for (let i = 0; i < MIGRATIONS.length; i++) {
      if (have.has(i + 1)) continue;
      for (const stmt of dialect(MIGRATIONS[i], db.kind).split(';\n')) {
        if (stmt.trim()) await q.run(stmt);
      }
      await q.run('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [i + 1, Date.now()]);
      applied.push(i + 1);
    }
  });
  return applied;
}
