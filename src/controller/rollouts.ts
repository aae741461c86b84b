/**
 * @module controller/rollouts
 * Staged rollouts of an approved version: stage by stage (label selector → percentage → all) the
 * selected nodes are given the version's `stage` bundle (per-node intended bundle, `node_bundles`),
 * bake, and are analysed against their own baseline (controller/analysis). A failed analysis rolls
 * back automatically: the previous content as a **new, higher** fleet bundle (kind rollback), the
 * version marked `failed`, audit entries naming the failing metric. The last stage passing publishes
 * the version fleet-wide. All state is in the database and every orchestrator tick runs in one
 * transaction under an advisory lock, so one replica orchestrates at a time and another continues
 * when it dies (and a restarted PostgreSQL only costs the ticks that failed).
 * A shadow stage gives its nodes a `shadow` bundle: the previous (active) content plus the new
 * version as `shadow`, evaluated but not enforced; the analysis judges the shadow side against the
 * active side of the same reports. When it ends (passed or failed) its nodes go back to the fleet
 * content through a new, higher re-signed fleet bundle (boxes refuse a lower bundle number); a failed
 * shadow stage marks the version failed (rollout state `failed`) without a rollback bundle, since
 * nothing was enforced.
 */
import { appendAudit } from './audit.js';
import { buildBundle, warmCompiled, type Manifest } from './bundles.js';
import type { Ctx } from './context.js';
import type { Queryable, Row } from './db.js';
import { ApiError, badRequest, notFound } from './errors.js';
import { analyze, graceMs, judge, type Sample, type Traffic } from './analysis.js';
import { defaultPlan, parsePlan, type Plan, type Stage } from './rollout-plan.js';
import { activeVersionId } from './versions.js';

/** Mutable orchestration state kept with the rollout row (JSON). */
interface Work {
  /** node → its traffic report when it took the version (the baseline under the previous version) */
  baseline: Record<string, Traffic | null>;
  /** node → the report at the start of the current sample window */
  prev: Record<string, Traffic | null>;
  /** node → last_seen (ms) of the latest report analysed in this stage (absent: the stage start) */
  seen?: Record<string, number>;
  /** node\0metric → consecutive failing samples */
  streak: Record<string, number>;
  /** stage index → when it started and ended (ms) */
  stages: { started: number | null; ended: number | null; nodes: string[]; bundle?: number }[];
}

/** The report interval a rollout's bundles ask of their boxes: its shortest analysis interval. */
const reportEvery = (plan: Plan) => Math.min(...plan.stages.map((s) => s.analysis.interval_s));

const conflict = (code: string, m: string) => new ApiError(409, code, m);
const ACTIVE = ['running', 'paused'];

export async function startRollout(ctx: Ctx, body: unknown, actor: string): Promise<Row> {
  const o = (body ?? {}) as Record<string, unknown>;
  if (!Number.isInteger(o.version_id))
    throw badRequest('version_id', 'required: the approved version to roll out');
  const plan = o.plan === undefined || o.plan === null ? defaultPlan() : parsePlan(o.plan);
  const id = await ctx.db.tx(async (q) => {
    if (ctx.db.kind === 'postgres') await q.run('SELECT pg_advisory_xact_lock(727010)');
    const v = await q.get<{ status: string }>(
      `SELECT status FROM versions WHERE id = $1${ctx.db.forUpdate}`,
      [o.version_id],
    );
    if (!v) throw notFound(`version ${String(o.version_id)}`);
    if (v.status !== 'approved')
      throw conflict(
        'ERR_STATE',
        `version ${String(o.version_id)} is ${v.status}: only an approved version can be rolled out`,
      );
    const busy = await q.get<{ id: number }>(
      "SELECT id FROM rollouts WHERE state IN ('running','paused') LIMIT 1",
    );
    if (busy) throw conflict('ERR_STATE', `rollout ${busy.id} is still ${'running or paused'}`);
    const prev = await activeVersionId(q);
    if (prev === null)
      throw conflict('ERR_STATE', 'no active version to roll out from (publish a first one)');
    const now = Date.now();
    const work: Work = {
      baseline: {},
      prev: {},
      streak: {},
      stages: plan.stages.map(() => ({ started: null, ended: null, nodes: [] })),
    };
    const row = await q.get<{ id: number }>(
      "INSERT INTO rollouts (version_id, prev_version_id, plan, state, stage, work, created_by, created_at, updated_at) VALUES ($1,$2,$3,'running',0,$4,$5,$6,$6) RETURNING id",
      [o.version_id, prev, JSON.stringify(plan), JSON.stringify(work), actor, now],
    );
    await appendAudit(ctx.db, q, {
      actor,
      action: 'rollout.start',
      target: `rollout:${row!.id}`,
      after: { version: o.version_id, from: prev, stages: plan.stages.map((s) => s.name) },
    });
    return Number(row!.id);
  });
  return getRollout(ctx.db, id);
}

