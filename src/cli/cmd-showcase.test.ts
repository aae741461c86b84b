/**
 * @module cli/cmd-showcase.test
 * `chokepoint showcase` (what `npm start` runs), as a visitor meets it: the built CLI started as a
 * child process (no root), its URL and tokens read from stdout, then the story checked through the
 * API with the printed tokens — not through the story's own lines: the `*t.co*` version failed and
 * its rollout rolled back by the canary's analysis (reason naming the metric, the collateral names
 * in the failing samples, a baseline with flows), the shadow stage passed, the good version active on
 * every demo box, the audit chain verified. Chromium (Debian, playwright-core) signs in with the
 * printed admin token and sees the rollback and its reason on the Rollouts page. SIGINT ends it with
 * exit code 0, no process of its own left and its state directory removed; a second SIGTERM while it
 * stops (what `npm start` gets from a process-group kill) still removes the directory.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- API answers and page globals are untyped */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { need } from '../testutil/require.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';

/** Lines of the child's stdout; `wait(re)` resolves with the first line matching, or rejects. */
class Lines {
  readonly all: string[] = [];
  private waiters: { re: RegExp; ok: (l: string) => void; no: (e: Error) => void }[] = [];
  private ended: string | null = null;
  constructor(c: ChildProcess) {
    createInterface({ input: c.stdout! }).on('line', (l) => {
      this.all.push(l);
      if (l.startsWith('Story failed'))
        for (const w of this.waiters.splice(0)) w.no(new Error(`showcase: ${l}`));
      for (const w of this.waiters.filter((x) => x.re.test(l))) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.ok(l);
      }
    });
    c.on('exit', (code, sig) => {
      this.ended = `exited (${code ?? sig}) before the line came`;
      for (const w of this.waiters.splice(0)) w.no(new Error(this.ended));
    });
  }
  wait(re: RegExp, ms: number): Promise<string> {
    const hit = this.all.find((l) => re.test(l));
    if (hit) return Promise.resolve(hit);
    if (this.ended) return Promise.reject(new Error(this.ended));
    return new Promise((ok, no) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.re !== re);
        no(new Error(`no line matching ${re} within ${ms / 1000} s; got:\n${this.all.join('\n')}`));
      }, ms);
      this.waiters.push({
        re,
        ok: (l) => (clearTimeout(t), ok(l)),
        no: (e) => (clearTimeout(t), no(e)),
      });
    });
  }
}

