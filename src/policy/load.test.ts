/**
 * @module policy/load.test
 * Loading: a malformed policy or list file is rejected whole, with file:line:column pointing at the
 * offending key, value or list line, and a message saying what is wrong.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPolicyFile } from './load.js';
import { PolicyError } from './errors.js';
import { tempDir } from './testutil.js';

async function loadErr(
  yaml: string,
  files: Record<string, string> = {},
): Promise<{ err: PolicyError; dir: string }> {
  const t = tempDir();
  try {
    for (const [k, v] of Object.entries(files)) writeFileSync(join(t.dir, k), v);
    writeFileSync(join(t.dir, 'p.yaml'), yaml);
    await loadPolicyFile(join(t.dir, 'p.yaml'));
  } catch (e) {
    assert.ok(e instanceof PolicyError, `expected PolicyError, got ${String(e)}`);
    assert.equal(e.code, 'ERR_POLICY');
    return { err: e, dir: t.dir };
  } finally {
    t.cleanup();
  }
  throw new Error('policy was accepted');
}

/** [name, policy, line, token at which the error must point (first occurrence on that line), message] */
const cases: [string, string, number, string, RegExp][] = [
  [
    'payload past the 16 kept bytes',
    'rules:\n  - id: a\n    action: block\n    match:\n      payload: [{offset: 14, hex: "000000"}]\n',
    5,
    '{offset',
    /past the first 16 payload bytes/,
  ],
  [
    'payload_len not a length',
    'rules:\n  - id: a\n    action: block\n    match:\n      payload_len: ">1001"\n',
    5,
    '">1001"',
    /not a length or a range/,
  ],
  [
    'empty payload_len range',
    'rules:\n  - id: a\n    action: block\n    match:\n      payload_len: 30-20\n',
    5,
    '30-20',
    /empty length range/,
  ],
  [
    'payload hex odd',
    'rules:\n  - id: a\n    action: block\n    match:\n      payload: [{offset: 1, hex: "000"}]\n',
    5,
    '"000"',
    /wrong form/,
  ],
  [
    'except_dest_ip not a CIDR',
    'rules:\n  - id: a\n    action: block\n    match:\n      except_dest_ip: [10.0.0.300]\n',
    5,
    '10.0.0.300',
    /invalid IPv4/,
  ],
  ['YAML syntax', 'rules:\n  - id: a\n    action: [block\n', 4, '', /YAML/],
  ['duplicate key', 'rules: []\nrules: []\n', 2, 'rules', /unique|duplicate/i],
  ['unknown top-level key', 'rules: []\nrulez: []\n', 2, 'rulez', /unknown key 'rulez'/],
  [
    'unknown rule key (typo)',
    'rules:\n  - id: a\n    action: block\n    mtach: {}\n',
    4,
    'mtach',
    /rules\[0\]: unknown key 'mtach'.*match/,
  ],
  [
    'unknown host kind',
    'rules:\n  - id: a\n    action: block\n    match:\n      host: {prefix: [x]}\n',
    5,
    'prefix',
    /unknown key 'prefix'/,
  ],
  ['bad action', 'rules:\n  - {id: a, action: deny}\n', 2, 'deny', /"deny" is not one of/],
  ['missing id', 'rules:\n  - {action: block}\n', 2, '{', /missing required key 'id'/],
  [
    'wildcard in a name',
    'rules:\n  - id: a\n    action: block\n    match:\n      host:\n        suffix:\n          - ok.example\n          - "*.bad.example"\n',
    8,
    '"*.bad',
    /wildcard.*subdomains/,
  ],
  [
    'bad character in a name',
    'rules:\n  - id: a\n    action: block\n    match: {host: {exact: [ok.example, "bad name.example"]}}\n',
    4,
    '"bad name',
    /invalid character ' '/,
  ],
  [
    'empty label',
    'rules:\n  - {id: a, action: block, match: {host: {exact: [a..b]}}}\n',
    2,
    'a..b',
    /empty label/,
  ],
  [
    'bad CIDR',
    'rules:\n  - {id: a, action: block, match: {dest_ip: [10.0.0.0/8, 10.0.0.1/8]}}\n',
    2,
    '10.0.0.1/8',
    /host bits set.*10\.0\.0\.0\/8/,
  ],
  [
    'bad IPv6',
    'rules:\n  - {id: a, action: block, match: {dest_ip: ["2001:db8:::1"]}}\n',
    2,
    '"2001',
    /invalid IPv6/,
  ],
  ['throttle without rate', 'rules:\n  - {id: a, action: throttle}\n', 2, '{', /needs 'rate'/],
  [
    'ambiguous rate unit',
    'rules:\n  - {id: a, action: throttle, rate: 128kbps}\n',
    2,
    '128kbps',
    /ambiguous/,
  ],
  [
    'rate on a block rule',
    'rules:\n  - {id: a, action: block, rate: 1mbit}\n',
    2,
    'rate',
    /only to action 'throttle'/,
  ],
  [
    'method on a log rule',
    'rules:\n  - {id: a, action: log, method: rst}\n',
    2,
    'method',
    /only to action 'block'/,
  ],
  [
    'duplicate id',
    'rules:\n  - {id: a, action: log}\n  - {id: a, action: block}\n',
    3,
    'a,',
    /duplicate rule id 'a' \(first used at line 2\)/,
  ],
  [
    'bad port range',
    'rules:\n  - {id: a, action: log, match: {dest_port: [80, "90-85"]}}\n',
    2,
    '"90-85"',
    /empty port range/,
  ],
  [
    'port out of range',
    'rules:\n  - {id: a, action: log, match: {dest_port: 70000}}\n',
    2,
    '70000',
    /out of range/,
  ],
  ['bad JA4', 'rules:\n  - {id: a, action: log, match: {ja4: [nope]}}\n', 2, 'nope', /not a JA4/],
  [
    'bad QUIC version',
    'rules:\n  - {id: a, action: log, match: {quic_version: [v9]}}\n',
    2,
    'v9',
    /not a QUIC version/,
  ],
  ['bad expires', 'rules:\n  - {id: a, action: log, expires: tomorrow}\n', 2, 'tomorrow', /wrong form/],
  [
    'protected_override without reason',
    'rules:\n  - {id: a, action: block, protected_override: {}}\n',
    2,
    '{}',
    /missing required key 'reason'/,
  ],
  ['default throttle without rate', 'default: throttle\nrules: []\n', 1, 'throttle', /needs a rate/],
  ['a list instead of a mapping', '- a\n- b\n', 1, '-', /must be a mapping/],
  ['rules not a list', 'rules: {a: 1}\n', 1, '{', /must be array/],
];

