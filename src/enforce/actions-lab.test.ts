/**
 * @module enforce/actions-lab.test
 * The block methods on the wire (root, namespaces, real curl through the box running `enforce`):
 * stall (the transfer never completes, no RST), curtain (a download stops below `after_bytes` and
 * times out, no RST), residual blocking (after a reset trigger, another name to the same server is
 * refused until the window ends, then served again; the window is shortened to 3 s).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { curl, setupInlineLab, sleep, type InlineLab } from './testing/harness.js';
import { isRoot, need } from '../testutil/require.js';

const CURTAIN = 20_000;
const RESIDUAL_S = 3;

const POLICY = `version: 1
default: allow
inspection: {mode: normal}
rules:
  - id: stall
    action: block
    method: stall
    after_packets: 6
    match: {host: {exact: [stall.example]}}
  - id: curtain
    action: block
    method: curtain
    after_bytes: ${CURTAIN}
    match: {host: {exact: [curtain.example]}}
  - id: resid
    action: block
    method: rst
    residual: {seconds: ${RESIDUAL_S}, key: address-pair}
    match: {host: {exact: [resid.example]}}
`;

const SKIP = need(isRoot(), 'needs root (network namespaces, iptables, NFQUEUE)');

describe('block methods on the wire (lab)', { skip: SKIP, timeout: 120_000 }, () => {
  let il: InlineLab;
  before(async () => {
    il = await setupInlineLab(`cpa${process.pid % 100000}`, POLICY);
    await il.startEnforce();
  });
  after(async () => {
    await il?.close();
  });

  it('control: an unlisted name downloads 200 KB', async () => {
    const r = await curl(il, 'example.org', 200_000);
    assert.equal(r.code, 0);
    assert.equal(r.size, 200_000);
  });

  it('stall: the TLS handshake never completes, the client sees no RST (curl times out, code 28)', async () => {
    const r = await curl(il, 'stall.example', 200_000, { maxTime: 3 });
    assert.equal(r.code, 28, `curl exit ${r.code} (28 = timeout; 35/56 would be a reset)`);
    assert.equal(r.size, 0);
  });

  it(`curtain: the download stops silently below ${CURTAIN} bytes of server payload`, async () => {
    const r = await curl(il, 'curtain.example', 200_000, { maxTime: 4 });
    assert.equal(r.code, 28, `curl exit ${r.code}: a timeout, not a reset`);
    // server→client payload = TLS handshake (certificate ≈ 1–2 KB) + records of the body
    assert.ok(r.size > 0 && r.size < CURTAIN, `body bytes received ${r.size}`);
    assert.ok(r.size > CURTAIN - 8000, `body bytes received ${r.size}: the cut is near after_bytes`);
  });

  it(`residual (address pair, ${RESIDUAL_S} s): after a trigger another name to the same server is refused, then served`, async () => {
    const t0 = Date.now();
    const trig = await curl(il, 'resid.example', 1000, { maxTime: 5 });
    assert.notEqual(trig.code, 0, 'the trigger is reset');
    const inside = await curl(il, 'example.org', 1000, { maxTime: 5 });
    assert.ok(Date.now() - t0 < RESIDUAL_S * 1000, 'still inside the window');
    assert.equal(inside.code, 7, `curl exit ${inside.code} (7: connection refused by the SYN's RST)`);
    // wait out the window (bounded), then the same request is served
    while (Date.now() - t0 < RESIDUAL_S * 1000 + 200) await sleep(100);
    const later = await curl(il, 'example.org', 1000, { maxTime: 5 });
    assert.equal(later.code, 0, `after the window: curl exit ${later.code}`);
  });
});
