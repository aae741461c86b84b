/**
 * @module policy/lint.test
 * Lint findings (each code on a policy built to trigger it, and not on a clean one), blast radius
 * against small hand-made reference lists, the tspu-2021 profile against the top-10k reference (skips
 * when the corpus is absent), and the CLI's output formats and exit codes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lintPolicy, type Finding } from './lint.js';
import { loadPolicyFile } from './load.js';
import { policyFrom, tempDir } from './testutil.js';
import { parseNamesText } from './reference.js';
import { repoRoot, runCli } from './clitest.js';
import { need } from '../testutil/require.js';

const TOP10K = join(repoRoot(), '..', 'shared', 'corpus', 'reference', 'top10k.txt');
const PROFILE = join(repoRoot(), 'profiles', 'tspu-2021-03-10.yaml');
const PROFILE_FIXED = join(repoRoot(), 'profiles', 'tspu-2021-04.yaml');

const codes = (fs: Finding[], rule?: string) =>
  fs.filter((f) => rule === undefined || f.rule_id === rule).map((f) => `${f.severity}:${f.code}`);

/** A ranked reference made for these tests (not from the code under test). */
const REF = parseNamesText(
  [
    'google.com',
    'microsoft.com',
    'reddit.com',
    't.co',
    'example.com',
    'twitter.com',
    'api.twitter.com',
    'throttletwitter.com',
    'rt.com',
    'pbs.twimg.com',
    'gov.example',
  ].join('\n'),
  'test-ref',
);

test('substring and endswith patterns are errors, with reference hits in rank order', async () => {
  const p = await loadPolicyFile(PROFILE);
  const fs = lintPolicy(p, { references: [REF] });
  const sub = fs.find((f) => f.code === 'emulation-substring')!;
  assert.equal(sub.severity, 'error');
  assert.equal(sub.rule_id, 'tco-substring');
  // by hand: names in REF containing "t.co": microsoft.com, reddit.com, t.co, rt.com
  assert.equal(sub.count, 4);
  assert.deepEqual(sub.examples, ['microsoft.com', 'reddit.com', 't.co', 'rt.com']);
  const ew = fs.find((f) => f.code === 'emulation-endswith')!;
  assert.equal(ew.severity, 'error');
  assert.deepEqual(ew.examples, ['twitter.com', 'api.twitter.com', 'throttletwitter.com']);
  assert.ok(fs.some((f) => f.code === 'short-pattern' && f.rule_id === 'tco-substring'));
  const br = fs.find((f) => f.code === 'blast-radius' && f.rule_id === 'twimg-subdomains')!;
  assert.deepEqual([br.count, br.examples], [1, ['pbs.twimg.com']]);
});

test('without a reference the emulation patterns are still errors', async () => {
  const fs = lintPolicy(await loadPolicyFile(PROFILE));
  assert.deepEqual(
    codes(fs)
      .filter((c) => c.startsWith('error'))
      .sort(),
    ['error:emulation-endswith', 'error:emulation-substring'],
  );
});

test('the fixed profile has no errors against the same reference; t.co is exact', async () => {
  const fs = lintPolicy(await loadPolicyFile(PROFILE_FIXED), { references: [REF] });
  assert.equal(fs.filter((f) => f.severity === 'error').length, 0);
  const br = fs.find((f) => f.code === 'blast-radius' && f.rule_id === 'tco-exact')!;
  assert.deepEqual(br.examples, ['t.co']);
});

test(
  'tspu-2021-03-10 against top10k: substring rule flagged, 445 names, microsoft.com and reddit.com named',
  { skip: need(existsSync(TOP10K), `reference list absent: ${TOP10K}`) },
  async () => {
    const fs = lintPolicy(await loadPolicyFile(PROFILE), {
      references: [parseNamesText((await import('node:fs')).readFileSync(TOP10K, 'utf8'), TOP10K)],
    });
    const sub = fs.find((f) => f.code === 'emulation-substring')!;
    assert.equal(sub.count, 445); // stated in the corpus README; also `grep -c 't\.co' top10k.txt`
    assert.ok(
      sub.examples.includes('microsoft.com') && sub.examples.includes('reddit.com'),
      sub.examples.join(','),
    );
  },
);

