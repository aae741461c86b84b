/**
 * @module output/record-schema.test
 * schema/flow-record.schema.json (version 2, the EVE record): compiles as JSON Schema 2020-12 in ajv
 * strict mode, documents every field, has exactly the top-level fields of EveRecord in
 * src/output/eve.ts, accepts written records of every protocol and verdict kind, and rejects records
 * that break the contract (missing fields, wrong types, non-canonical values, the version-1 shape).
 * Records produced by the engine itself are validated in eve.test.ts, engine.test.ts, cmd-analyze.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { FlowRecord } from '../record/record.js';
import { flowRecordErrors, loadFlowSchema } from '../testutil/schema.js';
import { flowToEve, verdictToEve } from './eve.js';

/** As written: through the EVE writer and JSON. */
const W = (r: FlowRecord): Record<string, unknown> => JSON.parse(JSON.stringify(flowToEve(r))) as never;

const BASE: FlowRecord = {
  event_type: 'flow',
  flow_id: 3,
  community_id: '1:vTdrngJjlP5eZ9mw9JtnKyn99KM=',
  timestamp: '2023-11-14T22:13:20.000018Z',
  end: '2023-11-14T22:13:20.412018Z',
  state: 'closed',
  reason: 'shutdown',
  pcap_filename: 'b.pcap',
  proto: 'TCP',
  src_ip: '2001:db8:1::1',
  src_port: 1024,
  dest_ip: '2001:db8:ffff::f43',
  dest_port: 443,
  app_proto: 'tls',
  host: 'video2027.ru',
  anomalies: [],
  pkts_toserver: 13,
  pkts_toclient: 8,
  bytes_toserver: 2517,
  bytes_toclient: 8165,
  duration: 0.412,
  tls: {
    sni: 'Video2027.RU',
    alpn: ['h2', 'http/1.1'],
    versions: ['TLS1.3', 'TLS1.2'],
    ja4: 't13d1514h2_8daaf6152771_bc9a4605e104',
    ech: false,
  },
};

const QUIC: FlowRecord = {
  ...BASE,
  proto: 'UDP',
  src_ip: '10.0.0.1',
  dest_ip: '142.250.74.110',
  app_proto: 'quic',
  host: 'www.google.com',
  quic: { version: '0x00000001', sni: 'www.google.com', alpn: ['h3'] },
  tls: {
    sni: 'www.google.com',
    alpn: ['h3'],
    versions: ['TLS1.3'],
    ja4: 'q13d0310h3_55b375c5d22e_cd85d2d88918',
    ech: true,
  },
};

const HTTP: FlowRecord = {
  ...BASE,
  tls: undefined,
  src_ip: '192.168.0.10',
  dest_ip: '::ffff:192.0.2.1',
  dest_port: 80,
  app_proto: 'http',
  host: 'example.com',
  http: { hostname: 'Example.com', method: 'GET', url: '/index.html?q=1' },
  anomalies: ['tcp_overlap_mismatch'],
  policy: { rule_id: 'r1', action: 'throttle' },
};
delete (HTTP as Partial<FlowRecord>).tls;

const DNS: FlowRecord = {
  ...BASE,
  proto: 'UDP',
  src_ip: '::1',
  dest_ip: '::',
  dest_port: 53,
  app_proto: 'dns',
  host: 'example.org',
  dns: { query: 'Example.org.', qtype: 'TYPE65534' },
};
delete (DNS as Partial<FlowRecord>).tls;

const UNNAMED: FlowRecord = {
  ...BASE,
  app_proto: null,
  host: null,
  anomalies: ['flow_evicted', 'inspect_packets_exhausted'],
};
delete (UNNAMED as Partial<FlowRecord>).tls;
delete (UNNAMED as Partial<FlowRecord>).pcap_filename;

test('schema is draft 2020-12, compiles strictly, and documents every field', () => {
  const s = loadFlowSchema();
  assert.equal(s.$schema, 'https://json-schema.org/draft/2020-12/schema');
  assert.deepEqual(flowRecordErrors(W(BASE)), []);
  const walk = (
    props: Record<string, { description?: string; properties?: Record<string, unknown> }>,
    path: string,
  ) => {
    for (const [k, v] of Object.entries(props)) {
      assert.ok(
        typeof v.description === 'string' && v.description.length > 10,
        `${path}${k} has a description`,
      );
      if (v.properties) walk(v.properties as never, `${path}${k}.`);
    }
  };
  walk(s.properties as never, '');
});

test('schema properties are exactly the EveRecord fields of output/eve.ts', () => {
  // the TypeScript source (this test may run from dist/, so walk up to the project's src/)
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'src', 'output', 'eve.ts')) && dirname(dir) !== dir) dir = dirname(dir);
  const src = readFileSync(join(dir, 'src', 'output', 'eve.ts'), 'utf8').replace(/\r/g, '');
  const m = /export interface EveRecord \{([\s\S]*?)\n\}/.exec(src);
  assert.ok(m, 'EveRecord interface found');
  // top-level members only (two-space indent); [OUR_KEY] is 'chokepoint'
  const fields = [...m[1].matchAll(/^ {2}(\[OUR_KEY\]|[a-z_]+)(\?)?:/gm)].map((x) => ({
    name: x[1] === '[OUR_KEY]' ? 'chokepoint' : x[1],
    optional: x[2] === '?',
  }));
  const s = loadFlowSchema() as { properties: Record<string, unknown>; required: string[] };
  assert.deepEqual(Object.keys(s.properties).sort(), fields.map((f) => f.name).sort());
  assert.deepEqual(
    [...s.required].sort(),
    fields
      .filter((f) => !f.optional)
      .map((f) => f.name)
      .sort(),
  );
});

