/**
 * @module cli/cmd-analyze.test
 * `chokepoint analyze` as a user runs it (a child process: the built CLI under dist/, or the TypeScript
 * source through tsx): Suricata EVE JSON lines, one per flow, that pass Suricata's published schema and
 * ours and read back; --node (sensor name → `host`, flow_id prefix); --eve-compat (the version-1 shape);
 * the table and summary;
 * exit status 1 with a clear message for unreadable or non-capture files while the other files still
 * produce output; exit 2 for usage errors; reading a capture from stdin with '-'.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PcapWriter } from '../gen/pcap-writer.js';
import { generate, type TruthRow } from '../gen/synth.js';
import type { FlowRecord } from '../record/record.js';
import { readEveOutput } from '../testutil/schema.js';
import { nodeHash } from '../output/eve.js';
import { tempDir } from '../testutil/pcap.js';

const here = dirname(fileURLToPath(import.meta.url));
const fromDist = existsSync(join(here, 'main.js'));
const CLI: string[] = fromDist ? [join(here, 'main.js')] : ['--import', 'tsx', join(here, 'main.ts')];

function chokepoint(
  args: string[],
  input?: Buffer,
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...CLI, ...args], {
    input,
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tmp = tempDir('chokepoint-cli-');
after(() => tmp.cleanup());

let capPath = '';
let truth: TruthRow[] = [];

before(() => {
  capPath = tmp.path('cap.pcap');
  const fd = openSync(capPath, 'w');
  try {
    truth = generate(new PcapWriter(fd), { seed: 4242, flows: 150 });
  } finally {
    closeSync(fd);
  }
});

/** Every line must pass Suricata's EVE schema and ours, and read back (testutil/schema.ts). */
function parseLines(stdout: string): FlowRecord[] {
  const out = readEveOutput(stdout);
  assert.equal(out.others.size, 0);
  return out.records;
}

test('jsonl (default): one valid record per flow on stdout, nothing on stderr', { timeout: 180_000 }, () => {
  const r = chokepoint(['analyze', capPath]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  const recs = parseLines(r.stdout);
  assert.equal(recs.length, truth.length);
  // the written shape: Suricata's nesting, no sensor name offline, the flow's name under our key
  const first = JSON.parse(r.stdout.slice(0, r.stdout.indexOf('\n'))) as Record<string, unknown>;
  assert.equal(first.host, undefined);
  assert.equal(typeof (first.flow as { pkts_toserver: unknown }).pkts_toserver, 'number');
  assert.match(String(first.timestamp), /\.\d{6}\+0000$/);
  assert.ok(recs.every((x) => x.pcap_filename === 'cap.pcap'));
  recs.every((x) => x.pcap_filename === 'cap.pcap');
  const hosts = new Set(recs.map((x) => x.host));
  for (const t of truth) assert.ok(hosts.has(t.host), `host ${t.host} present`);
  // --format jsonl explicitly gives the same
  const r2 = chokepoint(['analyze', '--format', 'jsonl', capPath]);
  assert.equal(r2.status, 0);
  assert.equal(r2.stdout, r.stdout);
});

test(
  '--node NAME: host is the sensor name, flow_id carries its hash; --eve-compat: the version-1 shape',
  { timeout: 180_000 },
  () => {
    const plain = parseLines(chokepoint(['analyze', capPath]).stdout);
    const r = chokepoint(['analyze', '--node', 'box-7.example', capPath]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { host: string; flow_id: number });
    assert.ok(lines.every((x) => x.host === 'box-7.example'));
    const prefix = nodeHash('box-7.example');
    assert.ok(prefix > 0);
    assert.deepEqual(
      lines.map((x) => [Math.floor(x.flow_id / 2 ** 32), x.flow_id % 2 ** 27]),
      plain.map((x) => [prefix, x.flow_id]),
    );
    assert.ok(lines.every((x) => Number.isSafeInteger(x.flow_id)));
    const recs = parseLines(r.stdout);
    assert.deepEqual(
      recs.map((x) => x.host),
      plain.map((x) => x.host),
    );
    // compat: the pre-EVE record, counters and the flow's name at the top level
    const c = chokepoint(['analyze', '--eve-compat', capPath]);
    assert.equal(c.status, 0, c.stderr);
    const old = c.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as FlowRecord);
    assert.equal(old.length, plain.length);
    assert.deepEqual(
      old.map((x) => [x.host, x.pkts_toserver, x.bytes_toclient, x.timestamp.endsWith('Z')]),
      plain.map((x) => [x.host, x.pkts_toserver, x.bytes_toclient, true]),
    );
    assert.equal((old[0] as unknown as { flow?: unknown }).flow, undefined);
  },
);

