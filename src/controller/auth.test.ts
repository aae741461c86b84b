/**
 * @module controller/auth.test
 * The failed-authentication limiter: IPv6 clients are counted by /64 (rotating through one /64 does
 * not reset the count), IPv4-mapped addresses as IPv4, and when the table is full the least recently
 * seen client is forgotten, not the oldest inserted (a flood of fresh addresses cannot flush a client
 * that is still failing). Expected keys are written by hand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientKey, FailureLimiter } from './auth.js';

test('clientKey: IPv6 by /64, IPv4 and IPv4-mapped as the address', () => {
  assert.equal(clientKey('192.0.2.7'), '192.0.2.7');
  assert.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(clientKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(clientKey('2001:0DB8:0001:0002:ffff::1'), '2001:db8:1:2::/64');
  assert.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(clientKey('2001:db8:1:2::'), '2001:db8:1:2::/64');
  assert.equal(clientKey('::1'), '0:0:0:0::/64');
  assert.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(clientKey('2001:db8:1:2:3:4:192.0.2.1'), '2001:db8:1:2::/64');
  assert.equal(clientKey('unknown'), 'unknown');
});

test('failures from many addresses of one IPv6 /64 count as one client', () => {
  const l = new FailureLimiter(10, 60_000, 100);
  for (let i = 0; i < 10; i++) l.fail(`2001:db8:1:2::${(i + 1).toString(16)}`, 1000);
  assert.equal(l.size, 1);
  assert.equal(l.blocked('2001:db8:1:2:dead:beef:0:1', 1000), true);
  assert.equal(l.blocked('2001:db8:1:3::1', 1000), false);
  assert.equal(l.blocked('2001:db8:1:2::1', 61_001), false, 'the window passes');
});

test('a full table forgets the least recently seen client, not the oldest inserted', () => {
  const l = new FailureLimiter(3, 60_000, 4);
  for (let k = 0; k < 3; k++) l.fail('198.51.100.1', 1000); // the attacker, blocked
  assert.equal(l.blocked('198.51.100.1', 1000), true);
  for (let i = 2; i <= 4; i++) l.fail(`198.51.100.${i}`, 1000);
  // the blocked client keeps trying (seen again), then fresh addresses arrive
  assert.equal(l.blocked('198.51.100.1', 1001), true);
  l.fail('203.0.113.1', 1002);
  l.fail('203.0.113.2', 1003);
  assert.equal(l.size, 4);
  assert.equal(l.blocked('198.51.100.1', 1004), true, 'still tracked and blocked');
  assert.equal(l.blocked('198.51.100.2', 1004), false, 'idle, forgotten');
});
