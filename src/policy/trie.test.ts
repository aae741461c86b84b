/**
 * @module policy/trie.test
 * The IPv4 prefix trie with its jump table and /20 presence bitmap reports, for any address, exactly
 * the rules whose prefixes contain it (with their lengths), as a brute-force scan of the prefixes says;
 * and a trie rebuilt from its parts (what a compiled file stores) answers the same.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PrefixTrie, PrefixTrieBuilder } from './trie.js';

function contains(net: number, len: number, a: number): boolean {
  return len === 0 || net >>> (32 - len) === a >>> (32 - len);
}

/** Rule → longest matching prefix length + 1, by scanning every prefix. */
function expected(prefixes: [number, number, number][], a: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const [net, len, rule] of prefixes)
    if (contains(net, len, a)) out.set(rule, Math.max(out.get(rule) ?? 0, len + 1));
  return out;
}

function marks(t: PrefixTrie, a: number, rules: number, gen: number): Map<number, number> {
  const stamp = new Int32Array(rules);
  const spec = new Int32Array(rules);
  const touch = new Int32Array(rules);
  const cand = new Int32Array(rules + 1);
  t.walk32(a, stamp, spec, gen, touch, cand);
  const out = new Map<number, number>();
  for (let k = 1; k <= cand[0]; k++) out.set(cand[k], spec[cand[k]]);
  return out;
}

test('walk32 with jump table and /20 bitmap = brute force over the prefixes', () => {
  const prefix = fc
    .tuple(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 0, max: 32 }),
      fc.integer({ min: 0, max: 5 }),
    )
    .map(([a, len, rule]): [number, number, number] => [
      len === 0 ? 0 : (a & ((0xffffffff << (32 - len)) >>> 0)) >>> 0,
      len,
      rule,
    ]);
  fc.assert(
    fc.property(
      fc.array(prefix, { minLength: 1, maxLength: 40 }),
      fc.array(fc.tuple(fc.nat({ max: 39 }), fc.integer({ min: 0, max: 0xffffffff }), fc.boolean()), {
        minLength: 1,
        maxLength: 40,
      }),
      (prefixes, probes) => {
        const b = new PrefixTrieBuilder();
        for (const [net, len, rule] of prefixes) b.insert([net], len, rule);
        const t = b.build(true);
        const again = PrefixTrie.fromParts(t.parts(), 5);
        // the /20 presence bitmap survives the round trip (a compiled file's trie kept it dropped
        // once: right answers, but every address went on to the jump table and nodes in memory),
        // and a stored form without it gets the same one rebuilt
        assert.deepEqual(again.parts().bits20, t.parts().bits20);
        assert.deepEqual(
          PrefixTrie.fromParts({ ...t.parts(), bits20: null }, 5).parts().bits20,
          t.parts().bits20,
        );
        let gen = 1;
        for (const [which, x, inside] of probes) {
          // half the probes inside a prefix (its network plus random host bits), half anywhere
          const [net, len] = prefixes[which % prefixes.length];
          const host = len === 32 ? 0 : (x >>> len) >>> 0;
          const a = inside ? (net | host) >>> 0 : x >>> 0;
          const want = expected(prefixes, a);
          assert.deepEqual(marks(t, a, 6, gen++), want, `address ${a >>> 0}`);
          assert.deepEqual(marks(again, a, 6, gen++), want);
        }
      },
    ),
    { numRuns: 300 },
  );
});
