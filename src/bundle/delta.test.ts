/**
 * bundle/delta: the canonical list hash (insertion order and duplicates do not change it; the
 * expected digests are of literal bytes written here), delta round trips against lists built
 * independently in the test, and hostile deltas (tampered, foreign base, out of order, bad header).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { applyDelta, canonicalList, contentHash, DeltaError, makeDelta } from './delta.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

test('canonical list: sorted, unique, newline-terminated; hash of those bytes whatever the input order', () => {
  const a = canonicalList(['b.example', 'a.example', 'c.example', 'a.example']);
  const b = canonicalList(new Set(['c.example', 'b.example', 'a.example']));
  assert.equal(a.toString(), 'a.example\nb.example\nc.example\n');
  assert.equal(contentHash(a), sha('a.example\nb.example\nc.example\n'));
  assert.equal(contentHash(a), contentHash(b));
  assert.equal(canonicalList([]).length, 0);
});

function list(xs: string[]): Buffer {
  return Buffer.from([...xs].sort().join('\n') + '\n');
}

test('delta round trip: N → N+k equals the full file byte for byte (random changes)', () => {
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let round = 0; round < 20; round++) {
    const base = new Set<string>();
    while (base.size < 500) base.add(`n${Math.floor(rnd() * 1e6)}.example`);
    const next = new Set(base);
    for (const x of [...base]) if (rnd() < 0.05) next.delete(x);
    for (let i = 0; i < 30; i++) next.add(`new${Math.floor(rnd() * 1e6)}.example`);
    const from = list([...base]);
    const to = list([...next]);
    const d = makeDelta(from, to)!;
    assert.ok(d.length < to.length / 3, `delta ${d.length} B vs full ${to.length} B`);
    const out = applyDelta(from, d);
    assert.ok(out.equals(to));
    assert.equal(contentHash(out), sha(to.toString()));
  }
  // to and from empty lists
  const x = list(['a', 'b']);
  assert.ok(applyDelta(Buffer.alloc(0), makeDelta(Buffer.alloc(0), x)!).equals(x));
  assert.equal(applyDelta(x, makeDelta(x, Buffer.alloc(0))!).length, 0);
});

test('hostile deltas are refused with stable codes', () => {
  const from = list(['a.example', 'b.example', 'c.example']);
  const to = list(['a.example', 'c.example', 'd.example']);
  const d = makeDelta(from, to)!.toString();
  assert.equal(d.split('\n').slice(1).join('\n'), '-b.example\n+d.example\n');
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof DeltaError);
      return e.code;
    }
    return 'accepted';
  };
  // an added entry changed in transit: the result's hash is not the named one
  assert.equal(
    code(() => applyDelta(from, Buffer.from(d.replace('+d.example', '+evil.example')))),
    'ERR_DELTA_HASH',
  );
  // the header hashes changed to match a tampered body still cannot match the signed manifest: the
  // caller's check; here a delta for other content is refused
  assert.equal(
    code(() => applyDelta(list(['z.example']), Buffer.from(d))),
    'ERR_DELTA_BASE',
  );
  assert.equal(
    code(() => applyDelta(from, Buffer.from(d.replace('-b.example', '-x.example')))),
    'ERR_DELTA_APPLY',
  );
  assert.equal(
    code(() => applyDelta(from, Buffer.from(d.replace('+d.example', '+a.example')))),
    'ERR_DELTA_FORMAT',
  );
  assert.equal(
    code(() => applyDelta(from, Buffer.from('garbage\n'))),
    'ERR_DELTA_FORMAT',
  );
  assert.equal(
    code(() => applyDelta(from, Buffer.from(d.replace('+d', '*d')))),
    'ERR_DELTA_FORMAT',
  );
  // not a canonical list: no delta (the box fetches the full file)
  assert.equal(makeDelta(Buffer.from('b\na\n'), to), null);
  assert.equal(makeDelta(from, Buffer.from('a\r\nb\n')), null);
});
