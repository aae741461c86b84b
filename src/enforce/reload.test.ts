/**
 * @module enforce/reload.test
 * Transactional reload in the lab (root, real kernel, two queues): a policy version's id covers the
 * policy file and its list files; 100 reloads under traffic (list-file changes and SIGHUP), each
 * waited for on its acknowledgement ("policy reloaded (...): ID active on all 2 queues"), after
 * which both queues report that id in /metrics and no EVE record written after the ack carries an
 * older version; an injected worker failure, or a worker crash mid-reload, leaves every queue on
 * the previous version, and the crashed worker comes back on that version, not on the file on disk.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { renameSync, statSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setupInlineLab, SINK_PORT, type Enforce, type InlineLab } from './testing/harness.js';
import { inNs } from '../lab/netns.js';
import { isRoot, need } from '../testutil/require.js';

const CONN_LOAD_JS = fileURLToPath(new URL('./testing/conn-load.js', import.meta.url));
const POLICY = `version: 1
default: allow
rules:
  - id: listed
    action: block
    match:
      host:
        exact_file: names.txt
`;

/** Replace a file in one step (a reader never sees it half-written). */
function put(path: string, text: string): void {
  writeFileSync(path + '.tmp', text);
  renameSync(path + '.tmp', path);
}

const SKIP = need(isRoot(), 'needs root (network namespaces, iptables, NFQUEUE)');
const ACK = /policy reloaded \([^)]*\): ([0-9a-f]{16}) active on all 2 queues/g;

/** Resolves when `stderr()` matches `re` more than `count` times; the matches. */
async function waitLog(e: Enforce, re: RegExp, count: number, ms = 20_000): Promise<RegExpMatchArray[]> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const m = [...e.stderr().matchAll(re)];
      if (m.length > count) {
        clearTimeout(t);
        e.child.stderr!.off('data', check);
        resolve(m);
        return true;
      }
      return false;
    };
    const t = setTimeout(() => {
      e.child.stderr!.off('data', check);
      reject(new Error(`timeout waiting for ${re}: ${e.stderr().slice(-800)}`));
    }, ms);
    e.child.stderr!.on('data', check);
    check();
  });
}

