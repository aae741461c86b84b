/**
 * `chokepoint enforce` fleet options: bad input is a usage error (exit 2) naming the option, before
 * anything touches the network or the kernel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

test('enforce --controller: usage errors name the option (exit 2)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cp-enforce-cli-'));
  try {
    const pub = join(dir, 'root.pub');
    writeFileSync(pub, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(dir, 'junk.pub'), 'not a key\n');
    const env = { ...process.env };
    delete env.CHOKEPOINT_TOKEN;
    const run = (args: string[]) =>
      spawnSync(process.execPath, [MAIN, 'enforce', ...args], { env, encoding: 'utf8', timeout: 20_000 });
    const base = ['--controller', 'http://127.0.0.1:1', '--token', 't', '--trust', pub, '--node', 'box1'];
    const cases: [string[], RegExp][] = [
      [['--controller', 'http://127.0.0.1:1', '--trust', pub, '--node', 'box1'], /--token/],
      [['--controller', 'http://127.0.0.1:1', '--token', 't', '--node', 'box1'], /--trust/],
      [['--controller', 'http://127.0.0.1:1', '--token', 't', '--trust', join(dir, 'junk.pub'), '--node', 'b'], /--trust .*not a readable public key/],
      [['--controller', 'http://127.0.0.1:1', '--token', 't', '--trust', pub], /--node/],
      [[...base, '--labels', 'tier'], /--labels/],
      [[...base, '--on-expired', 'maybe'], /--on-expired/],
      [[...base, '--poll-wait', '9999'], /--poll-wait/],
      [[...base, '--policy', join(dir, 'p.yaml')], /exclude each other/],
      [['--controller', 'ftp://x', '--token', 't', '--trust', pub, '--node', 'b'], /--controller/],
    ]; // prettier-ignore
    for (const [args, re] of cases) {
      const r = run(args);
      assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