for (const [name, yaml, line, token, re] of cases) {
  test(`rejected with position: ${name}`, async () => {
    const { err } = await loadErr(yaml);
    assert.match(err.detail, re);
    const text = yaml.split('\n')[line - 1];
    const column = token === '' ? 1 : text.indexOf(token) + 1;
    assert.ok(column > 0, 'token not on the line');
    assert.deepEqual([err.line, err.column], [line, column], err.message);
    assert.ok(err.file.endsWith('p.yaml'));
    assert.ok(err.message.startsWith(`${err.file}:${line}:${column}: `));
  });
}

test('empty policy file is rejected', async () => {
  const { err } = await loadErr('');
  assert.match(err.detail, /empty/);
});

test('a bad line in a list file is reported at the list file line and column', async () => {
  const { err } = await loadErr(
    'rules:\n  - {id: a, action: block, match: {host: {suffix_file: lists/x.txt}}}\n',
    {
      lists: '',
    },
  ).catch(() => ({ err: null as unknown as PolicyError, dir: '' }));
  // 'lists' is a file here, so lists/x.txt cannot be read: reported at the suffix_file key's value
  assert.ok(err);
  assert.match(err.detail, /cannot read list file/);
  const l2 = 'rules:\n  - {id: a, action: block, match: {host: {suffix_file: lists/x.txt}}}\n'.split('\n')[1];
  assert.deepEqual([err.line, err.column], [2, l2.indexOf('lists/x.txt') + 1]);

  const t = tempDir();
  try {
    writeFileSync(
      join(t.dir, 'names.txt'),
      '# registry\nok.example\n\n  good.example   # trailing comment\n   bad_name!.example\n',
    );
    writeFileSync(
      join(t.dir, 'p.yaml'),
      'rules:\n  - {id: a, action: block, match: {host: {suffix_file: names.txt}}}\n',
    );
    await assert.rejects(loadPolicyFile(join(t.dir, 'p.yaml')), (e: unknown) => {
      assert.ok(e instanceof PolicyError);
      assert.equal(e.file, join(t.dir, 'names.txt'));
      assert.deepEqual([e.line, e.column], [5, 4]);
      assert.match(e.detail, /invalid character '!'/);
      return true;
    });
    writeFileSync(join(t.dir, 'cidrs.txt'), '10.0.0.0/8\n2001:db8::/32\n300.1.1.1\n');
    writeFileSync(
      join(t.dir, 'q.yaml'),
      'rules:\n  - {id: a, action: block, match: {dest_ip_file: cidrs.txt}}\n',
    );
    await assert.rejects(
      loadPolicyFile(join(t.dir, 'q.yaml')),
      (e: unknown) =>
        e instanceof PolicyError && e.line === 3 && e.column === 1 && /invalid IPv4/.test(e.detail),
    );
  } finally {
    t.cleanup();
  }
});

test('list files load relative to the policy file, comments and blanks ignored, names normalised', async () => {
  const t = tempDir();
  try {
    writeFileSync(join(t.dir, 'n.txt'), '\ufeff# c\nA.Example.\n\nb.example # x\nпример.рф\n');
    writeFileSync(join(t.dir, 'c.txt'), '10.0.0.0/8\n::ffff:192.168.0.0/120\n');
    writeFileSync(
      join(t.dir, 'p.yaml'),
      'rules:\n  - {id: a, action: block, match: {host: {exact: [c.example], exact_file: n.txt}, dest_ip_file: c.txt}}\n',
    );
    const p = await loadPolicyFile(join(t.dir, 'p.yaml'));
    assert.deepEqual(p.rules[0].match.host!.exact, [
      'c.example',
      'a.example',
      'b.example',
      'xn--e1afmkfd.xn--p1ai',
    ]);
    assert.deepEqual(p.rules[0].match.dest_ip, ['10.0.0.0/8', '192.168.0.0/24']);
    assert.equal(p.rules[0].lists.length, 2);
  } finally {
    t.cleanup();
  }
});

test('a missing policy file is a PolicyError', async () => {
  await assert.rejects(
    loadPolicyFile('/nonexistent/chokepoint/p.yaml'),
    (e: unknown) => e instanceof PolicyError && /cannot read/.test(e.detail),
  );
});
