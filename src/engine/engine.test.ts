/**
 * @module engine/engine.test
 * End to end: a synthetic capture with ground truth (src/gen/synth.ts) through `analyzeFiles`. Every
 * scenario (plain, post-quantum, split, out-of-order and record-fragmented TLS ClientHellos, TLS without
 * SNI, QUIC over one or two Initial packets in either order, DNS, HTTP; IPv4/IPv6, VLAN/QinQ) must be
 * named 100% right with the client on the right side; packet and byte counts per direction must equal
 * tshark's count of the same capture; every record must satisfy the JSON Schema. Also: bounded memory
 * (a small flow cap evicts, counts evictions, loses no packet), idle timeouts, and hand-made flows
 * picked up without a SYN.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { PcapWriter } from '../gen/pcap-writer.js';
import { generate, type TruthRow } from '../gen/synth.js';
import { analyzeFiles, type AnalyzeResult } from './analyze.js';
import { Engine } from './engine.js';
import { readCaptureFile } from '../capture/reader.js';
import type { FlowRecord } from '../record/record.js';
import { flowRecordErrors } from '../testutil/schema.js';
import { flowToEve } from '../output/eve.js';

/** The record as a JSON line carries it. */
const written = (r: FlowRecord): unknown => JSON.parse(JSON.stringify(flowToEve(r)));
import { ipBytes, ipv4, ipv6, tcp, udp, eth } from '../testutil/net.js';
import { pcapFile, tempDir } from '../testutil/pcap.js';
import { buildClientHello, wrapRecords } from '../gen/clienthello.js';
import { tcpFrame } from '../gen/frames.js';
import { haveTool, need } from '../testutil/require.js';

const tmp = tempDir('chokepoint-engine-');
after(() => tmp.cleanup());

const SCENARIOS = [
  'tls',
  'tls-pq',
  'tls-split',
  'tls-ooo',
  'tls-records',
  'tls-nosni',
  'quic',
  'quic-2pkt',
  'quic-2pkt-rev',
  'dns',
  'http',
];

/** Canonical key of an endpoint pair, comparing addresses by value. */
function key(proto: string, sip: string, sport: number, dip: string, dport: number): string {
  return `${proto}|${Buffer.from(ipBytes(sip)).toString('hex')}|${sport}|${Buffer.from(ipBytes(dip)).toString('hex')}|${dport}`;
}

function writeCapture(
  name: string,
  seed: number,
  flows: number,
  concurrency?: number,
): { path: string; truth: TruthRow[]; packets: number } {
  const path = tmp.path(name);
  const fd = openSync(path, 'w');
  try {
    const w = new PcapWriter(fd);
    const truth = generate(w, { seed, flows, concurrency });
    return { path, truth, packets: w.packets };
  } finally {
    closeSync(fd);
  }
}

async function analyze(
  path: string,
  opts: { maxFlows?: number } = {},
): Promise<{ recs: FlowRecord[]; res: AnalyzeResult }> {
  const recs: FlowRecord[] = [];
  const res = await analyzeFiles([path], { ...opts, onRecord: (r) => void recs.push(r) });
  return { recs, res };
}

let cap: { path: string; truth: TruthRow[]; packets: number };
let out: { recs: FlowRecord[]; res: AnalyzeResult };

before(async () => {
  // enough flows that every scenario occurs many times (QUIC, DNS, HTTP at ~8% each, tls-nosni ~3% of TLS)
  cap = writeCapture('synth.pcap', 20251129, 1500);
  out = await analyze(cap.path);
});

test('ground truth covers every scenario', () => {
  const counts = new Map<string, number>();
  for (const t of cap.truth) counts.set(t.scenario, (counts.get(t.scenario) ?? 0) + 1);
  for (const s of SCENARIOS)
    assert.ok((counts.get(s) ?? 0) >= 10, `scenario ${s}: ${counts.get(s) ?? 0} flows`);
});

