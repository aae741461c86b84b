/**
 * @module cli/epipe.test
 * `chokepoint … | head`: when the reader of stdout goes away, the CLI stops at once with status 0
 * and prints nothing on stderr (no EPIPE stack trace) — for the buffered JSON-lines writer
 * (`analyze`, `simulate`, more output than a pipe holds) and for plain stream writes (`demo`).
 * Real pipes, made by bash, to real `head`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PcapWriter } from '../gen/pcap-writer.js';
import { generate } from '../gen/synth.js';
import { tempDir } from '../testutil/pcap.js';
import { run } from '../util/run.js';

const here = dirname(fileURLToPath(import.meta.url));
const fromSource = import.meta.url.endsWith('.ts');
const CLI = fromSource
  ? [process.execPath, '--import', 'tsx', join(here, 'main.ts')]
  : [process.execPath, join(here, 'main.js')];
const PROFILE = join(here, '..', '..', ...(fromSource ? [] : ['..']), 'profiles', 'tspu-2021-03-10.yaml');

const tmp = tempDir('chokepoint-epipe-');
let cap = '';
before(() => {
  cap = tmp.path('many.pcap');
  const fd = openSync(cap, 'w');
  try {
    generate(new PcapWriter(fd), { seed: 7, flows: 2000 }); // ≈ 1 MB of records: more than a pipe holds
  } finally {
    closeSync(fd);
  }
});
after(() => tmp.cleanup());

/** Run `chokepoint ARGS | READER` in bash; the CLI's exit status, its stderr, the reader's output. */
async function piped(args: string[], reader: string) {
  const errFile = tmp.path(`err-${Math.random().toString(36).slice(2)}.txt`);
  const r = await run(
    [
      'bash',
      '-c',
      `"$@" 2>"${errFile}" | ${reader}; echo "status=\${PIPESTATUS[0]}" >&2; cat "${errFile}" >&2`,
      'piped',
      ...CLI,
      ...args,
    ],
    { timeoutMs: 120_000 },
  );
  const m = /^status=(\d+)\n([\s\S]*)$/.exec(r.stderr);
  assert.ok(m, r.stderr);
  return { status: Number(m[1]), stderr: m[2], out: r.stdout };
}

test('analyze | head -n 1: one record out, status 0, nothing on stderr', { timeout: 120_000 }, async () => {
  const r = await piped(['analyze', cap], 'head -n 1');
  assert.equal(r.stderr, '');
  assert.equal(r.status, 0);
  assert.equal(JSON.parse(r.out).event_type, 'flow');
});

test('analyze --format table | head and simulate | head: status 0, quiet', { timeout: 120_000 }, async () => {
  for (const args of [
    ['analyze', '--format', 'table', cap],
    ['simulate', '--policy', PROFILE, cap],
  ]) {
    const r = await piped(args, 'head -c 100 >/dev/null');
    assert.deepEqual([r.status, r.stderr], [0, ''], args.join(' '));
  }
});

test('demo | true (reader gone before the first write): status 0, quiet', { timeout: 120_000 }, async () => {
  const r = await piped(['demo'], 'true');
  assert.deepEqual([r.status, r.stderr], [0, '']);
});

test('a command may replace the handler (e.g. to clean up first); it runs once', async () => {
  const mod = new URL(fromSource ? '../util/epipe.ts' : '../util/epipe.js', import.meta.url).href;
  const code = `import { exitQuietlyOnEpipe, setOutputClosedHandler } from '${mod}';
exitQuietlyOnEpipe(process.stdout);
let n = 0;
setOutputClosedHandler(() => { n++; setTimeout(() => { process.stderr.write('cleaned up ' + n + '\\n'); process.exit(3); }, 50); });
const line = 'x'.repeat(1000) + '\\n';
const iv = setInterval(() => { for (let i = 0; i < 100; i++) process.stdout.write(line); }, 1);`;
  const script = tmp.path('handler.mjs');
  writeFileSync(script, code);
  const node = fromSource ? [process.execPath, '--import', 'tsx'] : [process.execPath];
  const r = await run(
    [
      'bash',
      '-c',
      `"$@" | head -c 10 >/dev/null; echo "status=\${PIPESTATUS[0]}" >&2`,
      'piped',
      ...node,
      script,
    ],
    { timeoutMs: 60_000 },
  );
  assert.equal(r.stderr, 'cleaned up 1\nstatus=3\n');
});
