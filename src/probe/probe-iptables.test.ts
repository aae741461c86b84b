/**
 * @module probe/probe-iptables.test
 * Acceptance of the probe against a censor that is NOT Chokepoint: plain iptables in the box
 * namespace of a lab of our own. The censor (rules below) resets connections whose packets
 * contain `blocked.example`, marks connections whose packets contain `throttled.example`
 * (CONNMARK) and polices marked packets per connection and direction with `hashlimit` in byte
 * mode (16 KiB/s, 16 KiB burst, drop above), and drops QUIC v1 Initial-sized datagrams with the
 * 2022 rule (UDP, ≥ 1001 payload bytes, version 1).
 *
 * Expected values come from the censor's configuration and from how `-m string` works (it
 * matches inside one packet, case-sensitively), not from the probe: e.g. a ClientHello cut inside
 * the name evades it, one cut after byte 1 does not. Root only (CI runs as root).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, type Lab } from '../lab/lab.js';
import { run } from '../util/run.js';
import { runProbeInNs, startProbeServerInNs, type NsProbeServer } from './in-ns.js';
import type { ProbeReport } from './probe.js';
import { isRoot, need } from '../testutil/require.js';

const root = isRoot();
const skip = need(root, 'needs root (network namespaces, iptables)');

/** hashlimit `16kb/s`: libxt_hashlimit scales "kb" by 1024 → 16384 B/s = 131072 bit/s. */
const POLICED_BPS = 16 * 1024 * 8;
const PORT = 8443;

let lab: Lab;
let server: NsProbeServer;
const tmp = mkdtempSync(join(tmpdir(), 'cp-probe-'));

before(async () => {
  if (!root) return;
  lab = await createLab({ name: `pi${process.pid % 100000}` });
  const ipt = (args: string[]) => lab.exec('box', ['iptables', '-w', ...args], { check: true });
  await ipt(['-N', 'CENSOR']);
  await ipt(['-I', 'FORWARD', '-j', 'CENSOR']);
  await ipt([
    '-A',
    'CENSOR',
    '-p',
    'tcp',
    '-m',
    'string',
    '--algo',
    'bm',
    '--string',
    'blocked.example',
    '-j',
    'REJECT',
    '--reject-with',
    'tcp-reset',
  ]);
  await ipt([
    '-A',
    'CENSOR',
    '-p',
    'tcp',
    '-m',
    'string',
    '--algo',
    'bm',
    '--string',
    'throttled.example',
    '-j',
    'CONNMARK',
    '--set-mark',
    '0x7',
  ]);
  await ipt([
    '-A',
    'CENSOR',
    '-m',
    'connmark',
    '--mark',
    '0x7',
    '-m',
    'hashlimit',
    '--hashlimit-above',
    '16kb/s',
    '--hashlimit-burst',
    '16kb',
    '--hashlimit-mode',
    'srcip,srcport,dstip,dstport',
    '--hashlimit-name',
    'cpthr',
    '-j',
    'DROP',
  ]);
  server = await startProbeServerInNs(lab.ns.net, lab.addr.net2, PORT);
});

after(async () => {
  await server?.stop();
  await lab?.destroy();
  rmSync(tmp, { recursive: true, force: true });
});

function probe(name: string, extra: Record<string, unknown> = {}): Promise<ProbeReport> {
  return runProbeInNs(lab.ns.sub, {
    host: lab.addr.net2,
    port: PORT,
    name,
    control: 'allowed.example',
    quic: false,
    windowMs: 3000,
    ...extra,
  });
}

const within = (x: number | undefined, target: number, tol: number) =>
  x !== undefined && Math.abs(x - target) <= tol * target;

test(
  'throttled name: verdict throttled at the policed rate (±25%) in both directions; control ok',
  { skip, timeout: 120_000 },
  async () => {
    const r = await probe('throttled.example');
    const name = r.cases.find((c) => c.id === 'name')!;
    assert.equal(r.verdict, 'throttled', r.reason);
    assert.ok(within(r.rate_bps, POLICED_BPS, 0.25), `rate ${r.rate_bps} vs policed ${POLICED_BPS}`);
    assert.ok(within(name.down_bps, POLICED_BPS, 0.25), `down ${name.down_bps}`);
    assert.ok(within(name.up_bps, POLICED_BPS, 0.25), `up ${name.up_bps}`);
    for (const id of ['control', 'scrambled']) {
      const c = r.cases.find((x) => x.id === id)!;
      assert.equal(c.verdict, 'ok', `${id}: ${c.reason}`);
      assert.ok(c.down_bps! >= 20 * POLICED_BPS, `${id} is much faster: ${c.down_bps}`);
    }
    // evidence: the server saw the trigger and kept sending; the download had a timeline
    const run0 = name.runs[0];
    assert.equal(run0.server?.trigger_seen, true);
    assert.ok(run0.down!.timeline.length > 10);
    assert.equal(r.schema, 'chokepoint.probe/1');
  },
);

