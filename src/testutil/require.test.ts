/**
 * @module testutil/require.test
 * `need` and `needIn` in a child test run: locally a missing prerequisite skips with its reason;
 * with CI=true the run fails and names it; a present prerequisite runs the test either way.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../util/run.js';
import { haveTool, haveTools, havePath } from './require.js';

const fromSource = import.meta.url.endsWith('.ts');
const helper = new URL(fromSource ? './require.ts' : './require.js', import.meta.url).href;
const dir = mkdtempSync(join(tmpdir(), 'cp-require-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const file = join(dir, 'child.test.mjs');
writeFileSync(
  file,
  `import { test } from 'node:test';
import { need, needIn } from '${helper}';
test('has it', { skip: need(true, 'never missing') }, () => {});
test('lacks it', { skip: need(false, 'tool-x not installed') }, () => { throw new Error('ran'); });
test('lacks it too', { skip: need(false, 'tool-x not installed') }, () => { throw new Error('ran'); });
test('inside', (t) => { if (!needIn(t, false, 'corpus-y absent')) return; throw new Error('ran'); });
`,
);

async function child(env: NodeJS.ProcessEnv) {
  const args = [...(fromSource ? ['--import', 'tsx'] : []), '--test', '--test-reporter=tap', file];
  // NODE_TEST_CONTEXT unset: the child is a test runner of its own, not a subtest of this one
  return run([process.execPath, ...args], {
    env: { ...env, NODE_TEST_CONTEXT: undefined },
    timeoutMs: 60_000,
  });
}

test('locally (CI unset): missing prerequisites skip with their reason, the run passes', async () => {
  const r = await child({ CI: '' });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /ok \d+ - lacks it # SKIP tool-x not installed/);
  assert.match(r.stdout, /ok \d+ - inside # SKIP corpus-y absent/);
  assert.match(r.stdout, /# pass 1\b/);
  assert.match(r.stdout, /# skipped 3\b/);
});

test('CI=true: the run fails, naming each missing prerequisite once', async () => {
  const r = await child({ CI: 'true' });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal(r.stdout.match(/not ok \d+ - missing prerequisite: tool-x not installed/g)?.length, 1);
  assert.match(r.stdout, /not ok \d+ - inside/);
  assert.match(r.stdout, /missing prerequisite: corpus-y absent/);
  assert.match(r.stdout, /# fail 2\b/);
  assert.doesNotMatch(r.stdout, /Error: ran/);
});

test('tool and path probes', () => {
  assert.equal(haveTool('sh'), true);
  assert.equal(haveTool('chokepoint-surely-not-a-tool'), false);
  assert.equal(haveTools('sh', 'chokepoint-surely-not-a-tool'), false);
  assert.equal(havePath(dir), true);
  assert.equal(havePath(join(dir, 'nope')), false);
});
