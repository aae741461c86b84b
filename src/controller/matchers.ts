/**
 * @module controller/matchers
 * Compiled matchers kept in memory (they take seconds to build at 10^6 entries): by version id (the
 * active version's, for "why"), and by registry revision (the registry's, for "why"). A registry
 * version's matcher compiled at submission serves both, so the first lookup after a publish is cheap.
 * At most a few are kept.
 */
import type { Matcher } from '../policy/compile.js';

const byVersion = new Map<string, Matcher>();
const byRev = new Map<string, Matcher>();
const MAX = 2;

function put(m: Map<string, Matcher>, k: string, v: Matcher): void {
  m.delete(k);
  m.set(k, v);
  while (m.size > MAX) m.delete(m.keys().next().value!);
}

export function versionMatcher(db: string, id: number): Matcher | undefined {
  return byVersion.get(`${db}:${id}`);
}
export function setVersionMatcher(db: string, id: number, m: Matcher): void {
  put(byVersion, `${db}:${id}`, m);
}
export function registryMatcherAt(db: string, rev: number): Matcher | undefined {
  return byRev.get(`${db}:${rev}`);
}
export function setRegistryMatcher(db: string, rev: number, m: Matcher): void {
  put(byRev, `${db}:${rev}`, m);
}
