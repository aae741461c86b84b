/**
 * @module util/bytes.test
 * The one bounded cursor: its reads in both byte orders agree with Node's Buffer readers (an
 * independent implementation), a failed read throws TruncatedError and leaves the cursor where it
 * was, and find/peek/seek stay inside [pos, end).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ByteReader } from './bytes.js';
import { TruncatedError } from './errors.js';

test('u16/u32/i32 in both byte orders agree with Buffer.read*', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (a) => {
      const b = Buffer.from(a);
      const r = new ByteReader(a);
      assert.equal(r.u16le(), b.readUInt16LE(0));
      assert.equal(r.u16o(true), b.readUInt16LE(2));
      r.reset(a);
      assert.equal(r.u16o(false), b.readUInt16BE(0));
      r.reset(a);
      assert.equal(r.u32le(), b.readUInt32LE(0));
      r.reset(a);
      assert.equal(r.u32o(false), b.readUInt32BE(0));
      r.reset(a);
      assert.equal(r.u32o(true), b.readUInt32LE(0));
      r.reset(a);
      assert.equal(r.i32le(), b.readInt32LE(0));
      r.reset(a);
      assert.equal(r.i32(), b.readInt32BE(0));
      assert.equal(r.remaining, 0);
    }),
    { numRuns: 1000 },
  );
  // the extremes, written by Buffer
  const b = Buffer.alloc(8);
  b.writeUInt32LE(0xffffffff, 0);
  b.writeInt32LE(-2, 4);
  const r = new ByteReader(b);
  assert.equal(r.u32le(), 4294967295);
  assert.equal(r.i32le(), -2);
});

test('fast-check: a failed read (either byte order, seek, skip) throws TruncatedError and does not advance', () => {
  const r = new ByteReader(new Uint8Array(0));
  const ops = ['u8', 'u16', 'u16le', 'u32', 'u32le', 'i32', 'i32le', 'skip3', 'seek+5'] as const;
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 24 }),
      fc.nat(),
      fc.array(fc.constantFrom(...ops), { maxLength: 30 }),
      (buf, endCut, seq) => {
        const end = endCut % (buf.length + 1);
        r.reset(buf, 0, end);
        for (const op of seq) {
          const before = r.pos;
          try {
            if (op === 'skip3') r.skip(3);
            else if (op === 'seek+5') r.seek(r.pos + 5);
            else r[op]();
          } catch (e) {
            assert.ok(e instanceof TruncatedError, String(e));
            assert.equal(r.pos, before);
          }
          assert.ok(r.pos <= end);
        }
      },
    ),
    { numRuns: 2000 },
  );
});

test('find, peek and seek stay inside [pos, end)', () => {
  const a = Uint8Array.from([10, 1, 2, 10, 3, 10]);
  const r = new ByteReader(a, 1, 5);
  assert.equal(r.find(10), 3);
  assert.equal(r.find(10, 4), -1); // the LF at 5 is past end
  assert.equal(r.find(10, 0), 3); // clamped to pos: the LF at 0 is before it
  assert.equal(r.find(99), -1);
  assert.equal(r.peek(), 1);
  r.seek(5);
  assert.equal(r.peek(), -1);
  assert.equal(r.pos, 5);
  assert.throws(() => r.seek(4), TruncatedError); // backwards
  assert.throws(() => r.seek(6), TruncatedError); // past end
  assert.equal(r.pos, 5);
});
