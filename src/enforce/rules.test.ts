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

test('rules: queue only unmarked connections for their first packets, with bypass; save and enforce marks', () => {
  const r = buildRules(o).map((a) => a.join(' '));
  assert.deepEqual(r, [
    'mangle -N CPX',
    'filter -N CPX',
    'mangle -A CPX -p tcp --tcp-flags SYN,ACK SYN,ACK -j RETURN',
    'mangle -A CPX -m connmark --mark 0x0/0xff0000 -m connbytes --connbytes 0:32 --connbytes-dir both --connbytes-mode packets -j NFQUEUE --queue-num 3 --queue-bypass',
    'mangle -A CPX -m connmark --mark 0x40000/0xff0000 -j NFQUEUE --queue-num 3 --queue-bypass',
    'mangle -A CPX -m connmark --mark 0x50000/0xff0000 -j NFQUEUE --queue-num 3 --queue-bypass',
    'filter -A CPX -m connmark --mark 0x10000/0xff0000 -j RETURN',
    'filter -A CPX -m mark ! --mark 0x0/0xff0000 -j CONNMARK --save-mark --nfmask 0xff0000 --ctmask 0xff0000',
    'filter -A CPX -m connmark --mark 0x20000/0xff0000 -j DROP',
    'filter -A CPX -p tcp -m connmark --mark 0x30000/0xff0000 -j REJECT --reject-with tcp-reset',
    'filter -A CPX -m connmark --mark 0x30000/0xff0000 -j DROP',
    'mangle -I FORWARD 1 -j CPX',
    'filter -I FORWARD 1 -j CPX',
  ]);
});

test('several queues use --queue-balance', () => {
  const r = buildRules({ ...o, queues: [0, 3] })[3].join(' ');
  assert.match(r, /--queue-balance 0:3 --queue-bypass$/);
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
