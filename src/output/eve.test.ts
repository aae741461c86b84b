/**
 * @module output/eve.test
 * Drop-in EVE: every record kind — analyze over the whole nDPI corpus (../shared/corpus/ndpi, all 544
 * captures), simulate, enforce verdicts (allow/log/throttle/block, every enforcement, the emulation
 * ("replay") box's reset and police verdicts) built from real engine records — passes Suricata's
 * published EVE schema (../shared/corpus/suricata/eve-schema.json, read at test time; closed at the
 * top level with only our key added) and ours (schema/flow-record.schema.json), and reads back to the
 * same FlowRecord. Field conversions against values written by hand from Suricata's conventions;
 * flow_id layout; the reader's errors on bad lines (file:line and field) and the version-1 shape.
 * Under CI=true an absent corpus or schema is a failure, not a skip.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { analyzeFiles } from '../engine/analyze.js';
import type { FlowRecord, PolicyVerdict } from '../record/record.js';
import {
  EveReadError,
  OUR_KEY,
  eveQuicVersion,
  eveTime,
  fleetFlowId,
  flowToEve,
  flowToEveLine,
  fromEve,
  fromEveLine,
  fromEveQuicVersion,
  fromEveTime,
  nodeHash,
  verdictToEve,
  writeVerdictEveLine,
  type VerdictDetails,
} from './eve.js';
import { JsonBytes } from './json-bytes.js';
import { flowRecordErrors, suricataErrors, suricataSchemaPath } from '../testutil/schema.js';

const SCHEMA = suricataSchemaPath();
const CORPUS = resolve(SCHEMA, '..', '..', 'ndpi', 'pcap');
const CI = process.env.CI === 'true';
const need = (path: string, what: string): string | false => {
  if (existsSync(path)) return false;
  if (CI) throw new Error(`${what} absent at ${path} (required under CI=true)`);
  return `${what} absent at ${path}`;
};
const noSchema = need(SCHEMA, "Suricata's EVE schema");
const noCorpusLine = need(CORPUS, 'the nDPI corpus');

/** Both schemas, on the record as it is written (through JSON). */
function check(e: unknown, label: string): Record<string, unknown> {
  const j = JSON.parse(JSON.stringify(e)) as Record<string, unknown>;
  assert.deepEqual(suricataErrors(j, OUR_KEY), [], `${label}: Suricata's schema: ${JSON.stringify(j)}`);
  assert.deepEqual(flowRecordErrors(j), [], `${label}: our schema: ${JSON.stringify(j)}`);
  return j;
}

let corpusRecs: FlowRecord[] | null = null;
async function corpus(): Promise<FlowRecord[]> {
  if (!corpusRecs) {
    const files = readdirSync(CORPUS)
      .filter((f) => /\.(pcap|pcapng|cap)$/.test(f))
      .map((f) => join(CORPUS, f));
    assert.ok(files.length >= 500, `captures: ${files.length}`);
    const recs: FlowRecord[] = [];
    await analyzeFiles(files, { onRecord: (r) => void recs.push(r) });
    corpusRecs = recs;
  }
  return corpusRecs;
}

/**
 * The keys of a record that a line can carry: records keep every key, absent ones `undefined`
 * (one hidden class), which no JSON line holds, so read-backs are compared without them.
 */
function present<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

