/**
 * @module probe/probe-enforce.test
 * Acceptance of the probe against our own engine (issue 5): `chokepoint enforce` in the box
 * namespace of a lab, with a policy that throttles `throttled.example` (128 kbit/s, 16 KB bucket,
 * per connection and direction), resets `blocked.example`, and allows everything else. The
 * probe-server runs in `net`, the probe in `sub`: the same set-up as probe-iptables.test, with the
 * engine in place of the iptables censor.
 *
 * Expected values come from the policy (the policed rate, the block method) and from what the
 * engine's normal mode documents (docs/POLICY.md, docs/ENFORCE.md: ClientHellos are reassembled
 * across TCP segments, out-of-order segments and TLS records before the policy decides), not from
 * the probe. Root only (CI runs as root).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../util/run.js';
import { setupInlineLab, type Enforce, type InlineLab } from '../enforce/testing/harness.js';
import { runProbeInNs, startProbeServerInNs, type NsProbeServer } from './in-ns.js';
import type { ProbeReport } from './probe.js';
import { isRoot, need } from '../testutil/require.js';

const root = isRoot();
const skip = need(root, 'needs root (network namespaces, iptables, NFQUEUE)');

/** The policy's `rate: 128kbit` (docs/POLICY.md: kbit = 1000 bit). */
const POLICED_BPS = 128_000;
const PORT = 8443;

// hold_ms 1000 (as in enforce/inline.test): the out-of-order case holds the second segment until
// the first arrives; on a loaded machine that may take longer than the 500 ms default.
const POLICY = `version: 1
default: allow
inspection:
  mode: normal
  hold_ms: 1000
rules:
  - id: probe-throttle
    action: throttle
    rate: 128kbit
    burst: 16KB
    match:
      host:
        exact: [throttled.example]
  - id: probe-block
    action: block
    method: rst
    match:
      host:
        exact: [blocked.example]
`;

/** Techniques whose only trick is to make the name visible only after reassembly. */
const REASSEMBLY_TECHNIQUES = [
  'split-1', // after byte 1 of the record
  'split-5', // after the record header
  'split-name', // inside the server name
  'split-out-of-order', // inside the name, second segment first
  'tls-record-frag', // two TLS records, cut inside the name
  'padding', // one 2000-byte record spanning two segments
];

let il: InlineLab | undefined;
let enf: Enforce | undefined;
let server: NsProbeServer | undefined;
const tmp = mkdtempSync(join(tmpdir(), 'cp-probe-enf-'));

before(async () => {
  if (!root) return;
  il = await setupInlineLab(`cpe${process.pid % 100000}`, POLICY);
  enf = await il.startEnforce();
  server = await startProbeServerInNs(il.lab.ns.net, il.lab.addr.net2, PORT);
});

after(async () => {
  await server?.stop().catch(() => {});
  await enf?.stop().catch(() => {});
  await il?.close();
  rmSync(tmp, { recursive: true, force: true });
});

