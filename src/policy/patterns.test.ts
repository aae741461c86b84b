import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPolicyFile } from './load.js';
import { compilePolicy } from './compile.js';
import { compilePolicyToFile, loadCompiled } from './compiled.js';
import { PatternIndex } from './patterns.js';
import type { Decision } from './types.js';

const THROTTLE: Decision = { rule_id: 'tco', action: 'throttle' } as Decision;

// host → caught by the pattern (not by one of the rule's names); written by hand
const CASES: [string, boolean][] = [
  ['t.co', false], // exact entry
  ['T.CO.', false], // the same, case and trailing dot
  ['twitter.com', false], // suffix entry, the name itself
  ['api.twitter.com', false], // suffix entry, below it
  ['img.twimg.com', false], // subdomains entry, below it
  ['twimg.com', true], // subdomains entry does not cover the name itself
  ['microsoft.com', true],
  ['reddit.com', true],
  ['throttletwitter.com', true], // not below twitter.com at a label
];

test('viaPattern: a name caught only by the substring, from text and from a compiled registry file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cp-patterns-'));
  try {
    writeFileSync(join(dir, 'exact.txt'), 't.co\n');
    writeFileSync(join(dir, 'suffix.txt'), 'twitter.com\n');
    writeFileSync(join(dir, 'sub.txt'), 'twimg.com\n');
    writeFileSync(join(dir, 'substring.txt'), 't.co\n');
    writeFileSync(
      join(dir, 'policy.yaml'),
      `version: 1
default: allow
rules:
  - id: other
    action: block
    match: {host: {exact: [example.org]}}
  - id: tco
    action: throttle
    rate: 128kbit
    match:
      host: {exact_file: exact.txt, suffix_file: suffix.txt, subdomains_file: sub.txt, substring_file: substring.txt}
`,
    );
    const text = compilePolicy(await loadPolicyFile(join(dir, 'policy.yaml')));
    await compilePolicyToFile(join(dir, 'policy.yaml'), join(dir, 'p.compiled'));
    const bin = await loadCompiled(join(dir, 'p.compiled'));
    for (const [label, m] of [
      ['text', text],
      ['compiled file', bin],
    ] as const) {
      const pi = new PatternIndex(m);
      assert.equal(pi.empty, false, label);
      for (const [host, want] of CASES)
        assert.equal(pi.viaPattern(THROTTLE, host), want, `${label}: ${host}`);
      // not a pattern rule, an allow, or no host: never via a pattern
      assert.equal(pi.viaPattern({ rule_id: 'other', action: 'block' } as Decision, 'reddit.com'), false);
      assert.equal(pi.viaPattern({ rule_id: null, action: 'allow' } as Decision, 'reddit.com'), false);
      assert.equal(pi.viaPattern(THROTTLE, null), false);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('viaPattern: a policy without pattern entries is empty', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cp-patterns-'));
  try {
    writeFileSync(
      join(dir, 'policy.yaml'),
      'version: 1\ndefault: allow\nrules:\n  - id: a\n    action: block\n    match: {host: {suffix: [t.co]}}\n',
    );
    assert.equal(new PatternIndex(compilePolicy(await loadPolicyFile(join(dir, 'policy.yaml')))).empty, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
