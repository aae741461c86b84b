/**
 * @module policy/simulate.test
 * Simulation on hand-made flow records: verdicts on records, per-rule summary, baseline diff grouped
 * by transition with names, throttle time estimates (hand-computed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FlowRecord } from '../record/record.js';
import fc from 'fast-check';
import { Simulation, inputFromRecord, policedSeconds, renderSummary, top } from './simulate.js';
import { compiledFrom } from './testutil.js';

let nextId = 1;
function rec(host: string | null, o: Partial<FlowRecord> = {}): FlowRecord {
  return {
    event_type: 'flow',
    flow_id: nextId++,
    community_id: '1:x',
    timestamp: '2021-03-10T07:00:00.000Z',
    proto: 'TCP',
    src_ip: '10.0.0.2',
    src_port: 40000,
    dest_ip: '203.0.113.5',
    dest_port: 443,
    app_proto: host ? 'tls' : null,
    host,
    ...(host ? { tls: { sni: host, alpn: ['h2'], versions: ['TLS1.3'], ja4: null, ech: false } } : {}),
    anomalies: [],
    pkts_toserver: 10,
    pkts_toclient: 20,
    bytes_toserver: 2000,
    duration: 1,
    bytes_toclient: 100_000,
    ...o,
  };
}

const OLD = `rules:
  - {id: sub, action: throttle, rate: 128kbit, burst: 16KB, match: {host: {substring: [t.co]}}}
`;
const NEW = `rules:
  - {id: exact, action: throttle, rate: 128kbit, burst: 16KB, match: {host: {exact: [t.co]}}}
  - {id: ips, action: block, match: {dest_ip: [198.51.100.0/24]}}
`;

test('policed time estimate: the bucket passes at once, the rest at the rate (hand-computed)', () => {
  // 100,000 B, 16,000 B bucket, 128,000 bit/s: (100000-16000)*8/128000 = 5.25 s
  assert.equal(policedSeconds(100_000, 128_000, 16_000), 5.25);
  assert.equal(policedSeconds(10_000, 128_000, 16_000), 0);
});

test('inputFromRecord carries SNI, ALPN, JA4, QUIC version, ECH', () => {
  const i = inputFromRecord(
    rec('T.co.', {
      tls: {
        sni: 'T.co.',
        alpn: ['h2'],
        versions: [],
        ja4: 't13d1516h2_8daaf6152771_e5627efa2ab1',
        ech: true,
      },
    }),
  );
  assert.deepEqual(
    [i.host, i.raw_host, i.alpn, i.ja4, i.ech],
    ['T.co.', 'T.co.', ['h2'], 't13d1516h2_8daaf6152771_e5627efa2ab1', true],
  );
  const q = inputFromRecord(
    rec(null, {
      proto: 'UDP',
      host: 'x.example',
      app_proto: 'quic',
      quic: { version: '0x00000001', sni: 'x.example', alpn: ['h3'] },
    }),
  );
  assert.deepEqual([q.quic_version, q.alpn, q.raw_host], ['0x00000001', ['h3'], 'x.example']);
});

test('summary per rule and action, verdicts on records, throttle estimates, diff against a baseline', async () => {
  const sim = new Simulation(await compiledFrom(NEW), await compiledFrom(OLD));
  const records = [
    rec('t.co'),
    rec('t.co', { bytes_toclient: 20_000 }),
    rec('microsoft.com'),
    rec('microsoft.com'),
    rec('reddit.com'),
    rec('example.org'),
    rec(null, { dest_ip: '198.51.100.9' }),
  ];
  for (const r of records) sim.add(r);
  assert.deepEqual(
    records.map((r) => r.policy),
    [
      { rule_id: 'exact', action: 'throttle' },
      { rule_id: 'exact', action: 'throttle' },
      { rule_id: null, action: 'allow' },
      { rule_id: null, action: 'allow' },
      { rule_id: null, action: 'allow' },
      { rule_id: null, action: 'allow' },
      { rule_id: 'ips', action: 'block' },
    ],
  );
  const s = sim.summary();
  assert.equal(s.flows, 7);
  assert.deepEqual(
    s.by_rule.map((r) => [r.rule_id, r.action, r.flows, r.bytes_toclient]),
    [
      [null, 'allow', 4, 400_000],
      ['exact', 'throttle', 2, 120_000],
      ['ips', 'block', 1, 100_000],
    ],
  );
  assert.deepEqual(s.by_rule[0].names, [
    { name: 'microsoft.com', flows: 2 },
    { name: 'example.org', flows: 1 },
    { name: 'reddit.com', flows: 1 },
  ]);
  // throttle: 5.25 s + (20000-16000)*8/128000 = 0.25 s
  assert.equal(s.throttle.length, 1);
  assert.equal(s.throttle[0].estimated_s, 5.5);
  assert.equal(s.throttle[0].observed_s, 2); // two throttled flows of 1 s each
  assert.deepEqual(
    s.throttle[0].slowest.map((f) => f.estimated_s),
    [5.25, 0.25],
  );
  // diff: microsoft.com ×2 and reddit.com leave the substring rule; t.co ×2 change rule (same action);
  // the address flow gets blocked
  assert.equal(s.diff!.changed, 6);
  assert.deepEqual(
    s.diff!.groups.map((g) => [
      g.from.rule_id,
      g.from.action,
      g.to.rule_id,
      g.to.action,
      g.flows,
      g.names,
      g.unnamed,
    ]),
    [
      [
        'sub',
        'throttle',
        null,
        'allow',
        3,
        [
          { name: 'microsoft.com', flows: 2 },
          { name: 'reddit.com', flows: 1 },
        ],
        0,
      ],
      ['sub', 'throttle', 'exact', 'throttle', 2, [{ name: 't.co', flows: 2 }], 0],
      [null, 'allow', 'ips', 'block', 1, [], 1],
    ],
  );
  const text = renderSummary(s);
  assert.match(text, /sub throttle → \(default\) allow: 3 flow\(s\)/);
  assert.match(text, /microsoft\.com\(2\) reddit\.com\(1\)/);
  assert.match(text, /≥ 5\.5 s in total/);
});

test('observed duration is used when the record has one', async () => {
  const sim = new Simulation(await compiledFrom(NEW));
  sim.add(rec('t.co', { duration: 0.5 } as Partial<FlowRecord>));
  const t = sim.summary().throttle[0];
  assert.deepEqual([t.estimated_s, t.observed_s], [5.25, 0.5]);
});

test('top names: the n with most flows, ties by name, the same as sorting every name', () => {
  // the reference sorts the whole map (what the summary did before the one-pass selection)
  const ref = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .slice(0, n)
      .map(([name, flows]) => ({ name, flows }));
  fc.assert(
    fc.property(
      // few distinct counts, so ties (ordered by name) are common
      fc.array(fc.tuple(fc.string({ maxLength: 4 }), fc.integer({ min: 1, max: 5 })), { maxLength: 120 }),
      fc.integer({ min: 0, max: 30 }),
      (pairs, n) => {
        const m = new Map(pairs);
        assert.deepEqual(top(m, n), ref(m, n));
      },
    ),
    { numRuns: 500 },
  );
  // a name list growing in count order (each new name beats all kept ones) and a hand-made case
  const rising = new Map(
    Array.from({ length: 1000 }, (_, i) => [`n${i}.example`, i + 1] as [string, number]),
  );
  assert.deepEqual(
    top(rising, 3).map((e) => e.flows),
    [1000, 999, 998],
  );
  const m = new Map([
    ['b.example', 2],
    ['a.example', 2],
    ['c.example', 5],
    ['d.example', 1],
  ]);
  assert.deepEqual(top(m, 3), [
    { name: 'c.example', flows: 5 },
    { name: 'a.example', flows: 2 },
    { name: 'b.example', flows: 2 },
  ]);
  assert.deepEqual(top(m, 0), []);
});