function probe(name: string, extra: Record<string, unknown> = {}): Promise<ProbeReport> {
  return runProbeInNs(il!.lab.ns.sub, {
    host: il!.lab.addr.net2,
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

/** Diagnostics for a failed assertion: the engine's stderr tail. */
const engineLog = () => (enf ? `\nenforce stderr: ${enf.stderr().slice(-1500)}` : '');

test(
  'throttled name: verdict throttled at the policed rate (±25%); control and scrambled ok',
  { skip, timeout: 240_000 },
  async () => {
    // 5 runs per case: the verdict is the majority, the rate the median. TCP's upload goodput under
    // a policer with a 1 s bucket varies from run to run (0.73–0.92 of the rate seen here), so one
    // or two slow runs must not decide the median.
    const r = await probe('throttled.example', { repeat: 5 });
    const name = r.cases.find((c) => c.id === 'name')!;
    console.log(
      `# measured: rate_bps ${r.rate_bps} (down ${name.down_bps}, up ${name.up_bps}) vs policed ${POLICED_BPS}`,
    );
    assert.equal(r.verdict, 'throttled', r.reason + engineLog());
    assert.ok(within(r.rate_bps, POLICED_BPS, 0.25), `rate ${r.rate_bps} vs policed ${POLICED_BPS}`);
    assert.ok(within(name.down_bps, POLICED_BPS, 0.25), `down ${name.down_bps}`);
    assert.ok(within(name.up_bps, POLICED_BPS, 0.25), `up ${name.up_bps}`);
    for (const id of ['control', 'scrambled']) {
      const c = r.cases.find((x) => x.id === id)!;
      assert.equal(c.verdict, 'ok', `${id}: ${c.reason}`);
      assert.ok(c.down_bps! >= 20 * POLICED_BPS, `${id} is much faster: ${c.down_bps}`);
    }
    // evidence: the trigger crossed the box (the engine holds it, then releases it) and the
    // download has a timeline
    assert.equal(name.runs.length, 5);
    const run0 = name.runs[0];
    assert.equal(run0.server?.trigger_seen, true);
    assert.ok(run0.down!.timeline.length > 10);
  },
);

test('blocked name: verdict blocked by rst; control ok', { skip, timeout: 60_000 }, async () => {
  const r = await probe('blocked.example', { windowMs: 2000 });
  assert.equal(r.verdict, 'blocked', r.reason + engineLog());
  assert.equal(r.blocking, 'rst');
  const run0 = r.cases.find((c) => c.id === 'name')!.runs[0];
  assert.ok(run0.reset_ms !== null && run0.reset_ms < 1000, `reset within 1 s: ${run0.reset_ms}`);
  assert.equal(run0.class, 'rst');
  assert.equal(r.cases.find((c) => c.id === 'control')!.verdict, 'ok');
});

test(
  'evasion matrix, normal mode: no reassembly-based evasion bypasses the engine',
  { skip, timeout: 120_000 },
  async () => {
    // capture on the box's sub side (before netfilter) to check the reordering independently
    const lab = il!.lab;
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
      { stdio: ['ignore', 'ignore', 'pipe'] },
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
      r = await probe('throttled.example', { evasions: REASSEMBLY_TECHNIQUES, up: 0, windowMs: 2500 });
    } finally {
      cap.kill('SIGTERM');
      await new Promise((res) => (cap.exitCode !== null ? res(null) : cap.once('exit', res)));
    }
    assert.equal(r.verdict, 'throttled', r.reason + engineLog());
    assert.ok(r.evasions, r.evasions_skipped);
    const got = Object.fromEntries(r.evasions!.map((e) => [e.technique, e.outcome]));
    const want = Object.fromEntries(REASSEMBLY_TECHNIQUES.map((t) => [t, 'no-bypass']));
    const detail = r.cases
      .filter((c) => c.role === 'evasion')
      .map((c) => `${c.id}: ${c.verdict} — ${c.reason}`)
      .join('\n');
    assert.deepEqual(got, want, detail + engineLog());
    // throttled, not merely slowed by something else: each case is throttled at the policed rate
    for (const e of r.evasions!) {
      const c = r.cases.find((x) => x.id === e.case)!;
      assert.equal(c.verdict, 'throttled', `${c.id}: ${c.reason}`);
      assert.ok(within(c.rate_bps, POLICED_BPS, 0.25), `${c.id}: rate ${c.rate_bps}`);
    }

    // tshark: the out-of-order case really reached the box out of order — in some stream the first
    // client data segment is not at relative seq 1, and the segment at seq 1 ends where it starts
    const t = await run(
      ['tshark', '-r', pcap, '-Y', `tcp.len > 0 && ip.src == ${lab.addr.sub}`,
        '-T', 'fields', '-e', 'tcp.stream', '-e', 'tcp.seq', '-e', 'tcp.len'], // prettier-ignore
      { timeoutMs: 60_000 },
    );
    assert.equal(t.code, 0, capErr + t.stderr);
    const segs = new Map<string, [number, number][]>();
    for (const line of t.stdout.trim().split('\n')) {
      const [stream, seq, len] = line.split('\t');
      const arr = segs.get(stream) ?? [];
      arr.push([Number(seq), Number(len)]);
      segs.set(stream, arr);
    }
    const ooo = [...segs.values()].filter(
      (a) => a[0][0] > 1 && a.slice(1).some(([seq, len]) => seq === 1 && 1 + len === a[0][0]),
    );
    assert.ok(ooo.length >= 1, 'no out-of-order stream seen in the box');
    // split-1: a stream whose first data segment is exactly 1 byte followed by the rest
    assert.ok(
      [...segs.values()].some((a) => a[0][1] === 1 && a[0][0] === 1 && a[1]?.[0] === 2),
      'a 1-byte first segment reached the box unmerged',
    );
  },
);
