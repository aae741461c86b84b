/**
 * @module testutil/prereq
 * Test prerequisites (root, a Debian tool, a shared library). Outside CI a missing prerequisite skips
 * the test with its reason; under `CI=true` the test runs and fails with that reason, because a
 * skipped test proves nothing.
 */
import { spawnSync } from 'node:child_process';

export const inCi = process.env.CI === 'true';

/** The reason a prerequisite is missing, or null when all are present. */
export function missing(checks: { root?: boolean; tools?: string[]; libs?: string[] }): string | null {
  const out: string[] = [];
  if (checks.root && process.getuid?.() !== 0) out.push('needs root');
  for (const t of checks.tools ?? []) {
    if (spawnSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }).status !== 0)
      out.push(`needs the tool ${t}`);
  }
  for (const l of checks.libs ?? []) {
    const r = spawnSync('sh', ['-c', `ldconfig -p | grep -q ${l}`], { stdio: 'ignore' });
    if (r.status !== 0) out.push(`needs the shared library ${l}`);
  }
  return out.length ? out.join('; ') : null;
}

/** `skip` option for node:test: the reason outside CI, false under CI (the test then fails in `assertPrereq`). */
export function skipUnlessCi(reason: string | null): string | false {
  return reason && !inCi ? reason : false;
}

/** Call first in a test body: throws the reason under CI when a prerequisite is missing. */
export function assertPrereq(reason: string | null): void {
  if (reason) throw new Error(`missing prerequisite (CI=true makes this a failure): ${reason}`);
}
