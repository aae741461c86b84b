/**
 * @module enforce/tspu.test
 * The `tspu-2021` emulation profile in the lab (root, real kernel, real ClientHellos): the evasions
 * documented in brief §5 work (split ClientHello, out-of-order segments, record fragmentation,
 * ≥ 101-byte junk first), and the ones that did not work still do not (a single fake ClientHello
 * first, < 101 bytes of junk first; junk goes to a silent TCP sink so the server's reaction cannot
 * interfere). A throttled name is policed at the policy's rate.
 * Trigger oracle: the EVE verdict for the client's source port (plus the client seeing a RST).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  chClient,
  curl,
  policedGoodput,
  waitEve,
  setupInlineLab,
  sleep,
  SINK_PORT,
  type Enforce,
  type InlineLab,
} from './testing/harness.js';
import { isRoot, need } from '../testutil/require.js';

const profile = (name: string): string =>
  fileURLToPath(new URL(`../../../profiles/${name}.yaml`, import.meta.url));

const POLICY = `version: 1
default: allow
inspection:
  mode: tspu-2021
rules:
  - id: twitter-block
    action: block
    method: rst
    match:
      host:
        exact: [twitter.com]
  - id: slow
    action: throttle
    rate: 256kbit
    burst: 8KB
    match:
      host:
        exact: [throttled.example]
`;

const SKIP = need(isRoot(), 'needs root (network namespaces, iptables, NFQUEUE)');

describe('tspu-2021 emulation (lab)', { skip: SKIP, timeout: 180_000 }, () => {
  let il: InlineLab;
  let enf: Enforce;

  before(async () => {
    il = await setupInlineLab(`cpt${process.pid % 100000}`, POLICY);
    enf = await il.startEnforce();
  });

  async function reloadTo(file: string): Promise<void> {
    const n = (enf.stderr().match(/policy reloaded/g) ?? []).length;
    copyFileSync(file, il.policy);
    enf.child.kill('SIGHUP');
    for (let i = 0; i < 50 && (enf.stderr().match(/policy reloaded/g) ?? []).length <= n; i++)
      await sleep(100);
    assert.ok(
      (enf.stderr().match(/policy reloaded/g) ?? []).length > n,
      'reloaded: ' + enf.stderr().slice(-300),
    );
    await sleep(300); // workers swap after the main thread validated
  }
  after(async () => {
    await il?.close();
  });

  /** Whether the box logged an emulation verdict for the connection from `port` (negative: waits 1 s). */
  async function triggered(port: number, expect = true): Promise<boolean> {
    const hit = (l: Array<Record<string, unknown>>): boolean =>
      l.some((e) => e.src_port === port && (e.verdict as { reason: string }).reason === 'emulation');
    return hit(await waitEve(il, hit, expect ? 5000 : 1000));
  }

  it('triggers on a whole ClientHello in the first data packet', async () => {
    const r = await chClient(il, 'twitter.com', 'whole');
    assert.equal(r.result, 'reset');
    assert.ok(await triggered(r.localPort));
    const c = await chClient(il, 'example.org', 'whole');
    assert.equal(c.result, 'data', 'control name passes');
    assert.ok(!(await triggered(c.localPort, false)));
  });

  it('a single fake ClientHello first does not evade; neither does < 101 bytes of junk', async () => {
    const f = await chClient(il, 'twitter.com', 'fake', 'example.org');
    assert.ok(await triggered(f.localPort), 'fake ClientHello first');
    const j = await chClient(il, 'twitter.com', 'junk', '60', SINK_PORT);
    assert.ok(await triggered(j.localPort), '60 bytes of junk first');
  });

  it('split, record-fragmented, out-of-order ClientHellos and ≥ 101 bytes of junk first evade', async () => {
    const s = await chClient(il, 'twitter.com', 'split', '40');
    assert.notEqual(s.result, 'reset');
    assert.ok(!(await triggered(s.localPort, false)), 'split');
    const rf = await chClient(il, 'twitter.com', 'records', '60');
    assert.notEqual(rf.result, 'reset');
    assert.ok(!(await triggered(rf.localPort, false)), 'record-fragmented');
    const j = await chClient(il, 'twitter.com', 'junk', '101', SINK_PORT);
    assert.ok(!(await triggered(j.localPort, false)), '101 bytes of junk first');
    const drop = ['-t', 'raw', '-I', 'PREROUTING', '-p', 'tcp', '--dport', '443', '-m', 'length', '--length', '352',
      '-m', 'statistic', '--mode', 'nth', '--every', '1000', '--packet', '0', '-j', 'DROP']; // prettier-ignore
    await il.lab.exec('box', ['iptables', ...drop], { check: true });
    try {
      const o = await chClient(il, 'twitter.com', 'split', '300');
      assert.notEqual(o.result, 'reset');
      assert.ok(!(await triggered(o.localPort, false)), 'out of order');
      const ctr = await il.lab.exec('box', ['iptables', '-t', 'raw', '-L', 'PREROUTING', '-v', '-x', '-n']);
      assert.match(ctr.stdout, /^\s*1\s+352\s+DROP/m, 'reordering happened');
    } finally {
      await il.lab.exec('box', ['iptables', '-t', 'raw', '-F', 'PREROUTING']);
    }
  });

  it('polices a throttled name at the rate (userspace policer, per direction)', async () => {
    const r = await curl(il, 'throttled.example', 112_000);
    assert.equal(r.code, 0);
    const g = policedGoodput(r, 8000);
    assert.ok(g >= 0.5 * 256_000 && g <= 1.05 * 256_000, `goodput ${Math.round(g)} bit/s`);
  });

  it('replays the 2021 collateral: *t.co* throttles reddit.com and microsoft.com; the April profile does not', async () => {
    const rate = 128_000;
    const burst = 16_000;
    await reloadTo(profile('tspu-2021-03-10'));
    for (const name of ['reddit.com', 'microsoft.com']) {
      const r = await curl(il, name, 40_000);
      assert.equal(r.code, 0);
      const g = policedGoodput(r, burst);
      assert.ok(g >= 0.5 * rate && g <= 1.05 * rate, `${name} under tspu-2021-03-10: ${Math.round(g)} bit/s`);
    }
    await reloadTo(profile('tspu-2021-04'));
    for (const name of ['reddit.com', 'microsoft.com']) {
      const r = await curl(il, name, 1_000_000);
      assert.equal(r.code, 0);
      const g = (r.size * 8) / Math.max(1e-3, r.total - r.pretransfer);
      assert.ok(g > 20 * rate, `${name} under tspu-2021-04: ${Math.round(g)} bit/s`);
    }
    const t = await curl(il, 'twitter.com', 40_000);
    const g = policedGoodput(t, burst);
    assert.ok(g >= 0.5 * rate && g <= 1.05 * rate, `twitter.com under tspu-2021-04: ${Math.round(g)} bit/s`);
  });
});