test(
  'the shared schema is closed: a field of ours outside our key, or a wrong type, fails',
  { skip: noSchema },
  () => {
    const r: FlowRecord = {
      event_type: 'flow',
      flow_id: 1,
      community_id: '1:vTdrngJjlP5eZ9mw9JtnKyn99KM=',
      timestamp: '2023-11-14T22:13:20.000018Z',
      end: '2023-11-14T22:13:21.500000Z',
      state: 'closed',
      reason: 'timeout',
      proto: 'TCP',
      src_ip: '10.0.0.1',
      src_port: 1024,
      dest_ip: '10.0.0.2',
      dest_port: 443,
      app_proto: 'tls',
      host: 'example.com',
      anomalies: [],
      pkts_toserver: 3,
      pkts_toclient: 2,
      bytes_toserver: 600,
      bytes_toclient: 300,
      duration: 1.5,
      tls: { sni: 'example.com', alpn: ['h2'], versions: ['TLS1.3'], ja4: null, ech: false },
    };
    const e = check(flowToEve(r), 'base');
    for (const [name, bad] of [
      ['top-level field of ours', { ...e, anomalies: [] }],
      ['old top-level counters', { ...e, pkts_toserver: 3 }],
      ['unknown flow field', { ...e, flow: { ...(e.flow as object), duration: 1 } }],
      ['tls.alpn is not Suricata', { ...e, tls: { alpn: ['h2'] } }],
      ['flow_id string', { ...e, flow_id: '1' }],
      ['timestamp Z', { ...e, timestamp: '2023-11-14T22:13:21.500000Z' }],
    ] as const)
      assert.notDeepEqual(suricataErrors(bad, OUR_KEY), [], name);
    // the written shape, field by field (values from Suricata's conventions, by hand)
    assert.equal(e.timestamp, '2023-11-14T22:13:21.500000+0000');
    assert.deepEqual(e.flow, {
      pkts_toserver: 3,
      pkts_toclient: 2,
      bytes_toserver: 600,
      bytes_toclient: 300,
      start: '2023-11-14T22:13:20.000018+0000',
      end: '2023-11-14T22:13:21.500000+0000',
      age: 1,
      state: 'closed',
      reason: 'timeout',
      alerted: false,
    });
    assert.deepEqual(e.tls, { sni: 'example.com', client_alpns: ['h2'] });
    assert.equal(e.host, undefined, 'no sensor name offline');
    assert.deepEqual(e[OUR_KEY], {
      name: 'example.com',
      anomalies: [],
      duration: 1.5,
      tls: { versions: ['TLS1.3'], ech: false },
    });
  },
);