test('blocked name: verdict blocked by rst; control ok', { skip, timeout: 60_000 }, async () => {
  const r = await probe('blocked.example');
  assert.equal(r.verdict, 'blocked', r.reason);
  assert.equal(r.blocking, 'rst');
  const run0 = r.cases.find((c) => c.id === 'name')!.runs[0];
  assert.ok(run0.reset_ms !== null && run0.reset_ms < 1000, `reset within 1 s: ${run0.reset_ms}`);
  assert.equal(r.cases.find((c) => c.id === 'control')!.verdict, 'ok');
});

test('allowed name: 0 false positives over 20 runs', { skip, timeout: 180_000 }, async () => {
  const r = await probe('allowed-too.example', { repeat: 20, windowMs: 2000, down: 1_000_000, up: 256_000 });
  const name = r.cases.find((c) => c.id === 'name')!;
  assert.equal(name.runs.length, 20);
  const bad = name.runs.filter((x) => x.class !== 'fast');
  assert.deepEqual(
    bad.map((x) => `${x.class}: ${x.reason}`),
    [],
  );
  assert.equal(r.verdict, 'ok', r.reason);
  for (const c of r.cases) assert.equal(c.verdict, 'ok', `${c.id}: ${c.reason}`);
});

/** Expected outcome of each technique against a per-packet, case-sensitive `-m string` match. */
const STRING_MATCH_EXPECT: Record<string, 'bypass' | 'no-bypass'> = {
  'split-1': 'no-bypass', // the whole name is in segment 2
  'split-5': 'no-bypass',
  'split-name': 'bypass', // no packet holds the whole name
  'split-out-of-order': 'bypass',
  'tls-record-frag': 'bypass', // a record header sits inside the name
  padding: 'no-bypass', // the name is in the first segment
  'junk-first': 'no-bypass', // the match is not limited to the first packet
  'ccs-first': 'no-bypass',
  'fake-hello-first': 'no-bypass',
  'connect-preamble': 'no-bypass',
  'trailing-dot': 'no-bypass', // substring still present
  'case-change': 'bypass', // --algo bm is case-sensitive
  'no-sni': 'bypass',
};

test(
  'evasion matrix matches how an iptables string censor works; out-of-order really is out of order',
  { skip, timeout: 240_000 },
  async () => {
    // capture in the box to check the reordering independently (dumpcap from tshark's package)
    const pcap = join(tmp, 'matrix.pcap');
    const cap = spawn(
      'ip',
      [
        'netns',
        'exec',
        lab.ns.box,
        'dumpcap',
        '-q',
        '-i',
        lab.ifaces.boxSub,
        '-f',
        `tcp port ${PORT}`,
        '-w',
        pcap,
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let capErr = '';
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 5000);
      cap.stderr.on('data', (d) => {
        capErr += d;
        if (/Capturing on/.test(capErr)) {
          clearTimeout(t);
          resolve();
        }
      });
      cap.on('exit', () => resolve());
    });
    let r: ProbeReport;
    try {
      r = await probe('throttled.example', { evasions: true, up: 0, windowMs: 2500 });
    } finally {
      cap.kill('SIGTERM');
      await new Promise((res) => (cap.exitCode !== null ? res(null) : cap.once('exit', res)));
    }
    assert.equal(r.verdict, 'throttled', r.reason);
    assert.ok(r.evasions, r.evasions_skipped);
    const got = Object.fromEntries(r.evasions!.map((e) => [e.technique, e.outcome]));
    assert.deepEqual(got, STRING_MATCH_EXPECT);

    // tshark: in some stream, the first client data segment the box saw is not the first in sequence
    const t = await run(
      [
        'tshark',
        '-r',
        pcap,
        '-Y',
        `tcp.len > 0 && ip.src == ${lab.addr.sub}`,
        '-T',
        'fields',
        '-e',
        'tcp.stream',
        '-e',
        'tcp.seq',
        '-e',
        'tcp.len',
      ],
      {
        timeoutMs: 60_000,
      },
    );
    assert.equal(t.code, 0, t.stderr);
    const segs = new Map<string, [number, number][]>();
    for (const line of t.stdout.trim().split('\n')) {
      const [stream, seq, len] = line.split('\t');
      const arr = segs.get(stream) ?? [];
      arr.push([Number(seq), Number(len)]);
      segs.set(stream, arr);
    }
    // out of order: the first data segment the box saw is not at relative seq 1, and seq 1 comes later
    const ooo = [...segs.values()].filter(
      (a) => a[0][0] > 1 && a.slice(1).some(([seq, len]) => seq === 1 && 1 + len === a[0][0]),
    );
    assert.ok(
      ooo.length >= 1,
      `no out-of-order stream seen in the box: ${JSON.stringify([...segs.entries()].map(([k, v]) => [k, v.slice(0, 3)]))}`,
    );
    // split-1: a stream whose first data segment is exactly 1 byte followed by the rest (stays split)
    assert.ok(
      [...segs.values()].some((a) => a[0][1] === 1 && a[0][0] === 1 && a[1]?.[0] === 2),
      'a 1-byte first segment crossed the box unmerged',
    );
  },
);