test('public suffixes, single labels, duplicates, redundant entries, empty matches, expiry', async () => {
  const p = await policyFrom(`rules:
  - id: psl
    action: block
    provenance: {source: test}
    match: {host: {suffix: [com, co.uk, github.io, corp, example.com, example.com], exact: [www.example.com], subdomains: [a.example.com]}}
  - {id: empty, action: log, match: {host: {}}}
  - {id: old, action: log, expires: 2020-01-01, match: {host: {exact: [x.example]}}}
  - {id: off, action: log, enabled: false, match: {host: {exact: [y.example]}}}
  - {id: noprov, action: block, match: {dest_ip: [192.0.2.0/24, 192.0.2.0/24]}}
`);
  const fs = lintPolicy(p, { now: Date.parse('2026-01-01') });
  const ps = fs.filter((f) => f.code === 'public-suffix');
  assert.deepEqual(
    ps.map((f) => [f.severity, f.examples]),
    [
      ['error', ['suffix: com', 'suffix: co.uk']],
      ['warning', ['suffix: github.io']],
    ],
  );
  assert.deepEqual(fs.find((f) => f.code === 'single-label')!.examples, ['suffix: corp']);
  assert.deepEqual(fs.find((f) => f.code === 'duplicate' && f.rule_id === 'psl')!.examples, [
    'suffix: example.com',
  ]);
  assert.deepEqual(fs.find((f) => f.code === 'duplicate' && f.rule_id === 'noprov')!.examples, [
    'dest_ip: 192.0.2.0/24',
  ]);
  const red = fs.find((f) => f.code === 'redundant')!;
  assert.equal(red.count, 4); // example.com ×2 under com; www.example.com and *.a.example.com under example.com
  assert.ok(codes(fs, 'empty').includes('warning:empty-match'));
  assert.ok(codes(fs, 'old').includes('warning:expired'));
  assert.ok(codes(fs, 'off').includes('info:disabled'));
  assert.ok(codes(fs, 'noprov').includes('info:no-provenance'));
  assert.ok(!codes(fs, 'psl').includes('info:no-provenance'));
});

test('protected names and CIDRs hit by block/throttle rules are errors unless overridden', async () => {
  const p = await policyFrom(`protected:
  suffix: [gov.example]
  exact: [bank.example]
  cidr: [198.18.0.0/15]
rules:
  - {id: sub, action: throttle, rate: 128kbit, match: {host: {substring: [ov.ex]}}}
  - {id: under, action: block, match: {host: {exact: [portal.gov.example]}}}
  - {id: bank, action: block, match: {host: {suffix: [bank.example]}}}
  - {id: net, action: block, match: {dest_ip: [198.19.1.0/24]}}
  - {id: ok, action: block, protected_override: {reason: "court order 1/2026"}, match: {host: {exact: [bad.gov.example]}}}
  - {id: logger, action: log, match: {host: {suffix: [gov.example]}}}
  - {id: clean, action: block, match: {host: {exact: [other.example]}, dest_ip: [203.0.113.0/24]}}
`);
  const fs = lintPolicy(p, { protectedNames: ['www.other.example', 'other.example'] });
  const hit = (id: string) => fs.find((f) => f.code === 'protected-hit' && f.rule_id === id);
  assert.deepEqual(hit('sub')!.examples.sort(), ['*.gov.example', 'gov.example']);
  assert.deepEqual(hit('under')!.examples, ['portal.gov.example (under protected gov.example)']);
  assert.deepEqual(hit('bank')!.examples, ['bank.example']);
  assert.deepEqual(hit('net')!.examples, ['dest_ip 198.19.1.0/24 (overlaps protected 198.18.0.0/15)']);
  assert.deepEqual(hit('clean')!.examples, ['other.example']); // from --protected
  assert.equal(hit('ok'), undefined);
  assert.equal(fs.find((f) => f.code === 'protected-override')!.rule_id, 'ok');
  assert.equal(hit('logger'), undefined);
});

test('shadowed rules and overlaps follow the precedence rules', async () => {
  const p = await policyFrom(`rules:
  - {id: broad, action: block, match: {host: {suffix: [example.com]}}}
  - {id: same-later, action: allow, match: {host: {suffix: [example.com]}}}
  - {id: exact-wins, action: allow, match: {host: {exact: [example.com]}}}
  - {id: partly, action: block, match: {host: {exact: [a.example.com, b.example.org]}}}
  - {id: hi, action: log, priority: 5, match: {host: {suffix: [example.net]}}}
  - {id: deeper, action: block, match: {host: {subdomains: [x.example.net]}}}
  - {id: port-only, action: block, match: {host: {exact: [c.example.com]}, dest_port: 8443}}
`);
  const fs = lintPolicy(p);
  const f = (id: string) =>
    fs
      .filter((x) => x.rule_id === id && (x.code === 'shadowed' || x.code === 'overlap'))
      .map((x) => `${x.severity}:${x.code}`);
  assert.deepEqual(f('broad'), []); // first, nothing beats it (exact-wins only takes example.com itself, not its subdomains)
  assert.deepEqual(f('same-later'), ['warning:shadowed']); // identical entry earlier in the file
  assert.deepEqual(f('exact-wins'), []); // exact beats suffix
  assert.deepEqual(f('partly'), []); // exact a.example.com beats suffix example.com
  assert.deepEqual(f('deeper'), ['warning:shadowed']); // priority 5 wins everything under example.net
  assert.deepEqual(f('port-only'), []); // has a port condition: more specific than broad
});

