/**
 * @module testutil/shuffle
 * A deterministic shuffle for tests: the same seed gives the same order on every run (xorshift32
 * Fisher–Yates; not for cryptography).
 */

/** A copy of `xs` in a pseudo-random order fixed by `seed`. */
export function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const out = xs.slice();
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const j = (s >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
