/**
 * @module output/json-bytes.test
 * JsonBytes writes what JSON.stringify writes: any string (control characters, quotes, backslashes,
 * non-ASCII, lone surrogates, longer than the initial buffer), any number (integers of every size,
 * fractions, negatives, -0, NaN, infinities), string lists and booleans, over fast-check inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { JsonBytes } from './json-bytes.js';

test('strings, string lists and booleans: the bytes of JSON.stringify', () => {
  const j = new JsonBytes();
  const str = fc.oneof(
    fc.string(),
    fc.string({ unit: 'grapheme' }),
    fc.string({ unit: 'binary' }),
    fc.constantFrom('', '"', '\\', '\u0000', '\u007f', '\ud800', 'a\udc00b', 'x'.repeat(10_000)),
  );
  fc.assert(
    fc.property(fc.option(str, { nil: null }), fc.array(str, { maxLength: 5 }), fc.boolean(), (s, a, b) => {
      j.reset();
      j.raw('[');
      j.str(s);
      j.raw(',');
      j.strs(a);
      j.raw(',');
      j.bool(b);
      j.raw(']');
      assert.equal(j.text(), JSON.stringify([s, a, b]));
    }),
    { numRuns: 3000 },
  );
});

test('numbers: the text of JSON.stringify', () => {
  const j = new JsonBytes();
  const num = fc.oneof(
    fc.nat(),
    fc.integer(),
    fc.maxSafeNat(),
    fc.maxSafeInteger(),
    fc.double(),
    fc.constantFrom(0, -0, 9, 10, 99, 100, 2 ** 53, 2 ** 53 - 1, 1e21, NaN, Infinity, -Infinity),
    // the int32 path's edges and the split at nine low digits
    fc.constantFrom(
      2 ** 31 - 1,
      2 ** 31,
      2 ** 32,
      1e9,
      1e9 - 1,
      1e9 + 1,
      2e9 + 7,
      1e10,
      1e15 + 1e9,
      5508531914539054,
    ),
    fc.integer({ min: 2 ** 31 - 100, max: 2 ** 31 + 100 }),
  );
  fc.assert(
    fc.property(num, (v) => {
      j.reset();
      j.num(v);
      assert.equal(j.text(), JSON.stringify(v));
    }),
    { numRuns: 5000 },
  );
});
