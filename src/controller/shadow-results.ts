/**
 * @module controller/shadow-results
 * `GET /v1/versions/:id/shadow`: the shadow evaluation of a version aggregated over the nodes whose
 * latest status report counts it as their shadow (`traffic.shadow_version`), beside the version's
 * offline diff. Counters are summed (each report is cumulative since its own `since`); the per-rule
 * `changed[]` entries are merged by (rule_id, from, to) and their name tallies summed, top 10 kept.
 */
import type { Queryable, Row } from './db.js';
import type { Traffic } from './analysis.js';
import { versionOut } from './versions.js';

interface Changed {
  rule_id: string | null;
  from: string;
  to: string;
  flows: number;
  top: { name: string; count: number }[];
}

const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : 0);

export async function shadowResults(q: Queryable, id: number): Promise<Row> {
  const v = await versionOut(q, id);
  const rows = await q.all<{ name: string; traffic: string | null }>(
    'SELECT name, traffic FROM nodes ORDER BY name',
  );
  const total = { flows: 0, block: 0, throttle: 0, pattern_flows: 0, protected_hits: 0 };
  const active = { flows: 0, block: 0, throttle: 0, pattern_flows: 0, protected_hits: 0 };
  const changed = new Map<string, { c: Changed; names: Map<string, number> }>();
  const nodes: Row[] = [];
  for (const r of rows) {
    if (!r.traffic) continue;
    const t = JSON.parse(r.traffic) as Traffic;
    if (t.shadow_version !== id || !t.shadow) continue;
    const s = t.shadow;
    nodes.push({ node: r.name, since: t.since, active_version: t.policy_version, flows: num(s.flows) });
    for (const [acc, side] of [
      [total, s],
      [active, t],
    ] as const) {
      acc.flows += num(side.flows);
      acc.block += num(side.by_action?.block);
      acc.throttle += num(side.by_action?.throttle);
      acc.pattern_flows += num(side.pattern_flows);
      acc.protected_hits += num(side.protected_hits);
    }
    for (const x of (s.changed ?? []) as Changed[]) {
      const k = `${x.rule_id ?? ''}\u0000${x.from}\u0000${x.to}`;
      let e = changed.get(k);
      if (!e) {
        e = {
          c: { rule_id: x.rule_id ?? null, from: x.from, to: x.to, flows: 0, top: [] },
          names: new Map(),
        };
        changed.set(k, e);
      }
      e.c.flows += num(x.flows);
      for (const n of x.top ?? []) e.names.set(n.name, (e.names.get(n.name) ?? 0) + num(n.count));
    }
  }
  const out = [...changed.values()]
    .map(({ c, names }) => ({
      ...c,
      top: [...names]
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        .slice(0, 10)
        .map(([name, count]) => ({ name, count })),
    }))
    .sort((a, b) => b.flows - a.flows);
  return {
    version_id: id,
    status: v.status,
    diff: v.diff ?? null,
    nodes,
    shadow: total,
    active,
    changed: out,
  };
}