test('one record per flow, all packets read, no errors', () => {
  assert.deepEqual(out.res.errors, []);
  assert.equal(out.res.files.length, 1);
  const f = out.res.files[0];
  assert.equal(f.packets, cap.packets);
  assert.equal(f.truncated, null);
  assert.equal(f.stats.malformed, 0);
  assert.equal(out.recs.length, cap.truth.length);
  assert.equal(new Set(out.recs.map((r) => r.flow_id)).size, out.recs.length, 'flow ids unique');
  assert.ok(out.recs.every((r) => r.pcap_filename === 'synth.pcap'));
});

test('100% of names and app_protos right in every scenario, client on the src side', () => {
  const byKey = new Map(out.recs.map((r) => [key(r.proto, r.src_ip, r.src_port, r.dest_ip, r.dest_port), r]));
  const wrong = new Map<string, string[]>();
  const total = new Map<string, number>();
  for (const t of cap.truth) {
    total.set(t.scenario, (total.get(t.scenario) ?? 0) + 1);
    const r = byKey.get(key(t.proto, t.src_ip, t.src_port, t.dest_ip, t.dest_port));
    let why: string | null = null;
    if (!r) {
      const rev = out.recs.find(
        (x) =>
          key(x.proto, x.dest_ip, x.dest_port, x.src_ip, x.src_port) ===
          key(t.proto, t.src_ip, t.src_port, t.dest_ip, t.dest_port),
      );
      why = rev ? 'client/server reversed' : 'no record';
    } else if (r.app_proto !== t.app_proto)
      why = `app_proto ${r.app_proto} != ${t.app_proto} (anomalies ${r.anomalies.join(',')})`;
    else if (r.host !== t.host) why = `host ${r.host} != ${t.host}`;
    if (why)
      wrong.set(t.scenario, [
        ...(wrong.get(t.scenario) ?? []),
        `${t.src_ip}:${t.src_port}->${t.dest_ip}:${t.dest_port} ${why}`,
      ]);
  }
  const report = [...wrong].map(
    ([s, l]) => `${s}: ${l.length}/${total.get(s)} wrong, e.g. ${l.slice(0, 3).join('; ')}`,
  );
  assert.deepEqual(report, []);
});

test('per-protocol details match the ground truth', () => {
  const byKey = new Map(out.recs.map((r) => [key(r.proto, r.src_ip, r.src_port, r.dest_ip, r.dest_port), r]));
  for (const t of cap.truth) {
    const r = byKey.get(key(t.proto, t.src_ip, t.src_port, t.dest_ip, t.dest_port))!;
    const label = `${t.scenario} ${t.host}`;
    if (t.app_proto === 'tls') {
      assert.ok(r.tls, label);
      assert.equal(r.tls.sni, t.host, label);
      assert.deepEqual(r.tls.alpn, ['h2', 'http/1.1'], label);
      assert.match(r.tls.ja4 ?? '', /^t13[di]/, label);
      assert.equal(r.quic, undefined);
    } else if (t.app_proto === 'quic') {
      assert.ok(r.quic, label);
      assert.equal(r.quic.version, '0x00000001', label);
      assert.equal(r.quic.sni, t.host, label);
      assert.deepEqual(r.quic.alpn, ['h3'], label);
      assert.match(r.tls?.ja4 ?? '', /^q13d/, label);
    } else if (t.app_proto === 'dns') {
      assert.ok(r.dns, label);
      assert.equal(r.dns.query, t.host, label);
      assert.match(r.dns.qtype, /^(A|AAAA|HTTPS)$/, label);
    } else if (t.app_proto === 'http') {
      assert.ok(r.http, label);
      assert.equal(r.http.hostname, t.host, label);
      assert.equal(r.http.method, 'GET', label);
      assert.match(r.http.url, /^\/\d+$/, label);
    }
  }
});

test('every record, as written (output/eve.ts), satisfies schema/flow-record.schema.json', () => {
  for (const r of out.recs) assert.deepEqual(flowRecordErrors(written(r)), [], JSON.stringify(r));
});

