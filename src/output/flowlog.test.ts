/**
 * @module output/flowlog.test
 * Reading flow logs: records across 1 MiB chunk boundaries (a multi-byte character split between two
 * chunks stays whole), blank lines and foreign events skipped, a line longer than MAX_EVE_LINE
 * rejected with its line number, a file without a final newline, and flow-log detection.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type { FlowRecord } from '../record/record.js';
import { MAX_EVE_LINE, flowToEve } from './eve.js';
import { isFlowLog, readFlowLog } from './flowlog.js';
import { tempDir } from '../testutil/pcap.js';

const tmp = tempDir('chokepoint-flowlog-');
after(() => tmp.cleanup());

function rec(i: number): FlowRecord {
  return {
    event_type: 'flow',
    flow_id: i,
    community_id: '1:vTdrngJjlP5eZ9mw9JtnKyn99KM=',
    timestamp: '2023-11-14T22:13:20.000018Z',
    proto: 'TCP',
    src_ip: '10.0.0.1',
    src_port: 1024 + (i % 60000),
    dest_ip: '10.0.0.2',
    dest_port: 80,
    app_proto: 'http',
    host: 'example.com',
    anomalies: [],
    pkts_toserver: 1,
    pkts_toclient: 1,
    bytes_toserver: 100,
    bytes_toclient: 100,
    duration: 0,
    // 3-byte characters, so some fall across the 1 MiB chunk boundary
    http: { hostname: 'example.com', method: 'GET', url: '/' + '€'.repeat(i % 97) },
  };
}

test('records across chunk boundaries, blank and foreign lines, no final newline', () => {
  const lines: string[] = [];
  const want: FlowRecord[] = [];
  for (let i = 1; i <= 12_000; i++) {
    const r = rec(i);
    want.push(r);
    lines.push(JSON.stringify(flowToEve(r)));
    if (i % 1000 === 0)
      lines.push('', '{"timestamp":"2023-11-14T22:13:20.0+0000","event_type":"stats","stats":{}}');
  }
  const p = tmp.path('log.json');
  const text = lines.join('\n');
  assert.ok(Buffer.byteLength(text) > 3 << 20, 'spans several chunks');
  writeFileSync(p, text);
  const got: FlowRecord[] = [];
  const res = readFlowLog(p, (r) => void got.push(r));
  assert.deepEqual(res, { records: 12_000, skipped: 12 });
  assert.deepEqual(
    got.map((r) => r.http!.url),
    want.map((r) => r.http!.url),
  );
  assert.ok(isFlowLog(p));
});

test('a line longer than MAX_EVE_LINE is rejected with its line number; a pcap is not a flow log', () => {
  const p = tmp.path('long.json');
  writeFileSync(
    p,
    JSON.stringify(flowToEve(rec(1))) + '\n' + '{"x":"' + 'a'.repeat(MAX_EVE_LINE + 10) + '"}\n',
  );
  assert.throws(() => readFlowLog(p, () => undefined), /long\.json:2: \(line\): longer than/);
  const q = tmp.path('x.pcap');
  writeFileSync(q, Buffer.from([0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]));
  assert.equal(isFlowLog(q), false);
});
