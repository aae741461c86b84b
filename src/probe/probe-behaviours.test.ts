/**
 * @module probe/probe-behaviours.test
 * The probe names the TSPU's later behaviours (../shared/docs/tspu-later.md) against censors built
 * from kernel rules only (iptables in the box namespace of a lab of our own), each emulating one:
 * - SNI-IV: a packet containing `sni4.example` is dropped — the ClientHello never arrives, its
 *   retransmissions neither (they contain the name too);
 * - SNI-II: a connection whose packet contained `sni2.example` is CONNMARKed, and from its 8th packet
 *   (`connbytes 8:` packets, both directions) everything is dropped — a few packets pass, then nothing;
 * - the curtain: a connection whose packet contained `curtain.example` is marked, and once the reply
 *   direction has carried 20,000 bytes (`connbytes` bytes, IP lengths) every reply packet is dropped;
 * - SNI-I (as far as a kernel rule can): `reset.example` → REJECT with a TCP reset toward the client
 *   in place of the server's reply, the server sees no reset;
 * - QUIC: the 2022 rule (UDP to the port, IP length ≥ 1029 = payload ≥ 1001, bytes 1..4 = 1) drops
 *   the Initial; with the rule removed the same QUIC case is allowed.
 * Expected names come from these rules and docs/PROBE.md, not from the probe. Root only.
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
let lab: Lab;
let server: NsProbeServer;

const str = (s: string) => ['-p', 'tcp', '-m', 'string', '--algo', 'bm', '--string', s];
const QUIC_RULE = ['-p', 'udp', '--dport', String(PORT), '-m', 'length', '--length', '1029:65535',
  '-m', 'u32', '--u32', '0>>22&0x3C@9=0x1', '-j', 'DROP']; // prettier-ignore

before(async () => {
  if (!root) return;
  lab = await createLab({ name: `pb${process.pid % 100000}` });
  const ipt = (args: string[]) => lab.exec('box', ['iptables', '-w', ...args], { check: true });
  await ipt(['-N', 'CENSOR']);
  await ipt(['-I', 'FORWARD', '-j', 'CENSOR']);
  await ipt(['-A', 'CENSOR', ...str('sni4.example'), '-j', 'DROP']);
  await ipt(['-A', 'CENSOR', ...str('reset.example'), '-j', 'REJECT', '--reject-with', 'tcp-reset']);
  await ipt(['-A', 'CENSOR', ...str('sni2.example'), '-j', 'CONNMARK', '--set-mark', '0x21']);
  await ipt(['-A', 'CENSOR', ...str('curtain.example'), '-j', 'CONNMARK', '--set-mark', '0x22']);
  await ipt(['-A', 'CENSOR', '-m', 'connmark', '--mark', '0x21', '-m', 'connbytes', '--connbytes', '8:',
    '--connbytes-dir', 'both', '--connbytes-mode', 'packets', '-j', 'DROP']); // prettier-ignore
  await ipt(['-A', 'CENSOR', '-m', 'connmark', '--mark', '0x22', '-m', 'connbytes', '--connbytes', '20000:',
    '--connbytes-dir', 'reply', '--connbytes-mode', 'bytes', '-j', 'DROP']); // prettier-ignore
  server = await startProbeServerInNs(lab.ns.net, lab.addr.net2, PORT);
});

after(async () => {
  await server?.stop();
  await lab?.destroy();
});

function probe(name: string, extra: Record<string, unknown> = {}): Promise<ProbeReport> {
  return runProbeInNs(lab.ns.sub, {
    host: lab.addr.net2,
    port: PORT,
    name,
    control: 'allowed.example',
    quic: false,
    windowMs: 2000,
    up: 0,
    ...extra,
  });
}

const text = (r: ProbeReport) => `${r.verdict}/${r.blocking}/${r.behaviour}: ${r.reason}`;

test('SNI-IV (trigger dropped): blocked/drop, the ClientHello never reached the server', { skip, timeout: 60_000 }, async () => {
  const r = await probe('sni4.example');
  assert.deepEqual([r.verdict, r.blocking, r.behaviour], ['blocked', 'drop', 'trigger-dropped'], text(r));
  assert.equal(r.cases.find((c) => c.id === 'control')!.verdict, 'ok');
}); // prettier-ignore

test('SNI-II (a few packets, then nothing): blocked/stall after packets, no reset', { skip, timeout: 60_000 }, async () => {
  const r = await probe('sni2.example');
  assert.deepEqual([r.verdict, r.blocking, r.behaviour], ['blocked', 'stall', 'stall-after-packets'], text(r));
  const name = r.cases.find((c) => c.id === 'name')!;
  // the rule lets 7 packets pass, so at most 8 full segments of answer (conntrack may count a
  // GSO/GRO super-packet as one; measured: 7,240 B = 5 segments)
  assert.ok(name.stall_bytes! > 0 && name.stall_bytes! <= 8 * 1448, `stall after ${name.stall_bytes} B`);
  assert.equal(name.runs[0].reset_ms, null);
  assert.equal(r.cases.find((c) => c.id === 'control')!.verdict, 'ok');
}); // prettier-ignore

test('the curtain (freeze after ~20 KB, no reset): blocked/stall, curtain, at the configured size', { skip, timeout: 60_000 }, async () => {
  const r = await probe('curtain.example');
  assert.deepEqual([r.verdict, r.blocking, r.behaviour], ['blocked', 'stall', 'curtain'], text(r));
  const name = r.cases.find((c) => c.id === 'name')!;
  // 20,000 reply bytes counted with IP+TCP headers (≥ 52 B per packet): the payload that got through is
  // below 20,000 B and above 20,000 − 15 packets × 1,500 B
  assert.ok(name.stall_bytes! < 20_000 && name.stall_bytes! > 12_000, `stall after ${name.stall_bytes} B`);
  assert.equal(r.cases.find((c) => c.id === 'control')!.verdict, 'ok');
}); // prettier-ignore

test('SNI-I as a kernel rule can do it: a reset in place of the reply, named "injected or rewritten"', { skip, timeout: 60_000 }, async () => {
  const r = await probe('reset.example');
  assert.deepEqual([r.verdict, r.blocking, r.behaviour], ['blocked', 'rst', 'reset-in-place'], text(r));
  assert.match(r.reason, /reset \(injected or rewritten\)/);
}); // prettier-ignore

test('QUIC v1 blocked by the 2022 rule, allowed without it; an allowed name is ok', { skip, timeout: 90_000 }, async () => {
  await lab.exec('box', ['iptables', '-w', '-I', 'CENSOR', '1', ...QUIC_RULE], { check: true });
  let r: ProbeReport;
  try {
    r = await probe('quic.example', { quic: true, tcp: false });
  } finally {
    await lab.exec('box', ['iptables', '-w', '-D', 'CENSOR', ...QUIC_RULE]);
  }
  assert.deepEqual([r.quic?.verdict, r.quic?.blocking, r.quic?.behaviour], ['blocked', 'drop', 'quic-dropped'], JSON.stringify(r.quic));
  const free = await probe('quic.example', { quic: true, tcp: false });
  assert.equal(free.quic?.verdict, 'ok', JSON.stringify(free.quic));
  const ok = await probe('allowed-too.example');
  assert.equal(ok.verdict, 'ok', text(ok));
  assert.equal(ok.behaviour, undefined);
}); // prettier-ignore
