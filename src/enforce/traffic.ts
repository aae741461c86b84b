/**
 * @module enforce/traffic
 * The box's traffic counters for the fleet status report (`traffic`, docs/FLEET.md): per decided
 * flow, its action, whether a collateral-prone pattern decided it, whether a protected name met a
 * non-allow rule — for the active version and, when one is loaded, the shadow version (evaluated,
 * never enforced) — and, per rule, how many flows and which names the shadow would change. Name
 * tallies are space-saving heavy-hitter tables of a fixed number of slots, so random names from an
 * opponent cannot grow memory; snapshots carry only the top entries. One TrafficStats per queue
 * worker; the daemon merges the workers' snapshots ({@link mergeTraffic}).
 */
import type { Action, Decision } from '../policy/types.js';

/** Slots of each heavy-hitter table (per rule for the changed-verdict names). */
export const HH_SLOTS = 256;
/** Most distinct (rule, from, to) changed-verdict entries kept per queue. */
export const MAX_CHANGED = 512;
/** Entries per table in a worker's snapshot (more than the wire's 10, so merging stays accurate). */
export const SNAPSHOT_TOP = 32;
/** Entries per table on the wire. */
export const WIRE_TOP = 10;

/**
 * Space-saving (Metwally et al.): at most `slots` keys; a new key when full takes the slot of the
 * smallest count and inherits it (+1), so every true heavy hitter with count > N/slots is kept.
 */
export class HeavyHitters {
  private readonly m = new Map<string, number>();
  constructor(private readonly slots = HH_SLOTS) {}

  get size(): number {
    return this.m.size;
  }

  add(key: string, n = 1): void {
    const m = this.m;
    const c = m.get(key);
    if (c !== undefined) {
      m.set(key, c + n);
      return;
    }
    if (m.size < this.slots) {
      m.set(key, n);
      return;
    }
    let minK = '';
    let minC = Infinity;
    for (const [k, v] of m)
      if (v < minC) {
        minC = v;
        minK = k;
      }
    m.delete(minK);
    m.set(key, minC + n);
  }

  /** The `k` largest, count descending then key ascending (deterministic). */
  top(k: number): [string, number][] {
    return [...this.m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).slice(0, k);
  }
}

export interface ByAction {
  allow: number;
  log: number;
  block: number;
  throttle: number;
}

export interface PatternTop {
  name: string;
  rule_id: string | null;
  action: Action;
  count: number;
}

export interface SideReport {
  flows: number;
  by_action: ByAction;
  pattern_flows: number;
  pattern_top: PatternTop[];
  protected_hits: number;
}

export interface ChangedEntry {
  rule_id: string | null;
  from: Action;
  to: Action;
  flows: number;
  top: { name: string; count: number }[];
}

export interface TrafficSnapshot {
  active: SideReport;
  shadow: (SideReport & { changed: ChangedEntry[] }) | null;
}

/** What the enforcer knows of one decision. */
export interface Judged {
  d: Decision;
  pattern: boolean;
  protectedHit: boolean;
}

class Side {
  flows = 0;
  by: ByAction = { allow: 0, log: 0, block: 0, throttle: 0 };
  patternFlows = 0;
  protectedHits = 0;
  readonly patterns = new HeavyHitters();

  add(name: string, j: Judged): void {
    this.flows++;
    this.by[j.d.action]++;
    if (j.protectedHit) this.protectedHits++;
    if (j.pattern) {
      this.patternFlows++;
      this.patterns.add(`${j.d.rule_id ?? ''}\u0000${j.d.action}\u0000${name}`);
    }
  }

  report(k: number): SideReport {
    return {
      flows: this.flows,
      by_action: { ...this.by },
      pattern_flows: this.patternFlows,
      pattern_top: this.patterns.top(k).map(([key, count]) => {
        const [rule, action, name] = key.split('\u0000');
        return { name, rule_id: rule === '' ? null : rule, action: action as Action, count };
      }),
      protected_hits: this.protectedHits,
    };
  }
}

interface Changed {
  rule_id: string | null;
  from: Action;
  to: Action;
  flows: number;
  names: HeavyHitters;
}

/** One queue's counters for the current (active, shadow) version pair. */
export class TrafficStats {
  private active = new Side();
  private shadow: Side | null = null;
  private changed = new Map<string, Changed>();
  /** Changed-verdict flows not tallied by rule because {@link MAX_CHANGED} entries exist. */
  changedOverflow = 0;
  /** Something was counted since the last snapshot. */
  dirty = false;

  /** Start over (a new version pair), with or without a shadow version. */
  reset(withShadow: boolean): void {
    this.active = new Side();
    this.shadow = withShadow ? new Side() : null;
    this.changed = new Map();
    this.changedOverflow = 0;
    this.dirty = true;
  }