/** Pids whose parent is `pid` (from /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

test('a second SIGTERM while it stops (npm start under a process-group kill: npm forwards the signal again): it exits and removes its state directory', async () => {
  const c = spawn(process.execPath, [MAIN, 'showcase', '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let onErr = (): void => {};
  c.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    onErr();
  });
  const l = new Lines(c);
  let dir = '';
  try {
    dir = /embedded SQLite in (\S+) /.exec(await l.wait(/^Chokepoint showcase/, 60_000))![1];
    await l.wait(/^The story/, 60_000);
    const exited = new Promise<[number | null, string | null]>((r) =>
      c.once('exit', (code, sig) => r([code, sig])),
    );
    const stopping = new Promise<void>((r) => {
      onErr = () => {
        if (/SIGTERM, stopping/.test(err)) r();
      };
    });
    c.kill('SIGTERM');
    await stopping; // the first one is being handled
    c.kill('SIGTERM');
    const [code, sig] = await exited;
    assert.equal(sig, null, `ended by its own handler, not by the signal; stderr:\n${err}`);
    assert.ok(code === 0 || code === 1, `exit code ${code}`);
    assert.equal(existsSync(dir), false, `${dir} removed`);
  } finally {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (dir.startsWith(tmpdir())) rmSync(dir, { recursive: true, force: true });
  }
});

describe('chokepoint showcase: controller, demo fleet and the 2021 story', () => {
  let child: ChildProcess;
  let lines: Lines;
  let url = '';
  let admin = '';
  let viewer = '';
  let stateDir = '';
  let storyLine = '';
  const api = async (token: string, path: string) => {
    const r = await fetch(url + path, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, `${path}: ${r.status}`);
    return (await r.json()) as any;
  };

  before(async () => {
    child = spawn(process.execPath, [MAIN, 'showcase', '--listen', '127.0.0.1:0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr!.resume();
    lines = new Lines(child);
    stateDir = /embedded SQLite in (\S+) /.exec(await lines.wait(/^Chokepoint showcase/, 60_000))![1];
    url = /^Dashboard: (http:\/\/127\.0\.0\.1:\d+)\/$/.exec(await lines.wait(/^Dashboard: /, 60_000))![1];
    admin = /\): (\S+)$/.exec(await lines.wait(/^Sign-in token \(role admin/, 60_000))![1];
    viewer = /\): (\S+)$/.exec(await lines.wait(/^Sign-in token \(role viewer/, 60_000))![1];
    storyLine = await lines.wait(/^Story done/, 240_000);
  });
  after(() => {
    // a failed test: do not leave the showcase (or its state directory) behind
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (stateDir.startsWith(tmpdir())) rmSync(stateDir, { recursive: true, force: true });
  });

  test('the printed tokens sign in (a session cookie) and have the printed roles', async () => {
    assert.ok(existsSync(stateDir), stateDir);
    const page = await fetch(url + '/');
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<title>Chokepoint controller<\/title>/);
    const s = await fetch(url + '/ui/session', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: admin }),
    });
    assert.equal(s.status, 200);
    const cookie = (s.headers.get('set-cookie') ?? '').split(';')[0];
    assert.ok(cookie.includes('='), 'a session cookie');
    const who = await fetch(url + '/v1/whoami', { headers: { cookie } });
    assert.equal(who.status, 200);
    assert.equal(((await who.json()) as any).role, 'admin');
    assert.equal((await api(viewer, '/v1/whoami')).role, 'viewer');
  });

  test('the *t.co* rollout was rolled back by the canary analysis; every box is on the good version', async () => {
    const { rollouts } = await api(viewer, '/v1/rollouts');
    assert.equal(rollouts.length, 1, JSON.stringify(rollouts));
    const ro = await api(viewer, `/v1/rollouts/${rollouts[0].id}`);
    assert.equal(ro.state, 'rolled_back', ro.reason);
    assert.match(ro.reason, /^analysis failed at stage canary: (pattern_flows|blocked_share) on box-canary /);
    assert.deepEqual(
      ro.stages.map((s: any) => [s.name, s.mode, s.state]),
      [
        ['shadow', 'shadow', 'passed'],
        ['canary', 'enforce', 'rolled_back'],
        ['all', 'enforce', 'pending'],
      ],
    );
    assert.deepEqual(ro.stages[1].nodes, ['box-canary']);
    // the collateral, seen by the canary itself: names through the pattern its baseline never had
    const canary = ro.samples.filter((x: any) => x.stage === 1 && x.node === 'box-canary');
    const pf = canary.filter((x: any) => x.metric === 'pattern_flows' && !x.pass);
    assert.ok(pf.length >= 1, JSON.stringify(canary));
    const names = new Set(pf.flatMap((x: any) => x.names ?? []));
    assert.ok(
      [...names].some((n) => /(^|\.)(reddit|microsoft)\.com$/.test(String(n))),
      `collateral names in the failing samples: ${[...names].join(', ')}`,
    );
    // the baseline is the box's traffic under the good version, not an empty window
    const bs = canary.filter((x: any) => x.metric === 'blocked_share');
    assert.ok(bs.length >= 1 && bs.every((x: any) => x.baseline > 0), JSON.stringify(bs));
    // the shadow stage saw the same names without enforcing them
    const sh = ro.samples.filter((x: any) => x.stage === 0 && x.metric === 'pattern_flows');
    assert.ok(
      sh.some((x: any) => (x.names ?? []).length > 0),
      JSON.stringify(sh),
    );

    const bad = await api(viewer, `/v1/versions/${ro.version_id}`);
    assert.equal(bad.status, 'failed');
    assert.ok(bad.override?.reason, 'the *t.co* version carries the admin override');
    assert.ok(bad.findings.some((f: any) => f.code === 'emulation-substring' && f.severity === 'error'));
    assert.equal(bad.approvals.length, 2);
    const good = await api(viewer, `/v1/versions/${ro.prev_version_id}`);
    assert.equal(good.status, 'active');
    const { nodes } = await api(viewer, '/v1/nodes');
    assert.deepEqual(nodes.map((n: any) => n.name).sort(), ['box-canary', 'box-north', 'box-south']);
    assert.equal(nodes.find((n: any) => n.name === 'box-canary').labels.tier, 'canary');
    for (const n of nodes) {
      assert.ok(n.active_version >= ro.bundle_version, `${n.name} on ${n.active_version}`);
      assert.equal(n.drift, false, n.name);
      assert.equal(n.traffic?.policy_version, good.id, `${n.name} reports traffic under the good version`);
    }
    // the registry has the 2021 entry with its provenance
    const why = await api(viewer, '/v1/registry/why?name=reddit.com');
    assert.ok(JSON.stringify(why).includes('Example Regulator'), JSON.stringify(why));
    assert.equal((await api(viewer, '/v1/audit/verify')).ok, true);
    assert.match(storyLine, new RegExp(`rollout #${ro.id} of version #${ro.version_id} rolled back`));
  });

  test(
    'chromium: signed in with the printed token, the Rollouts page shows the rollback and its reason',
    { skip: need(existsSync(CHROMIUM), 'needs Debian chromium (scripts/test-deps.txt)') },
    async () => {
      const { rollouts } = await api(viewer, '/v1/rollouts');
      const id = rollouts[0].id;
      const { chromium } = await import('playwright-core');
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
      try {
        const page = await browser.newPage();
        const errors: string[] = [];
        page.on('pageerror', (e: Error) => errors.push(e.message));
        await page.goto(url + '/');
        await page.getByLabel('API token').fill(admin);
        await page.getByRole('button', { name: 'Sign in' }).click();
        await page.getByText('Signed in as visitor').waitFor();
        await page.goto(`${url}/#rollouts?id=${id}`);
        await page.getByRole('heading', { name: `Rollout #${id}: rolled_back` }).waitFor();
        const reason = await page.getByTestId('rollout-reason').innerText();
        assert.equal(reason, 'Reason: ' + rollouts[0].reason);
        assert.match(reason, /analysis failed at stage canary/);
        assert.deepEqual(errors, []);
      } finally {
        await browser.close();
      }
    },
  );

  test(
    'SIGINT stops everything: exit code 0, no child process, the state directory removed',
    { timeout: 60_000 },
    async () => {
      const pid = child.pid!;
      const exited = new Promise<[number | null, string | null]>((r) =>
        child.once('exit', (code, sig) => r([code, sig])),
      );
      assert.deepEqual(childrenOf(pid), [], 'the showcase runs its boxes in-process');
      child.kill('SIGINT');
      assert.deepEqual(await exited, [0, null]);
      assert.equal(existsSync(`/proc/${pid}`), false);
      assert.equal(existsSync(stateDir), false, `${stateDir} removed`);
    },
  );
});
