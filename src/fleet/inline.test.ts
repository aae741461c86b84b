/**
 * The box as a fleet member in a lab (root, network namespaces, NFQUEUE): a real controller process
 * in `net`, `chokepoint enforce --controller …` in `box`, curl in `sub`. A version published through
 * the controller (ctl: registry add → submit → two approvals → publish) turns a name from allowed to
 * blocked on the wire, and the controller's node list names the new bundle version. Then the
 * controller is killed: the box keeps enforcing; restarted with the controller down, the box starts
 * from its last-known-good bundle and still blocks the name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { need } from '../testutil/require.js';
import { needReference, TOP10K } from '../controller/testutil.js';
import { curl, MAIN_JS, setupInlineLab, sleep, type InlineLab } from '../enforce/testing/harness.js';

const isRoot = process.getuid?.() === 0;

function host(args: string[], cwd: string): string {
  return execFileSync(process.execPath, [MAIN_JS, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 60_000,
  }).trim();
}

/** Poll `text()` until it matches (bounded). */
async function until(text: () => string, re: RegExp, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!re.test(text())) {
    if (Date.now() > end) throw new Error(`timeout waiting for ${re}: …${text().slice(-1500)}`);
    await sleep(100);
  }
}

function spawnLogged(
  il: InlineLab,
  ns: 'box' | 'net',
  cmd: string[],
): { child: ChildProcess; log: () => string } {
  const child = il.lab.spawn(ns, cmd);
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => (buf += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (buf += d.toString()));
  return { child, log: () => buf };
}

async function kill(c: ChildProcess, sig: NodeJS.Signals): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const done = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill(sig);
  const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
  await done;
  clearTimeout(t);
}