test('CLI: human output, JSON output, exit codes', async () => {
  const t = tempDir();
  try {
    const ref = join(t.dir, 'ref.txt');
    writeFileSync(ref, '1,microsoft.com\n2,reddit.com\n3,example.org\n');
    const r1 = await runCli(['lint', PROFILE, '--reference', ref]);
    assert.equal(r1.code, 1, r1.stderr);
    assert.match(
      r1.stdout,
      /error \[emulation-substring\] rule 'tco-substring'.*matches 2 of 3 reference names/,
    );
    assert.match(r1.stdout, /e\.g\. microsoft\.com, reddit\.com/);
    assert.match(r1.stdout, /tspu-2021-03-10\.yaml:\d+:\d+: error/);

    const r2 = await runCli(['lint', PROFILE, '--reference', ref, '--format', 'json']);
    assert.equal(r2.code, 1);
    const j = JSON.parse(r2.stdout) as {
      findings: { severity: string; code: string; rule_id: string; message: string; examples: string[] }[];
      summary: { errors: number };
    };
    const sub = j.findings.find((x) => x.code === 'emulation-substring')!;
    assert.deepEqual(
      [sub.severity, sub.rule_id, sub.examples],
      ['error', 'tco-substring', ['microsoft.com', 'reddit.com']],
    );
    assert.equal(j.summary.errors, 2);
    for (const f of j.findings)
      assert.deepEqual(Object.keys(f).slice(0, 5), ['severity', 'code', 'rule_id', 'message', 'examples']);

    const r3 = await runCli(['lint', PROFILE_FIXED, '--reference', ref]);
    assert.equal(r3.code, 0, r3.stdout);
    assert.match(r3.stdout, /0 error\(s\)/);

    const bad = join(t.dir, 'bad.yaml');
    writeFileSync(bad, 'rules:\n  - {id: a, action: nope}\n');
    const r4 = await runCli(['lint', bad]);
    assert.equal(r4.code, 1);
    assert.match(r4.stderr, /bad\.yaml:2:\d+: rules\[0\]\.action/);

    // several references after one --reference, counted together
    const ref2 = join(t.dir, 'ref2.txt');
    writeFileSync(ref2, 'rt.com\nexample.net\n');
    const r7 = await runCli(['lint', PROFILE, '--reference', ref, ref2]);
    assert.equal(r7.code, 1);
    assert.match(r7.stdout, /matches 3 of 5 reference names/);

    const r5 = await runCli(['lint']);
    assert.equal(r5.code, 2);
    const r6 = await runCli(['lint', PROFILE, '--format', 'xml']);
    assert.equal(r6.code, 2);
  } finally {
    t.cleanup();
  }
});

test('address rules: same prefix later in the file, or a covering prefix with higher priority, shadows', async () => {
  const p = await policyFrom(`rules:
  - {id: a, action: block, match: {dest_ip: [10.0.0.0/8, "2001:db8::/32"]}}
  - {id: dup, action: allow, match: {dest_ip: [10.0.0.0/8]}}
  - {id: inner, action: allow, match: {dest_ip: [10.1.0.0/16, 192.0.2.0/24]}}
  - {id: hi, action: log, priority: 3, match: {dest_ip: ["2001::/16"]}}
  - {id: v6, action: block, match: {dest_ip: ["2001:db8:1::/48"]}}
`);
  const fs = lintPolicy(p);
  const f = (id: string) =>
    fs
      .filter((x) => x.rule_id === id && (x.code === 'shadowed' || x.code === 'overlap'))
      .map((x) => `${x.severity}:${x.code}:${x.examples.join('|')}`);
  assert.deepEqual(f('dup'), ['warning:shadowed:10.0.0.0/8 → a']);
  assert.deepEqual(f('inner'), []); // longer prefix wins over a's /8
  assert.deepEqual(f('v6'), ['warning:shadowed:2001:db8:1::/48 → hi']);
  assert.deepEqual(f('a'), ['warning:overlap:2001:db8::/32 → hi']);
  const p2 = await policyFrom(
    `rules:\n  - {id: r, action: block, match: {dest_ip: [10.0.0.0/8, 10.1.2.0/24, 10.1.2.3, 192.0.2.0/24, "2001:db8::/32", "2001:db8:5::/48"]}}\n`,
  );
  const red = lintPolicy(p2).find((x) => x.code === 'redundant')!;
  assert.deepEqual(red.examples, [
    '10.1.2.0/24 (inside a /8 of the same rule)',
    '10.1.2.3/32 (inside a /8 of the same rule)',
    '2001:db8:5::/48 (inside a /32 of the same rule)',
  ]);
});

