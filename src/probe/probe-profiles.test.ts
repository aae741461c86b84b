/**
 * @module probe/probe-profiles.test
 * The probe names the behaviours of the shipped TSPU profiles against `chokepoint enforce` running
 * them in the box namespace of a lab (set-up of probe-enforce.test): test copies of
 * profiles/tspu-2022.yaml (residual timers shortened from 420 s / 75 s to 3 s; nothing else changed)
 * and profiles/tspu-2025.yaml (its hosting-range list replaced by the lab server's address, since
 * the lab's private addresses are in no real list). Expected values come from the profiles
 * (`after_packets: 6`, `after_bytes: 16KiB`, the residual on the 5-tuple, `rate: 128kbit`) and
 * docs/PROBE.md, not from the probe. The May 2021 pair and tspu-2024 run as shipped: mobile still
 * throttles the Twitter names (the lab's 10.231.x subscriber is in its `subscriber` ranges), fixed
 * lets them through, tspu-2024 throttles googlevideo.com however its ClientHello is cut; tspu-2021-03-10
 * throttles the reddit.com collateral and the probe's evasion matrix finds the documented 2021
 * bypasses (brief §5), tspu-2021-04 fixed the collateral. Every shipped profile is run. Root only.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setupInlineLab, type Enforce, type InlineLab } from '../enforce/testing/harness.js';
import { runProbeInNs, startProbeServerInNs, type NsProbeServer } from './in-ns.js';
import type { ProbeReport } from './probe.js';
import { isRoot, need } from '../testutil/require.js';

const root = isRoot();
const skip = need(root, 'needs root (network namespaces, iptables, NFQUEUE)');
const PORT = 8443;
const RESIDUAL_S = 3;
/** every shipped throttle rule of these profiles: `rate: 128kbit` */
const POLICED_BPS = 128_000;
const within = (x: number | undefined, target: number, tol: number) =>
  x !== undefined && Math.abs(x - target) <= tol * target;
/** Techniques whose only trick is to make the name visible only after reassembly (probe-enforce.test). */
const REASSEMBLY_TECHNIQUES = [
  'split-1',
  'split-5',
  'split-name',
  'split-out-of-order',
  'tls-record-frag',
  'padding',
];
const profile = (n: string) =>
  readFileSync(fileURLToPath(new URL(`../../../profiles/${n}.yaml`, import.meta.url)), 'utf8');
const profileText = (n: string) => {
  try {
    return profile(n);
  } catch {
    // run from src/ with tsx: one level less
    return readFileSync(fileURLToPath(new URL(`../../profiles/${n}.yaml`, import.meta.url)), 'utf8');
  }
};

/** Replace `from` by `to` exactly `count` times, or throw (the shipped profile changed). */
function swap(text: string, from: string, to: string, count: number): string {
  const n = text.split(from).length - 1;
  if (n !== count) throw new Error(`expected ${count} × '${from}' in the profile, found ${n}`);
  return text.split(from).join(to);
}

/** profiles/tspu-2022.yaml with both residual timers shortened; nothing else changed. */
function tspu2022(): string {
  let p = profileText('tspu-2022');
  // twice: the Twitter rule and the commented-out QUIC rule
  p = swap(
    p,
    'residual: {seconds: 420, key: 5-tuple}',
    `residual: {seconds: ${RESIDUAL_S}, key: 5-tuple}`,
    2,
  );
  return swap(
    p,
    'residual: {seconds: 75, key: 5-tuple}',
    `residual: {seconds: ${RESIDUAL_S}, key: 5-tuple}`,
    1,
  );
}

let il: InlineLab | undefined;
let enf: Enforce | undefined;
let server: NsProbeServer | undefined;

before(async () => {
  if (!root) return;
  il = await setupInlineLab(`cpp${process.pid % 100000}`, 'version: 1\ndefault: allow\nrules: []\n');
  server = await startProbeServerInNs(il.lab.ns.net, il.lab.addr.net2, PORT);
});

after(async () => {
  await server?.stop().catch(() => {});
  await enf?.stop().catch(() => {});
  await il?.close();
});

let running = '';
async function runWith(policy: string): Promise<void> {
  if (enf && running === policy) return;
  running = policy;
  await enf?.stop();
  enf = undefined;
  writeFileSync(il!.policy, policy);
  enf = await il!.startEnforce();
}

function probe(name: string, extra: Record<string, unknown> = {}): Promise<ProbeReport> {
  return runProbeInNs(il!.lab.ns.sub, {
    host: il!.lab.addr.net2,
    port: PORT,
    name,
    control: 'allowed.example',
    quic: false,
    windowMs: 3000,
    up: 0,
    ...extra,
  });
}

const engineLog = () => (enf ? `\nenforce stderr: ${enf.stderr().slice(-1500)}` : '');
const text = (r: ProbeReport) => `${r.verdict}/${r.blocking}/${r.behaviour}: ${r.reason}`;