export async function listRollouts(q: Queryable): Promise<Row[]> {
  const rows = await q.all('SELECT id FROM rollouts ORDER BY id DESC LIMIT 100');
  return Promise.all(rows.map((r) => getRollout(q, Number(r.id), false)));
}

export async function getRollout(q: Queryable, id: number, samples = true): Promise<Row> {
  const r = await q.get<Row>('SELECT * FROM rollouts WHERE id = $1', [id]);
  if (!r) throw notFound(`rollout ${id}`);
  const plan = JSON.parse(r.plan as string) as Plan;
  const work = JSON.parse(r.work as string) as Work;
  const out: Row = {
    id: Number(r.id),
    version_id: Number(r.version_id),
    prev_version_id: r.prev_version_id === null ? null : Number(r.prev_version_id),
    state: r.state,
    stage: Number(r.stage),
    reason: r.reason,
    bundle_version: r.bundle_version === null ? null : Number(r.bundle_version),
    created_by: r.created_by,
    created_at: Number(r.created_at),
    plan,
    stages: plan.stages.map((s, i) => ({
      name: s.name,
      mode: s.mode,
      select: s.select,
      bake_s: s.bake_s,
      state:
        work.stages[i].ended !== null
          ? 'passed'
          : work.stages[i].started !== null
            ? r.state === 'running' || r.state === 'paused'
              ? r.state
              : String(r.state)
            : 'pending',
      started: work.stages[i].started,
      ended: work.stages[i].ended,
      nodes: work.stages[i].nodes,
      bundle: work.stages[i].bundle ?? (s.mode === 'enforce' ? outBundle(r) : null),
    })),
  };
  if (samples) {
    const rows = await q.all<Row>(
      'SELECT stage, at, node, metric, value, baseline, threshold, pass, names FROM rollout_samples WHERE rollout_id = $1 ORDER BY id DESC LIMIT 2000',
      [id],
    );
    out.samples = rows.reverse().map((x) => ({
      stage: Number(x.stage),
      at: Number(x.at),
      node: x.node,
      metric: x.metric,
      value: Number(x.value),
      baseline: Number(x.baseline),
      threshold: Number(x.threshold),
      pass: Number(x.pass) === 1,
      ...(x.names ? { names: JSON.parse(x.names as string) as string[] } : {}),
    }));
  }
  return out;
}

/**
 * pause | resume | abort | rollback, by a person. Abort and rollback take an optional reason (kept
 * with the rollout as `"<op> by <actor>: <reason>"` and in the audit row).
 */
