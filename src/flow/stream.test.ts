/**
 * @module flow/stream.test
 * TCP stream reassembly of a client's first bytes: in order, out of order, duplicates, overlaps with
 * different content (first copy wins, flagged), all-zero padding replaced, SYN-known base vs mid-stream
 * pickup (rebase when an earlier segment arrives before anything was handed out), sequence wraparound at
 * 2^32, the budget; and properties: any permutation of segments (with duplicates) rebuilds the original.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StreamAssembler } from './stream.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const MOD = 2 ** 32;

function add(s: StreamAssembler, seq: number, data: Uint8Array | string): boolean {
  const b = typeof data === 'string' ? enc(data) : data;
  // give the payload as a range inside a larger buffer, as the engine does
  const host = new Uint8Array(b.length + 9);
  host.set(b, 5);
  return s.add(seq % MOD, host, 5, b.length);
}

test('in order after a SYN', () => {
  const s = new StreamAssembler(1000);
  s.syn(1000);
  assert.equal(s.base, 1001);
  assert.equal(add(s, 1001, 'hello '), true);
  assert.equal(dec(s.view()), 'hello ');
  assert.equal(add(s, 1007, 'world'), true);
  assert.equal(dec(s.view()), 'hello world');
  assert.equal(s.overlapMismatch, false);
  assert.equal(s.overflow, false);
});

test('out of order: later bytes wait for the gap', () => {
  const s = new StreamAssembler(1000);
  s.syn(0);
  assert.equal(add(s, 7, 'world'), false);
  assert.equal(s.view().length, 0);
  assert.equal(s.hasData(), true);
  assert.equal(add(s, 12, '!'), false);
  assert.equal(add(s, 1, 'hello '), true);
  assert.equal(dec(s.view()), 'hello world!');
});

test('duplicates and retransmissions change nothing', () => {
  const s = new StreamAssembler(1000);
  s.syn(100);
  add(s, 101, 'abcdef');
  assert.equal(add(s, 101, 'abcdef'), false);
  assert.equal(add(s, 103, 'cd'), false);
  assert.equal(dec(s.view()), 'abcdef');
  assert.equal(s.overlapMismatch, false);
});

test('overlap with different content: the first copy wins and overlapMismatch is set', () => {
  const s = new StreamAssembler(1000);
  s.syn(0);
  add(s, 1, 'AAAAAAAAAA'); // [0,10)
  add(s, 6, 'bbbbbbbbbb'); // [5,15): 5 overlapping, 5 new
  assert.equal(dec(s.view()), 'AAAAAAAAAAbbbbb');
  assert.equal(s.overlapMismatch, true);
  // an out-of-order segment held first also wins over a later covering one
  const t = new StreamAssembler(1000);
  t.syn(0);
  add(t, 4, 'XYZ'); // [3,6)
  add(t, 1, 'abcdefgh'); // [0,8)
  assert.equal(dec(t.view()), 'abcXYZgh');
  assert.equal(t.overlapMismatch, true);
});

test('held all-zero bytes are replaced by later different data (documented padding rule)', () => {
  const s = new StreamAssembler(1000);
  s.syn(0);
  add(s, 1, new Uint8Array(6)); // padding counted as payload
  add(s, 1, 'GET / HTTP/1.1\r\n');
  assert.equal(dec(s.view()), 'GET / HTTP/1.1\r\n');
  assert.equal(s.zeroReplaced, true);
  assert.equal(s.overlapMismatch, false);
});

test('old data before the SYN-known start is trimmed, not rebased', () => {
  const s = new StreamAssembler(1000);
  s.syn(100); // base 101
  assert.equal(add(s, 95, '0123456789'), true); // bytes for seq 101.. are '6789'
  assert.equal(dec(s.view()), '6789');
  assert.equal(add(s, 50, 'zzzz'), false); // entirely before the start
  assert.equal(s.base, 101);
});

test('mid-stream pickup: the first segment seen sets the base', () => {
  const s = new StreamAssembler(1000);
  add(s, 5000, 'middle');
  assert.equal(s.base, 5000);
  assert.equal(s.synSeen, false);
  assert.equal(dec(s.view()), 'middle');
});

test('mid-stream pickup, first data segment arriving after a later one: rebase to the lower sequence', () => {
  const s = new StreamAssembler(1000);
  add(s, 5010, 'second'); // seq 5010..5015
  add(s, 5000, 'first.....'); // seq 5000..5009
  assert.equal(s.base, 5000);
  assert.equal(dec(s.view()), 'first.....second');
  // three segments, the first last
  const t = new StreamAssembler(1000);
  add(t, 20, 'cc');
  add(t, 15, 'bbbbb');
  add(t, 10, 'aaaaa');
  assert.equal(dec(t.view()), 'aaaaabbbbbcc');
});

test('without a SYN, an earlier segment moves the start back even after a view was taken', () => {
  // the dissectors re-read the prefix from offset 0 on every call, so while a flow is still being
  // inspected its start may move back (a mid-stream flow whose first segments arrive out of order)
  const s = new StreamAssembler(1000);
  add(s, 5010, 'second');
  assert.equal(dec(s.view()), 'second');
  add(s, 5000, 'first.....');
  assert.equal(s.base, 5000);
  assert.equal(dec(s.view()), 'first.....second');
});

test('with a SYN seen there is no rebase', () => {
  const s = new StreamAssembler(1000);
  s.syn(999); // base 1000
  add(s, 1010, 'late');
  add(s, 990, '0123456789ab'); // [990, 1002): only 1000..1001 kept
  assert.equal(s.base, 1000);
  assert.equal(dec(s.view()), 'ab');
});

test('sequence wraparound near 2^32 (SYN-known and mid-stream)', () => {
  const s = new StreamAssembler(1000);
  s.syn(MOD - 6); // base = 2^32 - 5
  add(s, MOD - 5 + 3, 'DEFGH'); // crosses 0
  add(s, MOD + 3, 'IJ'); // seq 3
  add(s, MOD - 5, 'ABC');
  assert.equal(dec(s.view()), 'ABCDEFGHIJ');
  // SYN at 2^32 - 1: base wraps to 0
  const w = new StreamAssembler(100);
  w.syn(MOD - 1);
  assert.equal(w.base, 0);
  add(w, 0, 'x');
  assert.equal(dec(w.view()), 'x');
  // mid-stream, rebase across the wrap
  const m = new StreamAssembler(1000);
  add(m, 2, 'world'); // seq 2 after wrapping
  add(m, MOD - 4, 'hello ');
  assert.equal(m.base, MOD - 4);
  assert.equal(dec(m.view()), 'hello world');
});

test('budget: bytes beyond it are not buffered and overflow is set', () => {
  const s = new StreamAssembler(10);
  s.syn(0);
  add(s, 1, '0123456789abcdef');
  assert.equal(dec(s.view()), '0123456789');
  assert.equal(s.overflow, true);
  assert.ok(s.buf.length <= 10);
  const t = new StreamAssembler(10);
  t.syn(0);
  assert.equal(add(t, 100, 'far away'), false);
  assert.equal(t.overflow, true);
  assert.equal(t.hasData(), false);
  // rebase that would push held bytes past the budget keeps only what fits
  const r = new StreamAssembler(10);
  add(r, 106, 'ABCDEFGH');
  add(r, 100, '012345');
  assert.equal(dec(r.view()), '012345ABCD');
});

test('memory: the buffer grows with the data, never beyond the budget', () => {
  const s = new StreamAssembler(16384);
  s.syn(0);
  assert.equal(s.buf.length, 0);
  add(s, 1, 'x');
  assert.ok(s.buf.length > 0 && s.buf.length <= 4096);
  add(s, 1 + 20000, new Uint8Array(100));
  add(s, 2, new Uint8Array(16383).fill(7));
  assert.equal(s.buf.length, 16384);
  assert.equal(s.view().length, 16384);
});

// --- properties ------------------------------------------------------------------------------------------

interface Seg {
  off: number;
  len: number;
}

function cutArb(maxLen: number) {
  return fc
    .record({
      data: fc.uint8Array({ minLength: 1, maxLength: maxLen }),
      cuts: fc.array(fc.nat(), { maxLength: 12 }),
      dups: fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat()), { maxLength: 8 }),
      perm: fc.array(fc.nat(), { maxLength: 40 }),
      isn: fc.oneof(fc.integer({ min: 0, max: MOD - 1 }), fc.integer({ min: MOD - 3000, max: MOD - 1 })),
    })
    .map(({ data, cuts, dups, perm, isn }) => {
      const pts = [...new Set(cuts.map((c) => c % data.length).filter((c) => c > 0))].sort((a, b) => a - b);
      const segs: Seg[] = [];
      let prev = 0;
      for (const c of [...pts, data.length]) {
        segs.push({ off: prev, len: c - prev });
        prev = c;
      }
      // duplicates, including partial overlaps with the same content (retransmissions re-cut)
      for (const [a, b, l] of dups) {
        const off = a % data.length;
        segs.push({ off, len: 1 + (b % Math.min(l + 1, data.length - off)) });
      }
      // permutation
      for (let i = segs.length - 1; i > 0; i--) {
        const j = (perm[i % Math.max(1, perm.length)] ?? 0) % (i + 1);
        [segs[i], segs[j]] = [segs[j], segs[i]];
      }
      return { data, segs, isn };
    });
}

test('property: SYN known, any order with duplicates → every view is a prefix, the final view is everything', () => {
  fc.assert(
    fc.property(cutArb(3000), ({ data, segs, isn }) => {
      const s = new StreamAssembler(4096);
      s.syn(isn);
      for (const g of segs) {
        s.add((isn + 1 + g.off) % MOD, data, g.off, g.len);
        const v = s.view();
        assert.deepEqual(Buffer.from(v), Buffer.from(data.subarray(0, v.length)));
      }
      assert.deepEqual(Buffer.from(s.view()), Buffer.from(data));
      assert.equal(s.overlapMismatch, false);
      assert.equal(s.overflow, false);
    }),
    { numRuns: 1000 },
  );
});

test('property: no SYN, nothing viewed until the end → rebase rebuilds the whole stream', () => {
  fc.assert(
    fc.property(cutArb(3000), ({ data, segs, isn }) => {
      const s = new StreamAssembler(4096);
      for (const g of segs) s.add((isn + g.off) % MOD, data, g.off, g.len);
      assert.equal(s.base, isn);
      assert.deepEqual(Buffer.from(s.view()), Buffer.from(data));
    }),
    { numRuns: 1000 },
  );
});

test('property: a budget smaller than the stream yields exactly the first budget bytes', () => {
  fc.assert(
    fc.property(cutArb(600), fc.integer({ min: 1, max: 600 }), ({ data, segs, isn }, budget) => {
      const s = new StreamAssembler(budget);
      s.syn(isn);
      for (const g of segs) s.add((isn + 1 + g.off) % MOD, data, g.off, g.len);
      const want = data.subarray(0, Math.min(budget, data.length));
      assert.deepEqual(Buffer.from(s.view()), Buffer.from(want));
      assert.equal(s.overflow, data.length > budget);
      assert.ok(s.buf.length <= budget);
    }),
    { numRuns: 1000 },
  );
});

test('linearity (counted steps): n tiny segments in any order cost O(n), not O(n²)', () => {
  const stepsFor = (n: number, order: 'reverse' | 'interleave') => {
    const s = new StreamAssembler(1 << 16);
    s.syn(999);
    const data = Uint8Array.from({ length: n }, (_, i) => i & 255);
    const offs = Array.from({ length: n }, (_, i) => i);
    if (order === 'reverse') offs.reverse();
    else offs.sort((a, b) => (a & 1) - (b & 1) || a - b); // evens first, then odds: n/2 gaps
    for (const o of offs) s.add(1000 + o, data, o, 1);
    assert.equal(s.contig, n);
    return s.steps;
  };
  for (const order of ['reverse', 'interleave'] as const) {
    const a = stepsFor(1000, order);
    const b = stepsFor(16000, order);
    // 16× the segments: at most ~16× the steps (a quadratic structure would be ~256×)
    assert.ok(b / a <= 18, `${order}: ${a} → ${b} steps (${(b / a).toFixed(1)}×)`);
    assert.ok(b <= 4 * 16000, `${order}: ${b} steps for 16,000 bytes`);
  }
});