test('shipped tspu-2022 timers are the documented ones (SNI-II 420 s, SNI-I 75 s, 5-tuple)', () => {
  const p = profileText('tspu-2022');
  assert.match(p, /residual: \{seconds: 420, key: 5-tuple\}/);
  assert.match(p, /residual: \{seconds: 75, key: 5-tuple\}/);
});

test('tspu-2022: a Twitter name is stall-after-packets, and the follow-up on its 5-tuple meets residual blocking', { skip, timeout: 180_000 }, async () => {
  await runWith(tspu2022());
  const r = await probe('mobile.twitter.com', { residualMs: 15_000 });
  assert.deepEqual([r.verdict, r.blocking, r.behaviour], ['blocked', 'stall', 'stall-after-packets'], text(r) + engineLog());
  const name = r.cases.find((c) => c.id === 'name')!;
  // after_packets 6: a few segments of the answer at most
  assert.ok(name.stall_bytes! > 0 && name.stall_bytes! <= 8 * 1448, `stall after ${name.stall_bytes} B`);
  assert.equal(r.cases.find((c) => c.id === 'control')!.verdict, 'ok');
  const res = r.residual;
  assert.ok(res, `no residual report: ${r.residual_skipped}`);
  assert.equal(res.state, 'residual', JSON.stringify(res) + engineLog());
  // the profile keys the residual on the 5-tuple: the same follow-up from another port gets through
  assert.equal(res.key, '5-tuple', JSON.stringify(res));
  assert.ok(res.lasted_ms !== null, JSON.stringify(res));
  console.log(`measured: stall after ${name.stall_bytes} B; residual ${res.lasted_ms} ms (${res.followups.length} follow-ups)`);
  // 3 s from the trigger (enforce starts it when the rule decides, early in the trigger run of
  // ≤ 1.5 s window + connect, so ≥ 1 s is left after it); attempts cost ≤ 1.2 s each, one more for the reused 4-tuple (see
  // probe-residual.test)
  assert.ok(res.lasted_ms >= RESIDUAL_S * 1000 - 2000 && res.lasted_ms <= RESIDUAL_S * 1000 + 3500, `lasted ${res.lasted_ms} ms`);
}); // prettier-ignore

test('tspu-2022: a DoH name is reset before any answer (method rst), an unlisted name is ok', { skip, timeout: 180_000 }, async () => {
  await runWith(tspu2022());
  const r = await probe('dns.google');
  assert.deepEqual([r.verdict, r.blocking], ['blocked', 'rst'], text(r) + engineLog());
  // a reset before any byte of the answer. docs/ENFORCE.md says method rst also resets the server
  // (crafted RST), which the probe would name reset-both; measured here: the probe-server's socket
  // saw no reset: end 'none', reset-in-place. The probe-server ties a socket to the session by the
  // token inside the trigger (server.ts: `end: s.matchedAt ? s.end : 'none'`); the trigger never
  // arrived, so it cannot say whether that socket was reset — not asserted either way
  assert.ok(r.behaviour === 'reset-in-place' || r.behaviour === 'reset-both', text(r));
  const run0 = r.cases.find((c) => c.id === 'name')!.runs[0];
  assert.ok(run0.reset_ms !== null && run0.down!.bytes === 0, JSON.stringify(run0));
  console.log(`measured: ${r.behaviour}, probe-server end '${run0.server?.end}'`);
  const ok = await probe('example.net');
  assert.equal(ok.verdict, 'ok', text(ok) + engineLog());
}); // prettier-ignore

test('tspu-2025: the curtain — the answer freezes after ~16 KiB, no reset', { skip, timeout: 180_000 }, async () => {
  let p = profileText('tspu-2025');
  p = swap(p, 'dest_ip_file: lists/tspu-2025-hosting.txt', `dest_ip: [${il!.lab.addr.net2}]`, 1);
  await runWith(p);
  const r = await probe('hosted.example');
  assert.deepEqual([r.verdict, r.blocking, r.behaviour], ['blocked', 'stall', 'curtain'], text(r) + engineLog());
  const name = r.cases.find((c) => c.id === 'name')!;
  // after_bytes 16KiB of server→client bytes: more than a few packets, at most 16,384 B of payload
  assert.ok(name.stall_bytes! > 12_000 && name.stall_bytes! <= 16_384, `stall after ${name.stall_bytes} B`);
  assert.equal(name.runs[0].reset_ms, null);
  console.log(`measured: curtain after ${name.stall_bytes} B`);
}); // prettier-ignore

test('tspu-2021-05-mobile: a Twitter name is still throttled at the profile rate; microsoft.com (the old *t.co* collateral) is ok', { skip, timeout: 240_000 }, async () => {
  await runWith(profileText('tspu-2021-05-mobile'));
  const r = await probe('abs.twimg.com', { repeat: 3, up: 0 });
  const name = r.cases.find((c) => c.id === 'name')!;
  console.log(`measured: tspu-2021-05-mobile abs.twimg.com ${r.verdict} at ${name.down_bps} bit/s (policed ${POLICED_BPS})`);
  assert.equal(r.verdict, 'throttled', text(r) + engineLog());
  assert.ok(within(name.down_bps, POLICED_BPS, 0.25), `down ${name.down_bps} vs ${POLICED_BPS}`);
  const ms = await probe('microsoft.com', { up: 0 });
  assert.equal(ms.verdict, 'ok', text(ms) + engineLog());
}); // prettier-ignore