test(
  'QUIC: ok without a UDP rule; blocked (drop) under the 2022 QUIC v1 rule, name and control alike',
  { skip, timeout: 120_000 },
  async () => {
    const base = { quic: true, tcp: false, windowMs: 1500 };
    const ok = await probe('throttled.example', base);
    assert.equal(ok.quic?.verdict, 'ok', ok.quic?.reason);
    // UDP to the port, IP length ≥ 20 + 8 + 1001, QUIC version field (payload bytes 1–4) = 1
    await lab.exec(
      'box',
      [
        'iptables',
        '-w',
        '-I',
        'CENSOR',
        '-p',
        'udp',
        '--dport',
        String(PORT),
        '-m',
        'length',
        '--length',
        '1029:65535',
        '-m',
        'u32',
        '--u32',
        '0>>22&0x3C@9=0x1',
        '-j',
        'DROP',
      ],
      { check: true },
    );
    try {
      const r = await probe('throttled.example', base);
      assert.equal(r.quic?.verdict, 'blocked', r.quic?.reason);
      assert.equal(r.quic?.blocking, 'drop');
      const ctl = r.cases.find((c) => c.id === 'quic:control')!;
      assert.equal(ctl.verdict, 'blocked');
      assert.equal(ctl.runs[0].server?.trigger_seen, false, 'the Initial never reached the server');
    } finally {
      await lab.exec('box', [
        'iptables',
        '-w',
        '-D',
        'CENSOR',
        '-p',
        'udp',
        '--dport',
        String(PORT),
        '-m',
        'length',
        '--length',
        '1029:65535',
        '-m',
        'u32',
        '--u32',
        '0>>22&0x3C@9=0x1',
        '-j',
        'DROP',
      ]);
    }
  },
);

test(
  'idle-timeout probe: the censor state (a conntrack mark) survives 1 s of silence, not 8 s when conntrack forgets after 4 s',
  { skip, timeout: 120_000 },
  async () => {
    const key = 'net.netfilter.nf_conntrack_tcp_timeout_established';
    const old = (await lab.exec('box', ['sysctl', '-n', key], { check: true })).stdout.trim();
    await lab.exec('box', ['sysctl', '-qw', `${key}=4`], { check: true });
    try {
      const r = await probe('throttled.example', { idle: [1, 8], up: 0, windowMs: 2500 });
      assert.equal(r.verdict, 'throttled', r.reason);
      assert.deepEqual(
        r.idle?.map((i) => [i.idle_s, i.state]),
        [
          [1, 'kept'],
          [8, 'forgotten'],
        ],
        JSON.stringify(r.idle),
      );
    } finally {
      await lab.exec('box', ['sysctl', '-qw', `${key}=${old}`]);
    }
  },
);

test(
  'hop location: a stateful QUIC v1 filter in the box acts on triggers with TTL ≥ 2, not on TTL 1',
  { skip, timeout: 120_000 },
  async () => {
    // stateful 2022-style rule: a QUIC v1 datagram of ≥ 1001 payload bytes marks the flow; the answers
    // of marked flows are dropped (not the trigger itself: dropping a flow's first packet would discard
    // its unconfirmed conntrack entry, mark included)
    const mark = [
      '-p',
      'udp',
      '--dport',
      String(PORT),
      '-m',
      'length',
      '--length',
      '1029:65535',
      '-m',
      'u32',
      '--u32',
      '0>>22&0x3C@9=0x1',
      '-j',
      'CONNMARK',
      '--set-mark',
      '0x9',
    ];
    const drop = ['-m', 'connmark', '--mark', '0x9', '-m', 'conntrack', '--ctdir', 'REPLY', '-j', 'DROP'];
    await lab.exec('box', ['iptables', '-w', '-I', 'CENSOR', '1', ...drop], { check: true });
    await lab.exec('box', ['iptables', '-w', '-I', 'CENSOR', '1', ...mark], { check: true });
    try {
      const r = await probe('throttled.example', { tcp: false, quic: false, locate: 4, windowMs: 1500 });
      assert.ok(r.locate, 'locate ran');
      assert.equal(r.locate!.baseline, 'fast', r.locate!.note);
      // the box is the first router: a TTL-1 trigger expires there before FORWARD (where the filter
      // is), a TTL-2 trigger crosses it and marks the flow, so the answers to the benign datagram are dropped
      assert.deepEqual(
        r.locate!.runs.map((x) => [x.ttl, x.class]),
        [
          [1, 'fast'],
          [2, 'drop'],
        ],
      );
      assert.equal(r.locate!.first_ttl, 2);
    } finally {
      await lab.exec('box', ['iptables', '-w', '-D', 'CENSOR', ...mark]);
      await lab.exec('box', ['iptables', '-w', '-D', 'CENSOR', ...drop]);
    }
  },
);