describe('transactional reload (lab)', { skip: SKIP, timeout: 300_000 }, () => {
  let il: InlineLab;
  let metricsPort = 0;
  let load: ChildProcess | null = null;

  before(async () => {
    il = await setupInlineLab(`cpr${process.pid % 100000}`, POLICY);
    writeFileSync(join(il.dir, 'names.txt'), 'blocked-0.example\n');
    metricsPort = 30000 + (process.pid % 20000);
  });
  after(async () => {
    load?.kill('SIGKILL');
    await il?.close();
  });

  const qs = (): string => `${il.queue}-${il.queue + 1}`;
  async function versions(): Promise<Map<string, string>> {
    const m = await il.lab.exec('box', ['curl', '-s', `http://127.0.0.1:${metricsPort}/metrics`], {
      timeoutMs: 10_000,
    });
    const out = new Map<string, string>();
    for (const x of m.stdout.matchAll(
      /^chokepoint_policy_version_info\{queue="(\d+)",version="([^"]*)"\} 1$/gm,
    ))
      out.set(x[1], x[2]);
    return out;
  }

  it('100 reloads under traffic: after each acknowledgement, one version everywhere', async () => {
    const enf = await il.startEnforce(['--queues', qs(), '--metrics', `127.0.0.1:${metricsPort}`]);
    try {
      const start = /policy ([0-9a-f]{16}) active on all 2 queues \(start\)/.exec(enf.stderr());
      assert.ok(start, enf.stderr());
      // traffic: connections with real ClientHellos, each one gets an EVE verdict
      load = spawn(inNs(il.lab.ns.sub, [process.execPath, CONN_LOAD_JS, il.server, String(SINK_PORT + 1), '4', '120000'])[0],
        inNs(il.lab.ns.sub, [process.execPath, CONN_LOAD_JS, il.server, String(SINK_PORT + 1), '4', '120000']).slice(1),
        { stdio: 'ignore' }); // prettier-ignore
      const acked: string[] = [start[1]];
      const offsets: number[] = [];
      for (let k = 1; k <= 100; k++) {
        // odd: a list-file change (the watcher), even: the policy file itself and SIGHUP
        if (k % 2) put(join(il.dir, 'names.txt'), `blocked-${k}.example\n`);
        else {
          put(il.policy, POLICY + `# reload ${k}\n`);
          enf.child.kill('SIGHUP');
        }
        const m = await waitLog(enf, ACK, k - 1);
        const id = m[k - 1][1];
        assert.ok(!acked.includes(id), `reload ${k}: a new id (${id})`);
        acked.push(id);
        offsets.push(statSync(il.eve).size);
        const v = await versions();
        assert.equal(v.size, 2, 'both queues report a version');
        for (const [q, got] of v) assert.equal(got, id, `reload ${k}: queue ${q} after the ack`);
      }
      const text = readFileSync(il.eve, 'utf8');
      let checked = 0;
      for (let k = 1; k <= 100; k++) {
        const allowed = new Set(acked.slice(k));
        for (const line of text.slice(offsets[k - 1]).split('\n')) {
          if (!line) continue;
          const e = (JSON.parse(line) as { chokepoint: { policy: { version: string } } }).chokepoint.policy;
          assert.ok(allowed.has(e.version), `EVE after ack ${k} carries ${e.version}`);
          checked++;
        }
      }
      assert.ok(checked > 0, 'traffic produced EVE records after the acknowledgements');
      const all = text
        .split('\n')
        .filter(Boolean)
        .map(
          (l) => (JSON.parse(l) as { chokepoint: { policy: { version: string } } }).chokepoint.policy.version,
        );
      assert.ok(new Set(all).size >= 10, `verdicts under many versions (${new Set(all).size})`);
    } finally {
      load?.kill('SIGKILL');
      load = null;
      assert.equal(await enf.stop(), 0);
    }
  });

  for (const what of ['fail', 'exit'] as const) {
    it(`a worker that ${what === 'fail' ? 'fails to prepare' : 'crashes mid-reload'}: every queue stays on the previous version`, async () => {
      writeFileSync(il.policy, POLICY);
      writeFileSync(join(il.dir, 'names.txt'), 'blocked-0.example\n');
      const enf = await il.startEnforce(['--queues', qs(), '--metrics', `127.0.0.1:${metricsPort}`],
        { CHOKEPOINT_FAULT_RELOAD: `${il.queue + 1}:1:${what}` }); // prettier-ignore
      try {
        const old = /policy ([0-9a-f]{16}) active on all 2 queues \(start\)/.exec(enf.stderr())![1];
        put(il.policy, POLICY + '# next\n'); // the watcher reloads it
        const m = await waitLog(
          enf,
          /reload \(file change\) of policy ([0-9a-f]{16}) failed \((.*)\); all queues stay on policy ([0-9a-f]{16})/g,
          0,
        );
        assert.equal(m[0][3], old);
        assert.notEqual(m[0][1], old);
        assert.match(m[0][2], what === 'fail' ? /injected failure/ : /worker exited/);
        if (what === 'exit') {
          const r = await waitLog(enf, /queue \d+ worker restarted on policy ([0-9a-f]{16})/g, 0);
          assert.equal(
            r[0][1],
            old,
            'the restarted worker is on the acknowledged version, not the file on disk',
          );
        }
        const v = await versions();
        assert.deepEqual([...v.values()], [old, old]);
        assert.doesNotMatch(enf.stderr(), /policy reloaded/, 'nothing was acknowledged');
        // the next reload of the same file (no fault now) goes through on both queues
        enf.child.kill('SIGHUP');
        const a = await waitLog(enf, ACK, 0);
        assert.deepEqual([...(await versions()).values()], [a[0][1], a[0][1]]);
      } finally {
        assert.equal(await enf.stop(), 0);
      }
    });
  }
});
