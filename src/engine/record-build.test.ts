/**
 * @module engine/record-build.test
 * The records' timestamps: `isoMicro` against `Date.prototype.toISOString` (an independent formatter)
 * for any time, in any order of calls, so its second and day caches never leak one call's date or
 * time of day into another's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isoMicro } from './record-build.js';

/** The expected text: Date's formatting of the millisecond, then the microsecond digits. */
function expected(tsMs: number): string {
  let ms = Math.floor(tsMs);
  let micro = Math.round((tsMs - ms) * 1000);
  if (micro >= 1000) {
    ms += 1;
    micro -= 1000;
  }
  return new Date(ms).toISOString().slice(0, -1) + String(micro).padStart(3, '0') + 'Z';
}

const MAX = 253402300799999; // 9999-12-31T23:59:59.999Z

test('isoMicro agrees with toISOString for any time, calls in any order (the caches are exact)', () => {
  const times = fc.oneof(
    fc.double({ min: 0, max: MAX, noNaN: true }),
    fc.integer({ min: 0, max: MAX }),
    // near now, microseconds apart, across second, minute, hour and day boundaries
    fc.integer({ min: 0, max: 3 * 86_400_000_000 }).map((us) => 1_764_547_199_000 + us / 1000),
  );
  fc.assert(
    fc.property(fc.array(times, { minLength: 1, maxLength: 40 }), (ts) => {
      for (const t of ts) assert.equal(isoMicro(t), expected(t), String(t));
    }),
    { numRuns: 3000 },
  );
});

test('isoMicro at the edges: the epoch, day and year boundaries, rounding up into the next second', () => {
  for (const [t, s] of [
    [0, '1970-01-01T00:00:00.000000Z'],
    [86_399_999.9996, '1970-01-02T00:00:00.000000Z'],
    [1_704_067_199_999.5, '2023-12-31T23:59:59.999500Z'],
    [1_704_067_200_000, '2024-01-01T00:00:00.000000Z'],
    [951_782_400_000 + 0.001, '2000-02-29T00:00:00.000001Z'],
    [MAX, '9999-12-31T23:59:59.999000Z'],
  ] as const) {
    assert.equal(isoMicro(t), s, String(t));
    assert.equal(isoMicro(t), s, `${t}, again (from the cache)`);
  }
  // out of range and not finite: the epoch, as before
  for (const t of [-1, NaN, Infinity, MAX + 1]) assert.equal(isoMicro(t), '1970-01-01T00:00:00.000000Z');
});
