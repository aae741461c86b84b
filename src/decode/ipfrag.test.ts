/**
 * @module decode/ipfrag.test
 * Fragment reassembly on its own: completion exactly when every byte up to the last fragment's end is
 * present, first copy wins on overlap, expiry by age, a bound on datagrams in progress (oldest dropped),
 * the 65,535-byte limit, and a property test: any split of a payload into 8-byte-aligned fragments, sent
 * in any order with duplicates, reassembles to the payload exactly once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FragmentReassembler } from './ipfrag.js';

const SRC = Uint32Array.of(0, 0, 0, 0x0a000001);
const DST = Uint32Array.of(0, 0, 0, 0x0a000002);
const ids = new Map<string, number>();
/** The datagram named `key` (one IPv4 id per name, same addresses). */
function add(r: FragmentReassembler, key: string, off: number, more: boolean, frag: Uint8Array, now: number) {
  let id = ids.get(key);
  if (id === undefined) ids.set(key, (id = ids.size + 1));
  return r.add(4, SRC, DST, id, 17, off, more, frag, now);
}

const payload = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);

test('completes only when all bytes and the last fragment are present', () => {
  const r = new FragmentReassembler();
  const p = payload(40);
  assert.equal(add(r, 'k', 16, true, p.subarray(16, 32), 0), null);
  assert.equal(add(r, 'k', 32, false, p.subarray(32), 0), null, 'first 16 bytes missing');
  assert.equal(add(r, 'k', 0, true, p.subarray(0, 8), 0), null, 'bytes 8..16 missing');
  const whole = add(r, 'k', 8, true, p.subarray(8, 16), 0);
  assert.ok(whole);
  assert.deepEqual([...whole], [...p]);
  assert.equal(r.size, 0);
});

test('no completion without the last fragment (MF=0), even with all bytes so far', () => {
  const r = new FragmentReassembler();
  const p = payload(24);
  assert.equal(add(r, 'k', 0, true, p.subarray(0, 16), 0), null);
  assert.equal(add(r, 'k', 16, true, p.subarray(16), 0), null);
  assert.equal(r.size, 1);
});

test('keys are exact: same id, other address / protocol / version are other datagrams', () => {
  const r = new FragmentReassembler();
  const p = payload(16);
  const other = Uint32Array.of(0, 0, 0, 0x0a000003);
  assert.equal(r.add(4, SRC, DST, 7, 17, 0, true, p.subarray(0, 8), 0), null);
  assert.equal(r.add(4, other, DST, 7, 17, 8, false, p.subarray(8), 0), null);
  assert.equal(r.add(4, SRC, DST, 7, 6, 8, false, p.subarray(8), 0), null);
  assert.equal(r.add(6, SRC, DST, 7, 17, 8, false, p.subarray(8), 0), null);
  assert.equal(r.size, 4);
  assert.deepEqual([...r.add(4, SRC, DST, 7, 17, 8, false, p.subarray(8), 0)!], [...p]);
});

test('flood of first fragments with fresh ids: storage per datagram is small, the oldest is evicted and counted', () => {
  const codes = new Map<string, number>();
  const r = new FragmentReassembler(256, 30_000, (c) => codes.set(c, (codes.get(c) ?? 0) + 1));
  const src = new Uint32Array(4);
  for (let i = 0; i < 20_000; i++) {
    src[3] = 0x0a000000 + i;
    r.add(4, src, DST, i & 0xffff, 17, 0, true, payload(64), i);
  }
  assert.equal(r.size, 256);
  assert.equal(codes.get('ipfrag_evicted'), 20_000 - 256);
  // bytes held: 256 datagrams of 256-byte storage + bitmap, far below 256 × 64 KiB
  assert.ok(r.heldBytes <= 256 * (256 + 32), `held ${r.heldBytes}`);
  r.expire(20_000 + 30_001);
  assert.equal(r.size, 0);
  assert.equal(codes.get('ipfrag_timeout'), 256);
});

test('overlap: the first copy of each byte wins', () => {
  const r = new FragmentReassembler();
  const p = payload(32);
  add(r, 'k', 8, true, new Uint8Array(16).fill(0xee), 0); // [8, 24) junk first
  add(r, 'k', 0, true, p.subarray(0, 16), 0);
  const w = add(r, 'k', 16, false, p.subarray(16), 0);
  assert.ok(w);
  const want = p.slice();
  want.fill(0xee, 8, 24);
  assert.deepEqual([...w], [...want]);
});

test('keys keep datagrams apart', () => {
  const r = new FragmentReassembler();
  const a = payload(16, 1);
  const b = payload(16, 2);
  add(r, 'a', 0, true, a.subarray(0, 8), 0);
  add(r, 'b', 8, false, b.subarray(8), 0);
  assert.equal(add(r, 'a', 8, false, a.subarray(8), 0)?.toString(), a.toString());
  assert.equal(add(r, 'b', 0, true, b.subarray(0, 8), 0)?.toString(), b.toString());
});

