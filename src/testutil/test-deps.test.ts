/**
 * @module testutil/test-deps.test
 * scripts/test-deps.sh, the installer of the tests' Debian packages: one list (scripts/test-deps.txt)
 * used by `npm test` (pretest) and by .ci/run; comments and blank lines in it are ignored; nothing
 * happens when every package is there; as a non-root user a missing package is named with the
 * `apt-get install` line — exit 0 locally, exit 1 under CI=true. (The root install path itself runs
 * on every CI run and on every `npm test` as root on a fresh machine.)
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../util/run.js';
import { haveTool, haveTools, isRoot, need } from './require.js';

const root = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../..' : '../../..', import.meta.url));
const script = join(root, 'scripts', 'test-deps.sh');
const dir = mkdtempSync(join(tmpdir(), 'cp-test-deps-'));
chmodSync(dir, 0o755);
after(() => rmSync(dir, { recursive: true, force: true }));

function list(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text, { mode: 0o644 });
  return p;
}

test('one list: .ci/run and npm test both run scripts/test-deps.sh; the list has what helpers need', () => {
  const ci = readFileSync(join(root, '.ci', 'run'), 'utf8');
  assert.match(ci, /^bash scripts\/test-deps\.sh$/m);
  assert.doesNotMatch(ci, /apt-get install/, '.ci/run keeps no package list of its own');
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  assert.equal(pkg.scripts.pretest, 'bash scripts/test-deps.sh');
  const names = readFileSync(join(root, 'scripts', 'test-deps.txt'), 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
  for (const p of ['ngtcp2-client', 'tshark', 'iptables', 'postgresql', 'libpcap0.8', 'prometheus'])
    assert.ok(names.includes(p), `${p} listed`);
  for (const n of names)
    assert.match(n, /^[a-z0-9][a-z0-9+.-]+$/, `one Debian package name per line: '${n}'`);
});

test(
  'every listed package present: silent, exit 0',
  { skip: need(haveTool('dpkg-query'), 'dpkg-query missing (not Debian)') },
  async () => {
    const l = list('present.txt', '# comment line\n\nbash   # the shell\n  coreutils\n');
    const r = await run(['bash', script], { env: { CHOKEPOINT_TEST_DEPS_LIST: l, CI: 'true' } });
    assert.deepEqual([r.code, r.stderr], [0, '']);
  },
);

test(
  'not root: the missing package and the apt-get line are printed; exit 0 locally, 1 under CI=true',
  {
    skip: need(
      isRoot() && haveTools('setpriv', 'dpkg-query'),
      'needs root (to run the script as nobody) and setpriv',
    ),
  },
  async () => {
    const l = list('missing.txt', 'bash\nchokepoint-no-such-package\n');
    const asNobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'bash', script];
    const local = await run(asNobody, { env: { CHOKEPOINT_TEST_DEPS_LIST: l, CI: '' } });
    assert.equal(local.code, 0, local.stderr);
    assert.match(local.stderr, /missing Debian packages: chokepoint-no-such-package\n/);
    assert.match(local.stderr, /sudo apt-get install -y chokepoint-no-such-package/);
    const ci = await run(asNobody, { env: { CHOKEPOINT_TEST_DEPS_LIST: l, CI: 'true' } });
    assert.equal(ci.code, 1, ci.stderr);
    assert.match(ci.stderr, /chokepoint-no-such-package/);
  },
);