test(
  'analyze: every record of the nDPI corpus (544 captures) passes both schemas and reads back',
  { skip: noSchema || need(CORPUS, 'nDPI corpus'), timeout: 600_000 },
  async () => {
    const recs = await corpus();
    assert.ok(recs.length > 8000, `records: ${recs.length}`);
    // one hidden class for all records, whatever the protocol (the writers stay monomorphic): the
    // same keys in the same order, absent ones undefined
    const keys = Object.keys(recs[0]!).join();
    for (const r of recs) assert.equal(Object.keys(r).join(), keys, `${r.pcap_filename} #${r.flow_id}`);
    const kinds = new Map<string, number>();
    let i = 0;
    for (const r of recs) {
      // half with a node name (host + fleet flow_id), half without
      const node = i++ % 2 ? 'box-1' : undefined;
      const j = check(flowToEve(r, { node }), `${r.pcap_filename} #${r.flow_id}`);
      const back = fromEve(j, 'corpus');
      assert.deepEqual(back, present({ ...r, flow_id: fleetFlowId(r.flow_id, node) }), JSON.stringify(j));
      for (const k of ['tls', 'quic', 'http', 'dns'] as const)
        if (j[k]) kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    // every protocol object is exercised (counts from the corpus: tls 820, quic 172, http 1125, dns 581 flows)
    for (const k of ['tls', 'quic', 'http', 'dns'])
      assert.ok((kinds.get(k) ?? 0) >= 100, `${k}: ${kinds.get(k)}`);
  },
);

const ACTIONS: [PolicyVerdict['action'], VerdictDetails['enforcement'], string][] = [
  ['allow', 'accept', 'named'],
  ['log', 'accept', 'named'],
  ['throttle', 'police-userspace', 'named'],
  ['throttle', 'police-kernel', 'hold_timeout'],
  ['block', 'drop', 'named'],
  ['block', 'reset', 'gave_up'],
  // the emulation ("replay") box: the 2021 TSPU's reset and policing, reason "emulation"
  ['block', 'reset', 'emulation'],
  ['throttle', 'police-userspace', 'emulation'],
];

test(
  'simulate and enforce records of every kind pass both schemas; verdicts are drop / alert / flow events',
  { skip: noSchema || need(CORPUS, 'nDPI corpus'), timeout: 600_000 },
  async () => {
    const recs = await corpus();
    // a real record of each protocol, v4 and v6, and unnamed
    const picks = new Map<string, FlowRecord>();
    for (const r of recs) {
      const k = `${r.app_proto}/${r.src_ip.includes(':') ? 6 : 4}`;
      if (!picks.has(k)) picks.set(k, r);
    }
    assert.ok(picks.size >= 6, [...picks.keys()].join(' '));
    let q = 0;
    for (const [k, r] of picks) {
      // simulate: a flow event with the decision under our key
      const sim = { ...r, policy: { rule_id: 'r1', action: 'throttle' as const } };
      const sj = check(flowToEve(sim, { policyVersion: 'v42' }), `simulate ${k}`);
      assert.equal(sj.event_type, 'flow');
      assert.deepEqual((sj[OUR_KEY] as { policy: unknown }).policy, {
        rule_id: 'r1',
        action: 'throttle',
        version: 'v42',
      });
      assert.deepEqual(fromEve(sj), present(sim));
      for (const [action, enforcement, reason] of ACTIONS) {
        // a snapshot, as the enforcer takes it: no end reason yet
        const { reason: _r, state: _s, ...snap } = r;
        const ev = { ...snap, policy: { rule_id: action === 'allow' ? null : 'rule-' + action, action } };
        const v: VerdictDetails = {
          action,
          enforcement,
          reason,
          queue: q++ % 3,
          held_packets: 2,
          held_ms: 12.5,
        };
        if (action === 'throttle') Object.assign(v, { rate_bps: 128000, burst_bytes: 16000 });
        const j = check(verdictToEve(ev, v, { node: 'box-9' }), `${k} ${action}/${enforcement}`);
        const want = { allow: 'flow', log: 'alert', throttle: 'alert', block: 'drop' }[action];
        assert.equal(j.event_type, want);
        assert.equal(j.host, 'box-9');
        assert.equal(j.flow_id, fleetFlowId(r.flow_id, 'box-9', v.queue));
        if (action === 'block') {
          assert.deepEqual(j.drop, { reason: 'rules' });
          assert.equal((j.alert as { action: string }).action, 'blocked');
          assert.deepEqual(
            j.verdict,
            enforcement === 'reset'
              ? {
                  action: 'drop',
                  reject: ['tcp-reset'],
                  reject_target: r.src_ip.includes(':') ? 'to_client' : 'both',
                }
              : { action: 'drop' },
          );
        } else if (action !== 'allow') assert.equal((j.alert as { action: string }).action, 'allowed');
        const ours = j[OUR_KEY] as { verdict: Record<string, unknown>; policy: unknown };
        assert.deepEqual(ours.policy, ev.policy);
        assert.equal(ours.verdict.enforcement, enforcement);
        assert.equal(ours.verdict.reason, reason);
        if (action === 'throttle') assert.equal(ours.verdict.rate_bps, 128000);
        const back = fromEve(j)!;
        assert.deepEqual(back.policy, ev.policy);
        assert.equal(back.host, r.host);
        assert.deepEqual(back.tls, r.tls);
        assert.deepEqual(back.quic, r.quic);
      }
    }
  },
);

test('field conversions follow Suricata (values by hand)', () => {
  assert.equal(eveTime('2023-11-14T22:13:20.000018Z'), '2023-11-14T22:13:20.000018+0000');
  assert.equal(fromEveTime('2023-11-14T22:13:20.000018+0000'), '2023-11-14T22:13:20.000018Z');
  assert.equal(fromEveTime('2023-11-15T01:13:20.5+0300'), '2023-11-14T22:13:20.500000Z');
  assert.equal(fromEveTime('2023-11-14 22:13:20'), null);
  for (const [ours, suricata] of [
    ['0x00000001', '1'],
    ['0x6b3343cf', '6b3343cf'],
    ['0xff00001d', 'ff00001d'],
    ['0x51303436', 'Q046'],
    ['0x51303530', 'Q050'],
    ['0x54303531', 'T051'],
    ['0xfaceb002', 'faceb002'],
  ]) {
    assert.equal(eveQuicVersion(ours), suricata, ours);
    assert.equal(fromEveQuicVersion(suricata), ours, suricata);
  }
  assert.equal(fromEveQuicVersion('0x1'), null);
});

test('flow_id: safe integers; node hash · queue slot · counter; queues of one node never collide', () => {
  assert.equal(fleetFlowId(7), 7, 'no node: the engine flow number');
  const seen = new Set<number>();
  for (const node of ['box-a', 'box-b'])
    for (let queue = 0; queue < 32; queue++)
      for (const counter of [1, 2, 1000, 2 ** 27 - 1]) {
        const id = fleetFlowId(counter, node, queue);
        assert.ok(Number.isSafeInteger(id) && id < 2 ** 53, String(id));
        assert.equal(Math.floor(id / 2 ** 32), nodeHash(node));
        seen.add(id);
      }
  assert.equal(seen.size, 2 * 32 * 4, 'all distinct');
  assert.notEqual(nodeHash('box-a'), nodeHash('box-b'));
  assert.ok(nodeHash('box-a') < 2 ** 21);
  // the counter wraps at 2^27 (documented), it does not spill into the queue slot
  assert.equal(fleetFlowId(2 ** 27 + 5, 'box-a', 3), fleetFlowId(5, 'box-a', 3));
});

test('reader: bad lines are rejected naming the place and the field; other events are skipped', () => {
  const good = flowToEve({
    event_type: 'flow',
    flow_id: 3,
    community_id: '1:vTdrngJjlP5eZ9mw9JtnKyn99KM=',
    timestamp: '2023-11-14T22:13:20.000018Z',
    proto: 'UDP',
    src_ip: '::1',
    src_port: 5000,
    dest_ip: '::2',
    dest_port: 53,
    app_proto: 'dns',
    host: 'example.org',
    anomalies: [],
    pkts_toserver: 1,
    pkts_toclient: 1,
    bytes_toserver: 80,
    bytes_toclient: 120,
    duration: 0.01,
    dns: { query: 'example.org', qtype: 'TYPE65534' },
  });
  assert.deepEqual(JSON.parse(JSON.stringify(good)).dns, {
    version: 3,
    type: 'request',
    queries: [{ rrname: 'example.org', rrtype: '65534' }],
  });
  assert.equal(fromEveLine(JSON.stringify(good), 'f:1')!.dns!.qtype, 'TYPE65534');
  const bad: [string, unknown, RegExp][] = [
    ['counter', { ...good, flow: { ...good.flow, pkts_toserver: -1 } }, /^f:2: flow\.pkts_toserver: /],
    ['port', { ...good, src_port: 70000 }, /^f:2: src_port: /],
    ['proto', { ...good, proto: 'SCTP' }, /^f:2: proto: /],
    ['time', { ...good, flow: { ...good.flow, start: 'yesterday' } }, /^f:2: flow\.start: /],
    ['name', { ...good, [OUR_KEY]: { ...good[OUR_KEY], name: 7 } }, /^f:2: chokepoint\.name: /],
    ['dns', { ...good, dns: { version: 3, queries: [] } }, /^f:2: dns\.queries: /],
    [
      'action',
      { ...good, [OUR_KEY]: { ...good[OUR_KEY], policy: { rule_id: null, action: 'nuke' } } },
      /policy\.action/,
    ],
  ];
  for (const [name, v, re] of bad)
    assert.throws(
      () => fromEveLine(JSON.stringify(v), 'f:2'),
      (e: unknown) => e instanceof EveReadError && re.test((e as Error).message),
      name,
    );
  assert.throws(
    () => fromEveLine('{"event_type": "flow", ', 'f:3'),
    /^EveReadError: f:3: \(line\): not JSON/,
  );
  assert.throws(() => fromEveLine(' '.repeat((1 << 20) + 1), 'f:4'), /longer than/);
  assert.equal(
    fromEveLine('{"timestamp":"2023-11-14T22:13:20.000018+0000","event_type":"stats","stats":{}}', 'f:5'),
    null,
  );
  // hostile: 1 MiB of nesting parses linearly and is refused as not an object (measured ~0.3 s)
  assert.throws(
    () => fromEveLine('['.repeat(500_000) + ']'.repeat(500_000), 'f:6'),
    /f:6: \(record\): expected a JSON object/,
  );
  // Suricata's own flow events (no key of ours) are not ours to read
  const { [OUR_KEY]: _o, ...theirs } = good;
  assert.equal(fromEve(theirs), null);
});

test('reader: the version-1 (pre-EVE) shape still reads', () => {
  const v1 = {
    event_type: 'flow',
    flow_id: 3,
    community_id: '1:vTdrngJjlP5eZ9mw9JtnKyn99KM=',
    timestamp: '2023-11-14T22:13:20.000018Z',
    proto: 'UDP',
    src_ip: '10.0.0.1',
    src_port: 1024,
    dest_ip: '142.250.74.110',
    dest_port: 443,
    app_proto: 'quic',
    host: 'www.google.com',
    anomalies: [],
    pkts_toserver: 13,
    pkts_toclient: 8,
    bytes_toserver: 2517,
    bytes_toclient: 8165,
    duration: 0.412,
    quic: { version: '0x00000001', sni: 'www.google.com', alpn: ['h3'] },
    tls: {
      sni: 'www.google.com',
      alpn: ['h3'],
      versions: ['TLS1.3'],
      ja4: 'q13d0310h3_55b375c5d22e_cd85d2d88918',
      ech: true,
    },
    policy: { rule_id: null, action: 'allow' },
  };
  assert.deepEqual(fromEveLine(JSON.stringify(v1), 'old:1'), v1);
  // …and its EVE form carries the same: quic{version "1", sni, ja4}, ALPN/versions/ECH under our key
  const e = JSON.parse(JSON.stringify(flowToEve(v1 as FlowRecord))) as Record<string, unknown>;
  assert.deepEqual(e.quic, {
    version: '1',
    sni: 'www.google.com',
    ja4: 'q13d0310h3_55b375c5d22e_cd85d2d88918',
  });
  assert.equal(e.tls, undefined, 'Suricata logs a QUIC ClientHello under quic{}');
  const back = fromEve(e)!;
  assert.deepEqual(
    { ...back, end: undefined, state: undefined },
    { ...v1, end: undefined, state: undefined },
  );
});

test(
  'a live partial snapshot: chokepoint.partial, no flow.reason, both schemas, reads back',
  { skip: noSchema },
  () => {
    const r: FlowRecord = {
      event_type: 'flow',
      flow_id: 9,
      community_id: '1:vTdrngJjlP5eZ9mw9JtnKyn99KM=',
      timestamp: '2023-11-14T22:13:20.000018Z',
      end: '2023-11-14T22:14:20.000018Z',
      state: 'established',
      reason: 'timeout',
      proto: 'UDP',
      src_ip: '10.0.0.1',
      src_port: 5000,
      dest_ip: '10.0.0.2',
      dest_port: 443,
      app_proto: null,
      host: null,
      anomalies: [],
      pkts_toserver: 600,
      pkts_toclient: 600,
      bytes_toserver: 60000,
      bytes_toclient: 60000,
      duration: 60,
      partial: true,
    };
    const j = check(flowToEve(r, { node: 'sensor-1' }), 'partial');
    assert.equal((j[OUR_KEY] as { partial?: boolean }).partial, true);
    assert.equal((j.flow as { reason?: string }).reason, undefined);
    assert.equal((j.flow as { age: number }).age, 60);
    assert.equal(j.app_proto, undefined);
    const { reason: _r, ...want } = r;
    assert.deepEqual(fromEve(j), { ...want, flow_id: fleetFlowId(9, 'sensor-1') });
  },
);

test(
  'first_payload (what payload rules match on): under chokepoint, both schemas, reads back; bad heads rejected',
  { skip: noSchema },
  () => {
    const r: FlowRecord = {
      event_type: 'flow',
      flow_id: 10,
      community_id: '1:vTdrngJjlP5eZ9mw9JtnKyn99KM=',
      timestamp: '2023-11-14T22:13:20.000018Z',
      end: '2023-11-14T22:13:21.000018Z',
      state: 'new',
      proto: 'UDP',
      src_ip: '10.0.0.1',
      src_port: 5000,
      dest_ip: '10.0.0.2',
      dest_port: 443,
      app_proto: null,
      host: null,
      anomalies: [],
      pkts_toserver: 1,
      pkts_toclient: 0,
      bytes_toserver: 1228,
      bytes_toclient: 0,
      duration: 1,
      first_payload: { len: 1200, head: 'c000000001088394c8f03e5157080000' },
    };
    const j = check(flowToEve(r), 'first_payload');
    assert.deepEqual((j[OUR_KEY] as { first_payload?: unknown }).first_payload, {
      len: 1200,
      head: 'c000000001088394c8f03e5157080000',
    });
    assert.deepEqual(fromEve(j), r);
    for (const bad of [
      { len: 1200, head: 'C0' },
      { len: 0, head: '' },
      { len: 10, head: 'abc' },
      { len: 10, head: '00'.repeat(17) },
    ]) {
      const b = structuredClone(j);
      (b[OUR_KEY] as Record<string, unknown>).first_payload = bad;
      assert.notDeepEqual(flowRecordErrors(b), [], `our schema rejects ${JSON.stringify(bad)}`);
      assert.throws(() => fromEve(b), /first_payload/, `reader rejects ${JSON.stringify(bad)}`);
    }
  },
);

test(
  'flowToEveLine writes exactly JSON.stringify(flowToEve(r)): the nDPI corpus, odd strings, and the fallbacks',
  { skip: noCorpusLine },
  async () => {
    const recs = await corpus();
    for (const r of recs)
      assert.equal(flowToEveLine(r), JSON.stringify(flowToEve(r)), `${r.pcap_filename} flow ${r.flow_id}`);
    // strings that need escaping, non-ASCII, every protocol block, no pcap name, NaN counters
    const base: FlowRecord = {
      event_type: 'flow',
      flow_id: 7,
      community_id: '1:x',
      timestamp: '2023-11-14T22:13:20.000018Z',
      proto: 'UDP',
      src_ip: '::1',
      src_port: 1,
      dest_ip: '::2',
      dest_port: 443,
      app_proto: 'quic',
      host: 'b\u00fccher.example "q" \\ \u2028',
      anomalies: ['a\nb', 'ü'],
      pkts_toserver: 0,
      pkts_toclient: NaN,
      bytes_toserver: 0,
      bytes_toclient: 0,
      duration: 0,
    };
    const variants: FlowRecord[] = [
      base,
      { ...base, quic: { version: '0x51303530', sni: null, alpn: [] } },
      {
        ...base,
        quic: { version: '0x00000001', sni: 'é', alpn: ['h3'] },
        tls: { sni: 'é', alpn: ['h3'], versions: ['TLS1.3'], ja4: 'q13', ech: true },
      },
      {
        ...base,
        tls: { sni: null, alpn: [], versions: [], ja4: null, ech: false },
        first_payload: { len: 3, head: 'abcdef' },
      },
      {
        ...base,
        http: { hostname: null, method: 'GET', url: '/\u0001' },
        dns: { query: 'x.', qtype: 'TYPE65534' },
        reason: 'timeout',
        end: '2023-11-14T22:13:25.5Z',
      },
      { ...base, pcap_filename: 'a"b.pcap', state: 'closed' },
      { ...base, policy: { rule_id: 'r1', action: 'block' } },
      { ...base, partial: true },
    ];
    for (const r of variants) assert.equal(flowToEveLine(r), JSON.stringify(flowToEve(r)));
    for (const ctx of [{ node: 'n1' }, { queue: 2 }, { policyVersion: 'v9' }])
      assert.equal(flowToEveLine(base, ctx), JSON.stringify(flowToEve(base, ctx)));
  },
);

/** The bytes writer's line for one verdict, decoded. */
function verdictLine(r: Parameters<typeof verdictToEve>[0], v: VerdictDetails, ctx = {}): string {
  const j = new JsonBytes();
  writeVerdictEveLine(j, r, v, ctx);
  return j.text();
}

test(
  'writeVerdictEveLine writes exactly JSON.stringify(verdictToEve(...)) + newline: corpus x every action, odd strings, contexts',
  { skip: noCorpusLine },
  async () => {
    const recs = await corpus();
    assert.ok(recs.length > 1000, `corpus records: ${recs.length}`);
    let n = 0;
    const contexts = [
      {},
      { node: 'box-9' },
      { node: 'edge "7" \u00e9', queue: 3, policyVersion: 'sha256:ab' },
      { queue: 1 },
      { policyVersion: 'v\u0001' },
    ];
    for (const r of recs) {
      const { reason: _r, state: _s, ...snap } = r;
      for (const [action, enforcement, reason] of ACTIONS) {
        const ev = { ...snap, policy: { rule_id: action === 'allow' ? null : `rule-${action}`, action } };
        const v: VerdictDetails = {
          action,
          enforcement,
          reason,
          queue: n % 5,
          held_packets: n % 7,
          held_ms: (n % 9) / 4,
        };
        if (action === 'throttle') Object.assign(v, { rate_bps: 128000, burst_bytes: 16000 });
        const ctx = contexts[n++ % contexts.length];
        assert.equal(
          verdictLine(ev, v, ctx),
          JSON.stringify(verdictToEve(ev, v, ctx)) + '\n',
          `${r.pcap_filename} flow ${r.flow_id} ${action}/${enforcement}`,
        );
      }
    }
    // strings that need escaping, IPv4 and IPv6 resets, a default rule, odd numbers, details in another order
    const odd = {
      flow_id: 2 ** 30 + 5,
      community_id: '1:"x"',
      timestamp: '2023-11-14T23:59:59.999999Z',
      end: '2023-11-15T00:00:01.000001Z',
      proto: 'TCP' as const,
      src_ip: '10.0.0.1',
      src_port: 0,
      dest_ip: '10.0.0.2',
      dest_port: 65535,
      app_proto: null,
      host: 'b\u00fccher \u2028 \\',
      anomalies: ['a\nb'],
      pkts_toserver: 1,
      pkts_toclient: 0,
      bytes_toserver: NaN,
      bytes_toclient: -1,
      duration: 1.5e-7,
      policy: { rule_id: 'r\u00e9"1', action: 'block' as const },
    };
    const vs: VerdictDetails[] = [
      { action: 'block', enforcement: 'reset', reason: 'x"y', queue: 31, held_packets: 0, held_ms: -0 },
      { held_ms: Infinity, held_packets: 2, queue: 0, reason: 'r', enforcement: 'drop', action: 'block' },
      {
        action: 'throttle',
        enforcement: 'police-kernel',
        reason: 'r',
        queue: 2,
        held_packets: 1,
        held_ms: 1,
        rate_bps: undefined,
      },
    ];
    for (const v of vs)
      for (const r of [
        odd,
        { ...odd, src_ip: '::1', dest_ip: '::2' },
        { ...odd, policy: { rule_id: null, action: v.action } },
      ])
        for (const ctx of contexts)
          assert.equal(verdictLine(r, v, ctx), JSON.stringify(verdictToEve(r, v, ctx)) + '\n');
    // a detail JSON.stringify writes otherwise (an object) goes through the generic form
    const weird = { ...vs[0], extra: { a: [1, 'ü'] } } as unknown as VerdictDetails;
    assert.equal(verdictLine(odd, weird), JSON.stringify(verdictToEve(odd, weird)) + '\n');
    // lines append: two verdicts, two lines
    const j = new JsonBytes();
    writeVerdictEveLine(j, odd, vs[0]);
    writeVerdictEveLine(j, odd, vs[1]);
    assert.deepEqual(
      j
        .text()
        .split('\n')
        .slice(0, 2)
        .map((l) => JSON.parse(l).event_type),
      ['drop', 'drop'],
    );
  },
);
