/**
 * @module cli/cmd-analyze-evidence.test
 * `chokepoint analyze CAPTURE --policy P --evidence DIR` as a user runs it, checked against two
 * independent sources: the generator's ground truth (which flow carries which name, so which flows the
 * policy must block or throttle) and tshark, which reads both the input capture and the evidence
 * files. Every blocked/throttled flow's evidence must be exactly its first N packets of the input
 * (time and length, in order, across rotated files); no other flow may appear; the index lines must
 * agree with the files and with the flow records (community_id, 5-tuple, action, packet counts).
 * A SIGKILL mid-run leaves readable files; and analyze --policy decides every flow as simulate does.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PcapWriter } from '../gen/pcap-writer.js';
import { generate, type TruthRow } from '../gen/synth.js';
import { tempDir } from '../testutil/pcap.js';
import { readEveOutput } from '../testutil/schema.js';
import { haveTool, need } from '../testutil/require.js';

const here = dirname(fileURLToPath(import.meta.url));
const fromDist = existsSync(join(here, 'main.js'));
const CLI: string[] = fromDist ? [join(here, 'main.js')] : ['--import', 'tsx', join(here, 'main.ts')];
const SKIP = need(haveTool('tshark'), 'tshark missing (Debian package tshark)');
const tmp = tempDir('chokepoint-evidence-cli-');
after(() => tmp.cleanup());

const PER_FLOW = 6;
let cap = '';
let truth: TruthRow[] = [];
let policy = '';

before(() => {
  cap = tmp.path('cap.pcap');
  const fd = openSync(cap, 'w');
  try {
    truth = generate(new PcapWriter(fd), {
      seed: 7,
      flows: 120,
      names: ['blocked.example', 'throttled.example', 'allowed.example'],
    });
  } finally {
    closeSync(fd);
  }
  policy = tmp.path('policy.yaml');
  writeFileSync(
    policy,
    [
      'version: 1',
      'name: evidence-test',
      'default: allow',
      'rules:',
      '  - id: block-it',
      '    action: block',
      '    match: {host: {exact: [blocked.example]}}',
      '  - id: slow-it',
      '    action: throttle',
      '    rate: 128kbit',
      '    match: {host: {exact: [throttled.example]}}',
      '',
    ].join('\n'),
  );
});

/** Direction-free key of a 5-tuple. */
function key(proto: string, a: string, ap: number, b: string, bp: number): string {
  const x = `${a}|${ap}`;
  const y = `${b}|${bp}`;
  return `${proto} ${x < y ? `${x} ${y}` : `${y} ${x}`}`;
}

/** tshark's packets per 5-tuple key: [time_epoch, frame.len][] in file order. */
function tsharkFlows(file: string): Map<string, [string, number][]> {
  const f = [
    'ip.src',
    'ip.dst',
    'ipv6.src',
    'ipv6.dst',
    'tcp.srcport',
    'tcp.dstport',
    'udp.srcport',
    'udp.dstport',
    'frame.time_epoch',
    'frame.len',
  ];
  const out = execFileSync(
    'tshark',
    ['-n', '-r', file, '-T', 'fields', '-E', 'separator=\t', ...f.flatMap((x) => ['-e', x])],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    },
  );
  const m = new Map<string, [string, number][]>();
  for (const line of out.split('\n')) {
    if (!line) continue;
    const v = line.split('\t').map((s) => s.split(',')[0]);
    const src = v[0] || v[2];
    const dst = v[1] || v[3];
    const tcpP = v[4] !== '';
    const k = tcpP
      ? key('TCP', src, Number(v[4]), dst, Number(v[5]))
      : key('UDP', src, Number(v[6]), dst, Number(v[7]));
    const l = m.get(k) ?? [];
    l.push([v[8], Number(v[9])]);
    m.set(k, l);
  }
  return m;
}