test(
  'fleet member inline: a published bundle blocks a name on the wire; status names the version; last-known-good after the controller dies',
  { skip: needReference() || need(isRoot, 'root (network namespaces, NFQUEUE, iptables)'), timeout: 240_000 },
  async () => {
    const il = await setupInlineLab('fleet', 'version: 1\ndefault: allow\nrules: []\n');
    const running: ChildProcess[] = [];
    try {
      const d = il.dir;
      const data = join(d, 'ctl-data');
      host(['controller', 'root-key', 'create', '--out', join(d, 'keys')], d);
      host(['controller', 'signing-key', 'rotate', '--data', data, '--root', join(d, 'keys', 'root.key')], d);
      const tok: Record<string, string> = {};
      for (const [name, role] of [['ed', 'editor'], ['alice', 'approver'], ['bob', 'approver'], ['box1', 'node'], ['vera', 'viewer']])
        tok[name] = host(['controller', 'token', 'create', '--data', data, '--role', role, '--name', name], d); // prettier-ignore
      const url = `http://${il.server}:8443`;
      const serve = [process.execPath, MAIN_JS, 'controller', 'serve', '--data', data, '--listen', `${il.server}:8443`, '--reference', TOP10K]; // prettier-ignore
      let ctl = spawnLogged(il, 'net', serve);
      running.push(ctl.child);
      await until(ctl.log, /controller listening/, 30_000);
      const as = async (who: string, args: string[]): Promise<string> => {
        const r = await il.lab.exec('box', [process.execPath, MAIN_JS, 'ctl', ...args, '--url', url, '--token', tok[who]], { timeoutMs: 60_000 }); // prettier-ignore
        assert.equal(r.code, 0, `ctl ${args.join(' ')}: ${r.stderr}`);
        return r.stdout;
      };
      const publish = async (name: string): Promise<number> => {
        await as('ed', ['registry', 'add', '--kind', 'suffix', '--value', name, '--action', 'block', '--authority', 'Lab court']);
        const v = JSON.parse(await as('ed', ['versions', 'submit', '--from-registry', '--format', 'json'])) as { id: number };
        await as('alice', ['versions', 'approve', String(v.id)]);
        await as('bob', ['versions', 'approve', String(v.id)]);
        const p = JSON.parse(await as('alice', ['versions', 'publish', String(v.id), '--format', 'json'])) as { bundle_version: number };
        return p.bundle_version;
      }; // prettier-ignore
      const b1 = await publish('first.example');

      const state = join(d, 'state');
      const enforceArgs = [process.execPath, MAIN_JS, 'enforce', '--controller', url, '--token', tok.box1,
        '--trust', join(d, 'keys', 'root.pub'), '--node', 'box1', '--labels', 'tier=canary', '--state', state,
        '--eve', il.eve, '--chain', il.chain, '--queues', String(il.queue), '--poll-wait', '5', '--status-every', '2']; // prettier-ignore
      let box = spawnLogged(il, 'box', enforceArgs);
      running.push(box.child);
      await until(box.log, /bound/, 30_000);
      assert.match(box.log(), new RegExp(`bundle ${b1}|policy [0-9a-f]{16} active`));

      const before = await curl(il, 'victim.example', 2000, { maxTime: 10 });
      assert.equal(before.http, 200, 'allowed under the first bundle');

      const t0 = Date.now();
      const b2 = await publish('victim.example');
      const published = Date.now();
      await until(box.log, new RegExp(`bundle ${b2} \\(policy version \\d+, publish\\) active`), 30_000);
      const appliedMs = Date.now() - published;
      const totalMs = Date.now() - t0;
      await until(box.log, new RegExp(`policy reloaded \\(bundle ${b2}\\)`), 30_000);
      const after = await curl(il, 'victim.example', 2000, { maxTime: 10 });
      assert.notEqual(after.http, 200, `blocked under bundle ${b2}: ${JSON.stringify(after)}`);
      assert.equal((await curl(il, 'other.example', 2000, { maxTime: 10 })).http, 200);
      // the controller's view of the box names the new version
      const deadline = Date.now() + 20_000;
      let node: { active_version: number; drift: boolean; labels: Record<string, string> } | undefined;
      while (Date.now() < deadline) {
        const nodes = JSON.parse(await as('vera', ['nodes', '--format', 'json'])) as { nodes: (typeof node & { name: string })[] };
        node = nodes.nodes.find((n) => n?.name === 'box1');
        if (node?.active_version === b2) break;
        await sleep(200);
      } // prettier-ignore
      assert.equal(node?.active_version, b2);
      assert.equal(node?.drift, false);
      assert.deepEqual(node?.labels, { tier: 'canary' });
      process.stderr.write(
        `# fleet inline: ctl publish returned → bundle ${b2} logged active on the box: ${appliedMs} ms (registry add … publish, 5 ctl processes, → active: ${totalMs} ms)\n`,
      );

      // controller killed: the box keeps enforcing
      await kill(ctl.child, 'SIGKILL');
      assert.notEqual((await curl(il, 'victim.example', 2000, { maxTime: 10 })).http, 200, 'still blocked');
      // box restarted while the controller is down: starts from its last-known-good bundle
      await kill(box.child, 'SIGTERM');
      box = spawnLogged(il, 'box', enforceArgs);
      running.push(box.child);
      await until(box.log, /bound/, 30_000);
      assert.match(box.log(), new RegExp(`last-known-good bundle ${b2}`));
      assert.notEqual(
        (await curl(il, 'victim.example', 2000, { maxTime: 10 })).http,
        200,
        'blocked from state',
      );
      assert.equal((await curl(il, 'other.example', 2000, { maxTime: 10 })).http, 200);
      // controller back: the box converges on the next version
      ctl = spawnLogged(il, 'net', serve);
      running.push(ctl.child);
      await until(ctl.log, /controller listening/, 30_000);
      const b3 = await publish('third.example');
      await until(box.log, new RegExp(`policy reloaded \\(bundle ${b3}\\)`), 60_000);
      assert.notEqual((await curl(il, 'third.example', 2000, { maxTime: 10 })).http, 200);
    } finally {
      for (const c of running) await kill(c, 'SIGTERM').catch(() => undefined);
      await il.close();
    }
  },
);