export async function controlRollout(
  ctx: Ctx,
  id: number,
  op: 'pause' | 'resume' | 'abort' | 'rollback',
  actor: string,
  reason?: unknown,
): Promise<Row> {
  if (reason !== undefined && reason !== null && typeof reason !== 'string')
    throw badRequest('reason', 'a string, if given');
  const why = typeof reason === 'string' ? reason.trim() : '';
  if (why.length > 2000) throw badRequest('reason', 'at most 2000 characters');
  if (op === 'abort' || op === 'rollback') {
    const r = await ctx.db.get<{ prev_version_id: number | null }>(
      'SELECT prev_version_id FROM rollouts WHERE id = $1',
      [id],
    );
    await warmCompiled(ctx, r?.prev_version_id); // the rollback bundle's compile, before the transaction
  }
  await ctx.db.tx(async (q) => {
    if (ctx.db.kind === 'postgres') await q.run('SELECT pg_advisory_xact_lock(727010)');
    const r = await q.get<{ state: string }>(`SELECT state FROM rollouts WHERE id = $1${ctx.db.forUpdate}`, [
      id,
    ]);
    if (!r) throw notFound(`rollout ${id}`);
    const allowed: Record<typeof op, string[]> = {
      pause: ['running'],
      resume: ['paused'],
      abort: ACTIVE,
      rollback: ACTIVE,
    };
    if (!allowed[op].includes(r.state))
      throw conflict('ERR_STATE', `rollout ${id} is ${r.state}: cannot ${op}`);
    const now = Date.now();
    if (op === 'pause' || op === 'resume') {
      const to = op === 'pause' ? 'paused' : 'running';
      await q.run('UPDATE rollouts SET state = $1, updated_at = $2 WHERE id = $3', [to, now, id]);
      await appendAudit(ctx.db, q, {
        actor,
        action: `rollout.${op}`,
        target: `rollout:${id}`,
        before: { state: r.state },
        after: { state: to },
      });
      return;
    }
    await revert(
      ctx,
      q,
      id,
      op === 'abort' ? 'aborted' : 'rolled_back',
      `${op} by ${actor}${why ? `: ${why}` : ''}`,
      actor,
      null,
    );
  });
  return getRollout(ctx.db, id);
}

/**
 * Give the nodes that took the version the previous content back, as a new, higher fleet bundle,
 * and end the rollout. `failed` marks the version failed (analysis) — abort leaves it approved.
 */
async function revert(
  ctx: Ctx,
  q: Queryable,
  id: number,
  state: 'aborted' | 'rolled_back' | 'failed',
  reason: string,
  actor: string,
  failed: Sample | null,
): Promise<void> {
  const r = (await q.get<{ version_id: number; prev_version_id: number; bundle_version: number | null }>(
    'SELECT version_id, prev_version_id, bundle_version FROM rollouts WHERE id = $1',
    [id],
  ))!;
  const now = Date.now();
  if (failed)
    await appendAudit(ctx.db, q, {
      actor,
      action: 'rollout.analysis_failed',
      target: `rollout:${id}`,
      after: {
        metric: failed.metric,
        node: failed.node,
        value: failed.value,
        baseline: failed.baseline,
        threshold: failed.threshold,
        names: failed.names ?? [],
      },
    });
  const took = await q.all<{ node: string }>(
    'SELECT node FROM node_bundles WHERE rollout_id = $1 ORDER BY node',
    [id],
  );
  await appendAudit(ctx.db, q, {
    actor,
    action: state === 'aborted' ? 'rollout.abort' : state === 'failed' ? 'rollout.fail' : 'rollout.rollback',
    target: `rollout:${id}`,
    before: { version: Number(r.version_id), nodes: took.map((t) => t.node) },
    after: { version: Number(r.prev_version_id), reason },
  });
  if (r.bundle_version !== null) {
    // some node may enforce the version: the previous content as a rollback bundle
    const b = await buildBundle(ctx, q, Number(r.prev_version_id), 'rollback', actor);
    await q.run('UPDATE versions SET bundle_version = $1 WHERE id = $2', [b.version, r.prev_version_id]);
  } else if (took.length) await resignFleet(ctx, q, Number(r.prev_version_id)); // only shadow nodes
  await q.run('DELETE FROM node_bundles WHERE rollout_id = $1', [id]);
  if (failed || state !== 'aborted')
    await q.run("UPDATE versions SET status = 'failed', ended_at = $1 WHERE id = $2", [now, r.version_id]);
  await q.run('UPDATE rollouts SET state = $1, reason = $2, updated_at = $3 WHERE id = $4', [
    state,
    reason,
    now,
    id,
  ]);
}

const outBundle = (r: Row) => (r.bundle_version === null ? null : Number(r.bundle_version));

