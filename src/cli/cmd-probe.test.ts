/**
 * @module cli/cmd-probe.test
 * `chokepoint probe --residual S`: out-of-range or non-integer values are refused with a usage error
 * naming the option, before any connection is made (the server address is loopback port 9, which
 * nothing would answer).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from './cmd-probe.js';

for (const bad of ['0', '-1', '3601', '2.5', 'ten', '']) {
  test(`--residual '${bad}' is refused, naming the option`, async () => {
    await assert.rejects(
      run(['--server', '127.0.0.1:9', '--name', 'a.example', `--residual=${bad}`]),
      (e: Error) => e.name === 'UsageError' && /--residual wants an integer 1\.\.3600/.test(e.message),
    );
  });
}

test('--residual appears in the help', async () => {
  let out = '';
  const w = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  try {
    assert.equal(await run(['--help']), 0);
  } finally {
    process.stdout.write = w;
  }
  assert.match(out, /--residual S/);
});