  /** A new flow decided by the active version (and, if loaded, judged by the shadow). */
  flow(name: string, a: Judged, s: Judged | null): void {
    this.dirty = true;
    this.active.add(name, a);
    if (!this.shadow || !s) return;
    this.shadow.add(name, s);
    if (s.d.action === a.d.action) return;
    // the rule responsible: the shadow's deciding rule, else (shadow default) the active one's
    const rule = s.d.rule_id ?? a.d.rule_id;
    const key = `${rule ?? ''}\u0000${a.d.action}\u0000${s.d.action}`;
    let c = this.changed.get(key);
    if (!c) {
      if (this.changed.size >= MAX_CHANGED) {
        this.changedOverflow++;
        return;
      }
      c = { rule_id: rule, from: a.d.action, to: s.d.action, flows: 0, names: new HeavyHitters() };
      this.changed.set(key, c);
    }
    c.flows++;
    c.names.add(name);
  }

  snapshot(k = SNAPSHOT_TOP): TrafficSnapshot {
    this.dirty = false;
    const sh = this.shadow;
    return {
      active: this.active.report(k),
      shadow: sh
        ? {
            ...sh.report(k),
            changed: [...this.changed.values()]
              .sort((x, y) => y.flows - x.flows)
              .map((c) => ({
                rule_id: c.rule_id,
                from: c.from,
                to: c.to,
                flows: c.flows,
                top: c.names.top(k).map(([name, count]) => ({ name, count })),
              })),
          }
        : null,
    };
  }
}

function sumTop<T>(lists: T[][], key: (t: T) => string, count: (t: T) => number, k: number): [T, number][] {
  const m = new Map<string, [T, number]>();
  for (const l of lists)
    for (const t of l) {
      const id = key(t);
      const e = m.get(id);
      if (e) e[1] += count(t);
      else m.set(id, [t, count(t)]);
    }
  return [...m.values()]
    .sort((a, b) => b[1] - a[1] || (key(a[0]) < key(b[0]) ? -1 : key(a[0]) > key(b[0]) ? 1 : 0))
    .slice(0, k);
}

function mergeSide(l: SideReport[], k: number): SideReport {
  const by: ByAction = { allow: 0, log: 0, block: 0, throttle: 0 };
  let flows = 0;
  let pf = 0;
  let ph = 0;
  for (const s of l) {
    flows += s.flows;
    pf += s.pattern_flows;
    ph += s.protected_hits;
    for (const a of ['allow', 'log', 'block', 'throttle'] as const) by[a] += s.by_action[a];
  }
  const top = sumTop(
    l.map((s) => s.pattern_top),
    (t) => `${t.rule_id ?? ''}\u0000${t.action}\u0000${t.name}`,
    (t) => t.count,
    k,
  ).map(([t, count]) => ({ ...t, count }));
  return { flows, by_action: by, pattern_flows: pf, pattern_top: top, protected_hits: ph };
}

/** Merge the queues' snapshots (sums; name tables summed and cut to the top `k`). */
export function mergeTraffic(list: TrafficSnapshot[], k = WIRE_TOP, withShadow = false): TrafficSnapshot {
  const shadows = list.map((s) => s.shadow).filter((s): s is NonNullable<typeof s> => s !== null);
  const active = mergeSide(
    list.map((s) => s.active),
    k,
  );
  if (!withShadow && shadows.length === 0) return { active, shadow: null };
  const changed = new Map<string, ChangedEntry[]>();
  for (const s of shadows)
    for (const c of s.changed) {
      const key = `${c.rule_id ?? ''}\u0000${c.from}\u0000${c.to}`;
      const l = changed.get(key);
      if (l) l.push(c);
      else changed.set(key, [c]);
    }
  const ch: ChangedEntry[] = [...changed.values()]
    .map((l) => ({
      rule_id: l[0].rule_id,
      from: l[0].from,
      to: l[0].to,
      flows: l.reduce((n, c) => n + c.flows, 0),
      top: sumTop(
        l.map((c) => c.top),
        (t) => t.name,
        (t) => t.count,
        k,
      ).map(([t, count]) => ({ name: t.name, count })),
    }))
    .sort((x, y) => y.flows - x.flows)
    .slice(0, 50);
  return { active, shadow: { ...mergeSide(shadows, k), changed: ch } };
}

/** The box's traffic counters for the acknowledged (active, shadow) pair, merged over queues. */
export interface DaemonTraffic extends TrafficSnapshot {
  /** ISO time the pair became active (counters are cumulative since). */
  since: string;
  /** Version ids (the daemon's content hashes): the pair's, the active's, the shadow's. */
  id: string;
  active_id: string;
  shadow_id: string | null;
  fail_open: number;
  worker_restarts: number;
}