test(
  "packet and byte counts per direction, first-packet timestamps and Community IDs equal tshark's",
  { skip: need(haveTool('tshark'), 'tshark not installed (Debian tshark)'), timeout: 300_000 },
  () => {
    const r = spawnSync(
      'tshark',
      [
        '-n',
        '--enable-protocol',
        'communityid',
        '-r',
        cap.path,
        '-T',
        'fields',
        '-E',
        'separator=|',
        ...[
          'ip.src',
          'ipv6.src',
          'ip.dst',
          'ipv6.dst',
          'tcp.srcport',
          'udp.srcport',
          'tcp.dstport',
          'udp.dstport',
          'frame.len',
          'frame.time_epoch',
          'communityid',
        ].flatMap((f) => ['-e', f]),
      ],
      { encoding: 'utf8', maxBuffer: 1 << 30, timeout: 280_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    const counts = new Map<string, { p: number; b: number }>();
    /** tshark's frame.time_epoch text of each flow's first packet, keyed by that packet's direction. */
    const first = new Map<string, string>();
    /** tshark's Community ID per direction. */
    const cids = new Map<string, string>();
    let lines = 0;
    for (const line of r.stdout.split('\n')) {
      if (!line) continue;
      lines++;
      const [s4, s6, d4, d6, ts, us, td, ud, len, epoch, cid] = line.split('|');
      const proto = ts ? 'TCP' : 'UDP';
      const k = key(proto, s4 || s6, Number(ts || us), d4 || d6, Number(td || ud));
      const rk = key(proto, d4 || d6, Number(td || ud), s4 || s6, Number(ts || us));
      if (!first.has(k) && !first.has(rk)) first.set(k, epoch);
      cids.set(k, cid);
      const c = counts.get(k) ?? { p: 0, b: 0 };
      c.p++;
      c.b += Number(len);
      counts.set(k, c);
    }
    assert.equal(lines, cap.packets);
    for (const rec of out.recs) {
      const up = counts.get(key(rec.proto, rec.src_ip, rec.src_port, rec.dest_ip, rec.dest_port)) ?? {
        p: 0,
        b: 0,
      };
      const down = counts.get(key(rec.proto, rec.dest_ip, rec.dest_port, rec.src_ip, rec.src_port)) ?? {
        p: 0,
        b: 0,
      };
      const label = `${rec.app_proto} ${rec.src_ip}:${rec.src_port}`;
      assert.equal(rec.pkts_toserver, up.p, label);
      assert.equal(rec.pkts_toclient, down.p, label);
      assert.equal(rec.bytes_toserver, up.b, label);
      assert.equal(rec.bytes_toclient, down.b, label);
      // the first packet's time to the microsecond, from tshark's text with integer arithmetic only
      const epoch =
        first.get(key(rec.proto, rec.src_ip, rec.src_port, rec.dest_ip, rec.dest_port)) ??
        first.get(key(rec.proto, rec.dest_ip, rec.dest_port, rec.src_ip, rec.src_port));
      assert.ok(epoch, label);
      const [sec, frac = ''] = epoch.split('.');
      const want =
        new Date(Number(sec) * 1000).toISOString().slice(0, 19) + '.' + frac.padEnd(6, '0').slice(0, 6) + 'Z';
      assert.equal(rec.timestamp, want, label);
      assert.equal(
        rec.community_id,
        cids.get(key(rec.proto, rec.src_ip, rec.src_port, rec.dest_ip, rec.dest_port)),
        label,
      );
      assert.equal(
        rec.community_id,
        cids.get(key(rec.proto, rec.dest_ip, rec.dest_port, rec.src_ip, rec.src_port)),
        label,
      );
    }
  },
);

test('timestamps: the first packet of each flow, in order of flow ids', () => {
  let prev = '';
  for (const r of [...out.recs].sort((a, b) => a.flow_id - b.flow_id)) {
    assert.ok(r.timestamp >= prev, `${r.timestamp} after ${prev}`);
    assert.ok(r.timestamp.startsWith('2023-11-14T22:'), r.timestamp); // generator starts at 1.7e9 s
    prev = r.timestamp;
  }
});

test('bounded memory: a small flow cap evicts, counts evictions, loses no packet, still names evicted flows', async () => {
  const c = writeCapture('many.pcap', 77, 1200, 300);
  const { recs, res } = await analyze(c.path, { maxFlows: 40 });
  assert.deepEqual(res.errors, []);
  const st = res.files[0].stats;
  assert.ok(st.evicted > 0, `evicted ${st.evicted}`);
  const evictedRecs = recs.filter((r) => r.anomalies.includes('flow_evicted'));
  assert.equal(evictedRecs.length, st.evicted);
  // every IP packet is counted in exactly one record
  const sum = recs.reduce((a, r) => a + r.pkts_toserver + r.pkts_toclient, 0);
  assert.equal(sum, st.ipPackets);
  assert.equal(st.ipPackets, c.packets);
  // never more than the cap at once: records = flows created
  assert.equal(recs.length, st.flows);
  // with evictions the client's hello usually arrived before the eviction: most names still right
  const byKey = new Map<string, FlowRecord[]>();
  for (const r of recs) {
    const k = key(r.proto, r.src_ip, r.src_port, r.dest_ip, r.dest_port);
    byKey.set(k, [...(byKey.get(k) ?? []), r]);
  }
  let named = 0;
  for (const t of c.truth)
    if (
      (byKey.get(key(t.proto, t.src_ip, t.src_port, t.dest_ip, t.dest_port)) ?? []).some(
        (r) => r.host === t.host && r.app_proto === t.app_proto,
      )
    )
      named++;
  assert.ok(named / c.truth.length > 0.5, `named ${named}/${c.truth.length}`);
});

// --- hand-made flows -------------------------------------------------------------------------------------

function engineRun(
  frames: { f: Uint8Array; ms: number }[],
  opts: ConstructorParameters<typeof Engine>[0] = {},
): FlowRecord[] {
  const recs: FlowRecord[] = [];
  const e = new Engine({ ...opts, onFlowEnd: (f, why) => void recs.push(e.record(f, why)) });
  for (const { f, ms } of frames) e.packet(f, 1, ms);
  e.flush();
  return recs;
}

const CLI = '10.0.0.5';
const SRV = '93.184.216.34';
const hello = wrapRecords(buildClientHello({ sni: 'Mid.Example.COM.', alpn: ['h2'] }));

test('TCP picked up without a SYN: the side on port 443 is the server, the hello is still read', () => {
  const seg = (from: 'c' | 's', seq: number, flags: number, pay?: Uint8Array) =>
    eth(
      0x0800,
      from === 'c'
        ? ipv4(CLI, SRV, 6, tcp(51000, 443, seq, 1, flags, pay))
        : ipv4(SRV, CLI, 6, tcp(443, 51000, 1, seq, flags, pay)),
    );
  // first packet seen is the server's ACK, then the client's hello
  const recs = engineRun([
    { f: seg('s', 5000, 0x10), ms: 1 },
    { f: seg('c', 5000, 0x18, hello), ms: 2 },
    { f: seg('s', 5000 + hello.length, 0x10), ms: 3 },
  ]);
  assert.equal(recs.length, 1);
  const r = recs[0];
  assert.equal(r.src_ip, CLI);
  assert.equal(r.src_port, 51000);
  assert.equal(r.dest_port, 443);
  assert.equal(r.app_proto, 'tls');
  assert.equal(r.host, 'mid.example.com', 'lowercased, trailing dot removed');
  assert.equal(r.tls?.sni, 'Mid.Example.COM.');
  assert.equal(r.pkts_toserver, 1);
  assert.equal(r.pkts_toclient, 2);
});

test('SYN/ACK seen first: its receiver is the client', () => {
  const recs = engineRun([
    { f: eth(0x0800, ipv4(SRV, CLI, 6, tcp(8443, 40000, 9, 100, 0x12))), ms: 1 },
    { f: eth(0x0800, ipv4(CLI, SRV, 6, tcp(40000, 8443, 100, 10, 0x18, hello))), ms: 2 },
  ]);
  assert.equal(recs.length, 1);
  assert.equal(recs[0].src_ip, CLI);
  assert.equal(recs[0].dest_port, 8443);
  assert.equal(recs[0].host, 'mid.example.com');
});

test('DNS: a response seen first still makes the querier the client', () => {
  const q = Uint8Array.from([
    0xab,
    0xcd,
    0x01,
    0x00,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    3,
    ...Buffer.from('www'),
    2,
    ...Buffer.from('ex'),
    0,
    0,
    28,
    0,
    1,
  ]);
  const resp = q.slice();
  resp[2] |= 0x80;
  const recs = engineRun([
    { f: eth(0x86dd, ipv6('2001:db8::53', '2001:db8::c', 17, udp(53, 33333, resp))), ms: 1 },
    { f: eth(0x86dd, ipv6('2001:db8::c', '2001:db8::53', 17, udp(33333, 53, q))), ms: 2 },
  ]);
  assert.equal(recs.length, 1);
  assert.equal(recs[0].src_ip, '2001:db8::c');
  assert.equal(recs[0].dest_port, 53);
  assert.equal(recs[0].app_proto, 'dns');
  assert.equal(recs[0].host, 'www.ex');
  assert.equal(recs[0].dns?.qtype, 'AAAA');
});

test('idle timeout ends a flow; the same tuple later is a new flow', () => {
  const q = Uint8Array.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 97, 0, 0, 1, 0, 1]);
  const f = eth(0x0800, ipv4(CLI, '8.8.8.8', 17, udp(5555, 53, q)));
  const recs = engineRun(
    [
      { f, ms: 1000 },
      { f, ms: 2000 },
      { f, ms: 2000 + 10_001 },
    ],
    { udpIdleMs: 10_000 },
  );
  assert.equal(recs.length, 2);
  assert.equal(recs[0].pkts_toserver, 2);
  assert.equal(recs[1].pkts_toserver, 1);
  assert.ok(recs[0].flow_id < recs[1].flow_id);
});

