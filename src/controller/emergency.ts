/**
 * @module controller/emergency
 * The kill switch: an emergency stop publishes an allow-all policy as a new, higher signed bundle
 * (kind `emergency`) that every node receives at once, whatever rollout or approval state the fleet is
 * in. It skips two-person approval on purpose (a global outage cannot wait for a second approver) and
 * is audited with the caller and the reason. The version that was active becomes `superseded`, so
 * `POST /v1/rollback` (a new, higher bundle again) restores it once the cause is understood.
 */
import { appendAudit } from './audit.js';
import { buildBundle } from './bundles.js';
import type { Ctx } from './context.js';
import type { Row } from './db.js';
import { badRequest } from './errors.js';
import { activeVersionId, storeFiles, versionOut } from './versions.js';

/** The allow-all policy text an emergency stop publishes: no rules, default allow. */
export const ALLOW_ALL_POLICY = 'default: allow\nrules: []\n';
const ALLOW_ALL_FILE = 'emergency-allow-all.yaml';

/** Publish the allow-all bundle to every node; returns the new version (with its bundle number). */
export async function emergencyStop(ctx: Ctx, reason: unknown, actor: string): Promise<Row> {
  if (typeof reason !== 'string' || !reason.trim())
    throw badRequest('reason', 'required: why the fleet is stopped');
  if (reason.length > 2000) throw badRequest('reason', 'at most 2000 characters');
  return ctx.db.tx(async (q) => {
    const prev = await activeVersionId(q);
    const now = Date.now();
    const metas = await storeFiles(q, new Map([[ALLOW_ALL_FILE, Buffer.from(ALLOW_ALL_POLICY)]]));
    const row = await q.get<{ id: number }>(
      "INSERT INTO versions (status, author, origin, main, files, note, lint, created_at, activated_at) VALUES ('active', $1, 'emergency', $2, $3, $4, $5, $6, $7) RETURNING id",
      [
        actor,
        ALLOW_ALL_FILE,
        JSON.stringify(metas),
        `emergency stop: ${reason}`,
        JSON.stringify({ pre: [] }),
        now,
        now,
      ],
    );
    const id = Number(row!.id);
    if (prev !== null)
      await q.run("UPDATE versions SET status = 'superseded', ended_at = $1 WHERE id = $2", [now, prev]);
    await appendAudit(ctx.db, q, {
      actor,
      action: 'fleet.emergency_stop',
      target: `version:${id}`,
      before: { active: prev },
      after: { active: id, reason },
    });
    // every node, including those in a rollout stage: running rollouts end, their assignments go
    const stopped = await q.all<{ id: number }>(
      "SELECT id FROM rollouts WHERE state IN ('running', 'paused')",
    );
    for (const r of stopped)
      await appendAudit(ctx.db, q, {
        actor,
        action: 'rollout.abort',
        target: `rollout:${r.id}`,
        after: { reason: `emergency stop: ${reason}` },
      });
    await q.run(
      "UPDATE rollouts SET state = 'aborted', reason = $1, updated_at = $2 WHERE state IN ('running', 'paused')",
      [`emergency stop: ${reason}`, now],
    );
    await q.run('DELETE FROM node_bundles');
    const b = await buildBundle(ctx, q, id, 'emergency', actor);
    await q.run('UPDATE versions SET bundle_version = $1 WHERE id = $2', [b.version, id]);
    return versionOut(q, id);
  });
}
