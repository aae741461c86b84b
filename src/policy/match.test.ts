/**
 * @module policy/match.test
 * Match semantics of the compiled policy: every match type and its edge cases (label boundary, case,
 * trailing dot, IDN, IPv4-mapped IPv6), precedence, protection, expiry, and atomic reload.
 * Expected values are worked out by hand from the documented semantics (docs/POLICY.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compiledFrom, flow } from './testutil.js';
import { PolicyHolder } from './holder.js';

const rid = async (
  yaml: string,
  inputs: Parameters<typeof flow>[0][],
  files: Record<string, string> = {},
) => {
  const c = await compiledFrom(yaml, files);
  return inputs.map((i) => c.match(flow(i)).rule_id);
};

test('exact matches the name only, ASCII case-insensitively', async () => {
  const y = `rules:\n  - {id: e, action: block, match: {host: {exact: [T.Co]}}}\n`;
  assert.deepEqual(
    await rid(y, [
      { host: 't.co' },
      { host: 'T.CO' },
      { host: 'a.t.co' },
      { host: 'tt.co' },
      { host: 't.com' },
      { host: null },
    ]),
    ['e', 'e', null, null, null, null],
  );
});

test('suffix matches the name and its subdomains on a label boundary only', async () => {
  const y = `rules:\n  - {id: s, action: throttle, rate: 128kbit, match: {host: {suffix: [twitter.com]}}}\n`;
  assert.deepEqual(
    await rid(y, [
      { host: 'twitter.com' },
      { host: 'api.twitter.com' },
      { host: 'a.b.twitter.com' },
      { host: 'throttletwitter.com' },
      { host: 'twitter.com.evil.net' },
      { host: 'witter.com' },
      { host: 'com' },
    ]),
    ['s', 's', 's', null, null, null, null],
  );
});

test('subdomains matches strictly below, not the name itself', async () => {
  const y = `rules:\n  - {id: d, action: block, match: {host: {subdomains: [twimg.com]}}}\n`;
  assert.deepEqual(
    await rid(y, [
      { host: 'twimg.com' },
      { host: 'pbs.twimg.com' },
      { host: 'a.pbs.twimg.com' },
      { host: 'xtwimg.com' },
    ]),
    [null, 'd', 'd', null],
  );
});

test('substring (emulation) matches anywhere, including across labels', async () => {
  const y = `rules:\n  - {id: sub, action: throttle, rate: 130kbit, match: {host: {substring: [t.co]}}}\n`;
  assert.deepEqual(
    await rid(y, [
      { host: 't.co' },
      { host: 'microsoft.com' },
      { host: 'reddit.com' },
      { host: 'RT.COM' },
      { host: 'githubusercontent.com' },
      { host: 'twitter.com' },
      { host: 'example.org' },
    ]),
    ['sub', 'sub', 'sub', 'sub', 'sub', null, null],
  );
});

test('endswith (emulation) has no label boundary and sees the raw name', async () => {
  const y = `rules:\n  - {id: ew, action: throttle, rate: 130kbit, match: {host: {endswith: [twitter.com]}}}\n`;
  assert.deepEqual(
    await rid(y, [
      { host: 'twitter.com' },
      { host: 'throttletwitter.com' },
      { host: 'ads-twitter.com' },
      { host: 'twitter.com.', raw_host: 'twitter.com.' },
      { host: 'twitter.co' },
    ]),
    ['ew', 'ew', 'ew', null, null],
  );
});

test('trailing dot: ignored by default (cannot evade), literal when the policy says so', async () => {
  const rules = `rules:\n  - {id: s, action: block, match: {host: {suffix: [twitter.com], exact: [t.co]}}}\n`;
  const ignore = await compiledFrom(rules);
  const literal = await compiledFrom(`names: {trailing_dot: literal}\n${rules}`);
  for (const h of ['twitter.com.', 'API.twitter.com.', 't.co.']) {
    assert.equal(ignore.match(flow({ host: h, raw_host: h })).rule_id, 's', h);
    assert.equal(literal.match(flow({ host: h, raw_host: h })).rule_id, null, h);
  }
  // literal mode uses raw_host when the analyzer normalised host
  assert.equal(literal.match(flow({ host: 'twitter.com', raw_host: 'twitter.com.' })).rule_id, null);
  assert.equal(literal.match(flow({ host: 'twitter.com' })).rule_id, 's');
  // only one trailing dot is ignored; a rule name's own trailing dot is dropped at load
  assert.equal(ignore.match(flow({ host: 'twitter.com..' })).rule_id, null);
  const dotted = await compiledFrom(
    `rules:\n  - {id: d, action: block, match: {host: {exact: [example.com.]}}}\n`,
  );
  assert.equal(dotted.match(flow({ host: 'example.com' })).rule_id, 'd');
});

test('IDN: U-labels in rules are converted to punycode; traffic is compared in A-label form', async () => {
  const c = await compiledFrom(
    `rules:\n  - {id: idn, action: block, match: {host: {suffix: [пример.рф], exact: [bücher.example]}}}\n`,
  );
  // xn--e1afmkfd.xn--p1ai is the A-label form of пример.рф
  assert.equal(c.match(flow({ host: 'xn--e1afmkfd.xn--p1ai' })).rule_id, 'idn');
  assert.equal(c.match(flow({ host: 'www.XN--E1AFMKFD.xn--p1ai' })).rule_id, 'idn');
  assert.equal(c.match(flow({ host: 'xn--bcher-kva.example' })).rule_id, 'idn');
  // a raw U-label host (e.g. an HTTP Host header) is converted before comparing
  assert.equal(c.match(flow({ host: 'www.пример.рф' })).rule_id, 'idn');
  assert.equal(c.match(flow({ host: 'bucher.example' })).rule_id, null);
});

test('dest_ip / src_ip: CIDRs v4 and v6, longest prefix, IPv4-mapped IPv6', async () => {
  const y = `rules:
  - {id: wide, action: log, match: {dest_ip: [10.0.0.0/8]}}
  - {id: narrow, action: block, match: {dest_ip: [10.1.0.0/16, "2001:db8::/32", "::ffff:192.168.0.0/112"]}}
  - {id: host32, action: block, method: drop, match: {dest_ip: [10.1.2.3]}}
  - {id: src, action: log, match: {src_ip: ["fd00::/8"]}}
`;
  assert.deepEqual(
    await rid(y, [
      { dest_ip: '10.9.9.9' },
      { dest_ip: '10.1.9.9' },
      { dest_ip: '10.1.2.3' },
      { dest_ip: '::ffff:10.1.2.3' },
      { dest_ip: '::FFFF:a01:203' },
      { dest_ip: '::ffff:192.168.77.1' },
      { dest_ip: '192.168.77.1' },
      { dest_ip: '2001:db8:1::5' },
      { dest_ip: '2001:db9::5' },
      { dest_ip: '11.0.0.1' },
      { dest_ip: 'not-an-ip' },
      { src_ip: 'fd12::1' },
    ]),
    ['wide', 'narrow', 'host32', 'host32', 'host32', 'narrow', 'narrow', 'narrow', null, null, null, 'src'],
  );
});

test('an IPv6 prefix covering ::ffff:0:0/96 also covers IPv4 flows', async () => {
  const y = `rules:\n  - {id: all6, action: log, match: {dest_ip: ["::/0"]}}\n`;
  assert.deepEqual(await rid(y, [{ dest_ip: '2001:db8::1' }, { dest_ip: '203.0.113.9' }]), ['all6', 'all6']);
});

test('ports, L4 protocol, app_proto, ALPN, JA4, QUIC version, ECH', async () => {
  const y = `rules:
  - {id: quic1, action: block, match: {proto: udp, dest_port: 443, quic_version: [v1]}}
  - {id: range, action: log, match: {dest_port: ["8000-8099", 9000]}}
  - {id: h2, action: log, match: {alpn: [h2], app_proto: TLS}}
  - {id: ja4, action: block, match: {ja4: [t13d1516h2_8daaf6152771_e5627efa2ab1]}}
  - {id: ech, action: block, match: {ech: true, dest_port: 8443}}
`;
  const c = await compiledFrom(y);
  const r = (i: Parameters<typeof flow>[0]) => c.match(flow(i)).rule_id;
  assert.equal(r({ proto: 'UDP', quic_version: '0x00000001', app_proto: 'quic' }), 'quic1');
  assert.equal(r({ proto: 'UDP', quic_version: '0x6b3343cf', app_proto: 'quic' }), null);
  assert.equal(r({ proto: 'TCP', quic_version: '0x00000001' }), null);
  assert.equal(r({ proto: 'UDP', quic_version: null }), null);
  assert.equal(r({ dest_port: 8000 }), 'range');
  assert.equal(r({ dest_port: 8099 }), 'range');
  assert.equal(r({ dest_port: 8100 }), null);
  assert.equal(r({ dest_port: 9000 }), 'range');
  assert.equal(r({ alpn: ['http/1.1', 'h2'], app_proto: 'tls' }), 'h2');
  assert.equal(r({ alpn: ['h2'], app_proto: 'http' }), null);
  assert.equal(r({ alpn: ['http/1.1'] }), null);
  assert.equal(r({ ja4: 't13d1516h2_8daaf6152771_e5627efa2ab1' }), 'ja4');
  assert.equal(r({ ja4: 't13d1516h2_8daaf6152771_000000000000' }), null);
  assert.equal(r({ dest_port: 8443, ech: true }), 'ech');
  assert.equal(r({ dest_port: 8443, ech: false }), null);
  assert.equal(r({ dest_port: 8443 }), null);
});

test('a rule with several conditions needs all of them (AND), any entry within one (OR)', async () => {
  const y = `rules:\n  - {id: both, action: block, match: {host: {exact: [a.example, b.example]}, dest_ip: [203.0.113.0/24], dest_port: [443]}}\n`;
  assert.deepEqual(
    await rid(y, [
      { host: 'b.example', dest_ip: '203.0.113.7' },
      { host: 'b.example', dest_ip: '203.0.114.7' },
      { host: 'c.example', dest_ip: '203.0.113.7' },
      { host: 'a.example', dest_ip: '203.0.113.7', dest_port: 80 },
    ]),
    ['both', null, null, null],
  );
});

test('decisions carry action parameters; default applies with rule_id null', async () => {
  const c = await compiledFrom(`default: {action: block, method: drop}
rules:
  - {id: t, action: throttle, rate: 150kbit, burst: 16KiB, match: {host: {exact: [a.example]}}}
  - {id: t2, action: throttle, rate: 1mbit, match: {host: {exact: [b.example]}}}
  - {id: b, action: block, match: {host: {exact: [c.example]}}}
`);
  assert.deepEqual(c.match(flow({ host: 'a.example' })), {
    rule_id: 't',
    action: 'throttle',
    rate_bps: 150000,
    burst_bytes: 16384,
  });
  // default burst: 100 ms at the rate, at least 3000 B: 1 Mbit/s → 12500 B
  assert.deepEqual(c.match(flow({ host: 'b.example' })), {
    rule_id: 't2',
    action: 'throttle',
    rate_bps: 1000000,
    burst_bytes: 12500,
  });
  assert.deepEqual(c.match(flow({ host: 'c.example' })), { rule_id: 'b', action: 'block', method: 'rst' });
  assert.deepEqual(c.match(flow({ host: 'z.example' })), { rule_id: null, action: 'block', method: 'drop' });
  // preallocated and immutable
  assert.equal(c.match(flow({ host: 'a.example' })), c.match(flow({ host: 'a.example' })));
  assert.ok(Object.isFrozen(c.match(flow({ host: 'a.example' }))));
});

test('precedence: priority first, then specificity, then file order', async () => {
  const c = await compiledFrom(`rules:
  - {id: broad-first, action: log, match: {host: {suffix: [example.com]}}}
  - {id: broad-second, action: block, match: {host: {suffix: [example.com]}}}
  - {id: deeper, action: allow, match: {host: {suffix: [api.example.com]}}}
  - {id: exact, action: block, match: {host: {exact: [api.example.com]}}}
  - {id: sub, action: log, match: {host: {subdomains: [example.com]}}}
  - {id: prio, action: throttle, rate: 64kbit, priority: 5, match: {host: {substring: [secret]}}}
  - {id: ip-and-name, action: block, match: {host: {suffix: [example.com]}, dest_ip: [203.0.113.0/24]}}
  - {id: name-and-port, action: log, match: {host: {suffix: [example.com]}, dest_port: [8443]}}
`);
  const r = (host: string, o: Parameters<typeof flow>[0] = {}) => c.match(flow({ host, ...o })).rule_id;
  // same specificity: file order
  assert.equal(r('example.com'), 'broad-first');
  // subdomains (*.example.com) is narrower than suffix example.com for names below it
  assert.equal(r('www.example.com'), 'sub');
  // more labels beats fewer
  assert.equal(r('v1.api.example.com'), 'deeper');
  // exact beats suffix of the same name
  assert.equal(r('api.example.com'), 'exact');
  // priority beats everything, even a substring
  assert.equal(r('secret.api.example.com'), 'prio');
  // with equal host specificity, an extra address condition is more specific...
  assert.equal(r('example.com', { dest_ip: '203.0.113.5' }), 'ip-and-name');
  // ...and so is an extra port condition
  assert.equal(r('example.com', { dest_port: 8443 }), 'name-and-port');
  // but host specificity comes first
  assert.equal(r('api.example.com', { dest_ip: '203.0.113.5' }), 'exact');
});

test('precedence between address prefixes: longest wins, then file order', async () => {
  const c = await compiledFrom(`rules:
  - {id: a16, action: log, match: {dest_ip: [10.1.0.0/16]}}
  - {id: a24, action: block, match: {dest_ip: [10.1.2.0/24]}}
  - {id: b24, action: allow, match: {dest_ip: [10.1.2.0/24]}}
  - {id: low, action: block, priority: -1, match: {dest_ip: [10.1.2.3/32]}}
`);
  assert.equal(c.match(flow({ dest_ip: '10.1.2.4' })).rule_id, 'a24');
  assert.equal(c.match(flow({ dest_ip: '10.1.3.4' })).rule_id, 'a16');
  assert.equal(c.match(flow({ dest_ip: '10.1.2.3' })).rule_id, 'a24');
});

test('protected names and CIDRs: block/throttle skipped unless protected_override; log still applies', async () => {
  const c = await compiledFrom(`default: {action: block}
protected:
  suffix: [gov.example]
  exact: [bank.example]
  cidr: [198.18.0.0/15]
rules:
  - {id: sub, action: throttle, rate: 130kbit, match: {host: {substring: [ov.ex, ank.ex, t.co]}}}
  - {id: logit, action: log, priority: -10, match: {host: {suffix: [portal.gov.example]}}}
  - {id: forced, action: block, protected_override: {reason: court order 12/3}, match: {host: {exact: [bad.gov.example]}}}
  - {id: byip, action: block, match: {dest_ip: [198.18.0.0/16]}}
`);
  const r = (i: Parameters<typeof flow>[0]) => c.match(flow(i)).rule_id;
  assert.equal(r({ host: 'gov.example' }), '$protected'); // substring hit skipped, default block also
  assert.equal(r({ host: 'www.gov.example' }), '$protected');
  assert.equal(r({ host: 'portal.gov.example' }), 'logit');
  assert.equal(r({ host: 'bad.gov.example' }), 'forced');
  assert.equal(r({ host: 'bank.example' }), '$protected');
  assert.equal(r({ host: 'www.bank.example' }), 'sub'); // exact protection only
  assert.equal(r({ host: 'microsoft.com' }), 'sub');
  assert.equal(r({ host: null, dest_ip: '198.18.5.5' }), '$protected');
  assert.equal(r({ host: null, dest_ip: '::ffff:198.18.5.5' }), '$protected');
  assert.equal(r({ host: null, src_ip: '198.19.0.1', dest_ip: '203.0.113.1' }), '$protected');
  assert.equal(r({ host: null, dest_ip: '203.0.113.1' }), null);
  assert.equal(c.match(flow({ host: 'gov.example' })).action, 'allow');
});

test('disabled and expired rules are left out; expiresAt reports the next expiry', async () => {
  const now = Date.parse('2026-06-01T00:00:00Z');
  const c = await compiledFrom(
    `rules:
  - {id: off, action: block, enabled: false, match: {host: {exact: [a.example]}}}
  - {id: old, action: block, expires: 2026-05-31, match: {host: {exact: [b.example]}}}
  - {id: today, action: block, expires: 2026-06-01, match: {host: {exact: [c.example]}}}
  - {id: later, action: block, expires: "2026-07-01T12:00:00Z", match: {host: {exact: [d.example]}}}
`,
    {},
    now,
  );
  const r = (host: string) => c.match(flow({ host })).rule_id;
  assert.deepEqual(
    ['a', 'b', 'c', 'd'].map((x) => r(`${x}.example`)),
    [null, null, 'today', 'later'],
  );
  assert.equal(c.ruleCount, 2);
  assert.equal(c.expiresAt, Date.parse('2026-06-02T00:00:00Z'));
});

test('an empty match matches every flow; no rules means default', async () => {
  assert.deepEqual(
    await rid(`rules:\n  - {id: all, action: log}\n`, [{ host: 'x.example' }, { host: null, proto: 'UDP' }]),
    ['all', 'all'],
  );
  assert.deepEqual(await rid(`rules: []\n`, [{ host: 'x.example' }]), [null]);
});

test('PolicyHolder swaps atomically: lookups see the old policy until swap, then the new one', async () => {
  const a = await compiledFrom(`rules:\n  - {id: v1, action: block, match: {host: {exact: [x.example]}}}\n`);
  const b = await compiledFrom(`rules:\n  - {id: v2, action: allow, match: {host: {exact: [x.example]}}}\n`);
  const h = new PolicyHolder(a);
  const seen: string[] = [];
  h.onSwap((next, prev) =>
    seen.push(
      `${prev.match(flow({ host: 'x.example' })).rule_id}->${next.match(flow({ host: 'x.example' })).rule_id}`,
    ),
  );
  assert.equal(h.current.match(flow({ host: 'x.example' })).rule_id, 'v1');
  const cur = h.current;
  h.swap(b);
  assert.equal(h.current.match(flow({ host: 'x.example' })).rule_id, 'v2');
  assert.equal(cur.match(flow({ host: 'x.example' })).rule_id, 'v1'); // the old one is untouched
  assert.equal(h.generation, 2);
  assert.deepEqual(seen, ['v1->v2']);
});

test('inspection block: defaults per mode, overrides kept', async () => {
  const n = await compiledFrom(`rules: []\n`);
  assert.deepEqual(n.inspection, {
    mode: 'normal',
    on_timeout: 'allow',
    hold_ms: 500,
    budget_bytes: 16384,
    max_packets: 8,
    idle_timeout_s: 300,
  });
  const t = await compiledFrom(`inspection: {mode: tspu-2021, on_timeout: apply-default}\nrules: []\n`);
  assert.deepEqual(t.inspection, {
    mode: 'tspu-2021',
    on_timeout: 'apply-default',
    hold_ms: 0,
    budget_bytes: 16384,
    max_packets: 20,
    idle_timeout_s: 600,
  });
  assert.ok(Object.isFrozen(t.inspection));
});

test('long names compare in full (beyond any inline prefix), differing only in their last characters', async () => {
  const long = 'a-very-long-label-for-testing.example-registry-zone.example';
  const y = `rules:\n  - {id: long, action: block, match: {host: {exact: [${long}], suffix: [${long.replace('zone', 'zonf')}]}}}\n`;
  assert.deepEqual(
    await rid(y, [
      { host: long },
      { host: long.toUpperCase() },
      { host: long.slice(0, -1) + 'f' },
      { host: 'x.' + long.replace('zone', 'zonf') },
      { host: long.replace('zone', 'zong') },
    ]),
    ['long', 'long', null, 'long', null],
  );
});

test('robust to odd inputs: empty or missing names and addresses match nothing, never throw', async () => {
  const c = await compiledFrom(
    `rules:\n  - {id: n, action: block, match: {host: {suffix: [example.com], substring: [xx]}}}\n  - {id: i, action: block, match: {dest_ip: [10.0.0.0/8, "::/0"], src_ip: [0.0.0.0/0]}}\n`,
  );
  for (const i of [
    { host: '' },
    { host: '.' },
    { host: '..example.com' },
    { host: 'x'.repeat(300) },
    { dest_ip: '' },
    { dest_ip: '::ffff:' },
    { dest_ip: '1.2.3' },
    { dest_ip: '10.0.0.256' },
    { dest_ip: undefined as unknown as string },
    { src_ip: 'zz' },
  ]) {
    assert.doesNotThrow(() => c.match(flow(i)), JSON.stringify(i));
  }
  assert.equal(c.match(flow({ host: '..example.com' })).rule_id, 'n'); // ends with .example.com: a (malformed) subdomain
  assert.equal(c.match(flow({ host: '', dest_ip: '10.0.0.256' })).rule_id, null);
});

test('payload_len, payload bytes at offsets and except_dest_ip (the 2022 QUIC rule)', async () => {
  const y = `rules:
  - id: q
    action: block
    match:
      proto: udp
      dest_port: 443
      payload_len: [">=1001"]
      payload: [{offset: 1, hex: "00000001"}]
      except_dest_ip: [203.0.113.0/24, "2001:db8::/32"]
`;
  const v1 = 'c000000001' + '00'.repeat(11);
  const v2 = 'c06b3343cf' + '00'.repeat(11);
  const u = { proto: 'UDP' as const, app_proto: null };
  assert.deepEqual(
    await rid(y, [
      { ...u, payload_len: 1200, payload_head: v1 },
      { ...u, payload_len: 1001, payload_head: v1 },
      { ...u, payload_len: 1000, payload_head: v1 },
      { ...u, payload_len: 1200, payload_head: v2 },
      { ...u, payload_len: 1200, payload_head: v1, dest_port: 8443 },
      { ...u, payload_len: 1200, payload_head: v1, dest_ip: '203.0.113.9' },
      { ...u, payload_len: 1200, payload_head: v1, dest_ip: '2001:db8::1' },
      { ...u, payload_len: 1200, payload_head: v1, dest_ip: '203.0.114.9' },
      { ...u, payload_len: 1200, payload_head: 'c0000000' }, // head too short for bytes 1..4
      { ...u, payload_len: null, payload_head: null },
      { payload_len: 1200, payload_head: v1 }, // TCP
    ]),
    ['q', 'q', null, null, null, null, null, 'q', null, null, null],
  );
});

test('payload_len forms: N, N-M, <=N; a list is OR; payload entries are AND', async () => {
  const y = `rules:
  - id: a
    action: log
    match:
      payload_len: [10, 20-30, "<=3"]
      payload: [{offset: 0, hex: "16"}, {offset: 5, hex: "01"}]
`;
  const ch = '1603010200' + '01' + '00'.repeat(10);
  assert.deepEqual(
    await rid(y, [
      { payload_len: 10, payload_head: ch },
      { payload_len: 11, payload_head: ch },
      { payload_len: 20, payload_head: ch },
      { payload_len: 30, payload_head: ch },
      { payload_len: 31, payload_head: ch },
      { payload_len: 3, payload_head: ch },
      { payload_len: 0, payload_head: ch },
      { payload_len: 10, payload_head: '1603010200' + '02' + '00'.repeat(10) },
      { payload_len: 10, payload_head: '1703010200' + '01' + '00'.repeat(10) },
    ]),
    ['a', null, 'a', 'a', null, 'a', 'a', null, null],
  );
});
