/**
 * @module enforce/policy-source.test
 * Compile once for the box: a version read by the daemon carries its compiled bytes in a
 * SharedArrayBuffer; two real worker threads given the version the way the daemon posts it
 * (`forWorkers`: no list text) see the very same memory (a byte written by one is read by the other)
 * and decide exactly as the text policy does; a corrupted compiled version is refused.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { compilePolicy } from '../policy/compile.js';
import { parsePolicy } from '../policy/load.js';
import { compileVersion, forWorkers, readVersion, sealVersion } from './policy-source.js';

const POLICY = `version: 1
default: allow
rules:
  - id: listed
    action: block
    match:
      host:
        exact_file: names.txt
  - id: nets
    action: log
    match:
      dest_ip_file: nets.txt
`;
const NAMES = ['blocked.example', 'b.test', 'x.y.z.example'];
const PROBES = [
  { host: 'blocked.example' },
  { host: 'sub.blocked.example' },
  { host: 'b.test' },
  { host: 'allowed.example' },
  { host: 'other', dst: '10.1.2.3' },
  { host: 'other', dst: '10.2.0.1' },
];

// A worker that decodes the version it is given and answers the decisions (rule id or null) for
// PROBES; on 'poke' it writes a byte into the shared bytes' reserved header area and answers.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const { compileVersion } = await import(workerData.mod);
  const v = workerData.version;
  const p = await compileVersion(v);
  const decide = (q) => p.match({ host: q.host, proto: 'TCP', src_ip: '192.0.2.2', dest_ip: q.dst ?? '192.0.2.1', dest_port: 443, app_proto: 'tls' }).rule_id;
  parentPort.postMessage({ files: v.files.length, shared: v.compiled.buffer instanceof SharedArrayBuffer, decisions: workerData.probes.map(decide) });
  parentPort.on('message', (m) => {
    if (m === 'poke') { v.compiled[100] = 0x5a; parentPort.postMessage('poked'); }
    else if (m === 'peek') { parentPort.postMessage(v.compiled[100]); parentPort.close(); }
  });
})().catch((e) => { parentPort.postMessage({ error: e.message }); });
`;

function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'chk-psrc-'));
  writeFileSync(join(d, 'policy.yaml'), POLICY);
  writeFileSync(join(d, 'names.txt'), NAMES.join('\n') + '\n');
  writeFileSync(join(d, 'nets.txt'), '10.1.0.0/16\n');
  return d;
}

function next(w: Worker): Promise<unknown> {
  return new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
}

describe('policy version compiled once', () => {
  it('two workers map the same shared compiled bytes and decide as the text policy', async () => {
    const d = dir();
    const { version } = await readVersion(join(d, 'policy.yaml'));
    assert.ok(version.compiled, 'the version carries compiled bytes');
    assert.ok(version.compiled.buffer instanceof SharedArrayBuffer);
    assert.equal(version.files.length, 3, 'the daemon keeps the text files (id, watch)');
    // the expected decisions from the text policy, compiled independently of the version
    const text = compilePolicy(
      await parsePolicy(POLICY, join(d, 'policy.yaml'), {
        readList: async (p) => (p.endsWith('names.txt') ? NAMES.join('\n') + '\n' : '10.1.0.0/16\n'),
      }),
    );
    const want = PROBES.map(
      (q) =>
        text.match({
          host: q.host,
          proto: 'TCP',
          src_ip: '192.0.2.2',
          dest_ip: q.dst ?? '192.0.2.1',
          dest_port: 443,
          app_proto: 'tls',
        }).rule_id,
    );
    assert.deepEqual(want, ['listed', null, 'listed', null, 'nets', null]);
    const mod = new URL('./policy-source.js', import.meta.url).href;
    const workers = [0, 1].map(
      () =>
        new Worker(WORKER, { eval: true, workerData: { mod, version: forWorkers(version), probes: PROBES } }),
    );
    try {
      const first = (await Promise.all(workers.map(next))) as {
        files: number;
        shared: boolean;
        decisions: (string | null)[];
        error?: string;
      }[];
      for (const r of first) {
        assert.equal(r.error, undefined);
        assert.equal(r.files, 0, 'no list text is posted to a worker');
        assert.equal(r.shared, true);
        assert.deepEqual(r.decisions, want);
      }
      // the same memory, not copies: a byte written by worker 0 is seen by worker 1 and here
      assert.equal(version.compiled[100], 0);
      workers[0].postMessage('poke');
      assert.equal(await next(workers[0]), 'poked');
      workers[1].postMessage('peek');
      assert.equal(await next(workers[1]), 0x5a);
      assert.equal(version.compiled[100], 0x5a);
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  });

  it('a version with corrupted compiled bytes is refused; one without them compiles from text', async () => {
    const d = dir();
    const { version } = await readVersion(join(d, 'policy.yaml'));
    const bad = new Uint8Array(new SharedArrayBuffer(version.compiled!.length));
    bad.set(version.compiled!);
    bad[bad.length - 1] ^= 0xff;
    await assert.rejects(compileVersion({ ...version, compiled: bad }), /content hash mismatch/);
    const plain = { ...version, compiled: null };
    const sealed = await sealVersion(plain);
    assert.equal(sealed.id, version.id, 'the id is the content hash of the text, compiled or not');
    assert.ok(sealed.compiled && sealed.compiled.buffer instanceof SharedArrayBuffer);
    assert.equal((await compileVersion(plain)).ruleCount, (await compileVersion(sealed)).ruleCount);
  });
});