test('valid records of every kind', () => {
  for (const [name, r] of Object.entries({ BASE, QUIC, HTTP, DNS, UNNAMED }))
    assert.deepEqual(flowRecordErrors(W(r)), [], name);
  for (const [action, enforcement] of [
    ['allow', 'accept'],
    ['log', 'accept'],
    ['throttle', 'police-kernel'],
    ['block', 'reset'],
  ] as const) {
    const v = verdictToEve(
      { ...BASE, policy: { rule_id: 'r', action } },
      {
        action,
        enforcement,
        reason: 'named',
        queue: 1,
        held_packets: 0,
        held_ms: 0,
        rate_bps: 8000,
        burst_bytes: 3000,
      },
      { node: 'box' },
    );
    assert.deepEqual(flowRecordErrors(JSON.parse(JSON.stringify(v))), [], action);
  }
});

test('records that break the contract are rejected', () => {
  const B = W(BASE);
  const H = W(HTTP);
  const Q = W(QUIC);
  const D = W(DNS);
  const ours = B.chokepoint as Record<string, unknown>;
  const flow = B.flow as Record<string, unknown>;
  const drop = (o: Record<string, unknown>, k: string) => (({ [k]: _x, ...r }) => r)(o);
  const bad: [string, unknown][] = [
    ['missing flow', drop(B, 'flow')],
    ['missing our key', drop(B, 'chokepoint')],
    ['missing name', { ...B, chokepoint: drop(ours, 'name') }],
    ['missing anomalies', { ...B, chokepoint: drop(ours, 'anomalies') }],
    ['extra top-level field', { ...B, extra: 1 }],
    ['version-1 top-level counters', { ...B, pkts_toserver: 13 }],
    ['version-1 top-level anomalies', { ...B, anomalies: [] }],
    ['event_type', { ...B, event_type: 'verdict' }],
    ['flow_id string', { ...B, flow_id: '3' }],
    ['flow_id unsafe', { ...B, flow_id: 2 ** 53 }],
    ['community id v0', { ...B, community_id: '0:vTdrngJjlP5eZ9mw9JtnKyn99KM=' }],
    ['timestamp without micros', { ...B, timestamp: '2023-11-14T22:13:20.000+0000' }],
    ['timestamp Z', { ...B, timestamp: '2023-11-14T22:13:20.000018Z' }],
    ['flow.start Z', { ...B, flow: { ...flow, start: '2023-11-14T22:13:20.000018Z' } }],
    ['flow.state', { ...B, flow: { ...flow, state: 'open' } }],
    ['flow.reason', { ...B, flow: { ...flow, reason: 'idle' } }],
    ['negative count', { ...B, flow: { ...flow, bytes_toclient: -1 } }],
    ['fractional count', { ...B, flow: { ...flow, pkts_toserver: 1.5 } }],
    ['proto', { ...B, proto: 'tcp' }],
    ['port range', { ...B, src_port: 65536 }],
    ['uppercase IPv6', { ...B, src_ip: '2001:DB8::1' }],
    ['leading zeros IPv6', { ...B, src_ip: '2001:0db8::1' }],
    ['IPv4 leading zero', { ...B, src_ip: '10.0.0.01' }],
    ['IPv4 octet', { ...B, src_ip: '10.0.0.256' }],
    ['not an address', { ...B, dest_ip: 'example.com' }],
    ['name uppercase', { ...B, chokepoint: { ...ours, name: 'Video2027.ru' } }],
    ['name trailing dot', { ...B, chokepoint: { ...ours, name: 'video2027.ru.' } }],
    ['name empty', { ...B, chokepoint: { ...ours, name: '' } }],
    ['app_proto null', { ...B, app_proto: null }],
    ['host empty', { ...B, host: '' }],
    ['tls bad ja4', { ...B, tls: { ja4: 't13d1514h2_8daaf6152771' } }],
    ['tls version-1 alpn', { ...B, tls: { alpn: ['h2'] } }],
    ['tls bad version', { ...B, chokepoint: { ...ours, tls: { versions: ['1.3'], ech: false } } }],
    ['quic version-1 version', { ...Q, quic: { version: '0x00000001' } }],
    ['dns version-1 shape', { ...D, dns: { query: 'x', qtype: 'A' } }],
    [
      'dns rrtype',
      { ...D, dns: { version: 3, type: 'request', queries: [{ rrname: 'x', rrtype: 'TYPE65534' }] } },
    ],
    ['http method empty', { ...H, http: { url: '/', http_method: '' } }],
    ['anomaly code', { ...B, chokepoint: { ...ours, anomalies: ['Bad Code'] } }],
    ['anomaly duplicate', { ...B, chokepoint: { ...ours, anomalies: ['flow_evicted', 'flow_evicted'] } }],
    ['policy action', { ...B, chokepoint: { ...ours, policy: { rule_id: null, action: 'drop' } } }],
  ];
  for (const [name, r] of bad) assert.notDeepEqual(flowRecordErrors(r), [], name);
});
