/**
 * @module output/community-id.test
 * Community ID v1 against the spec's published values (corelight/community-id-spec README test vector and
 * baseline/baseline_deflt.json / baseline_seed1.json): TCP and UDP over IPv4 and IPv6, SCTP with equal
 * ports, both directions of a flow giving the same id, and the seed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { communityId } from './community-id.js';

/** Text address → bytes, via node's own parser-independent route (hand-rolled, no project code). */
function addrBytes(ip: string): Uint8Array {
  if (isIP(ip) === 4) return Uint8Array.from(ip.split('.').map(Number));
  assert.equal(isIP(ip), 6, ip);
  const [h, t] = ip.split('::');
  const hs = h ? h.split(':') : [];
  const ts = t !== undefined && t !== '' ? t.split(':') : [];
  const groups = t === undefined ? hs : [...hs, ...Array(8 - hs.length - ts.length).fill('0'), ...ts];
  assert.equal(groups.length, 8);
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 255;
  });
  return out;
}

function cid(proto: number, s: string, d: string, sp: number, dp: number, seed = 0): string {
  return communityId(addrBytes(s), sp, addrBytes(d), dp, proto, seed);
}

test('spec README vector: UDP 192.168.1.42:4242 -> 8.8.8.8:53', () => {
  assert.equal(cid(17, '192.168.1.42', '8.8.8.8', 4242, 53), '1:vTdrngJjlP5eZ9mw9JtnKyn99KM=');
  assert.equal(cid(17, '8.8.8.8', '192.168.1.42', 53, 4242), '1:vTdrngJjlP5eZ9mw9JtnKyn99KM=');
});

// [proto, saddr, daddr, sport, dport, id seed 0, id seed 1] from the spec's baseline files
const BASELINE: [number, string, string, number, number, string, string][] = [
  [
    6,
    '2001:470:e5bf:dead:4957:2174:e82c:4887',
    '2607:f8b0:400c:c03::1a',
    63943,
    25,
    '1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=',
    '1:eJYTW6AOzFLlSUoESovMjnu7rMw=',
  ],
  [
    6,
    '2607:f8b0:400c:c03::1a',
    '2001:470:e5bf:dead:4957:2174:e82c:4887',
    25,
    63943,
    '1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=',
    '1:eJYTW6AOzFLlSUoESovMjnu7rMw=',
  ],
  [
    6,
    '128.232.110.120',
    '66.35.250.204',
    34855,
    80,
    '1:LQU9qZlK+B5F3KDmev6m5PMibrg=',
    '1:3V71V58M3Ksw/yuFALMcW0LAHvc=',
  ],
  [
    6,
    '66.35.250.204',
    '128.232.110.120',
    80,
    34855,
    '1:LQU9qZlK+B5F3KDmev6m5PMibrg=',
    '1:3V71V58M3Ksw/yuFALMcW0LAHvc=',
  ],
  [
    17,
    '192.168.1.52',
    '8.8.8.8',
    54585,
    53,
    '1:d/FP5EW3wiY1vCndhwleRRKHowQ=',
    '1:Q9We8WO3piVF8yEQBNJF4uiSVrI=',
  ],
  [
    17,
    '8.8.8.8',
    '192.168.1.52',
    53,
    54585,
    '1:d/FP5EW3wiY1vCndhwleRRKHowQ=',
    '1:Q9We8WO3piVF8yEQBNJF4uiSVrI=',
  ],
  [
    132,
    '192.168.170.8',
    '192.168.170.56',
    7,
    7,
    '1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=',
    '1:5w3ZRjeKBzqT3zsaEECDGjUbYeg=',
  ],
  [
    132,
    '192.168.170.56',
    '192.168.170.8',
    7,
    7,
    '1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=',
    '1:5w3ZRjeKBzqT3zsaEECDGjUbYeg=',
  ],
];

test('spec baseline: TCP/UDP/SCTP, IPv4/IPv6, both directions, seed 0 and 1', () => {
  for (const [proto, s, d, sp, dp, id0, id1] of BASELINE) {
    assert.equal(cid(proto, s, d, sp, dp), id0, `${proto} ${s}:${sp} -> ${d}:${dp}`);
    assert.equal(cid(proto, s, d, sp, dp, 1), id1, `seed 1: ${proto} ${s}:${sp} -> ${d}:${dp}`);
  }
});

test('equal addresses: direction-independent, ports decide the order', () => {
  const a = cid(6, '10.0.0.1', '10.0.0.1', 1234, 80);
  assert.equal(cid(6, '10.0.0.1', '10.0.0.1', 80, 1234), a);
  assert.notEqual(cid(6, '10.0.0.1', '10.0.0.1', 1234, 81), a);
  const v6 = cid(17, '::1', '::1', 5353, 40000);
  assert.equal(cid(17, '::1', '::1', 40000, 5353), v6);
  // the protocol is part of the hash
  assert.notEqual(cid(17, '10.0.0.1', '10.0.0.1', 1234, 80), a);
});

test('format: "1:" + base64 of a 20-byte SHA-1', () => {
  const id = cid(6, '1.2.3.4', '5.6.7.8', 1, 2);
  assert.match(id, /^1:[A-Za-z0-9+/]{27}=$/);
  assert.equal(Buffer.from(id.slice(2), 'base64').length, 20);
});