test('malformed and non-IP frames are counted, never thrown', () => {
  const e = new Engine();
  for (let i = 0; i < 200; i++)
    e.packet(
      Uint8Array.from({ length: i }, (_, k) => (k * 37 + i) & 255),
      1,
      i,
    );
  e.packet(eth(0x0800, ipv4(CLI, SRV, 6, tcp(1, 2, 0, 0, 0x02)).subarray(0, 30)), 1, 300);
  e.flush();
  assert.equal(e.stats.packets, 201);
  assert.ok(e.stats.malformed + e.stats.skipped + e.stats.ipPackets === 201);
  assert.ok(e.stats.malformed >= 1);
});

test('an unreadable file is an error for that file only', async () => {
  const good = writeCapture('small.pcap', 5, 20);
  const bad = tmp.path('not-a-capture.txt');
  writeFileSync(bad, 'hello\n');
  const recs: FlowRecord[] = [];
  const res = await analyzeFiles([bad, good.path, tmp.path('missing.pcap')], {
    onRecord: (r) => void recs.push(r),
  });
  assert.equal(res.errors.length, 2);
  assert.match(res.errors[0].message, /not-a-capture\.txt/);
  assert.match(res.errors[1].message, /missing\.pcap/);
  assert.equal(recs.length, good.truth.length);
  // a capture truncated in the middle still yields its flows, and says so
  const raw = pcapFile({ le: true, nano: false, linktype: 1 }, [
    { data: eth(0x0800, ipv4(CLI, SRV, 6, tcp(1000, 80, 0, 0, 0x02))), sec: 1, frac: 0 },
  ]);
  const cut = tmp.path('cut.pcap');
  writeFileSync(cut, Buffer.concat([raw, raw.subarray(24, 40)]));
  const r2: FlowRecord[] = [];
  const res2 = await analyzeFiles([cut], { onRecord: (r) => void r2.push(r) });
  assert.deepEqual(res2.errors, []);
  assert.ok(res2.files[0].truncated);
  assert.equal(r2.length, 1);
});

