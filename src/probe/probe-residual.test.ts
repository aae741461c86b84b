/**
 * @module probe/probe-residual.test
 * The probe measures residual blocking against a censor built from kernel rules (iptables in the
 * box namespace of a lab of our own): a packet containing `resid.example` is dropped and records the
 * client's address (`recent --set --rsource`); for 3 s after the last such packet every SYN from
 * that client to the probe-server port is dropped (`recent --rcheck --seconds 3`: not renewed by
 * blocked attempts) — residual blocking on the address pair (the lab has one client and one server).
 * Positive control: `blockonly.example` is dropped too, with no residual. Expected values come from
 * these rules (3 s) and docs/PROBE.md, not from the probe. Root only.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createLab, type Lab } from '../lab/lab.js';
import { runProbeInNs, startProbeServerInNs, type NsProbeServer } from './in-ns.js';
import type { ProbeReport } from './probe.js';
import { isRoot, need } from '../testutil/require.js';

const root = isRoot();
const skip = need(root, 'needs root (network namespaces, iptables)');
const PORT = 8443;
const RESIDUAL_MS = 3000;
let lab: Lab;
let server: NsProbeServer;

const str = (s: string) => ['-p', 'tcp', '-m', 'string', '--algo', 'bm', '--string', s];

before(async () => {
  if (!root) return;
  lab = await createLab({ name: `pr${process.pid % 100000}` });
  const ipt = (args: string[]) => lab.exec('box', ['iptables', '-w', ...args], { check: true });
  await ipt(['-N', 'CENSOR']);
  await ipt(['-I', 'FORWARD', '-j', 'CENSOR']);
  await ipt(['-A', 'CENSOR', '-p', 'tcp', '--dport', String(PORT), '--syn', '-m', 'recent', '--name', 'RES',
    '--rcheck', '--seconds', String(RESIDUAL_MS / 1000), '--rsource', '-j', 'DROP']); // prettier-ignore
  await ipt(['-A', 'CENSOR', ...str('blockonly.example'), '-j', 'DROP']);
  await ipt(['-A', 'CENSOR', ...str('resid.example'), '-m', 'recent', '--name', 'RES', '--set', '--rsource', '-j', 'DROP']); // prettier-ignore
  server = await startProbeServerInNs(lab.ns.net, lab.addr.net2, PORT);
});

after(async () => {
  await server?.stop();
  await lab?.destroy();
});

function probe(name: string): Promise<ProbeReport> {
  return runProbeInNs(lab.ns.sub, {
    host: lab.addr.net2,
    port: PORT,
    name,
    control: 'allowed.example',
    quic: false,
    windowMs: 1500,
    up: 0,
    residualMs: 10_000,
  });
}

test('residual blocking: the allowed control name fails right after the trigger, for about 3 s', { skip, timeout: 90_000 }, async () => {
  const r = await probe('resid.example');
  const res = r.residual;
  assert.ok(res, `no residual report: ${r.residual_skipped}`);
  assert.equal(r.verdict, 'blocked');
  assert.equal(res.state, 'residual', JSON.stringify(res));
  assert.equal(res.followups[0].class === 'fast', false);
  // the censor keys on the client address: another source port is blocked as well
  assert.equal(res.key, 'address-pair', JSON.stringify(res));
  // the residual lasts 3 s from the last trigger packet (before the trigger connection's end, which
  // resets it). A follow-up whose SYN is dropped costs ≤ 1.2 s (0.9 s connect timeout + 0.25 s pause);
  // the one spanning the expiry may fail, and the first after it too (it reuses the trigger's source
  // port: the server may still hold that 4-tuple and answer with a challenge ACK), so the first
  // success comes by 3 s + 2 × 1.2 s + 1.1 s slack; not before 3 s − the trigger run (1.5 s).
  // Measured: 4,643 and 5,769 ms.
  assert.ok(res.lasted_ms !== null, JSON.stringify(res));
  assert.ok(res.lasted_ms >= RESIDUAL_MS - 1500 && res.lasted_ms <= RESIDUAL_MS + 3500, `lasted ${res.lasted_ms} ms`);
  assert.ok(res.followups.length >= 2);
  assert.equal(r.cases.find((c) => c.id === 'control')!.verdict, 'ok');
}); // prettier-ignore

test('positive control: a blocked name with no residual — the follow-up succeeds at once', { skip, timeout: 90_000 }, async () => {
  const r = await probe('blockonly.example');
  assert.equal(r.verdict, 'blocked');
  assert.ok(r.residual, `no residual report: ${r.residual_skipped}`);
  assert.equal(r.residual.state, 'none', JSON.stringify(r.residual));
  assert.equal(r.residual.lasted_ms, null);
  assert.equal(r.residual.followups.length, 1);
  assert.equal(r.residual.key, undefined);
}); // prettier-ignore
