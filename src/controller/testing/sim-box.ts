/**
 * @module controller/testing/sim-box
 * A simulated box for dashboard and rollout tests: it authenticates with a node token, fetches and
 * verifies `GET /v1/bundle` (refusing a lower bundle number), and POSTs status reports with
 * `traffic` counters computed from its own model of which policy versions block or throttle which of
 * the names in `MIX`, every 150 ms until stopped. Also the policy texts those tests use.
 */
import assert from 'node:assert/strict';
import { verifyBundle, type Envelope } from '../bundles.js';
import type { TestController } from '../testutil.js';

/** Every box sees these names once per report; "reddit.com" and "www.microsoft.com" contain "t.co". */
export const MIX = ['reddit.com', 'www.microsoft.com', 't.co', 'bad.example', 'example.org'];
export const block = (names: string[]) => `rules:
  - id: block-list
    action: block
    match: {host: {suffix: [${names.join(', ')}]}}
`;
export const TCO = `rules:
  - id: tco
    action: throttle
    rate: 128kbit
    match: {host: {substring: [t.co]}}
`;

/** A simulated box: its own model says which names each policy version blocks or throttles. */
export class Box {
  bundle = 0;
  /** status reports the controller acknowledged (200) */
  reports = 0;
  policy = 0;
  private since = new Date().toISOString();
  private c = { flows: 0, block: 0, throttle: 0, top: new Map<string, number>() };
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private inflight: Promise<void> = Promise.resolve();
  constructor(
    private t: TestController,
    readonly name: string,
    private labels: Record<string, string>,
    private token: string,
    private model: { tco: Set<number>; blocked: Map<number, string[]> },
  ) {}
  private async call(method: string, path: string, body?: unknown) {
    const r = await fetch(this.t.run.url + path, {
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
      const m = verifyBundle(b.json as Envelope, this.t.rootPublicPem, { minVersion: this.bundle + 1 });
      this.bundle = m.version;
      if (m.policy_version !== this.policy) {
        this.policy = m.policy_version;
        this.since = new Date().toISOString();
        this.c = { flows: 0, block: 0, throttle: 0, top: new Map() };
      }
    }
    for (const n of MIX) {
      this.c.flows++;
      if (this.model.tco.has(this.policy) && n.includes('t.co')) {
        this.c.throttle++;
        this.c.top.set(n, (this.c.top.get(n) ?? 0) + 1);
      } else if ((this.model.blocked.get(this.policy) ?? []).some((s) => n === s || n.endsWith('.' + s)))
        this.c.block++;
    }
    const c = this.c;
    const ack = await this.call('POST', '/v1/status', {
      node: this.name,
      labels: this.labels,
      active_version: this.bundle,
      errors: [],
      traffic: {
        since: this.since,
        policy_version: this.policy,
        shadow_version: null,
        flows: c.flows,
        by_action: { allow: c.flows - c.block - c.throttle, log: 0, block: c.block, throttle: c.throttle },
        pattern_flows: c.throttle,
        pattern_top: [...c.top].map(([name, count]) => ({ name, rule_id: 'tco', action: 'throttle', count })),
        protected_hits: 0,
        fail_open: 0,
        worker_restarts: 0,
        shadow: null,
      },
    });
    if (ack.status === 200) this.reports++;
  }
  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.inflight = this.once()
        .catch(() => {})
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, 150);
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

/** The two boxes of the dashboard tests, "box-a" (label tier=canary) and "box-b" (tier=main), started. */
export async function startCanaryAndMain(
  t: TestController,
  model: { tco: Set<number>; blocked: Map<number, string[]> },
): Promise<{ box: Box; token: string }[]> {
  const out: { box: Box; token: string }[] = [];
  for (const [name, labels] of [
    ['box-a', { tier: 'canary' }],
    ['box-b', { tier: 'main' }],
  ] as const) {
    const tok = await t.api('root', 'POST', '/v1/tokens', { name, role: 'node' });
    assert.equal(tok.status, 201, JSON.stringify(tok.json));
    const box = new Box(t, name, labels, tok.json.token, model);
    box.start();
    out.push({ box, token: tok.json.token });
  }
  return out;
}
