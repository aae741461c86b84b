/**
 * @module enforce/shadow.test
 * Shadow evaluation and the traffic counters in the decision core, with real compiled policies and
 * real ClientHellos fed through the Enforcer: the active version is enforced (the marks say so), the
 * shadow only counted; the changed-verdict tallies, pattern flows and protected hits are checked
 * against expectations written by hand from the two policies below. Also the heavy-hitter bound under
 * 100k random names and the merge of queue snapshots; the same counts in tspu-2021 emulation mode.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy, compilePolicy } from '../policy/index.js';
import { Enforcer } from './enforcer.js';
import { type NfPacket } from './nfq.js';
import { newCounters } from './counters.js';
import { MARK_ALLOW, MARK_POLICE, MARK_RST, markValue } from './rules.js';
import { captureClientHello } from './testing/ch-client.js';
import { Conv } from './testing/packets.js';
import type { CompiledPolicy } from '../policy/types.js';
import { HH_SLOTS, HeavyHitters, TrafficStats, mergeTraffic } from './traffic.js';

const MASK = 0x00ff0000;
const mk = (v: number): number => markValue(MASK, v);

const ACTIVE = `version: 1
default: allow
protected:
  exact: [gov.example]
rules:
  - id: tw
    action: throttle
    rate: 128kbit
    match: {host: {suffix: [twitter.com]}}
  - id: b
    action: block
    match: {host: {exact: [blocked.example]}}
`;
// the 2021 mistake: the substring t.co catches microsoft.com, reddit.com; one exact name as well
const SHADOW = `version: 1
default: allow
protected:
  exact: [gov.example]
rules:
  - id: tco
    action: throttle
    rate: 128kbit
    match: {host: {substring: [t.co], exact: [t.co]}}
  - id: tw
    action: throttle
    rate: 128kbit
    match: {host: {suffix: [twitter.com]}}
  - id: gov
    action: block
    match: {host: {exact: [gov.example]}}
`;

async function compile(t: string): Promise<CompiledPolicy> {
  return compilePolicy(await parsePolicy(t, 'p.yaml'));
}

describe('shadow evaluation in the decision core', () => {
  const names = [
    'microsoft.com', // active allow; shadow tco (substring "t.co" in "microsof|t.co|m") throttle
    'reddit.com', // active allow; shadow tco throttle (reddi|t.co|m)
    'reddit.com',
    't.co', // active allow; shadow tco throttle, through the exact entry (not a pattern flow)
    'api.twitter.com', // both tw throttle: no change
    'blocked.example', // active b block; shadow allow (default): change attributed to rule b
    'gov.example', // protected: active allow; shadow rule gov would block → $protected allow: no change
    'fine.example', // allow both
  ];
  const hellos = new Map<string, Buffer>();
  before(async () => {
    for (const n of new Set(names)) hellos.set(n, await captureClientHello(n));
  });

  function run(active: CompiledPolicy, shadow: CompiledPolicy | null): { enf: Enforcer; marks: number[] } {
    const marks: number[] = [];
    let id = 0;
    const enf = new Enforcer({
      queue: 0,
      sink: { verdict: (_i, _v, m) => marks.push(m) },
      policy: active,
      shadow,
      markMask: MASK,
      throttle: 'userspace',
      counters: newCounters(),
      rstToServer: false,
    });
    const feed = (b: Uint8Array): void => {
      const p: NfPacket = { id: ++id, mark: 0, hwProtocol: 0x0800, hook: 2, payload: b };
      enf.handle(p, 0);
    };
    let port = 40000;
    for (const n of names) {
      const c = new Conv(port++);
      feed(c.syn());
      feed(c.synAck());
      feed(c.ack());
      const before = marks.length;
      feed(c.c(hellos.get(n)!));
      marks.push(-1, ...marks.splice(before)); // the ClientHello's verdict marks, after a separator
    }
    return { enf, marks };
  }

  it('enforces only the active version and counts what the shadow would change, per rule, with names', async () => {
    const active = await compile(ACTIVE);
    const { enf, marks } = run(active, await compile(SHADOW));
    // enforced marks are the active version's: microsoft.com / reddit.com / t.co pass allowed
    const chMarks = marks.flatMap((m, i) => (m === -1 ? [marks[i + 1]] : []));
    assert.deepEqual(chMarks, [
      mk(MARK_ALLOW),
      mk(MARK_ALLOW),
      mk(MARK_ALLOW),
      mk(MARK_ALLOW),
      mk(MARK_POLICE),
      mk(MARK_RST),
      mk(MARK_ALLOW),
      mk(MARK_ALLOW),
    ]);
    const s = enf.traffic.snapshot(10);
    assert.equal(s.active.flows, 8);
    assert.deepEqual(s.active.by_action, { allow: 6, log: 0, block: 1, throttle: 1 });
    assert.equal(s.active.pattern_flows, 0);
    assert.equal(s.active.protected_hits, 0);
    assert.ok(s.shadow);
    assert.equal(s.shadow.flows, 8);
    assert.deepEqual(s.shadow.by_action, { allow: 3, log: 0, block: 0, throttle: 5 }, 'tco ×4 + tw');
    assert.equal(s.shadow.pattern_flows, 3, 'microsoft.com, reddit.com ×2 through the substring; t.co exact');
    assert.deepEqual(s.shadow.pattern_top, [
      { name: 'reddit.com', rule_id: 'tco', action: 'throttle', count: 2 },
      { name: 'microsoft.com', rule_id: 'tco', action: 'throttle', count: 1 },
    ]);
    assert.equal(s.shadow.protected_hits, 1, 'gov.example met the block rule gov');
    assert.deepEqual(s.shadow.changed, [
      {
        rule_id: 'tco',
        from: 'allow',
        to: 'throttle',
        flows: 4,
        top: [
          { name: 'reddit.com', count: 2 },
          { name: 'microsoft.com', count: 1 },
          { name: 't.co', count: 1 },
        ],
      },
      { rule_id: 'b', from: 'block', to: 'allow', flows: 1, top: [{ name: 'blocked.example', count: 1 }] },
    ]);
  });

  it('the same policy in shadow changes nothing; without a shadow there is no shadow report', async () => {
    const { enf } = run(await compile(ACTIVE), await compile(ACTIVE));
    const s = enf.traffic.snapshot();
    assert.deepEqual(s.shadow?.changed, []);
    assert.deepEqual(s.shadow?.by_action, s.active.by_action);
    const { enf: e2 } = run(await compile(ACTIVE), null);
    assert.equal(e2.traffic.snapshot().shadow, null);
  });

  it('in tspu-2021 emulation every flow with a ClientHello name is counted once, triggered or not, and the shadow sees the collateral', async () => {
    const emu = (t: string) => t.replace('default: allow\n', 'default: allow\ninspection: {mode: tspu-2021, hold_ms: 0, max_packets: 20}\n');
    const { enf } = run(await compile(emu(ACTIVE)), await compile(emu(SHADOW)));
    const s = enf.traffic.snapshot(10);
    // the same eight flows and verdicts as in normal mode (hand-written above from the two policies)
    assert.equal(s.active.flows, 8);
    assert.deepEqual(s.active.by_action, { allow: 6, log: 0, block: 1, throttle: 1 });
    assert.equal(s.shadow?.flows, 8);
    assert.deepEqual(s.shadow?.by_action, { allow: 3, log: 0, block: 0, throttle: 5 });
    assert.equal(s.shadow?.pattern_flows, 3);
    assert.deepEqual(
      s.shadow?.changed.map((c) => [c.rule_id, c.from, c.to, c.flows]),
      [
        ['tco', 'allow', 'throttle', 4],
        ['b', 'block', 'allow', 1],
      ],
    );
  }); // prettier-ignore

  it('active pattern flows are counted too, and a swap of the version pair starts the counters over', async () => {
    const sh = await compile(SHADOW);
    const { enf } = run(sh, null);
    const s = enf.traffic.snapshot();
    assert.equal(s.active.pattern_flows, 3);
    assert.deepEqual(s.active.by_action, { allow: 3, log: 0, block: 0, throttle: 5 });
    assert.equal(s.active.protected_hits, 1);
    enf.setPolicy(await compile(ACTIVE), 'other', sh);
    const z = enf.traffic.snapshot();
    assert.equal(z.active.flows, 0);
    assert.equal(z.shadow?.flows, 0);
  });
});

describe('traffic tables', () => {
  it('space-saving keeps at most HH_SLOTS keys under 100k random names and finds the heavy hitters', () => {
    const hh = new HeavyHitters();
    const t = new TrafficStats();
    t.reset(true);
    const allow = { d: { rule_id: null, action: 'allow' as const }, pattern: false, protectedHit: false };
    const thr = { d: { rule_id: 'tco', action: 'throttle' as const }, pattern: true, protectedHit: false };
    const heap0 = process.memoryUsage().heapUsed;
    for (let i = 0; i < 100_000; i++) {
      const name =
        i % 10 === 0
          ? 'reddit.com'
          : i % 25 === 0
            ? 'microsoft.com'
            : `${Math.random().toString(36).slice(2)}.example`;
      hh.add(name);
      t.flow(name, allow, thr);
    }
    assert.ok(hh.size <= HH_SLOTS, `${hh.size} keys`);
    const top = hh.top(2);
    assert.deepEqual(
      top.map((x) => x[0]),
      ['reddit.com', 'microsoft.com'],
    );
    // space-saving over-counts by at most N/slots, never under-counts
    assert.ok(top[0][1] >= 10_000 && top[0][1] <= 10_000 + 100_000 / HH_SLOTS);
    const s = t.snapshot(10);
    assert.equal(s.shadow!.changed.length, 1);
    assert.equal(s.shadow!.changed[0].flows, 100_000);
    assert.equal(s.shadow!.changed[0].top.length, 10);
    assert.equal(s.shadow!.changed[0].top[0].name, 'reddit.com');
    assert.equal(s.shadow!.pattern_top[0].name, 'reddit.com');
    assert.ok(JSON.stringify(s).length < 4000, 'report stays small');
    // bounded memory: the tables hold ≤ 3×256 keys; generous ceiling for GC noise (the garbage of 100k strings is not collected on demand)
    const grown = process.memoryUsage().heapUsed - heap0;
    assert.ok(grown < 128 * 1024 * 1024, `heap grew ${grown} bytes`);
  });

  it('mergeTraffic sums the queues and merges the name tables', () => {
    const mkq = (n: number, name: string) => {
      const t = new TrafficStats();
      t.reset(true);
      for (let i = 0; i < n; i++)
        t.flow(
          name,
          { d: { rule_id: null, action: 'allow' }, pattern: false, protectedHit: false },
          { d: { rule_id: 'tco', action: 'throttle' }, pattern: true, protectedHit: i === 0 },
        );
      return t.snapshot();
    };
    const m = mergeTraffic([mkq(3, 'a.example'), mkq(2, 'b.example'), mkq(2, 'a.example')]);
    assert.equal(m.active.flows, 7);
    assert.equal(m.shadow!.protected_hits, 3);
    assert.deepEqual(m.shadow!.changed, [
      {
        rule_id: 'tco',
        from: 'allow',
        to: 'throttle',
        flows: 7,
        top: [
          { name: 'a.example', count: 5 },
          { name: 'b.example', count: 2 },
        ],
      },
    ]);
  });
});