test('TCP Fast Open: a ClientHello carried in the SYN is read from seq+1', () => {
  const recs = engineRun([
    { f: eth(0x0800, ipv4(CLI, SRV, 6, tcp(42000, 443, 7000, 0, 0x02, hello))), ms: 1 },
    { f: eth(0x0800, ipv4(SRV, CLI, 6, tcp(443, 42000, 9000, 7001 + hello.length, 0x12))), ms: 2 },
  ]);
  assert.equal(recs.length, 1);
  assert.equal(recs[0].app_proto, 'tls');
  assert.equal(recs[0].host, 'mid.example.com');
});

test('a new SYN on a closed flow (port reuse) starts a new flow with its own name', () => {
  const h2 = wrapRecords(buildClientHello({ sni: 'second.example', alpn: ['h2'] }));
  const c = (seq: number, ack: number, flags: number, pay?: Uint8Array) =>
    eth(0x0800, ipv4(CLI, SRV, 6, tcp(43000, 443, seq, ack, flags, pay)));
  const s = (seq: number, ack: number, flags: number) =>
    eth(0x0800, ipv4(SRV, CLI, 6, tcp(443, 43000, seq, ack, flags)));
  const frames = [
    c(100, 0, 0x02),
    s(500, 101, 0x12),
    c(101, 501, 0x10),
    c(101, 501, 0x18, hello),
    c(101 + hello.length, 501, 0x11),
    s(501, 102 + hello.length, 0x11),
    c(102 + hello.length, 502, 0x10),
    // the same 4-tuple again, 1 s later
    c(90000, 0, 0x02),
    s(70000, 90001, 0x12),
    c(90001, 70001, 0x18, h2),
  ].map((f, i) => ({ f, ms: 1000 + (i >= 7 ? 1000 : 0) + i }));
  const recs = engineRun(frames).sort((a, b) => a.flow_id - b.flow_id);
  assert.equal(recs.length, 2);
  assert.equal(recs[0].host, 'mid.example.com');
  assert.equal(recs[0].pkts_toserver + recs[0].pkts_toclient, 7);
  assert.equal(recs[1].host, 'second.example');
  assert.equal(recs[1].pkts_toserver, 2);
  assert.equal(recs[1].pkts_toclient, 1);
});

