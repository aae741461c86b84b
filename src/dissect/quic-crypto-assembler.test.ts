/**
 * @module dissect/quic-crypto-assembler.test
 * CRYPTO stream reassembly: order, overlaps (first copy wins), mismatches, the byte bound, and a
 * fast-check property against a naive model (a plain array filled first-copy-wins).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CryptoAssembler } from './quic-crypto-assembler.js';

const seq = (n: number, base = 0): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (base + i * 7) & 0xff);

test('in order, reversed and with a hole', () => {
  const data = seq(5000);
  const a = new CryptoAssembler(65536);
  a.add(0, data.subarray(0, 2000));
  assert.equal(a.contiguous, 2000);
  a.add(3000, data.subarray(3000));
  assert.equal(a.contiguous, 2000, 'hole at 2000..3000');
  a.add(2000, data.subarray(2000, 3000));
  assert.equal(a.contiguous, 5000);
  assert.deepEqual(a.prefix(), data);

  const b = new CryptoAssembler(65536);
  for (let off = 4500; off >= 0; off -= 500) b.add(off, data.subarray(off, off + 500));
  assert.deepEqual(b.prefix(), data);
  assert.equal(b.mismatch, false);
  assert.equal(b.stored, 5000);
});

test('overlap: first copy wins, a differing later copy is flagged', () => {
  const a = new CryptoAssembler(1024);
  a.add(0, Uint8Array.of(1, 2, 3, 4));
  a.add(2, Uint8Array.of(3, 4, 5, 6)); // agrees on 2..3
  assert.equal(a.mismatch, false);
  a.add(1, Uint8Array.of(9, 9)); // disagrees on 1..2
  assert.equal(a.mismatch, true);
  assert.deepEqual([...a.prefix()], [1, 2, 3, 4, 5, 6]);
  assert.equal(a.stored, 6);
});

test('bound: bytes at or beyond max are dropped and reported', () => {
  const a = new CryptoAssembler(100);
  assert.equal(a.add(90, seq(20)), false);
  assert.equal(a.add(2 ** 62, seq(5)), false);
  assert.equal(a.add(0, seq(90)), true);
  assert.equal(a.contiguous, 100);
  assert.equal(a.prefix().length, 100);
});

test('property: equals a naive first-copy-wins model for any frames', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ off: fc.nat(3000), len: fc.nat(700), seed: fc.nat(255) }), { maxLength: 40 }),
      fc.integer({ min: 1, max: 4000 }),
      (frames, max) => {
        const a = new CryptoAssembler(max);
        const model: (number | undefined)[] = [];
        let mismatch = false;
        for (const f of frames) {
          const d = seq(f.len, f.seed);
          a.add(f.off, d);
          for (let i = 0; i < f.len && f.off + i < max; i++) {
            const cur = model[f.off + i];
            if (cur === undefined) model[f.off + i] = d[i];
            else if (cur !== d[i]) mismatch = true;
          }
        }
        let c = 0;
        while (c < max && model[c] !== undefined) c++;
        assert.equal(a.contiguous, c);
        assert.deepEqual([...a.prefix()], model.slice(0, c));
        assert.equal(a.mismatch, mismatch);
      },
    ),
    { numRuns: 300 },
  );
});