const V1 = 'c000000001' + '00'.repeat(11);
const QUIC_RULE = `rules:
  - id: quic-v1
    action: block
    provenance: {authority: test}
    match: {proto: udp, dest_port: 443, payload_len: ">=1001", payload: [{offset: 1, hex: "00000001"}]}
  - id: narrow
    action: block
    provenance: {authority: test}
    match: {proto: udp, dest_port: 443, payload_len: ">=1001", payload: [{offset: 1, hex: "00000001"}], dest_ip: [192.0.2.99]}
`;

test('flow-radius: a payload rule against reference flows; all QUIC v1 is a large radius (warning)', async () => {
  const p = await policyFrom(QUIC_RULE);
  const flow = (dest_ip: string, len: number | null, head: string | null, proto: 'TCP' | 'UDP' = 'UDP') => ({
    host: null, proto, src_ip: '10.0.0.1', dest_ip, dest_port: 443, app_proto: null,
    payload_len: len, payload_head: head,
  }); // prettier-ignore
  // 200 flows by hand: 60 QUIC v1 Initials to many servers, 1 of them to 192.0.2.99, 140 TCP
  const flows = [];
  for (let i = 0; i < 60; i++) flows.push(flow(i === 0 ? '192.0.2.99' : `198.51.100.${i}`, 1200, V1));
  for (let i = 0; i < 140; i++) flows.push(flow('198.51.100.1', 517, '16030102000100', 'TCP'));
  const fs = lintPolicy(p, { references: [{ ...REF, source: 'cap.pcap', flows }] });
  const wide = fs.find((f) => f.code === 'flow-radius' && f.rule_id === 'quic-v1')!;
  assert.equal(wide.severity, 'warning');
  assert.equal(wide.count, 60);
  assert.match(wide.message, /60 of 200 flows \(30\.00%\) in cap\.pcap/);
  const narrow = fs.find((f) => f.code === 'flow-radius' && f.rule_id === 'narrow')!;
  assert.equal(narrow.count, 1);
  assert.equal(narrow.severity, 'info', '1 of 200 = 0.5 %, below 1 %');
  // a names-only reference has no flows: no flow-radius finding
  assert.equal(lintPolicy(p, { references: [REF] }).filter((f) => f.code === 'flow-radius').length, 0);
});

test('CLI: lint --reference FLOWLOG reports the flow radius of a payload rule', async () => {
  const t = tempDir();
  try {
    const pol = join(t.dir, 'p.yaml');
    writeFileSync(pol, QUIC_RULE);
    const { flowToEve } = await import('../output/eve.js');
    const lines: string[] = [];
    for (let i = 0; i < 4; i++)
      lines.push(JSON.stringify(flowToEve({
        flow_id: i + 1, community_id: '1:x', timestamp: '2023-11-14T22:13:20.000000Z', proto: 'UDP',
        src_ip: '10.0.0.1', src_port: 5000 + i, dest_ip: '198.51.100.7', dest_port: 443, app_proto: null,
        host: null, anomalies: [], pkts_toserver: 1, pkts_toclient: 0, bytes_toserver: 1228, bytes_toclient: 0,
        duration: 0, first_payload: { len: i === 3 ? 900 : 1200, head: V1 },
      }))); // prettier-ignore
    const log = join(t.dir, 'flows.json');
    writeFileSync(log, lines.join('\n') + '\n');
    const r = await runCli(['lint', pol, '--reference', log]);
    assert.match(
      r.stdout,
      /warning \[flow-radius\] rule 'quic-v1'.*matches 3 of 4 flows \(75\.00%\)/,
      r.stdout + r.stderr,
    );
    assert.match(r.stdout, /info \[flow-radius\] rule 'narrow'.*matches 0 of 4 flows/);
  } finally {
    t.cleanup();
  }
});
