/**
 * @module output/address.test
 * Address text forms against RFC 5952 (§4 canonical form, §5 IPv4-mapped) and dotted IPv4; the
 * expected strings are the RFC's own examples, written out by hand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addrToBytes, addrToString, ipv4ToString, ipv6ToString } from './address.js';

/** Eight 16-bit groups → four 32-bit words (the engine's address layout). */
function words(...g: number[]): number[] {
  assert.equal(g.length, 8);
  return [0, 1, 2, 3].map((i) => ((g[2 * i] << 16) | g[2 * i + 1]) >>> 0);
}

test('RFC 5952 §4.2.1: the longest zero run is compressed (2001:db8::1)', () => {
  assert.equal(ipv6ToString(words(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)), '2001:db8::1');
  assert.equal(ipv6ToString(words(0x2001, 0xdb8, 0, 0, 0, 0, 2, 1)), '2001:db8::2:1');
});

test('RFC 5952 §4.1: leading zeros suppressed', () => {
  // 2001:0db8:aaaa:bbbb:cccc:dddd:eeee:0001
  assert.equal(
    ipv6ToString(words(0x2001, 0x0db8, 0xaaaa, 0xbbbb, 0xcccc, 0xdddd, 0xeeee, 0x0001)),
    '2001:db8:aaaa:bbbb:cccc:dddd:eeee:1',
  );
  assert.equal(
    ipv6ToString(words(0x2001, 0x0db8, 0x00a0, 0x000b, 0xcccc, 0x0d00, 0xeeee, 0x0010)),
    '2001:db8:a0:b:cccc:d00:eeee:10',
  );
});

test('RFC 5952 §4.2.2: a single zero group is not compressed', () => {
  assert.equal(ipv6ToString(words(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1)), '2001:db8:0:1:1:1:1:1');
  assert.equal(ipv6ToString(words(0x2001, 0xdb8, 1, 1, 1, 1, 1, 0)), '2001:db8:1:1:1:1:1:0');
});

test('RFC 5952 §4.2.3: longest run wins; a tie goes to the first run', () => {
  assert.equal(ipv6ToString(words(0x2001, 0, 0, 1, 0, 0, 0, 1)), '2001:0:0:1::1');
  assert.equal(ipv6ToString(words(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1)), '2001:db8::1:0:0:1');
});

test('RFC 5952 §4.3: lowercase hex', () => {
  assert.equal(ipv6ToString(words(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xabcd)), '2001:db8::abcd');
  assert.equal(
    ipv6ToString(words(0xfe80, 0, 0, 0, 0x0200, 0x86ff, 0xfe05, 0x80da)),
    'fe80::200:86ff:fe05:80da',
  );
});

test('all-zero, loopback, runs at either end', () => {
  assert.equal(ipv6ToString(words(0, 0, 0, 0, 0, 0, 0, 0)), '::');
  assert.equal(ipv6ToString(words(0, 0, 0, 0, 0, 0, 0, 1)), '::1');
  assert.equal(ipv6ToString(words(0xfe80, 0, 0, 0, 0, 0, 0, 0)), 'fe80::');
  assert.equal(ipv6ToString(words(0, 0, 1, 0, 0, 0, 0, 0)), '0:0:1::');
  assert.equal(
    ipv6ToString(words(0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff)),
    'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
  );
});

test('RFC 5952 §5: IPv4-mapped address in mixed notation', () => {
  assert.equal(ipv6ToString(words(0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201)), '::ffff:192.0.2.1');
  // not mapped (0:0:0:0:0:fffe:...) stays hex
  assert.equal(ipv6ToString(words(0, 0, 0, 0, 0, 0xfffe, 0xc000, 0x0201)), '::fffe:c000:201');
});

test('IPv4 dotted quad, including high-bit octets', () => {
  assert.equal(ipv4ToString(0xc0a80001), '192.168.0.1');
  assert.equal(ipv4ToString(0xffffffff), '255.255.255.255');
  assert.equal(ipv4ToString(0), '0.0.0.0');
  assert.equal(ipv4ToString(0x0a00ff01), '10.0.255.1');
  assert.equal(addrToString(4, [0, 0, 0, 0x08080808]), '8.8.8.8');
  assert.equal(addrToString(6, words(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)), '2001:db8::1');
});

test('addrToBytes: network byte order', () => {
  assert.deepEqual([...addrToBytes(4, [0, 0, 0, 0xc0a80001])], [192, 168, 0, 1]);
  assert.deepEqual(
    [...addrToBytes(6, words(0x2001, 0xdb8, 0, 0, 0, 0, 0xff00, 1))],
    [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 1],
  );
  // into a scratch array: every byte written over what was there, the same array returned
  const s4 = new Uint8Array(4).fill(0xee);
  assert.equal(addrToBytes(4, [0, 0, 0, 0x0a000102], s4), s4);
  assert.deepEqual([...s4], [10, 0, 1, 2]);
  const s16 = new Uint8Array(16).fill(0xee);
  assert.equal(addrToBytes(6, words(0x2001, 0xdb8, 0, 0, 0, 0, 0xff00, 1), s16), s16);
  assert.deepEqual([...s16], [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 1]);
});
