/**
 * @module controller/testing/sim-box
 * A simulated fleet box for rollout tests (controller/rollouts.test, controller/dashboard-rollouts.test):
 * it pulls its bundle over HTTP with a node token (`GET /v1/bundle`, verified with the no-rollback
 * check), and every `periodMs` posts a status report with `traffic` counters as a box does. The
 * counters come from the box's own model of the two kinds of test policy, not from the controller's
 * code: a name under a blocked suffix is blocked by the exact/suffix rule `block-list`; a name
 * containing "t.co" under a `*t.co*` version is throttled by the substring rule `tco`. Each report
 * decides the file's traffic mix (`mix`, one flow a name) once more, under the active version and,
 * when the bundle carries one, the shadow version.
 */
import assert from 'node:assert/strict';
import { verifyBundle } from '../bundles.js';
import { envelopeOf, type TestController } from '../testutil.js';

/** Which test policy versions throttle *t.co* and which suffixes each version blocks. */
export interface SimModel {
  tco: Set<number>;
  blocked: Map<number, string[]>;
}

type Side = { flows: number; block: number; throttle: number; pattern: number; top: Map<string, number> };
const side = (): Side => ({ flows: 0, block: 0, throttle: 0, pattern: 0, top: new Map() });

export class SimBox {
  bundle = 0;
  policy = 0;
  /** the shadow version of the held bundle (null: none) */
  shadowV: number | null = null;
  seen = new Set<number>();
  shadowSeen = new Set<number>();
  stopped = false;
  private since = new Date().toISOString();
  private c = side();
  private sc = side();
  /** rule\0from\0to → flows and names whose verdict the shadow would change */
  private changed = new Map<string, { flows: number; top: Map<string, number> }>();
  private timer: NodeJS.Timeout | null = null;
  /** ms between two reports; `announce` puts it in the report as a box does (report_every_s) */
  periodMs = 150;
  announce = false;
  /** the `rollout` sections of the bundles it took */
  rolloutSections: unknown[] = [];
  /** status reports the controller acknowledged (200) */
  reports = 0;
  private inflight: Promise<void> = Promise.resolve();
  constructor(
    private t: TestController,
    readonly name: string,
    readonly labels: Record<string, string>,
    private token: string,
    private model: SimModel,
    /** the names it sees, one flow each, per report */
    private mix: readonly string[],
  ) {}
  /** where the box talks to (another replica's URL in the failover test) */
  url: string | null = null;
  private async call(method: string, path: string, body?: unknown) {
    const r = await fetch((this.url ?? this.t.run.url) + path, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
        ...(method === 'GET' && this.bundle ? { 'if-none-match': `"${this.bundle}"` } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: r.status, json: r.status === 200 ? await r.json() : null };
  }
  async once(): Promise<void> {
    const b = await this.call('GET', '/v1/bundle');
    if (b.status === 200) {
      const m = verifyBundle(envelopeOf(b.json), this.t.rootPublicPem, { minVersion: this.bundle + 1 });
      this.bundle = m.version;
      if (m.rollout) this.rolloutSections.push(m.rollout);
      const sv = m.shadow?.policy_version ?? null;
      if (m.policy_version !== this.policy || sv !== this.shadowV) {
        this.policy = m.policy_version;
        this.shadowV = sv;
        this.seen.add(this.policy);
        if (sv !== null) this.shadowSeen.add(sv);
        this.since = new Date().toISOString();
        this.c = side();
        this.sc = side();
        this.changed = new Map();
      }
    }
    for (const n of this.mix) {
      const a = this.decide(this.policy, n);
      this.count(this.c, n, a);
      if (this.shadowV === null) continue;
      const s = this.decide(this.shadowV, n);
      this.count(this.sc, n, s);
      if (s.action !== a.action) {
        const k = `${s.rule ?? a.rule}\u0000${a.action}\u0000${s.action}`;
        const e = this.changed.get(k) ?? { flows: 0, top: new Map<string, number>() };
        e.flows++;
        e.top.set(n, (e.top.get(n) ?? 0) + 1);
        this.changed.set(k, e);
      }
    }
    const c = this.c;
    const sc = this.sc;
    const counters = (x: Side) => ({
      flows: x.flows,
      by_action: { allow: x.flows - x.block - x.throttle, log: 0, block: x.block, throttle: x.throttle },
      pattern_flows: x.pattern,
      pattern_top: [...x.top].map(([name, count]) => ({ name, rule_id: 'tco', action: 'throttle', count })),
      protected_hits: 0,
    });
    const ack = await this.call('POST', '/v1/status', {
      node: this.name,
      labels: this.labels,
      active_version: this.bundle,
      errors: [],
      traffic: {
        since: this.since,
        policy_version: this.policy,
        shadow_version: this.shadowV,
        ...counters(c),
        fail_open: 0,
        worker_restarts: 0,
        ...(this.announce ? { report_every_s: this.periodMs / 1000 } : {}),
        shadow:
          this.shadowV === null
            ? null
            : {
                ...counters(sc),
                changed: [...this.changed].map(([k, e]) => {
                  const [rule_id, from, to] = k.split('\u0000');
                  return {
                    rule_id,
                    from,
                    to,
                    flows: e.flows,
                    top: [...e.top].map(([name, count]) => ({ name, count })),
                  };
                }),
              },
      },
    });
    if (ack.status === 200) this.reports++;
  }
  /** the test's own model of the two kinds of test policy */
  private decide(policy: number, n: string): { action: string; rule: string | null; pattern: boolean } {
    if (this.model.tco.has(policy) && n.includes('t.co'))
      return { action: 'throttle', rule: 'tco', pattern: true };
    if ((this.model.blocked.get(policy) ?? []).some((s) => n === s || n.endsWith('.' + s)))
      return { action: 'block', rule: 'block-list', pattern: false };
    return { action: 'allow', rule: null, pattern: false };
  }
  private count(x: Side, n: string, d: { action: string; pattern: boolean }): void {
    x.flows++;
    if (d.action === 'block') x.block++;
    if (d.action === 'throttle') x.throttle++;
    if (d.pattern) {
      x.pattern++;
      x.top.set(n, (x.top.get(n) ?? 0) + 1);
    }
  }
  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.inflight = this.once()
        .catch(() => {})
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, this.periodMs);
        });
    };
    loop();
  }
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
  /** Stop, and resolve once a report in flight has been answered: the counters then hold still. */
  async halt(): Promise<void> {
    this.stop();
    await this.inflight;
  }
}