/** A new, higher fleet bundle with the active content: nodes leaving a shadow assignment take it. */
async function resignFleet(ctx: Ctx, q: Queryable, prev: number): Promise<void> {
  const b = await buildBundle(ctx, q, prev, 'resign', 'controller');
  await q.run('UPDATE versions SET bundle_version = $1 WHERE id = $2', [b.version, prev]);
}

/** Every registered node with its labels, by name. */
async function fleetNodes(q: Queryable): Promise<{ name: string; labels: Record<string, string> }[]> {
  return (await q.all<{ name: string; labels: string }>('SELECT name, labels FROM nodes ORDER BY name')).map(
    (n) => ({ name: n.name, labels: JSON.parse(n.labels || '{}') as Record<string, string> }),
  );
}

/**
 * Give node `n` the stage bundle `bundle` of rollout `id`: its analysis starts afresh (no previous
 * report, none seen since) and its per-node bundle row points at the bundle.
 */
async function assignNode(q: Queryable, work: Work, n: string, bundle: number, id: number): Promise<void> {
  work.prev[n] = null;
  delete (work.seen ??= {})[n];
  await q.run(
    'INSERT INTO node_bundles (node, bundle, rollout_id) VALUES ($1,$2,$3) ON CONFLICT (node) DO UPDATE SET bundle = excluded.bundle, rollout_id = excluded.rollout_id',
    [n, bundle, id],
  );
}

function selectNodes(stage: Stage, nodes: { name: string; labels: Record<string, string> }[]): string[] {
  const sel = stage.select;
  if (sel === 'all') return nodes.map((n) => n.name);
  if ('labels' in sel)
    return nodes
      .filter((n) => Object.entries(sel.labels).every(([k, v]) => n.labels[k] === v))
      .map((n) => n.name);
  return nodes.slice(0, Math.ceil((sel.percent / 100) * nodes.length)).map((n) => n.name);
}

/**
 * One orchestration step for every running rollout. Safe to call from every replica: the step runs
 * in one transaction under an advisory lock (PostgreSQL) and is skipped when another holds it.
 * Returns the ids of the rollouts it touched.
 */
export async function tickRollouts(ctx: Ctx, now = Date.now()): Promise<number[]> {
  // the bundles a step may build (stage, shadow, publish, rollback): compiled before the transaction
  for (const r of await ctx.db.all<{ version_id: number; prev_version_id: number | null }>(
    "SELECT version_id, prev_version_id FROM rollouts WHERE state = 'running'",
  ))
    await warmCompiled(ctx, r.version_id, r.prev_version_id);
  return ctx.db.tx(async (q) => {
    if (ctx.db.kind === 'postgres') {
      const got = await q.get<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock(727010) AS ok');
      if (!got?.ok) return [];
    }
    const rows = await q.all<Row>("SELECT * FROM rollouts WHERE state = 'running' ORDER BY id");
    const touched: number[] = [];
    for (const r of rows) {
      await step(ctx, q, r, now);
      touched.push(Number(r.id));
    }
    return touched;
  });
}

/**
 * A node's baseline: of its latest report (when it counts flows under the previous version) and the
 * one recorded earlier in this rollout, the one with more flows. A box that just left a shadow stage
 * restarted its counters, and a report of 0 or a few flows is no baseline (every share in it is 0 or
 * noise).
 */
async function baselineOf(
  q: Queryable,
  node: string,
  prevVersion: number,
  earlier: Traffic | null,
): Promise<Traffic | null> {
  const t = await q.get<{ traffic: string | null }>('SELECT traffic FROM nodes WHERE name = $1', [node]);
  const latest = t?.traffic ? (JSON.parse(t.traffic) as Traffic) : null;
  const usable = latest && latest.policy_version === prevVersion && latest.flows > 0 ? latest : null;
  // the one that counted more flows: a window just restarted says little about the box's shares
  if (usable && (!earlier || usable.flows >= earlier.flows)) return usable;
  return earlier ?? latest;
}