test('tspu-2021-05-fixed: the same Twitter name passes at full speed', { skip, timeout: 120_000 }, async () => {
  await runWith(profileText('tspu-2021-05-fixed'));
  const r = await probe('abs.twimg.com', { up: 0 });
  assert.equal(r.verdict, 'ok', text(r) + engineLog());
  const name = r.cases.find((c) => c.id === 'name')!;
  assert.ok(name.down_bps! >= 20 * POLICED_BPS, `down ${name.down_bps}`);
}); // prettier-ignore

test('tspu-2024: googlevideo.com throttled at the profile rate, and no reassembly trick gets around it', { skip, timeout: 300_000 }, async () => {
  await runWith(profileText('tspu-2024'));
  const r = await probe('rr1---sn-lab.googlevideo.com', { evasions: REASSEMBLY_TECHNIQUES, windowMs: 2500 });
  const name = r.cases.find((c) => c.id === 'name')!;
  console.log(`measured: tspu-2024 ${r.verdict} at ${name.down_bps} bit/s; evasions ${JSON.stringify(r.evasions?.map((e) => [e.technique, e.outcome]))}`);
  assert.equal(r.verdict, 'throttled', text(r) + engineLog());
  assert.ok(within(name.down_bps, POLICED_BPS, 0.25), `down ${name.down_bps} vs ${POLICED_BPS}`);
  assert.ok(r.evasions, r.evasions_skipped);
  assert.deepEqual(
    Object.fromEntries(r.evasions!.map((e) => [e.technique, e.outcome])),
    Object.fromEntries(REASSEMBLY_TECHNIQUES.map((t) => [t, 'no-bypass'])),
  );
  const ok = await probe('youtube-unrelated.example', { up: 0 });
  assert.equal(ok.verdict, 'ok', text(ok) + engineLog());
}); // prettier-ignore

test('tspu-2021-03-10: the *t.co* collateral (reddit.com) is throttled, and the 2021 evasions get around the emulation as documented', { skip, timeout: 300_000 }, async () => {
  await runWith(profileText('tspu-2021-03-10'));
  // brief §5: splitting, reordering, record fragmentation and ≥ 101 bytes of junk first evaded the
  // 2021 box; one fake ClientHello first did not
  const want: Record<string, string> = {
    'split-1': 'bypass',
    'split-name': 'bypass',
    'split-out-of-order': 'bypass',
    'tls-record-frag': 'bypass',
    'junk-first': 'bypass',
    'fake-hello-first': 'no-bypass',
  };
  const r = await probe('reddit.com', { evasions: Object.keys(want), windowMs: 2500 });
  const name = r.cases.find((c) => c.id === 'name')!;
  console.log(`measured: tspu-2021-03-10 reddit.com ${r.verdict} at ${name.down_bps} bit/s; evasions ${JSON.stringify(r.evasions?.map((e) => [e.technique, e.outcome]))}`);
  assert.equal(r.verdict, 'throttled', text(r) + engineLog());
  assert.ok(within(name.down_bps, POLICED_BPS, 0.25), `down ${name.down_bps} vs ${POLICED_BPS}`);
  assert.ok(r.evasions, r.evasions_skipped);
  const detail = r.cases.filter((c) => c.role === 'evasion').map((c) => `${c.id}: ${c.verdict} — ${c.reason}`).join('\n');
  assert.deepEqual(Object.fromEntries(r.evasions!.map((e) => [e.technique, e.outcome])), want, detail + engineLog());
}); // prettier-ignore

test('tspu-2021-04: the fixed rules — reddit.com is ok again, t.co itself still throttled', { skip, timeout: 180_000 }, async () => {
  await runWith(profileText('tspu-2021-04'));
  const ok = await probe('reddit.com', { up: 0 });
  assert.equal(ok.verdict, 'ok', text(ok) + engineLog());
  const r = await probe('t.co', { up: 0 });
  assert.equal(r.verdict, 'throttled', text(r) + engineLog());
  assert.ok(within(r.cases.find((c) => c.id === 'name')!.down_bps, POLICED_BPS, 0.25), text(r));
}); // prettier-ignore

test('tspu-2022: a QUIC v1 Initial (≥ 1001 bytes, version 1) is dropped whatever its name; the probe names quic-dropped', { skip, timeout: 180_000 }, async () => {
  // the rule matches UDP port 443; the lab's probe-server listens on PORT
  await runWith(swap(tspu2022(), 'dest_port: 443', `dest_port: ${PORT}`, 1));
  const r = await probe('any-name.example', { quic: true, tcp: false });
  assert.deepEqual([r.quic?.verdict, r.quic?.blocking, r.quic?.behaviour], ['blocked', 'drop', 'quic-dropped'], JSON.stringify(r.quic) + engineLog());
}); // prettier-ignore
