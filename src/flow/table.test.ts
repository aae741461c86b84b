/**
 * @module flow/table.test
 * The flow table: both directions of a 5-tuple find the same flow with the right direction, the hash is
 * symmetric, forced hash collisions are resolved by exact comparison (insert/lookup/remove in any chain
 * position), protocol and IP version keep otherwise equal tuples apart, thousands of random tuples, and
 * the idle lists (ordering by activity, move-to-tail on touch, oldest over all lists, counts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FlowTable, LIST_CLOSED, LIST_TCP, LIST_UDP, flowHash } from './table.js';
import { Flow } from './flow.js';
import { Packet } from '../decode/packet.js';

interface T {
  ver: 4 | 6;
  proto: number;
  src: number[];
  dst: number[];
  sport: number;
  dport: number;
}

function pkt(t: T, reverse = false): Packet {
  const p = new Packet();
  p.ipVer = t.ver;
  p.proto = t.proto;
  p.src.set(reverse ? t.dst : t.src);
  p.dst.set(reverse ? t.src : t.dst);
  p.sport = reverse ? t.dport : t.sport;
  p.dport = reverse ? t.sport : t.dport;
  return p;
}

let nextId = 1;
function flowOf(t: T, hash: number): Flow {
  const f = new Flow(nextId++, hash, t.ver, t.proto);
  f.cli.set(t.src);
  f.srv.set(t.dst);
  f.cport = t.sport;
  f.sport = t.dport;
  return f;
}

const v4 = (a: number) => [0, 0, 0, a >>> 0];
const A: T = { ver: 4, proto: 6, src: v4(0x0a000001), dst: v4(0xc0000250), sport: 40000, dport: 443 };

test('both directions find the same flow, with the right direction', () => {
  const tb = new FlowTable();
  const h = flowHash(pkt(A));
  assert.equal(flowHash(pkt(A, true)), h);
  const f = flowOf(A, h);
  tb.insert(f);
  assert.equal(tb.size, 1);
  assert.equal(tb.lookup(pkt(A), h), f);
  assert.equal(tb.toServer, true);
  assert.equal(tb.lookup(pkt(A, true), h), f);
  assert.equal(tb.toServer, false);
});

test('protocol, IP version, ports and addresses all distinguish flows', () => {
  const tb = new FlowTable();
  const variants: T[] = [
    A,
    { ...A, proto: 17 },
    { ...A, ver: 6 }, // same words, IPv6 ::a00:1 → different flow
    { ...A, sport: 40001 },
    { ...A, dport: 444 },
    { ...A, src: v4(0x0a000002) },
    { ...A, dst: [1, 0, 0, 0xc0000250], ver: 6 },
    // swapped ports only (not the reverse direction of A)
    { ...A, sport: A.dport, dport: A.sport },
  ];
  const flows = variants.map((t) => {
    // force every one into the same chain
    const f = flowOf(t, 7);
    tb.insert(f);
    return f;
  });
  variants.forEach((t, i) => {
    assert.equal(tb.lookup(pkt(t), 7), flows[i], `variant ${i}`);
    assert.equal(tb.toServer, true);
    assert.equal(tb.lookup(pkt(t, true), 7), flows[i], `variant ${i} reversed`);
    assert.equal(tb.toServer, false);
  });
  // not inserted: absent
  assert.equal(tb.lookup(pkt({ ...A, sport: 1 }), 7), null);
});

test('forced collisions: remove from head, middle and tail of a chain', () => {
  const tb = new FlowTable();
  const ts: T[] = Array.from({ length: 5 }, (_, i) => ({ ...A, sport: 1000 + i }));
  const fs = ts.map((t) => flowOf(t, 99));
  for (const f of fs) {
    tb.insert(f);
    tb.touch(f, LIST_TCP);
  }
  const order = [2, 4, 0, 3, 1]; // middle, head (last inserted), tail, ...
  const alive = new Set([0, 1, 2, 3, 4]);
  for (const k of order) {
    tb.remove(fs[k]);
    alive.delete(k);
    for (let i = 0; i < 5; i++)
      assert.equal(tb.lookup(pkt(ts[i]), 99), alive.has(i) ? fs[i] : null, `after removing ${k}: ${i}`);
    assert.equal(tb.size, alive.size);
    assert.equal(tb.lists[LIST_TCP].count, alive.size);
  }
  // removing twice is harmless
  tb.remove(fs[0]);
  assert.equal(tb.size, 0);
});

test('symmetric hash (fast-check) and many random tuples all found in both directions', () => {
  const arbT = fc.record({
    ver: fc.constantFrom<4 | 6>(4, 6),
    proto: fc.constantFrom(6, 17),
    src: fc.array(fc.nat({ max: 0xffffffff }), { minLength: 4, maxLength: 4 }),
    dst: fc.array(fc.nat({ max: 0xffffffff }), { minLength: 4, maxLength: 4 }),
    sport: fc.nat({ max: 65535 }),
    dport: fc.nat({ max: 65535 }),
  });
  fc.assert(
    fc.property(arbT, (t) => flowHash(pkt(t)) === flowHash(pkt(t, true))),
    { numRuns: 5000 },
  );
  const tuples = fc.sample(arbT, 5000);
  const tb = new FlowTable();
  const seen = new Map<string, Flow>();
  for (const t of tuples) {
    const key = [t.ver, t.proto, ...t.src, ...t.dst, t.sport, t.dport].join(',');
    const rkey = [t.ver, t.proto, ...t.dst, ...t.src, t.dport, t.sport].join(',');
    if (seen.has(key) || seen.has(rkey)) continue;
    const h = flowHash(pkt(t));
    assert.equal(tb.lookup(pkt(t), h), null);
    const f = flowOf(t, h);
    tb.insert(f);
    seen.set(key, f);
  }
  for (const t of tuples) {
    const h = flowHash(pkt(t));
    const f = tb.lookup(pkt(t), h);
    assert.ok(f);
    assert.equal(tb.lookup(pkt(t, true), h), f);
  }
  assert.equal(tb.size, seen.size);
  // the table grew from 1,024 buckets past 4,096 on the way: remove every other flow, then each
  // removed one is gone and each kept one still found, in both directions
  const flows = [...seen.values()];
  for (let i = 0; i < flows.length; i += 2) tb.remove(flows[i]);
  assert.equal(tb.size, flows.length >> 1);
  for (const t of tuples) {
    const h = flowHash(pkt(t));
    const f = tb.lookup(pkt(t), h);
    const k = [t.ver, t.proto, ...t.src, ...t.dst, t.sport, t.dport].join(',');
    const want = seen.get(k) ?? seen.get([t.ver, t.proto, ...t.dst, ...t.src, t.dport, t.sport].join(','));
    const removed = flows.indexOf(want!) % 2 === 0;
    assert.equal(f, removed ? null : want, k);
    assert.equal(tb.lookup(pkt(t, true), h), f);
  }
});

test('idle lists: ordered by last activity, touch moves to the tail, oldest over all lists', () => {
  const tb = new FlowTable();
  const mk = (i: number, li: number, ms: number) => {
    const f = flowOf({ ...A, sport: 2000 + i }, i);
    f.lastMs = ms;
    tb.insert(f);
    tb.touch(f, li);
    return f;
  };
  const t1 = mk(1, LIST_TCP, 10);
  const u1 = mk(2, LIST_UDP, 5);
  const t2 = mk(3, LIST_TCP, 20);
  const c1 = mk(4, LIST_CLOSED, 1);
  const listOf = (li: number) => {
    const out: Flow[] = [];
    for (let f = tb.lists[li].head; f; f = f.next_) out.push(f);
    return out;
  };
  assert.deepEqual(listOf(LIST_TCP), [t1, t2]);
  assert.equal(tb.oldest(), c1);
  // activity on c1: becomes newest
  c1.lastMs = 30;
  tb.touch(c1, LIST_CLOSED);
  assert.equal(tb.oldest(), u1);
  // t1 touched again: moves behind t2
  t1.lastMs = 40;
  tb.touch(t1, LIST_TCP);
  assert.deepEqual(listOf(LIST_TCP), [t2, t1]);
  assert.equal(tb.lists[LIST_TCP].tail, t1);
  // a TCP flow closes: moves list
  t2.lastMs = 50;
  tb.touch(t2, LIST_CLOSED);
  assert.deepEqual(listOf(LIST_TCP), [t1]);
  assert.deepEqual(listOf(LIST_CLOSED), [c1, t2]);
  assert.deepEqual(
    [LIST_TCP, LIST_UDP, LIST_CLOSED].map((li) => tb.lists[li].count),
    [1, 1, 2],
  );
  // backwards links are consistent
  assert.equal(t2.prev_, c1);
  assert.equal(c1.next_, t2);
  // touching the tail again is a no-op
  tb.touch(t2, LIST_CLOSED);
  assert.equal(tb.lists[LIST_CLOSED].count, 2);
  // eviction order: repeatedly remove oldest
  const evicted: Flow[] = [];
  for (let f = tb.oldest(); f; f = tb.oldest()) {
    evicted.push(f);
    tb.remove(f);
  }
  assert.deepEqual(evicted, [u1, c1, t1, t2]);
  assert.equal(tb.size, 0);
  assert.equal([...tb.all()].length, 0);
});

test('all() visits every flow once', () => {
  const tb = new FlowTable();
  const fs: Flow[] = [];
  for (let i = 0; i < 100; i++) {
    const f = flowOf({ ...A, sport: i }, i % 7);
    tb.insert(f);
    tb.touch(f, i % 3);
    fs.push(f);
  }
  const got = [...tb.all()];
  assert.equal(got.length, 100);
  assert.equal(new Set(got).size, 100);
});
