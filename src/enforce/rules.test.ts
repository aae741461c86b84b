/**
 * @module enforce/rules.test
 * The iptables rules as text: expected argv written by hand from the iptables-extensions man page.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildRules,
  classRule,
  hashlimitArgs,
  hashlimitName,
  markValue,
  rulesScript,
  undecidedChain,
  bareAckU32,
  MARK_RST,
  MARK_CLASS_BASE,
} from './rules.js';

const o = { chain: 'CPX', queues: [3, 3] as [number, number], connbytes: 32, markMask: 0x00ff0000 };

test('mark values sit inside the mask', () => {
  assert.equal(MARK_RST, 3);
  assert.equal(MARK_CLASS_BASE, 16);
  assert.equal(markValue(0x00ff0000, 3), 0x00030000);
  assert.equal(markValue(0xff, 5), 5);
  assert.equal(markValue(0xf0, 0x1f), 0xf0); // truncated to the mask
});

const BARE4 = [8, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15].map(
  (d) =>
    `mangle -A CPX-U -p tcp --tcp-flags ALL ACK -m u32 --u32 0&0xff00ffff=0x${(0x45000000 + 20 + 4 * d).toString(16)}&&32>>28=${d} -j RETURN`,
);

test('rules: queue only unmarked connections for their first packets, with bypass; save and enforce marks', () => {
  const r = buildRules(o).map((a) => a.join(' '));
  assert.deepEqual(r, [
    'mangle -N CPX',
    'mangle -N CPX-U',
    'filter -N CPX',
    'mangle -A CPX -p tcp --tcp-flags SYN,ACK SYN,ACK -j RETURN',
    'mangle -A CPX -m connmark --mark 0x0/0xff0000 -m connbytes --connbytes 0:32 --connbytes-dir both --connbytes-mode packets -g CPX-U',
    'mangle -A CPX -m connmark --mark 0x40000/0xff0000 -j NFQUEUE --queue-num 3 --queue-bypass',
    'mangle -A CPX -m connmark --mark 0x50000/0xff0000 -g CPX-U',
    ...BARE4,
    'mangle -A CPX-U -j NFQUEUE --queue-num 3 --queue-bypass',
    'filter -A CPX -m connmark --mark 0x10000/0xff0000 -j RETURN',
    'filter -A CPX -m mark ! --mark 0x0/0xff0000 -j CONNMARK --save-mark --nfmask 0xff0000 --ctmask 0xff0000',
    'filter -A CPX -m connmark --mark 0x20000/0xff0000 -j DROP',
    'filter -A CPX -p tcp -m connmark --mark 0x30000/0xff0000 -j REJECT --reject-with tcp-reset',
    'filter -A CPX -m connmark --mark 0x30000/0xff0000 -j DROP',
    'mangle -I FORWARD 1 -j CPX',
    'filter -I FORWARD 1 -j CPX',
  ]);
});

test('bare ACK test: exact header length per data offset, IPv4 without options, IPv6 with TCP next', () => {
  // 20-byte IPv4 header + 32-byte TCP header (timestamps): total length 52 = 0x34
  assert.equal(bareAckU32(8, false), '0&0xff00ffff=0x45000034&&32>>28=8');
  assert.equal(bareAckU32(5, false), '0&0xff00ffff=0x45000028&&32>>28=5');
  // IPv6: payload length 32 = 0x20 in bytes 4-5, next header 6 in byte 6, doff in byte 40 + 12
  assert.equal(bareAckU32(8, true), '4&0xffffff00=0x200600&&52>>28=8');
  assert.equal(bareAckU32(15, true), '4&0xffffff00=0x3c0600&&52>>28=15');
  const v6 = buildRules(o, [], true).map((a) => a.join(' '));
  assert.ok(
    v6.includes(
      'mangle -A CPX-U -p tcp --tcp-flags ALL ACK -m u32 --u32 4&0xffffff00=0x140600&&52>>28=5 -j RETURN',
    ),
  );
  assert.ok(!v6.some((l) => l.includes('0x45000')), 'no IPv4 test in the IPv6 rules');
});

test('the undecided sub-chain name fits iptables (≤ 28) and differs per chain', () => {
  assert.equal(undecidedChain('CHOKEPOINT'), 'CHOKEPOINT-U');
  const a = undecidedChain('A'.repeat(27));
  const b = undecidedChain('A'.repeat(26) + 'B');
  assert.ok(a.length <= 28 && b.length <= 28);
  assert.notEqual(a, b);
  assert.match(a, /^[A-Za-z0-9_-]+$/);
});

test('several queues use --queue-balance', () => {
  const r = buildRules({ ...o, queues: [0, 3] });
  for (const a of r.filter((x) => x.includes('NFQUEUE')))
    assert.match(a.join(' '), /--queue-balance 0:3 --queue-bypass$/);
  assert.equal(r.filter((x) => x.includes('NFQUEUE')).length, 2);
});

test('kernel throttle class: hashlimit per connection and direction, byte mode', () => {
  const c = { id: 2, rateBps: 256_000, burstBytes: 8000 };
  // 256 kbit/s = 32000 B/s; the kernel wants burst ≥ one second at the rate
  assert.deepEqual(hashlimitArgs(c), ['--hashlimit-above', '32000b/s', '--hashlimit-burst', '32000b']);
  assert.deepEqual(hashlimitArgs({ id: 0, rateBps: 8000, burstBytes: 16384 }), [
    '--hashlimit-above',
    '1000b/s',
    '--hashlimit-burst',
    '16384b',
  ]);
  const r = classRule(o, c).join(' ');
  assert.equal(
    r,
    // class 2 → mark value 16 + 2 = 18 = 0x12, shifted into the mask: 0x120000; table name cp + chain + id
    '-A CPX -m connmark --mark 0x120000/0xff0000 -m hashlimit --hashlimit-above 32000b/s --hashlimit-burst 32000b --hashlimit-mode srcip,srcport,dstip,dstport --hashlimit-name cpcpx2 --hashlimit-htable-expire 120000 -j DROP',
  );
  assert.equal(hashlimitName('CPX', 2), 'cpcpx2');
  // the last 9 alphanumerics of the chain, lowercased, then the id; at most 15 characters
  assert.equal(hashlimitName('A_VERY_LONG_CHAIN_NAME_123', 238), 'cpinname123238');
  assert.equal(hashlimitName('A_VERY_LONG_CHAIN_NAME_123', 23).length, 13);
});

test('--no-install script quotes what the shell would split', () => {
  const s = rulesScript(o);
  assert.match(s, /^iptables -w -t mangle -N CPX$/m);
  assert.match(s, /-m mark '!' --mark/);
  assert.match(
    s,
    /^ip6tables -w -t filter -A CPX -p tcp .*-j REJECT --reject-with tcp-reset$/m,
    'IPv6 gets the same rules',
  );
});