test('mutated synthetic traffic: the engine never throws and every record still fits the schema', () => {
  // frames of a real synthetic capture, with random bytes changed in one frame of five
  const frames: Uint8Array[] = [];
  readCaptureFile(writeCapture('fuzz-base.pcap', 99, 120).path, {
    packet: (b, off, end) => void frames.push(b.slice(off, end)),
  });
  let x = 12345;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
  for (let round = 0; round < 5; round++) {
    const recs: FlowRecord[] = [];
    const e = new Engine({ onFlowEnd: (f, why) => void recs.push(e.record(f, why)), maxFlows: 64 });
    frames.forEach((f0, i) => {
      let f = f0;
      if (rnd() % 5 === 0) {
        f = f0.slice(0, 1 + (rnd() % f0.length));
        for (let k = rnd() % 6; k >= 0; k--) f[rnd() % f.length] = rnd() & 255;
      }
      e.packet(f, 1, 1_700_000_000_000 + i);
    });
    e.flush();
    assert.equal(e.stats.packets, frames.length);
    for (const r of recs) assert.deepEqual(flowRecordErrors(written(r)), [], JSON.stringify(r));
  }
});

test('bounded memory: the table never exceeds its cap, reassembly buffers never exceed the budget', () => {
  const c = writeCapture('cap-check.pcap', 78, 800, 400);
  const e = new Engine({ maxFlows: 25, inspectBytes: 4096 });
  let maxSize = 0;
  let maxBuf = 0;
  readCaptureFile(c.path, {
    packet(b, off, end, lt, ts, orig) {
      e.packet(b, lt, ts, orig, off, end);
      maxSize = Math.max(maxSize, e.table.size);
      if (e.stats.packets % 50 === 0) {
        let sum = 0;
        for (const f of e.table.all()) {
          const n = f.stream?.buf.length ?? 0;
          assert.ok(n <= 4096, `stream buffer ${n}`);
          sum += n;
        }
        maxBuf = Math.max(maxBuf, sum);
      }
    },
  });
  e.flush();
  assert.ok(maxSize <= 25, `table size ${maxSize}`);
  assert.equal(e.table.size, 0);
  assert.ok(maxBuf <= 25 * 4096);
  assert.ok(e.stats.evicted > 0);
  assert.ok(e.decoder.frags.size <= 256);
});

