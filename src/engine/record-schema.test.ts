/**
 * @module engine/record-schema.test
 * schema/flow-record.schema.json: compiles as JSON Schema 2020-12 in ajv strict mode, documents every
 * field, matches the FlowRecord fields of src/record/record.ts, accepts records of every protocol, and
 * rejects records that break the contract (missing fields, wrong types, non-canonical values). Records
 * produced by the engine itself are validated in engine.test.ts and cmd-analyze.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { FlowRecord } from '../record/record.js';
import { flowRecordErrors, loadFlowSchema } from '../testutil/schema.js';

const BASE: FlowRecord = {
  event_type: 'flow',
  flow_id: 3,
  community_id: '1:vTdrngJjlP5eZ9mw9JtnKyn99KM=',
  timestamp: '2023-11-14T22:13:20.000018Z',
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
  assert.deepEqual(flowRecordErrors(BASE), []);
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

test('schema properties are exactly the FlowRecord fields of record.ts', () => {
  // the TypeScript source (this test may run from dist/, so walk up to the project's src/)
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'src', 'record', 'record.ts')) && dirname(dir) !== dir) dir = dirname(dir);
  const src = readFileSync(join(dir, 'src', 'record', 'record.ts'), 'utf8').replace(/\r/g, '');
  const m = /export interface FlowRecord \{([\s\S]*?)\n\}/.exec(src);
  assert.ok(m, 'FlowRecord interface found');
  const fields = [...m[1].matchAll(/^\s+([a-z_]+)(\?)?:/gm)].map((x) => ({
    name: x[1],
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
    assert.deepEqual(flowRecordErrors(r), [], name);
});

test('records that break the contract are rejected', () => {
  const bad: [string, unknown][] = [
    ['missing host', (({ host: _h, ...r }) => r)(BASE)],
    ['missing anomalies', (({ anomalies: _a, ...r }) => r)(BASE)],
    ['extra field', { ...BASE, extra: 1 }],
    ['event_type', { ...BASE, event_type: 'alert' }],
    ['flow_id 0', { ...BASE, flow_id: 0 }],
    ['flow_id string', { ...BASE, flow_id: '3' }],
    ['community id v0', { ...BASE, community_id: '0:vTdrngJjlP5eZ9mw9JtnKyn99KM=' }],
    ['timestamp without micros', { ...BASE, timestamp: '2023-11-14T22:13:20.000Z' }],
    ['timestamp not UTC', { ...BASE, timestamp: '2023-11-14T22:13:20.000018+01:00' }],
    ['proto', { ...BASE, proto: 'tcp' }],
    ['port range', { ...BASE, src_port: 65536 }],
    ['uppercase IPv6', { ...BASE, src_ip: '2001:DB8::1' }],
    ['leading zeros IPv6', { ...BASE, src_ip: '2001:0db8::1' }],
    ['IPv4 leading zero', { ...BASE, src_ip: '10.0.0.01' }],
    ['IPv4 octet', { ...BASE, src_ip: '10.0.0.256' }],
    ['not an address', { ...BASE, dest_ip: 'example.com' }],
    ['host uppercase', { ...BASE, host: 'Video2027.ru' }],
    ['host trailing dot', { ...BASE, host: 'video2027.ru.' }],
    ['host empty', { ...BASE, host: '' }],
    ['app_proto empty', { ...BASE, app_proto: '' }],
    ['tls missing ja4', { ...BASE, tls: { sni: null, alpn: [], versions: [], ech: false } }],
    ['tls bad ja4', { ...BASE, tls: { ...BASE.tls, ja4: 't13d1514h2_8daaf6152771' } }],
    ['tls bad version', { ...BASE, tls: { ...BASE.tls, versions: ['1.3'] } }],
    ['quic version', { ...QUIC, quic: { version: '1', sni: null, alpn: [] } }],
    ['dns qtype', { ...DNS, dns: { query: 'x', qtype: 'a' } }],
    ['http method empty', { ...HTTP, http: { hostname: null, method: '', url: '/' } }],
    ['anomaly code', { ...BASE, anomalies: ['Bad Code'] }],
    ['anomaly duplicate', { ...BASE, anomalies: ['flow_evicted', 'flow_evicted'] }],
    ['negative count', { ...BASE, bytes_toclient: -1 }],
    ['fractional count', { ...BASE, pkts_toserver: 1.5 }],
    ['policy action', { ...HTTP, policy: { rule_id: null, action: 'drop' } }],
  ];
  for (const [name, r] of bad) assert.notDeepEqual(flowRecordErrors(r), [], name);
});