test('--format table: a row per flow and a summary', { timeout: 180_000 }, () => {
  const r = chokepoint(['analyze', '--format', 'table', capPath]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^proto\s+client\s+server\s+app\s+host/m);
  assert.match(r.stdout, new RegExp(`^flows: ${truth.length}\\b`, 'm'));
  assert.match(r.stdout, /^by application protocol:/m);
  assert.match(r.stdout, /^\s+tls\s+\d+$/m);
  const named = truth.filter((t) => t.host).length;
  assert.match(r.stdout, new RegExp(`named: ${named} `));
  // a sample name appears in a row
  const t = truth.find((x) => x.app_proto === 'http')!;
  assert.ok(r.stdout.includes(t.host!), t.host!);
  assert.doesNotMatch(r.stdout, /^\{"event_type"/m);
});

test('stdin with "-": same records, pcap_filename "stdin"', { timeout: 180_000 }, () => {
  const r = chokepoint(['analyze', '-'], readFileSync(capPath));
  assert.equal(r.status, 0, r.stderr);
  const recs = parseLines(r.stdout);
  assert.equal(recs.length, truth.length);
  assert.ok(recs.every((x) => x.pcap_filename === 'stdin'));
  const fromFile = parseLines(chokepoint(['analyze', capPath]).stdout);
  const strip = (x: FlowRecord) => JSON.stringify({ ...x, pcap_filename: undefined });
  assert.deepEqual(recs.map(strip), fromFile.map(strip));
});

test(
  'unreadable and non-capture files: exit 1 and a clear message; the other files still produce output',
  { timeout: 180_000 },
  () => {
    const junk = tmp.path('notes.txt');
    writeFileSync(junk, 'this is not a capture\n');
    const missing = tmp.path('missing.pcap');
    const r = chokepoint(['analyze', junk, capPath, missing]);
    assert.equal(r.status, 1);
    assert.equal(parseLines(r.stdout).length, truth.length);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 2, r.stderr);
    assert.match(lines[0], /notes\.txt: not a pcap or pcapng file/);
    assert.match(lines[1], /missing\.pcap: .*(no such file|ENOENT)/i);
    // a directory
    const d = chokepoint(['analyze', tmp.dir]);
    assert.equal(d.status, 1);
    assert.ok(d.stderr.includes(`chokepoint analyze: ${tmp.dir}: is a directory`), d.stderr);
    // empty stdin
    const e = chokepoint(['analyze', '-'], Buffer.alloc(0));
    assert.equal(e.status, 1);
    assert.match(e.stderr, /not a capture file/);
  },
);

test('a capture truncated mid-record: its flows, a note on stderr, exit 1', { timeout: 180_000 }, () => {
  const full = readFileSync(capPath);
  const cut = tmp.path('cut.pcap');
  writeFileSync(cut, full.subarray(0, Math.floor(full.length * 0.6) + 7));
  const r = chokepoint(['analyze', cut]);
  assert.equal(r.status, 1, r.stderr);
  assert.ok(parseLines(r.stdout).length > 0);
  assert.match(r.stderr, /cut\.pcap: .*record.*kept what was read/);
});

test('usage errors exit 2 with a message; --help exits 0', () => {
  for (const args of [
    ['analyze'],
    ['analyze', '--format', 'xml', capPath],
    ['analyze', '--bogus', capPath],
    ['analyze', '--format'],
    ['analyze', '--node', '', capPath],
  ]) {
    const r = chokepoint(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^chokepoint analyze: /, args.join(' '));
    assert.equal(r.stdout, '');
  }
  const h = chokepoint(['analyze', '--help']);
  assert.equal(h.status, 0);
  assert.match(h.stdout, /usage: chokepoint analyze/);
  const u = chokepoint(['no-such-command']);
  assert.equal(u.status, 2);
});

test('--progress writes progress to stderr only', { timeout: 180_000 }, () => {
  const r = chokepoint(['analyze', '--progress', capPath]);
  assert.equal(r.status, 0);
  assert.equal(parseLines(r.stdout).length, truth.length);
  assert.match(r.stderr, /packets, \d+ flows in/);
});

/** Run the CLI with stdout closed by the reader after the first chunk (like `| head -1`). */
function closedPipe(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((res) => {
    const ch = spawn(process.execPath, [...CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    ch.stdout.once('data', () => ch.stdout.destroy());
    const timer = setTimeout(() => ch.kill('SIGKILL'), 120_000);
    ch.on('close', (code) => {
      clearTimeout(timer);
      res({ code, stderr });
    });
  });
}

function manyFlows(): string {
  const p = tmp.path('many.pcap');
  if (!existsSync(p)) {
    const fd = openSync(p, 'w');
    try {
      generate(new PcapWriter(fd), { seed: 9, flows: 4000, sizeScale: 100 });
    } finally {
      closeSync(fd);
    }
  }
  return p;
}

test('jsonl output into a pipe closed early (| head): no crash', { timeout: 180_000 }, async () => {
  const r = await closedPipe(['analyze', manyFlows()]);
  assert.doesNotMatch(r.stderr, /Unhandled|EPIPE|at /);
  assert.equal(r.code, 0);
});

test('table output into a pipe closed early (| head): no crash', { timeout: 180_000 }, async () => {
  const r = await closedPipe(['analyze', '--format', 'table', manyFlows()]);
  assert.doesNotMatch(r.stderr, /Unhandled|EPIPE|at /);
  assert.equal(r.code, 0);
});