test('expiry drops datagrams older than the timeout', () => {
  const r = new FragmentReassembler(256, 1000);
  add(r, 'old', 0, true, payload(8), 0);
  add(r, 'new', 0, true, payload(8), 900);
  r.expire(1000);
  assert.equal(r.size, 2);
  r.expire(1500);
  assert.equal(r.size, 1);
  assert.equal(r.dropped, 1);
  // 'old' starts again from nothing: its tail alone does not complete it
  assert.equal(add(r, 'old', 8, false, payload(8), 1600), null);
});

test('bound: at most maxDatagrams in progress, the oldest is dropped to make room', () => {
  const r = new FragmentReassembler(3, 60_000);
  for (let i = 0; i < 10; i++) add(r, `d${i}`, 0, true, payload(8), i);
  assert.equal(r.size, 3);
  assert.equal(r.dropped, 7);
  // the newest three survive: completing d9 works, d0 does not
  assert.ok(add(r, 'd9', 8, false, payload(8), 20));
  assert.equal(add(r, 'd0', 8, false, payload(8), 20), null);
});

test('fragments ending beyond 65,535 bytes are dropped', () => {
  const r = new FragmentReassembler();
  assert.equal(add(r, 'k', 65528, false, payload(16), 0), null);
  assert.equal(r.size, 0);
  assert.equal(r.dropped, 1);
  // exactly 65,535 is fine
  add(r, 'm', 0, true, new Uint8Array(65528), 0);
  const w = add(r, 'm', 65528, false, payload(7), 0);
  assert.equal(w?.length, 65535);
});

test('property: any 8-aligned split, any order, duplicates → the payload, exactly once', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 3000 }),
      fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 40 }),
      fc.array(fc.nat(), { maxLength: 10 }),
      fc.integer(),
      (len, sizes, dups, seed) => {
        const p = payload(len, seed & 255);
        const frags: { off: number; more: boolean; data: Uint8Array }[] = [];
        let off = 0;
        for (let i = 0; off < len; i++) {
          const sz = Math.max(8, sizes[i % sizes.length] * 8);
          const end = Math.min(len, off + sz);
          frags.push({ off, more: end < len, data: p.subarray(off, end) });
          off = end;
        }
        for (const d of dups) frags.push(frags[d % frags.length]);
        // deterministic shuffle
        let x = seed >>> 0 || 1;
        for (let i = frags.length - 1; i > 0; i--) {
          x = (Math.imul(x, 1103515245) + 12345) >>> 0;
          const j = x % (i + 1);
          [frags[i], frags[j]] = [frags[j], frags[i]];
        }
        const r = new FragmentReassembler();
        let done: Uint8Array | null = null;
        const distinct = new Set<number>();
        for (const f of frags) {
          const w = add(r, 'k', f.off, f.more, f.data, 0);
          if (w) {
            done = w;
            // it completes when the last distinct fragment arrives
            distinct.add(f.off);
            assert.equal(distinct.size, new Set(frags.map((g) => g.off)).size);
            break;
          }
          distinct.add(f.off);
        }
        assert.ok(done, 'completed');
        assert.deepEqual([...done!], [...p]);
      },
    ),
    { numRuns: 500 },
  );
});

test('the first last fragment fixes the length; later conflicting ends are ignored', () => {
  const r = new FragmentReassembler();
  const p = payload(32);
  assert.equal(add(r, 'k', 16, false, p.subarray(16), 0), null); // length 32
  assert.equal(add(r, 'k', 24, false, new Uint8Array(24), 0), null); // claims length 48: ignored
  const w = add(r, 'k', 0, true, p.subarray(0, 16), 0);
  assert.ok(w);
  assert.deepEqual([...w], [...p]);
});

test('bytes beyond the known length do not count toward completion', () => {
  const r = new FragmentReassembler();
  const p = payload(40);
  add(r, 'k', 32, false, p.subarray(32), 0); // length 40
  add(r, 'k', 40, true, new Uint8Array(64), 0); // beyond the end (malformed)
  assert.equal(add(r, 'k', 8, true, p.subarray(8, 32), 0), null, 'bytes 0..8 still missing');
  assert.deepEqual([...(add(r, 'k', 0, true, p.subarray(0, 8), 0) ?? [])], [...p]);
});

test('linear cost: a flood of 8-byte fragments (last one first) is not quadratic', () => {
  const run = (n: number) => {
    let best = Infinity;
    for (let k = 0; k < 3; k++) {
      const r = new FragmentReassembler();
      const chunk = new Uint8Array(8);
      const t0 = performance.now();
      add(r, 'k', n * 8, false, chunk, 0);
      for (let i = 0; i < n; i++) add(r, 'k', i * 8, true, chunk, 0);
      best = Math.min(best, performance.now() - t0);
    }
    return best;
  };
  run(2000); // warm up
  const small = Math.max(run(500), 0.05);
  const big = run(8000);
  // 16x the fragments: linear ≈ 16x, quadratic ≈ 256x; generous bound for a loaded machine
  assert.ok(
    big / small < 80,
    `ratio ${(big / small).toFixed(1)}: 500 fragments ${small.toFixed(2)} ms, 8000 fragments ${big.toFixed(2)} ms`,
  );
});
