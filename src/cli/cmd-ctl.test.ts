/**
 * @module cli/cmd-ctl.test
 * The README's "Run a controller" commands, as written (CHOKEPOINT_URL / CHOKEPOINT_TOKEN from the
 * environment), against a real `chokepoint controller serve` process on SQLite: bootstrap, tokens,
 * registry, submit, two approvals, publish, why, audit verify; `--format json`; exit codes 0 / 1 / 2;
 * the `*t.co*` version refused without an override.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveProcess } from '../controller/proc.js';
import { needReference, TOP10K } from '../controller/testutil.js';

const fromSource = import.meta.url.endsWith('.ts');
const MAIN = fileURLToPath(new URL(fromSource ? './main.ts' : './main.js', import.meta.url));

function cp(
  args: string[],
  env: Record<string, string>,
  cwd: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(fromSource ? ['--import', 'tsx'] : []), MAIN, ...args], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

test('README: run a controller, as written', { skip: needReference() }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctl-readme-'));
  const env: Record<string, string> = {};
  const run = (...a: string[]) => cp(a, env, dir);
  let srv: Awaited<ReturnType<typeof serveProcess>> | null = null;
  try {
    assert.equal((await run('controller', 'root-key', 'create', '--out', 'keys')).code, 0);
    assert.equal(
      (await run('controller', 'root-key', 'create', '--out', 'keys')).code,
      1,
      'never overwrites a root key',
    );
    const adm = await run(
      'controller',
      'token',
      'create',
      '--data',
      './chokepoint-data',
      '--role',
      'admin',
      '--name',
      'admin',
    );
    assert.equal(adm.code, 0, adm.stderr);
    assert.match(adm.stdout.trim(), /^cpt_[A-Za-z0-9_-]{43}$/);
    assert.equal(
      (
        await run(
          'controller',
          'token',
          'create',
          '--data',
          './chokepoint-data',
          '--role',
          'boss',
          '--name',
          'x',
        )
      ).code,
      2,
    );
    assert.equal(
      (
        await run(
          'controller',
          'signing-key',
          'rotate',
          '--data',
          './chokepoint-data',
          '--root',
          'keys/root.key',
        )
      ).code,
      0,
    );
    srv = await serveProcess(['--data', join(dir, 'chokepoint-data'), '--reference', TOP10K]);
    env.CHOKEPOINT_URL = srv.url;
    env.CHOKEPOINT_TOKEN = adm.stdout.trim();
    const tok = async (name: string, role: string) => {
      const r = await run('ctl', 'tokens', 'create', '--name', name, '--role', role);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    };
    const ED = await tok('ed', 'editor');
    const A1 = await tok('alice', 'approver');
    const A2 = await tok('bob', 'approver');
    const as = (t: string, ...a: string[]) => cp(a, { ...env, CHOKEPOINT_TOKEN: t }, dir);
    const add = await as(
      ED,
      'ctl',
      'registry',
      'add',
      '--kind',
      'suffix',
      '--value',
      'twitter.com',
      '--action',
      'throttle',
      '--rate',
      '128kbit',
      '--authority',
      'Example Regulator',
      '--reference',
      'Order 12/2026',
    );
    assert.equal(add.code, 0, add.stderr);
    writeFileSync(join(dir, 'feed.txt'), 'one.example\n*.two.example\n');
    const imp = await as(
      ED,
      'ctl',
      'registry',
      'import',
      '--input-format',
      'domains',
      '--source',
      'feed',
      'feed.txt',
      '--format',
      'json',
    );
    assert.equal(imp.code, 0, imp.stderr);
    assert.equal(JSON.parse(imp.stdout).added, 2);
    assert.match(imp.stderr, /uploading feed\.txt: 100%/);
    writeFileSync(join(dir, 'bad.txt'), 'ok.example\nnot a name\n');
    const badImp = await as(
      ED,
      'ctl',
      'registry',
      'import',
      '--input-format',
      'domains',
      '--source',
      'feed',
      'bad.txt',
    );
    assert.equal(badImp.code, 1);
    assert.match(badImp.stderr, /bad\.txt:2:1/);
    const sub = await as(ED, 'ctl', 'versions', 'submit', '--from-registry', '--format', 'json');
    assert.equal(sub.code, 0, sub.stderr);
    const v = JSON.parse(sub.stdout);
    assert.equal(v.status, 'submitted');
    assert.equal((await as(A1, 'ctl', 'versions', 'approve', String(v.id))).code, 0);
    assert.equal((await as(A2, 'ctl', 'versions', 'approve', String(v.id))).code, 0);
    const pub = await as(A2, 'ctl', 'versions', 'publish', String(v.id), '--format', 'json');
    assert.equal(JSON.parse(pub.stdout).bundle_version, 1);
    const why = await run('ctl', 'registry', 'why', 'api.twitter.com');
    assert.equal(why.code, 0, why.stderr);
    assert.match(why.stdout, /throttle by rule 'registry-throttle-128000bps'/);
    assert.match(why.stdout, /Order 12\/2026.*since version 1/);
    const ver = await run('ctl', 'audit', 'verify');
    assert.equal(ver.code, 0, ver.stderr);
    assert.match(ver.stdout, /^audit log ok: \d+ rows/);
    // the 2021 rule: refused without an override (exit 1, the reason on stderr)
    writeFileSync(
      join(dir, 'tco.yaml'),
      'rules:\n  - id: tco\n    action: throttle\n    rate: 128kbit\n    match: {host: {substring: [t.co]}}\n',
    );
    const t1 = await as(ED, 'ctl', 'versions', 'submit', 'tco.yaml');
    assert.equal(t1.code, 0, t1.stderr);
    assert.match(t1.stdout, /microsoft\.com/);
    assert.match(t1.stdout, /reddit\.com/);
    const id = /version (\d+): submitted/.exec(t1.stdout)![1];
    const refused = await as(A1, 'ctl', 'versions', 'approve', id);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /ERR_NEEDS_OVERRIDE/);
    const ov = await run('ctl', 'versions', 'approve', id, '--override', 'lab emulation only, ticket 7');
    assert.equal(ov.code, 0, ov.stderr);
    assert.match(ov.stdout, /OVERRIDE by admin: lab emulation only, ticket 7/);
    // usage errors exit 2; a refused or failed call exits 1
    assert.equal((await run('ctl', 'versions', 'approve')).code, 2);
    assert.equal((await run('ctl', 'nonsense')).code, 2);
    assert.equal((await run('ctl', 'whoami', '--format', 'yaml')).code, 2);
    assert.equal((await as('cpt_wrong', 'ctl', 'whoami')).code, 1);
    assert.equal(
      (await cp(['ctl', 'whoami'], { ...env, CHOKEPOINT_URL: 'http://127.0.0.1:1' }, dir)).code,
      1,
    );
    const who = await run('ctl', 'whoami', '--format', 'json');
    assert.deepEqual(JSON.parse(who.stdout), { name: 'admin', role: 'admin' });
    // the fleet view and the kill switch
    assert.equal((await run('ctl', 'nodes')).stdout, 'no nodes\n');
    const BOX = await tok('box-a', 'node');
    const st = await fetch(`${srv.url}/v1/status`, {
      method: 'POST',
      headers: { authorization: `Bearer ${BOX}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        node: 'box-a',
        labels: { tier: 'canary' },
        active_version: 1,
        errors: ['disk full'],
      }),
    });
    assert.equal(st.status, 200);
    const nh = await run('ctl', 'nodes');
    assert.match(
      nh.stdout,
      /^box-a\s+bundle 1 intended 1 {2}labels tier=canary .*last error: "disk full"\n$/,
    );
    assert.equal((await as(ED, 'ctl', 'emergency-stop', '--reason', 'x')).code, 1, 'an editor may not stop');
    assert.equal((await as(A1, 'ctl', 'emergency-stop')).code, 2, '--reason is required');
    const es = await as(A1, 'ctl', 'emergency-stop', '--reason', 'outage', '--format', 'json');
    assert.equal(es.code, 0, es.stderr);
    assert.equal(JSON.parse(es.stdout).bundle_version, 2);
    assert.equal(JSON.parse(es.stdout).origin, 'emergency');
    const nj = JSON.parse((await run('ctl', 'nodes', '--format', 'json')).stdout);
    assert.deepEqual(
      nj.nodes.map((n: { name: string; intended_version: number; drift: boolean }) => [
        n.name,
        n.intended_version,
        n.drift,
      ]),
      [['box-a', 2, true]],
    );
    // rollouts: a plan error names the field (exit 1), usage errors exit 2
    writeFileSync(
      join(dir, 'plan.yaml'),
      'stages:\n  - name: canary\n    select: {labels: {tier: canary}}\n',
    );
    const pe = await as(A1, 'ctl', 'rollout', 'start', String(v.id), '--plan', 'plan.yaml');
    assert.equal(pe.code, 1);
    assert.match(pe.stderr, /stages\[0\]: missing required key 'bake_s'.*ERR_PLAN/);
    assert.equal((await as(A1, 'ctl', 'rollout', 'start')).code, 2);
    assert.equal((await as(A1, 'ctl', 'rollout', 'status', '999')).code, 1);
    assert.deepEqual(JSON.parse((await run('ctl', 'rollout', 'list', '--format', 'json')).stdout), {
      rollouts: [],
    });
    // export round-trips through lint
    assert.equal((await run('ctl', 'versions', 'export', String(v.id), '--out', 'exp')).code, 0);
    const lint = await run('lint', 'exp/policy.json', '--reference', TOP10K);
    assert.equal(lint.code, 0, lint.stdout + lint.stderr);
  } finally {
    await srv?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
