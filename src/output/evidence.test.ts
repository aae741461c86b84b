/**
 * @module output/evidence.test
 * The evidence writer on real files, read back by tshark (an independent pcap reader): per-flow
 * packet and byte bounds, nothing for allowed flows, the pending budget, rotation by size and by link
 * type, the total-size cap deleting the oldest pairs, numbering continued across runs, and index
 * lines that name the packets in their file. Packets are hand-built (testutil/net), so the expected
 * counts and bytes are known by construction.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EvidenceWriter } from './evidence.js';
import type { FlowRecord } from '../record/record.js';
import { concat, ipv4, udp } from '../testutil/net.js';
import { tempDir } from '../testutil/pcap.js';
import { haveTool, need } from '../testutil/require.js';

const SKIP = need(haveTool('tshark'), 'tshark missing (Debian package tshark)');
const tmp = tempDir('chokepoint-evidence-');
after(() => tmp.cleanup());
let dirN = 0;
const newDir = () => tmp.path(`d${++dirN}`);

/** A raw-IP (LINKTYPE 101) UDP packet of `size` bytes from 10.0.0.<n>:<4000+n> to 192.0.2.1:443. */
function pkt(n: number, size: number): Uint8Array {
  const payload = new Uint8Array(size - 28).fill(n & 255);
  return ipv4(`10.0.0.${n}`, '192.0.2.1', 17, udp(4000 + n, 443, payload));
}
const ETH_HDR = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];

function rec(n: number): FlowRecord {
  return {
    event_type: 'flow',
    flow_id: n,
    community_id: `1:test-${n}`,
    timestamp: '2026-01-01T00:00:00.000000Z',
    proto: 'UDP',
    src_ip: `10.0.0.${n}`,
    src_port: 4000 + n,
    dest_ip: '192.0.2.1',
    dest_port: 443,
    app_proto: null,
    host: `f${n}.example`,
    anomalies: [],
    pkts_toserver: 0,
    pkts_toclient: 0,
    bytes_toserver: 0,
    bytes_toclient: 0,
    duration: 0,
  };
}

/** tshark's view of a file: one row per packet. */
function tshark(file: string): { src: string; sport: number; caplen: number; len: number; ts: string }[] {
  const out = execFileSync(
    'tshark',
    [
      '-n',
      '-r',
      file,
      '-T',
      'fields',
      '-E',
      'separator=\t',
      '-e',
      'ip.src',
      '-e',
      'udp.srcport',
      '-e',
      'frame.cap_len',
      '-e',
      'frame.len',
      '-e',
      'frame.time_epoch',
    ],
    { encoding: 'utf8' },
  );
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [src, sport, caplen, len, ts] = l.split('\t');
      return { src, sport: Number(sport), caplen: Number(caplen), len: Number(len), ts };
    });
}

function files(dir: string, ext: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(ext))
    .sort();
}

