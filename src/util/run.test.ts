/**
 * @module util/run.test
 * The process runner on real processes: output and exit status, stdin, environment and cwd,
 * `check`, a missing executable, and the timeout (the child is killed, the result says so).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { realpathSync } from 'node:fs';
import { CommandError, run } from './run.js';

const node = (code: string): string[] => [process.execPath, '-e', code];

test('collects stdout, stderr and the exit status', async () => {
  const r = await run(node("process.stdout.write('out'); process.stderr.write('err'); process.exit(3)"));
  assert.deepEqual(r, { stdout: 'out', stderr: 'err', code: 3, signal: null, timedOut: false });
  const killed = await run(node("process.kill(process.pid, 'SIGTERM'); setTimeout(() => {}, 10_000)"));
  assert.deepEqual([killed.code, killed.signal, killed.timedOut], [-1, 'SIGTERM', false]);
});

test('stdin, environment and working directory', async () => {
  const r = await run(
    node(
      "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(s.toUpperCase(),process.env.RUN_T,process.cwd()))",
    ),
    { input: 'abc', env: { RUN_T: 'v1' }, cwd: tmpdir() },
  );
  assert.equal(r.stdout.trim(), `ABC v1 ${realpathSync(tmpdir())}`);
});

test('check: a non-zero exit rejects with ERR_CMD_FAILED and the stderr', async () => {
  await assert.rejects(run(node("console.error('boom'); process.exit(2)"), { check: true }), (e: unknown) => {
    assert.ok(e instanceof CommandError);
    assert.equal(e.code, 'ERR_CMD_FAILED');
    assert.match(e.message, /boom/);
    assert.equal(e.result?.code, 2);
    return true;
  });
  assert.equal((await run(node('process.exit(0)'), { check: true })).code, 0);
});

test('a missing executable rejects with ERR_CMD_SPAWN', async () => {
  await assert.rejects(run(['/nonexistent/chokepoint-no-such-tool']), { code: 'ERR_CMD_SPAWN' });
});

test('the timeout kills the command: code -1 and a note on stderr', async () => {
  const t0 = Date.now();
  const r = await run(node('setTimeout(() => {}, 60_000)'), { timeoutMs: 300 });
  assert.deepEqual([r.code, r.signal, r.timedOut], [-1, 'SIGKILL', true]);
  assert.match(r.stderr, /killed after 300 ms/);
  assert.ok(Date.now() - t0 < 30_000);
});