/** Every simulated box enforces policy version `v` (waits up to 10 s each, then fails naming the box). */
export async function allOn(boxes: SimBox[], v: number): Promise<void> {
  for (const x of boxes) {
    const end = Date.now() + 10_000;
    while (x.policy !== v && Date.now() < end) await new Promise((res) => setTimeout(res, 50));
    assert.equal(x.policy, v, x.name);
  }
}

/**
 * A node token (made by `root`) and a started {@link SimBox} for each of `nodes` ([name, labels]),
 * appended to `into` (which the caller stops in its `after`/`finally`); `url` points the boxes at
 * another replica than `t`'s.
 */
export async function startBoxes(
  t: TestController,
  nodes: readonly (readonly [string, Record<string, string>])[],
  model: SimModel,
  mix: readonly string[],
  into: SimBox[],
  url?: string,
): Promise<SimBox[]> {
  const made: SimBox[] = [];
  for (const [name, labels] of nodes) {
    const tok = await t.api('root', 'POST', '/v1/tokens', { name, role: 'node' });
    assert.equal(tok.status, 201, JSON.stringify(tok.json));
    const b = new SimBox(t, name, labels, tok.json.token, model, mix);
    if (url) b.url = url;
    into.push(b);
    made.push(b);
    b.start();
  }
  return made;
}

/** The dashboard tests' traffic: every box sees these names once per report ("reddit.com" and "www.microsoft.com" contain "t.co"). */
export const DASH_MIX = ['reddit.com', 'www.microsoft.com', 't.co', 'bad.example', 'example.org'];
/** A policy blocking `names` by suffix. */
export const block = (names: string[]) => `rules:
  - id: block-list
    action: block
    match: {host: {suffix: [${names.join(', ')}]}}
`;
/** The 2021 rule: a throttle through the substring t.co. */
export const TCO = `rules:
  - id: tco
    action: throttle
    rate: 128kbit
    match: {host: {substring: [t.co]}}
`;

/** The two boxes of the dashboard tests, "box-a" (label tier=canary) and "box-b" (tier=main), started. */
export async function startCanaryAndMain(
  t: TestController,
  model: SimModel,
): Promise<{ box: SimBox; token: string }[]> {
  const out: { box: SimBox; token: string }[] = [];
  for (const [name, labels] of [
    ['box-a', { tier: 'canary' }],
    ['box-b', { tier: 'main' }],
  ] as const) {
    const tok = await t.api('root', 'POST', '/v1/tokens', { name, role: 'node' });
    assert.equal(tok.status, 201, JSON.stringify(tok.json));
    const box = new SimBox(t, name, labels, tok.json.token, model, DASH_MIX);
    box.start();
    out.push({ box, token: tok.json.token });
  }
  return out;
}