test("mid-stream pickup with the hello's segments out of order (second segment first) is still named", () => {
  const cut = 100;
  const c = (seq: number, pay: Uint8Array) => ({
    f: eth(0x0800, ipv4(CLI, SRV, 6, tcp(44000, 443, seq, 1, 0x18, pay))),
    ms: seq,
  });
  const recs = engineRun([c(1000 + cut, hello.subarray(cut)), c(1000, hello.subarray(0, cut))]);
  assert.equal(recs.length, 1);
  assert.equal(recs[0].host, 'mid.example.com');
});

test('more seeds: 100% of names right', { timeout: 300_000 }, async () => {
  for (const seed of [1, 2, 3, 0xc0ffee]) {
    const c = writeCapture(`seed-${seed}.pcap`, seed, 400);
    const { recs, res } = await analyze(c.path);
    assert.deepEqual(res.errors, []);
    const byKey = new Map(recs.map((r) => [key(r.proto, r.src_ip, r.src_port, r.dest_ip, r.dest_port), r]));
    const wrong = c.truth.filter((t) => {
      const r = byKey.get(key(t.proto, t.src_ip, t.src_port, t.dest_ip, t.dest_port));
      return !r || r.host !== t.host || r.app_proto !== t.app_proto;
    });
    assert.deepEqual(
      wrong.map((t) => `${t.scenario} ${t.host}`),
      [],
      `seed ${seed}`,
    );
  }
});

test('DNS over TCP: a length-prefixed query split across two segments', () => {
  const q = Uint8Array.from([
    0x77,
    0x01,
    0x01,
    0x00,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    4,
    ...Buffer.from('tcpq'),
    7,
    ...Buffer.from('example'),
    0,
    0,
    15,
    0,
    1,
  ]);
  const msg = Uint8Array.from([q.length >> 8, q.length & 255, ...q]);
  const c = (seq: number, flags: number, pay?: Uint8Array) =>
    eth(0x0800, ipv4(CLI, '9.9.9.9', 6, tcp(45000, 53, seq, 1, flags, pay)));
  const recs = engineRun([
    { f: c(10, 0x02), ms: 1 },
    { f: eth(0x0800, ipv4('9.9.9.9', CLI, 6, tcp(53, 45000, 0, 11, 0x12))), ms: 2 },
    { f: c(11 + 5, 0x18, msg.subarray(5)), ms: 3 },
    { f: c(11, 0x18, msg.subarray(0, 5)), ms: 4 },
  ]);
  assert.equal(recs.length, 1);
  assert.equal(recs[0].app_proto, 'dns');
  assert.equal(recs[0].host, 'tcpq.example');
  assert.equal(recs[0].dns?.qtype, 'MX');
});

