/**
 * @module enforce/segmentation.test
 * No segmentation evasion inline (lab: root, real kernel, real clients), with the default hold
 * settings: a real ClientHello of a blocked name sent in 1-, 3- and 8-byte TCP segments, and a
 * ClientHello padded to the 16 KB record limit (RFC 7685), are named and reset; the same shapes for
 * an allowed name get the server's answer (nothing stalls: every segment but the completing one is
 * forwarded and acknowledged). The EVE verdict names the flow (`reason: named`).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chClient, setupInlineLab, waitEve, type InlineLab, BLOCK_RST_POLICY } from './testing/harness.js';
import { isRoot, need } from '../testutil/require.js';

// defaults: no inspection block (hold_ms 500, budget_bytes 16384, on_timeout allow)
const POLICY = BLOCK_RST_POLICY;

const SKIP = need(isRoot(), 'needs root (network namespaces, iptables, NFQUEUE)');

describe('segmentation evasion, inline (lab)', { skip: SKIP, timeout: 180_000 }, () => {
  let il: InlineLab;
  before(async () => {
    il = await setupInlineLab(`cps${process.pid % 100000}`, POLICY);
    await il.startEnforce();
  });
  after(async () => {
    await il?.close();
  });

  async function verdict(port: number): Promise<Record<string, unknown> | undefined> {
    const hit = (l: Array<Record<string, unknown>>) => l.find((e) => e.src_port === port);
    return hit(await waitEve(il, (l) => hit(l) !== undefined));
  }

  for (const [mode, arg] of [
    ['segments', '1'],
    ['segments', '3'],
    ['segments', '8'],
    ['padded', '16384'],
  ] as const) {
    // inspection.max_packets (8) bounds only flows whose protocol is still unknown: a ClientHello in
    // any number of segments is reassembled up to the byte budget.
    it(`${mode} ${arg}: named and enforced`, async () => {
      const b = await chClient(il, 'blocked-rst.example', mode, arg);
      assert.equal(b.result, 'reset', `blocked name, ${mode} ${arg}: ${JSON.stringify(b)}`);
      const v = (await verdict(b.localPort)) as {
        host: string;
        verdict: { reason: string };
        pkts_toserver: number;
      };
      assert.equal(v?.host, 'blocked-rst.example');
      assert.equal(v.verdict.reason, 'named');
      if (mode === 'segments')
        assert.ok(
          v.pkts_toserver > b.chLen / Number(arg) / 2,
          `segments reached the box: ${v.pkts_toserver}`,
        );
      const a = await chClient(il, 'allowed.example', mode, arg);
      if (mode === 'segments')
        assert.equal(a.result, 'data', `allowed name, ${mode} ${arg}: ${JSON.stringify(a)}`);
      const va = (await verdict(a.localPort)) as { host: string; verdict: { reason: string } };
      assert.equal(va?.host, 'allowed.example');
      assert.equal(va.verdict.reason, 'named');
    });
  }
});