function index(dir: string): Record<string, unknown>[] {
  return files(dir, '.jsonl').flatMap((f) =>
    readFileSync(join(dir, f), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  );
}

const opts = { skip: SKIP };

test('a blocked flow: held packets then later ones, up to the per-flow packet bound', opts, () => {
  const dir = newDir();
  const w = new EvidenceWriter<number>({ dir, flowPackets: 5 });
  const t0 = 1_767_225_600_000; // 2026-01-01
  for (let i = 0; i < 3; i++) assert.equal(w.packet(1, t0 + i, 101, pkt(1, 100 + i)), true);
  w.flowDecided(1, rec(1), { action: 'block', rule_id: 'r-block' });
  let more = true;
  let sent = 3;
  while (more && sent < 20) more = w.packet(1, t0 + sent, 101, pkt(1, 100 + sent++));
  assert.equal(sent, 5, 'packet() says stop at the bound');
  assert.equal(w.packet(1, t0 + 99, 101, pkt(1, 200)), false);
  w.flowEnd(1);
  w.close();
  assert.deepEqual(files(dir, '.pcap'), ['evidence-000001.pcap']);
  const rows = tshark(join(dir, 'evidence-000001.pcap'));
  assert.deepEqual(
    rows.map((r) => [r.src, r.sport, r.len]),
    [0, 1, 2, 3, 4].map((i) => ['10.0.0.1', 4001, 100 + i]),
  );
  assert.equal(rows[4].ts, '1767225600.004000000');
  const idx = index(dir);
  assert.equal(idx.length, 1);
  assert.equal(idx[0].file, 'evidence-000001.pcap');
  assert.equal(idx[0].community_id, '1:test-1');
  assert.equal(idx[0].rule_id, 'r-block');
  assert.equal(idx[0].action, 'block');
  assert.equal(idx[0].packets, 5);
  assert.equal(idx[0].bytes, 100 + 101 + 102 + 103 + 104);
  assert.equal(idx[0].truncated, true);
  assert.deepEqual(
    [idx[0].src_ip, idx[0].src_port, idx[0].dest_ip, idx[0].dest_port],
    ['10.0.0.1', 4001, '192.0.2.1', 443],
  );
});

test('the per-flow byte bound cuts the packet that crosses it (caplen < len), then stops', opts, () => {
  const dir = newDir();
  const w = new EvidenceWriter<number>({ dir, flowBytes: 3000 });
  w.flowDecided(7, rec(7), { action: 'throttle', rule_id: 'slow' });
  let n = 0;
  while (n < 10 && w.packet(7, 1000 + n, 101, pkt(7, 1400))) n++;
  w.close();
  const rows = tshark(join(dir, 'evidence-000001.pcap'));
  assert.deepEqual(
    rows.map((r) => [r.caplen, r.len]),
    [
      [1400, 1400],
      [1400, 1400],
      [200, 1400],
    ],
  );
  assert.equal(index(dir)[0].bytes, 3000);
});

test('allowed and logged flows leave nothing; undecided ones nothing either', opts, () => {
  const dir = newDir();
  const w = new EvidenceWriter<number>({ dir });
  w.packet(1, 1, 101, pkt(1, 100));
  w.flowDecided(1, rec(1), { action: 'allow', rule_id: null });
  assert.equal(w.packet(1, 2, 101, pkt(1, 100)), false);
  w.packet(2, 1, 101, pkt(2, 100));
  w.flowDecided(2, rec(2), { action: 'log', rule_id: 'watch' });
  w.packet(3, 1, 101, pkt(3, 100)); // never decided
  w.flowEnd(1);
  w.flowEnd(2);
  w.flowEnd(3);
  w.close();
  assert.deepEqual(readdirSync(dir), []);
  assert.equal(w.tracked, 0);
});

test('the pending budget bounds what undecided flows hold; the index counts what was missed', opts, () => {
  const dir = newDir();
  const w = new EvidenceWriter<number>({ dir, pendingBytes: 5000 });
  // ten undecided flows of 1400-byte packets: only three packets fit in 5000 bytes; the flows
  // undecided the longest give way, so the three newest are held
  for (let f = 1; f <= 10; f++) w.packet(f, f, 101, pkt(f, 1400));
  assert.equal(w.stats.pendingDropped, 7);
  for (let f = 1; f <= 10; f++) w.flowDecided(f, rec(f), { action: 'block', rule_id: 'b' });
  w.packet(4, 20, 101, pkt(4, 600)); // a later packet of a flow whose first one gave way
  w.close();
  const rows = tshark(join(dir, 'evidence-000001.pcap'));
  assert.deepEqual(
    rows.map((r) => r.sport),
    [4008, 4009, 4010, 4004],
  );
  const idx = index(dir);
  assert.deepEqual(
    idx.map((l) => [l.flow_id, l.packets, l.missed]),
    [
      [4, 1, 1],
      [8, 1, 0],
      [9, 1, 0],
      [10, 1, 0],
    ],
  );
  // deciding frees the held bytes for other flows
  const w2 = new EvidenceWriter<number>({ dir: newDir(), pendingBytes: 5000 });
  for (let f = 1; f <= 3; f++) w2.packet(f, f, 101, pkt(f, 1400));
  for (let f = 1; f <= 3; f++) w2.flowDecided(f, rec(f), { action: 'allow', rule_id: null });
  for (let f = 4; f <= 6; f++) w2.packet(f, f, 101, pkt(f, 1400));
  assert.equal(w2.stats.pendingDropped, 0, 'deciding frees the held bytes');
  w2.close();
});

test('an undecided flow holds no more than its byte bound, so it cannot push others out', opts, () => {
  const dir = newDir();
  const w = new EvidenceWriter<number>({ dir, pendingBytes: 5000, flowBytes: 2800 });
  w.packet(2, 1, 101, pkt(2, 1400));
  // flow 1 sends big packets undecided: past 2800 bytes they could never be written
  for (let i = 0; i < 10; i++) w.packet(1, 2 + i, 101, pkt(1, 1400));
  assert.equal(w.stats.pendingDropped, 0, 'flow 2 kept its packet');
  w.flowDecided(2, rec(2), { action: 'block', rule_id: 'b' });
  w.flowDecided(1, rec(1), { action: 'block', rule_id: 'b' });
  w.close();
  const rows = tshark(join(dir, 'evidence-000001.pcap'));
  assert.deepEqual(
    rows.map((r) => [r.sport, r.caplen]),
    [
      [4002, 1400],
      [4001, 1400],
      [4001, 1400],
    ],
  );
  assert.deepEqual(
    index(dir).map((l) => [l.flow_id, l.packets, l.missed]),
    [
      [1, 2, 0],
      [2, 1, 0],
    ],
  );
});

test('a capture time no ISO year holds (crafted pcapng) is written as the epoch, not a crash', opts, () => {
  const dir = newDir();
  const w = new EvidenceWriter<number>({ dir });
  w.flowDecided(1, rec(1), { action: 'block', rule_id: 'b' });
  w.packet(1, 2 ** 53, 101, pkt(1, 100));
  w.packet(1, -1, 101, pkt(1, 100));
  w.close();
  const l = index(dir)[0];
  assert.deepEqual(
    [l.packets, l.first_ts, l.last_ts],
    [2, '1970-01-01T00:00:00.000Z', '1970-01-01T00:00:00.000Z'],
  );
});

test('a stalled flow holding the whole budget does not blind a new blocked flow', opts, () => {
  const dir = newDir();
  const w = new EvidenceWriter<number>({ dir, pendingBytes: 4500 });
  for (let i = 0; i < 3; i++) w.packet(1, i, 101, pkt(1, 1400)); // never decided in time
  w.packet(2, 10, 101, pkt(2, 1400)); // the budget is full: flow 1 gives way
  w.flowDecided(2, rec(2), { action: 'block', rule_id: 'b' });
  w.flowDecided(1, rec(1), { action: 'block', rule_id: 'b' });
  w.packet(1, 11, 101, pkt(1, 700));
  w.close();
  const rows = tshark(join(dir, 'evidence-000001.pcap'));
  assert.deepEqual(
    rows.map((r) => [r.sport, r.len]),
    [
      [4002, 1400],
      [4001, 700],
    ],
  );
  assert.deepEqual(
    index(dir).map((l) => [l.flow_id, l.packets, l.missed]),
    [
      [1, 1, 3],
      [2, 1, 0],
    ],
  );
});

test(
  'files rotate at the size bound and on a link-type change; a flow spanning two files has a line in each',
  opts,
  () => {
    const dir = newDir();
    const w = new EvidenceWriter<number>({ dir, fileBytes: 4096, totalBytes: 1 << 20, flowPackets: 100 });
    w.flowDecided(1, rec(1), { action: 'block', rule_id: 'b' });
    for (let i = 0; i < 8; i++) w.packet(1, 1000 + i, 101, pkt(1, 1000)); // 8 × 1016 B: two files
    w.flowDecided(2, rec(2), { action: 'block', rule_id: 'b' });
    w.packet(2, 2000, 1, concat(ETH_HDR, pkt(2, 500))); // Ethernet: a new file
    w.flowEnd(1);
    w.flowEnd(2);
    w.close();
    const pcaps = files(dir, '.pcap');
    assert.deepEqual(pcaps, ['evidence-000001.pcap', 'evidence-000002.pcap', 'evidence-000003.pcap']);
    for (const f of pcaps) assert.ok(statSync(join(dir, f)).size <= 4096, f);
    const counts = pcaps.map((f) => tshark(join(dir, f)).length);
    assert.deepEqual(counts, [4, 4, 1]);
    const idx = index(dir);
    assert.deepEqual(
      idx.map((l) => [l.file, l.flow_id, l.packets]),
      [
        ['evidence-000001.pcap', 1, 4],
        ['evidence-000002.pcap', 1, 4],
        ['evidence-000003.pcap', 2, 1],
      ],
    );
    assert.equal(tshark(join(dir, 'evidence-000003.pcap'))[0].src, '10.0.0.2', 'the Ethernet file decodes');
  },
);

test(
  'the total cap deletes the oldest pcap+index pairs; a new writer continues the numbering within the cap',
  opts,
  () => {
    const dir = newDir();
    const cap = 16384;
    const w = new EvidenceWriter<number>({ dir, fileBytes: 4096, totalBytes: cap, flowPackets: 2 });
    for (let f = 1; f <= 60; f++) {
      w.flowDecided(f, rec(f), { action: 'block', rule_id: 'b' });
      w.packet(f, f, 101, pkt(f % 250, 1000));
      w.packet(f, f + 0.5, 101, pkt(f % 250, 1000));
      w.flowEnd(f);
    }
    w.close();
    const total = () => readdirSync(dir).reduce((s, f) => s + statSync(join(dir, f)).size, 0);
    assert.ok(total() <= cap, `${total()} ≤ ${cap}`);
    const seqs = files(dir, '.pcap').map((f) => Number(/(\d+)\.pcap$/.exec(f)![1]));
    const last = seqs[seqs.length - 1];
    assert.ok(seqs[0] > 1, 'the oldest were deleted');
    assert.deepEqual(
      seqs,
      Array.from({ length: seqs.length }, (_, i) => last - seqs.length + 1 + i),
      'the newest kept',
    );
    assert.deepEqual(
      files(dir, '.jsonl').map((f) => f.replace('.jsonl', '.pcap')),
      files(dir, '.pcap'),
      'pairs',
    );
    assert.ok(w.stats.deletedFiles > 0);
    // the newest file holds flow 60
    assert.ok(
      tshark(join(dir, `evidence-${String(last).padStart(6, '0')}.pcap`)).some((r) => r.sport === 4060),
    );

    const w2 = new EvidenceWriter<number>({ dir, fileBytes: 4096, totalBytes: cap });
    w2.flowDecided(1, rec(1), { action: 'block', rule_id: 'b' });
    w2.packet(1, 1, 101, pkt(1, 1000));
    w2.close();
    const seqs2 = files(dir, '.pcap').map((f) => Number(/(\d+)\.pcap$/.exec(f)![1]));
    assert.equal(seqs2[seqs2.length - 1], last + 1);
    assert.ok(total() <= cap, `${total()} ≤ ${cap} after a restart`);
  },
);

test('bad bounds are rejected before anything is written', () => {
  assert.throws(() => new EvidenceWriter({ dir: newDir(), fileBytes: 100 }), /at least 4096/);
  assert.throws(
    () => new EvidenceWriter({ dir: newDir(), fileBytes: 1 << 20, totalBytes: 1 << 19 }),
    /total size/,
  );
  assert.throws(() => new EvidenceWriter({ dir: newDir(), flowPackets: 0 }), /positive integer/);
  assert.throws(() => new EvidenceWriter({ dir: newDir(), prefix: '../x' }), /prefix/);
});