test('inspection limits: budget and packet count end inspection with an anomaly', () => {
  const big = wrapRecords(buildClientHello({ sni: 'big.example', alpn: ['h2'], pqKeyShare: true }));
  assert.ok(big.length > 1024);
  const c = (seq: number, flags: number, pay?: Uint8Array) =>
    eth(0x0800, ipv4(CLI, SRV, 6, tcp(46000, 443, seq, 1, flags, pay)));
  const frames = [{ f: c(0, 0x02), ms: 0 }];
  for (let o = 0; o < big.length; o += 500)
    frames.push({ f: c(1 + o, 0x18, big.subarray(o, o + 500)), ms: 1 + o });
  const r1 = engineRun(frames, { inspectBytes: 1024 });
  assert.equal(r1.length, 1);
  assert.ok(r1[0].anomalies.includes('inspect_budget_exhausted'), r1[0].anomalies.join());
  assert.equal(r1[0].host, null);
  // same hello in 1-byte segments: the protocol is known from the first byte, so the packet limit
  // does not apply and the whole hello is read
  const tiny = [{ f: c(0, 0x02), ms: 0 }];
  for (let o = 0; o < big.length; o++) tiny.push({ f: c(1 + o, 0x18, big.subarray(o, o + 1)), ms: 1 + o });
  const r2 = engineRun(tiny, { inspectPackets: 24 });
  assert.equal(r2[0].host, 'big.example');
  assert.equal(r2[0].pkts_toserver, big.length + 1);
  // protocol still unknown (one byte of no known protocol, then a gap the client never fills): the
  // packet limit ends inspection
  const junk = [{ f: c(0, 0x02), ms: 0 }];
  const jb = new Uint8Array(41).fill(0xee);
  junk.push({ f: c(1, 0x18, jb.subarray(0, 1)), ms: 1 });
  for (let o = 2; o < 40; o++) junk.push({ f: c(1 + o, 0x18, jb.subarray(o, o + 1)), ms: 1 + o });
  const r4 = engineRun(junk, { inspectPackets: 24 });
  assert.ok(r4[0].anomalies.includes('inspect_packets_exhausted'), r4[0].anomalies.join());
  // the first byte missing: segments after the gap count against the byte budget only, so the hello's
  // segments sent last byte first are still read once the first byte comes
  const rev = [{ f: c(0, 0x02), ms: 0 }];
  for (let o = big.length - 1; o >= 0; o--)
    rev.push({ f: c(1 + o, 0x18, big.subarray(o, o + 1)), ms: 1 + big.length - o });
  const r5 = engineRun(rev, { inspectPackets: 24 });
  assert.equal(r5[0].host, 'big.example');
  // with the default limits the whole hello is read
  const r3 = engineRun(frames);
  assert.equal(r3[0].host, 'big.example');
  assert.deepEqual(r3[0].anomalies, []);
});

test('PPPoE session with a compressed or address/control-prefixed PPP header: the HTTP flow has its record and name', () => {
  const req = Buffer.from('GET /x HTTP/1.1\r\nHost: pppoe.example\r\n\r\n');
  for (const ppp of [[0x00, 0x21], [0xff, 0x03, 0x00, 0x21], [0x21]]) {
    const wrap = (ipPkt: Uint8Array) =>
      eth(0x8864, Uint8Array.from([0x11, 0x00, 0x12, 0x34, 0, ppp.length + ipPkt.length, ...ppp, ...ipPkt]));
    const recs = engineRun([
      { f: wrap(ipv4(CLI, SRV, 6, tcp(47000, 80, 10, 0, 0x02))), ms: 1 },
      { f: wrap(ipv4(SRV, CLI, 6, tcp(80, 47000, 50, 11, 0x12))), ms: 2 },
      { f: wrap(ipv4(CLI, SRV, 6, tcp(47000, 80, 11, 51, 0x18, req))), ms: 3 },
    ]);
    assert.equal(recs.length, 1, `PPP header ${ppp.join(',')}`);
    assert.equal(recs[0].host, 'pppoe.example');
    assert.equal(recs[0].app_proto, 'http');
  }
});

test('inspect: false runs the packet path only: flows and counters as usual, no dissector, no name', () => {
  const c = { ip: '10.9.0.1', port: 40001 };
  const s = { ip: '10.9.0.2', port: 443 };
  const hello = wrapRecords(buildClientHello({ sni: 'off.example.com' }));
  const frames = [
    tcpFrame(c, s, { seq: 100, ack: 0, flags: 0x02 }, true),
    tcpFrame(s, c, { seq: 900, ack: 101, flags: 0x12 }, false),
    tcpFrame(c, s, { seq: 101, ack: 901, flags: 0x18, payload: hello }, true),
  ];
  for (const inspect of [true, false]) {
    const recs: FlowRecord[] = [];
    const e = new Engine({ hashSeed: 1, inspect, onFlowEnd: (f, why) => recs.push(e.record(f, why)) });
    for (const [i, f] of frames.entries()) e.packet(f, 1, i);
    e.flush();
    assert.equal(recs.length, 1);
    assert.equal(recs[0].pkts_toserver, 2);
    assert.equal(recs[0].pkts_toclient, 1);
    assert.equal(recs[0].host, inspect ? 'off.example.com' : null);
    assert.equal(recs[0].app_proto, inspect ? 'tls' : null);
  }
});