test(
  'evidence pcaps hold exactly the first packets of every blocked/throttled flow and match the records',
  { skip: SKIP, timeout: 120_000 },
  () => {
    const dir = tmp.path('ev');
    const r = spawnSync(
      process.execPath,
      [
        ...CLI,
        'analyze',
        cap,
        '--policy',
        policy,
        '--evidence',
        dir,
        '--evidence-flow-packets',
        String(PER_FLOW),
        '--evidence-file-size',
        '16KiB',
      ],
      { encoding: 'utf8', maxBuffer: 1 << 28, timeout: 60_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    // every line passes Suricata's EVE schema and ours, and reads back (testutil/schema.ts)
    const recs = readEveOutput(r.stdout).records;

    // what the policy must do, from the generator's truth (not from the policy module)
    const expected = new Map<string, string>();
    for (const t of truth) {
      const act = t.host === 'blocked.example' ? 'block' : t.host === 'throttled.example' ? 'throttle' : null;
      if (act) expected.set(key(t.proto, t.src_ip, t.src_port, t.dest_ip, t.dest_port), act);
    }
    assert.ok(expected.size >= 40, `${expected.size} flows to keep evidence for`);

    const input = tsharkFlows(cap);
    const pcaps = readdirSync(dir)
      .filter((f) => f.endsWith('.pcap'))
      .sort();
    assert.ok(pcaps.length >= 3, `files rotated at 16 KiB: ${pcaps.join(' ')}`);
    const evidence = new Map<string, [string, number][]>();
    const perFile = new Map<string, Map<string, [string, number][]>>();
    for (const f of pcaps) {
      const m = tsharkFlows(join(dir, f));
      perFile.set(f, m);
      for (const [k, l] of m) evidence.set(k, [...(evidence.get(k) ?? []), ...l]);
    }
    for (const [k, act] of expected) {
      const want = input.get(k);
      assert.ok(want, `flow ${k} (${act}) is in the input`);
      assert.deepEqual(evidence.get(k), want.slice(0, PER_FLOW), `evidence of ${k} (${act})`);
    }
    for (const k of evidence.keys())
      assert.ok(expected.has(k), `no evidence for a flow the policy allows: ${k}`);

    // records ↔ truth ↔ index
    const idx = readdirSync(dir)
      .filter((f) => f.endsWith('.jsonl'))
      .flatMap((f) =>
        readFileSync(join(dir, f), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, string & number>),
      );
    for (const line of idx) {
      const k = key(line.proto, line.src_ip, line.src_port, line.dest_ip, line.dest_port);
      assert.equal(
        perFile.get(line.file)?.get(k)?.length,
        line.packets,
        `index line for ${k} in ${line.file}`,
      );
    }
    let decided = 0;
    for (const x of recs) {
      const k = key(x.proto, x.src_ip, x.src_port, x.dest_ip, x.dest_port);
      assert.equal(x.policy?.action ?? 'allow', expected.get(k) ?? 'allow', `record ${k} (${x.host})`);
      if (!expected.has(k)) continue;
      decided++;
      const lines = idx.filter((l) => l.community_id === x.community_id);
      assert.ok(lines.length >= 1, `index lines for ${x.community_id}`);
      for (const l of lines) {
        assert.deepEqual(
          [l.flow_id, l.pcap_filename, l.action, l.rule_id],
          [x.flow_id, 'cap.pcap', x.policy!.action, x.policy!.rule_id],
        );
        assert.equal(key(l.proto, l.src_ip, l.src_port, l.dest_ip, l.dest_port), k);
      }
      const n = lines.reduce((s, l) => s + l.packets, 0);
      assert.equal(n, Math.min(PER_FLOW, x.pkts_toserver + x.pkts_toclient));
    }
    assert.equal(decided, expected.size);

    // a record's community_id finds its packets directly: Wireshark's own Community ID dissector
    const byCid = new Map<string, number>();
    for (const f of pcaps) {
      const out = execFileSync(
        'tshark',
        ['-n', '--enable-protocol', 'communityid', '-r', join(dir, f), '-T', 'fields', '-e', 'communityid'],
        {
          encoding: 'utf8',
        },
      );
      for (const c of out.split('\n').filter(Boolean)) byCid.set(c, (byCid.get(c) ?? 0) + 1);
    }
    for (const x of recs) {
      if (!expected.has(key(x.proto, x.src_ip, x.src_port, x.dest_ip, x.dest_port))) continue;
      assert.equal(
        byCid.get(x.community_id),
        Math.min(PER_FLOW, x.pkts_toserver + x.pkts_toclient),
        `tshark communityid == "${x.community_id}"`,
      );
    }
    assert.match(r.stderr, new RegExp(`evidence: ${expected.size} flows`));
  },
);

test('--evidence without --policy is a usage error', () => {
  const r = spawnSync(process.execPath, [...CLI, 'analyze', cap, '--evidence', tmp.path('x')], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--evidence needs --policy/);
  assert.equal(existsSync(tmp.path('x')), false);
});

test(
  'killed mid-run (SIGKILL), the evidence left behind is readable and every index line names packets on disk',
  { skip: SKIP, timeout: 120_000 },
  async () => {
    const big = tmp.path('big.pcap');
    const fd = openSync(big, 'w');
    try {
      generate(new PcapWriter(fd), { seed: 11, flows: 6000, names: ['blocked.example', 'allowed.example'] });
    } finally {
      closeSync(fd);
    }
    const dir = tmp.path('ev-killed');
    const { spawn } = await import('node:child_process');
    const child = spawn(
      process.execPath,
      [...CLI, 'analyze', big, '--policy', policy, '--evidence', dir, '--evidence-file-size', '64KiB'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    // kill as soon as a few index lines exist, while packets are being written
    const lines = () =>
      existsSync(dir)
        ? readdirSync(dir)
            .filter((f) => f.endsWith('.jsonl'))
            .reduce((n, f) => n + readFileSync(join(dir, f), 'utf8').split('\n').length - 1, 0)
        : 0;
    const deadline = Date.now() + 60_000;
    while (lines() < 5 && Date.now() < deadline && child.exitCode === null)
      await new Promise((r) => setTimeout(r, 5));
    assert.equal(child.exitCode, null, 'still running when killed (the capture is large enough)');
    child.kill('SIGKILL');
    await exited;
    const pcaps = readdirSync(dir).filter((f) => f.endsWith('.pcap'));
    assert.ok(pcaps.length >= 1);
    for (const f of pcaps) {
      const r = spawnSync('tshark', ['-n', '-r', join(dir, f)], { encoding: 'utf8', maxBuffer: 1 << 26 });
      assert.ok(r.status === 0 || /cut short in the middle of a packet/.test(r.stderr), `${f}: ${r.stderr}`);
    }
    let named = 0;
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.jsonl'))) {
      const text = readFileSync(join(dir, f), 'utf8');
      assert.ok(text === '' || text.endsWith('\n'), `${f} ends with a whole line`);
      const flows = tsharkFlows(join(dir, f.replace(/\.jsonl$/, '.pcap')));
      for (const l of text.split('\n').filter(Boolean)) {
        const x = JSON.parse(l) as Record<string, string & number>;
        const k = key(x.proto, x.src_ip, x.src_port, x.dest_ip, x.dest_port);
        assert.ok(
          (flows.get(k)?.length ?? 0) >= x.packets,
          `${f}: ${k} has its ${x.packets} packets on disk`,
        );
        named++;
      }
    }
    assert.ok(named >= 5);
  },
);

test('analyze --policy gives every flow the decision simulate gives it (same policy, same capture)', () => {
  const run = (args: string[]) => {
    const r = spawnSync(process.execPath, [...CLI, ...args], {
      encoding: 'utf8',
      maxBuffer: 1 << 28,
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    return readEveOutput(r.stdout).records;
  };
  const analyzed = run(['analyze', cap, '--policy', policy]);
  const simulated = run(['simulate', '--policy', policy, cap]).filter((r) => r.event_type === 'flow');
  assert.equal(analyzed.length, simulated.length);
  const bySim = new Map(simulated.map((r) => [r.flow_id, r.policy]));
  let blocked = 0;
  for (const r of analyzed) {
    assert.deepEqual(r.policy, bySim.get(r.flow_id), `flow ${r.flow_id} (${r.host})`);
    if (r.policy?.action === 'block') blocked++;
  }
  assert.ok(blocked > 0);
});
