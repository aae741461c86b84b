/**
 * @module enforce/failopen.test
 * Fail-open and lifecycle in the lab (root, real kernel): two queues with --queue-balance; `kill -9`
 * of the engine during a transfer → the transfer and new connections continue (queue bypass);
 * the rules left by the crash are replaced on restart (no duplicates) and enforcement is back;
 * a clean exit leaves nothing; --no-install prints the rules and installs nothing; not root → clear
 * error.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  chClient,
  curl,
  MAIN_JS,
  setupInlineLab,
  sleep,
  type InlineLab,
  BLOCK_RST_POLICY,
} from './testing/harness.js';
import { isRoot, need } from '../testutil/require.js';

const POLICY = BLOCK_RST_POLICY;

const SKIP = need(isRoot(), 'needs root (network namespaces, iptables, NFQUEUE)');

describe('fail-open and lifecycle (lab)', { skip: SKIP, timeout: 180_000 }, () => {
  let il: InlineLab;

  before(async () => {
    il = await setupInlineLab(`cpf${process.pid % 100000}`, POLICY);
  });
  after(async () => {
    await il?.close();
  });

  it('kill -9 mid-transfer: the transfer and new connections continue; restart restores enforcement', async () => {
    const queues = ['--queues', `${il.queue}-${il.queue + 1}`];
    const enf = await il.startEnforce(queues);
    assert.equal((await chClient(il, 'blocked-rst.example', 'whole')).result, 'reset', 'enforcing');
    const size = 3_000_000;
    const transfer = curl(il, 'allowed.example', size, { limitRate: '1M', maxTime: 30 });
    await sleep(1000);
    await enf.kill9();
    const after1 = await chClient(il, 'allowed.example', 'whole');
    assert.equal(after1.result, 'data', 'new allowed connection while the engine is dead');
    const failOpen = await chClient(il, 'blocked-rst.example', 'whole');
    assert.equal(failOpen.result, 'data', 'fail-open: even a blocked name passes while the engine is gone');
    const t = await transfer;
    assert.equal(t.code, 0, 'the transfer finished');
    assert.equal(t.size, size);
    const left = await il.iptablesSave();
    assert.match(
      left,
      new RegExp(`-A FORWARD -j ${il.chain}`),
      'rules survive a crash (bypass keeps traffic flowing)',
    );

    const enf2 = await il.startEnforce(queues);
    const s = await il.iptablesSave();
    assert.equal(
      s.match(new RegExp(`-A FORWARD -j ${il.chain}\\b`, 'g'))?.length,
      4,
      'one jump per table and family, no duplicates',
    );
    assert.match(s, new RegExp(`--queue-balance ${il.queue}:${il.queue + 1}`));
    assert.equal(
      (await chClient(il, 'blocked-rst.example', 'whole')).result,
      'reset',
      'enforcement restored',
    );
    assert.equal((await chClient(il, 'allowed.example', 'whole')).result, 'data');
    assert.equal(await enf2.stop(), 0);
    assert.doesNotMatch(await il.iptablesSave(), new RegExp(il.chain), 'no rules left after a clean exit');
  });

  it('--no-install prints the rules and installs nothing', async () => {
    const child = il.lab.spawn('box', [process.execPath, MAIN_JS, 'enforce', '--policy', il.policy, '--no-install',
      '--chain', il.chain, '--queues', String(il.queue)]); // prettier-ignore
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    for (let i = 0; i < 200 && !/bound/.test(err); i++) await sleep(100);
    assert.match(err, /bound, chain .* \(not installed\)/);
    assert.doesNotMatch(await il.iptablesSave(), new RegExp(il.chain), 'nothing installed while running');
    child.kill('SIGINT');
    assert.equal(await exited, 0, err);
    assert.match(out, new RegExp(`iptables -w -t mangle -A ${il.chain} .*NFQUEUE`));
    assert.match(out, /CONNMARK --save-mark/);
    assert.match(out, /REJECT --reject-with tcp-reset/);
    assert.doesNotMatch(await il.iptablesSave(), new RegExp(il.chain));
  });

  it('refuses clearly when not root', async () => {
    const r = await il.lab.exec('box', ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups',
      process.execPath, MAIN_JS, 'enforce', '--policy', il.policy, '--chain', il.chain]); // prettier-ignore
    assert.equal(r.code, 1);
    assert.match(r.stderr, /needs root/);
  });

  it('refuses clearly when libnetfilter_queue is missing (hidden in a private mount namespace)', async () => {
    const ld = await il.lab.exec('box', [
      'sh',
      '-c',
      "ldconfig -p | awk '/libnetfilter_queue.so.1 /{print $NF; exit}'",
    ]);
    const lib = (await il.lab.exec('box', ['readlink', '-f', ld.stdout.trim()])).stdout.trim();
    assert.ok(lib, 'libnetfilter_queue.so.1 is installed');
    const r = await il.lab.exec('box', ['unshare', '-m', '--propagation', 'private', 'sh', '-c',
      `mount --bind /dev/null ${lib} && exec "$0" "$@"`, process.execPath, MAIN_JS, 'enforce', '--policy', il.policy,
      '--chain', il.chain]); // prettier-ignore
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /cannot load libnetfilter_queue\.so\.1 \(install the Debian package libnetfilter-queue1\)/,
    );
    assert.doesNotMatch(await il.iptablesSave(), new RegExp(il.chain), 'nothing installed');
  });
});
