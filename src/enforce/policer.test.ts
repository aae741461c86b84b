/**
 * @module enforce/policer.test
 * Token bucket by hand: 8000 bit/s = 1 byte per ms.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DualPolicer } from './policer.js';

test('a full bucket passes the burst, then drops until tokens refill', () => {
  const p = new DualPolicer(8000, 1000, 0);
  assert.equal(p.allow(true, 1000, 0), true);
  assert.equal(p.allow(true, 1, 0), false);
  assert.equal(p.allow(true, 400, 500), true); // 500 tokens
  assert.equal(p.allow(true, 200, 500), false); // 100 left
  assert.equal(p.allow(true, 100, 500), true);
  assert.equal(p.passed, 3);
  assert.equal(p.dropped, 2);
});

test('directions are policed independently', () => {
  const p = new DualPolicer(8000, 1000, 0);
  assert.equal(p.allow(true, 1000, 0), true);
  assert.equal(p.allow(false, 1000, 0), true);
  assert.equal(p.allow(false, 1, 0), false);
});

test('idle time refills no more than the bucket', () => {
  const p = new DualPolicer(8000, 1000, 0);
  assert.equal(p.allow(true, 1000, 0), true);
  assert.equal(p.allow(true, 1001, 1_000_000), false); // bigger than the bucket: never conforms
  assert.equal(p.allow(true, 1000, 2_000_000), true);
});

test('a packet longer than the tokens is dropped without consuming them', () => {
  const p = new DualPolicer(8000, 1500, 0);
  assert.equal(p.allow(true, 1000, 0), true); // 500 left
  assert.equal(p.allow(true, 600, 0), false);
  assert.equal(p.allow(true, 500, 0), true);
});