async function step(ctx: Ctx, q: Queryable, r: Row, now: number): Promise<void> {
  const id = Number(r.id);
  const plan = JSON.parse(r.plan as string) as Plan;
  const work = JSON.parse(r.work as string) as Work;
  const si = Number(r.stage);
  const stage = plan.stages[si];
  const ws = work.stages[si];
  const version = Number(r.version_id);
  let bundle = r.bundle_version === null ? null : Number(r.bundle_version);
  const save = async (extra = '', params: unknown[] = []) =>
    q.run(`UPDATE rollouts SET work = $1, updated_at = $2${extra} WHERE id = $3`, [
      JSON.stringify(work),
      now,
      id,
      ...params,
    ]);

  const prevVersion = Number(r.prev_version_id);
  const enforced = new Set(
    work.stages.slice(0, si).flatMap((s, i) => (plan.stages[i].mode === 'enforce' ? s.nodes : [])),
  );
  if (ws.started === null && stage.mode === 'shadow') {
    // enter a shadow stage: the selected nodes not already enforcing the version get the active
    // content with the version as shadow
    const sb = (
      await buildBundle(ctx, q, prevVersion, 'shadow', 'controller', {
        shadow: version,
        rollout: { id, stage: si, report_every_s: reportEvery(plan) },
      })
    ).version;
    ws.bundle = sb;
    const nodes = await fleetNodes(q);
    ws.nodes = selectNodes(stage, nodes)
      .filter((n) => !enforced.has(n))
      .sort();
    for (const n of ws.nodes) {
      // kept for a later enforce stage: the box's counters restart when it leaves the shadow
      work.baseline[n] = await baselineOf(q, n, prevVersion, work.baseline[n] ?? null);
      await assignNode(q, work, n, sb, id);
    }
    ws.started = now;
    await appendAudit(ctx.db, q, {
      actor: 'controller',
      action: 'rollout.stage',
      target: `rollout:${id}`,
      after: { stage: si, name: stage.name, mode: 'shadow', nodes: ws.nodes, bundle: sb },
    });
    await save(', last_sample = $4', [now]);
    return;
  }
  if (ws.started === null) {
    // enter the stage: the selected nodes (cumulative) are given the version's stage bundle
    if (bundle === null) {
      // kind 'stage' is part of the manifest contract (bundle/verify, h-shadow)
      bundle = (
        await buildBundle(ctx, q, version, 'stage' as Manifest['kind'], 'controller', {
          rollout: { id, stage: si, report_every_s: reportEvery(plan) },
        })
      ).version;
      await q.run('UPDATE rollouts SET bundle_version = $1 WHERE id = $2', [bundle, id]);
    }
    const nodes = await fleetNodes(q);
    const already = enforced;
    ws.nodes = [...new Set([...already, ...selectNodes(stage, nodes)])].sort();
    for (const n of ws.nodes) {
      if (already.has(n)) continue;
      work.baseline[n] = await baselineOf(q, n, prevVersion, work.baseline[n] ?? null);
      await assignNode(q, work, n, bundle, id);
    }
    ws.started = now;
    await appendAudit(ctx.db, q, {
      actor: 'controller',
      action: 'rollout.stage',
      target: `rollout:${id}`,
      after: { stage: si, name: stage.name, nodes: ws.nodes, bundle },
    });
    await ctx.notifyBundle(q, bundle);
    await save(', last_sample = $4', [now]);
    return;
  }
  const last = Number(r.last_sample ?? ws.started);
  if (now - last >= stage.analysis.interval_s * 1000) {
    // one sample per box per window between two of its reports on the version: a box that reports
    // less often than the interval gives no sample in between, and only a silence longer than the
    // grace (analysis.graceMs) is no_data
    const samples: Sample[] = [];
    const seen = (work.seen ??= {});
    for (const n of ws.nodes) {
      const row = await q.get<{ traffic: string | null; last_seen: number }>(
        'SELECT traffic, last_seen FROM nodes WHERE name = $1',
        [n],
      );
      const from = seen[n] ?? ws.started;
      const t = row?.traffic ? (JSON.parse(row.traffic) as Traffic) : null;
      const onVersion =
        !!t &&
        (stage.mode === 'shadow'
          ? t.shadow_version === version && t.policy_version === prevVersion
          : t.policy_version === version);
      const fresh = row && Number(row.last_seen) > from && onVersion ? t : null;
      // no new report on the version yet: no sample until the silence outlasts the grace (no_data)
      if (!fresh && now - from < graceMs(stage.analysis.interval_s, work.prev[n] ?? work.baseline[n] ?? t))
        continue;
      if (fresh) seen[n] = Number(row!.last_seen);
      samples.push(
        ...analyze({
          node: n,
          mode: stage.mode,
          version,
          limits: stage.analysis.limits,
          baseline: work.baseline[n] ?? null,
          prev: work.prev[n] ?? null,
          now: fresh,
        }),
      );
      if (fresh) work.prev[n] = fresh;
    }
    if (!ws.nodes.length)
      samples.push({ node: '-', metric: 'no_data', value: 0, baseline: 0, threshold: 1, pass: false });
    for (const s of samples)
      await q.run(
        'INSERT INTO rollout_samples (rollout_id, stage, at, node, metric, value, baseline, threshold, pass, names) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)',
        [
          id,
          si,
          now,
          s.node,
          s.metric,
          s.value,
          s.baseline,
          s.threshold,
          s.pass ? 1 : 0,
          s.names ? JSON.stringify(s.names) : null,
        ],
      );
    const streak = new Map(Object.entries(work.streak));
    const failed = judge(streak, samples, stage.analysis.threshold);
    work.streak = Object.fromEntries(streak);
    await save(', last_sample = $4', [now]);
    if (failed) {
      await revert(
        ctx,
        q,
        id,
        stage.mode === 'shadow' && bundle === null ? 'failed' : 'rolled_back',
        `analysis failed at stage ${stage.name}: ${failed.metric} on ${failed.node} = ${failed.value} (baseline ${failed.baseline}, limit +${failed.threshold})`,
        'controller',
        failed,
      );
      return;
    }
  }
  if (now - ws.started >= stage.bake_s * 1000 && now - last >= 0) {
    // the stage baked with at least one passing sample since its start
    const passed = await q.get<{ n: number }>(
      'SELECT COUNT(*) AS n FROM rollout_samples WHERE rollout_id = $1 AND stage = $2',
      [id, si],
    );
    if (!Number(passed?.n)) return;
    // and every box of the stage was analysed on at least one report of its own in this stage
    if (!ws.nodes.every((n) => (work.seen?.[n] ?? 0) > (ws.started ?? 0))) return;
    ws.ended = now;
    work.streak = {};
    if (stage.mode === 'shadow') {
      // the shadow nodes go back to the fleet content (a higher bundle than their shadow one)
      await q.run('DELETE FROM node_bundles WHERE rollout_id = $1 AND bundle = $2', [id, ws.bundle]);
      await resignFleet(ctx, q, prevVersion);
    }
    if (si + 1 < plan.stages.length) {
      await save(', stage = $4', [si + 1]);
      return;
    }
    // the last stage passed: the version becomes the fleet's active version (a new, higher bundle)
    const prev = prevVersion;
    await q.run(
      "UPDATE versions SET status = 'superseded', ended_at = $1 WHERE id = $2 AND status = 'active'",
      [now, prev],
    );
    await appendAudit(ctx.db, q, {
      actor: 'controller',
      action: 'rollout.complete',
      target: `rollout:${id}`,
      before: { active: prev },
      after: { active: version },
    });
    const b = await buildBundle(ctx, q, version, 'publish', 'controller');
    await q.run(
      "UPDATE versions SET status = 'active', activated_at = $1, bundle_version = $2 WHERE id = $3",
      [now, b.version, version],
    );
    await q.run('DELETE FROM node_bundles WHERE rollout_id = $1', [id]);
    await save(", state = 'succeeded'");
  }
}

/** The bundle version intended for `node` now: its rollout assignment, or null (the fleet bundle). */
export async function intendedBundle(q: Queryable, node: string): Promise<number | null> {
  const r = await q.get<{ bundle: number }>('SELECT bundle FROM node_bundles WHERE node = $1', [node]);
  return r ? Number(r.bundle) : null;
}
