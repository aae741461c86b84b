/**
 * @module enforce/recover.test
 * Kernel cleanup on a version change (lab, root): a long download throttled by version A recovers
 * its speed once version B (without the throttle) is committed — the daemon re-decides connections
 * the old version decided and updates their policer (userspace) or conntrack mark (kernel throttle
 * class, `conntrack -U`). Measured by the client's bytes/s (size of curl's output file) before and
 * after.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setupInlineLab, sleep, type InlineLab } from './testing/harness.js';
import { haveTool, isRoot, need } from '../testutil/require.js';

const A = `version: 1
default: allow
inspection:
  mode: normal
  hold_ms: 1000
rules:
  - id: slow
    action: throttle
    rate: 256kbit
    burst: 8KB
    match:
      host:
        exact: [download.example]
`;
const B = A.replace('exact: [download.example]', 'exact: [other.example]');

const SKIP = need(isRoot() && haveTool('conntrack'), 'needs root and conntrack (Debian conntrack)');

const size = (f: string): number => (existsSync(f) ? statSync(f).size : 0);

/** Bytes/s of the growing file over `ms` (a measurement window, not a wait for an event). */
async function rate(f: string, ms: number): Promise<number> {
  const s0 = size(f);
  const t0 = Date.now();
  await sleep(ms);
  return ((size(f) - s0) * 1000) / (Date.now() - t0);
}

describe(
  'a throttled download recovers after a version without the throttle',
  { skip: SKIP, timeout: 180_000 },
  () => {
    let il: InlineLab;
    before(async () => {
      il = await setupInlineLab(`cpr${process.pid % 100000}`, A);
    });
    after(async () => {
      await il?.close();
    });

    for (const mode of ['userspace', 'kernel'] as const)
      it(`--throttle ${mode}`, async () => {
        writeFileSync(il.policy, A);
        const e = await il.startEnforce(['--throttle', mode]);
        const out = join(il.dir, `dl-${mode}.bin`);
        const total = 8_000_000;
        const dl = il.lab.exec(
        'sub',
        ['curl', '-sk', '--resolve', `download.example:443:${il.server}`, '-o', out, '--max-time', '120',
          `https://download.example/bytes/${total}`],
        { timeoutMs: 130_000 },
      ); // prettier-ignore
        try {
          // the throttle is in force: wait for the first bytes past the burst, then measure
          for (let i = 0; i < 200 && size(out) < 40_000; i++) await sleep(50);
          const before = await rate(out, 3000);
          assert.ok(before < 64_000, `throttled at 256 kbit/s (32 KB/s): ${Math.round(before)} B/s`);
          writeFileSync(il.policy, B);
          e.child.kill('SIGHUP');
          for (let i = 0; i < 200 && !/re-decided \d+ connection/.test(e.stderr()); i++) await sleep(50);
          assert.match(e.stderr(), /re-decided 1 connection\(s\)/);
          if (mode === 'kernel') assert.match(e.stderr(), /1 conntrack mark\(s\) updated/);
          // after: the client's mean bytes/s from the commit to the end of the download (TCP needs a
          // moment to leave the policer's loss recovery; still throttled it would need > 200 s)
          const left = total - size(out);
          const t0 = Date.now();
          const r = await dl;
          const after = (left * 1000) / Math.max(1, Date.now() - t0);
          assert.equal(r.code, 0, 'the download completes');
          assert.equal(size(out), total);
          const ct = (await il.lab.exec('box', ['conntrack', '-L', '-p', 'tcp', '--dport', '443'])).stdout;
          assert.ok(
            after > 5 * before,
            `recovered: ${Math.round(after)} B/s after vs ${Math.round(before)} B/s before\n${ct}`,
          );
          process.stderr.write(
            `# ${mode}: before ${Math.round(before)} B/s, after ${Math.round(after)} B/s\n`,
          );
        } finally {
          await dl.catch(() => undefined);
          await e.stop();
        }
      });
  },
);
