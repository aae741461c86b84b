/**
 * @module testutil/require
 * The one way a test states a prerequisite (root, a Debian tool, the corpus). Locally a missing
 * prerequisite skips the test, saying why; with `CI=true` it is a failure naming the reason (a
 * skipped test proves nothing, and CI must not go green on a machine that could not run it).
 *
 *   test('…', { skip: need(isRoot(), 'needs root (network namespaces)') }, …)   // as a test option
 *   if (!needIn(t, haveTool('ethtool'), 'ethtool missing')) return;               // inside a test
 *
 * Under CI, `need` registers one failing test `missing prerequisite: <reason>` (once per reason and
 * file) in place of the skipped one, so the run fails and the report says what was missing.
 */
import { test, type TestContext } from 'node:test';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** True when missing prerequisites must fail (`CI=true`, as set by CI services and `.ci/run`). */
export function strict(): boolean {
  return process.env.CI === 'true';
}

/** Whether this process runs as root (uid 0). */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Whether an executable named `cmd` is on PATH (no shell, no process started). */
export function haveTool(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      /* not in this directory */
    }
  }
  return false;
}

/** Whether every one of `cmds` is on PATH. */
export function haveTools(...cmds: string[]): boolean {
  return cmds.every(haveTool);
}

/** Whether `path` exists. */
export function havePath(path: string): boolean {
  return existsSync(path);
}

/** The exception thrown under CI=true for a missing prerequisite. */
export class MissingPrerequisite extends Error {
  readonly code = 'ERR_TEST_PREREQUISITE';
  constructor(reason: string) {
    super(
      `missing prerequisite: ${reason} (CI=true: a missing prerequisite is a failure, not a skip; ` +
        `scripts/test-deps.sh installs the Debian packages)`,
    );
  }
}

const reported = new Set<string>();

/**
 * For node:test's `skip` option: `false` when `ok`; otherwise `reason`, and under CI=true also a
 * failing test that names the reason.
 */
export function need(ok: boolean, reason: string): false | string {
  if (ok) return false;
  if (strict() && !reported.has(reason)) {
    reported.add(reason);
    test(`missing prerequisite: ${reason}`, () => {
      throw new MissingPrerequisite(reason);
    });
  }
  return reason;
}

/**
 * Inside a running test: true when `ok`; otherwise skips the test (locally) or throws
 * {@link MissingPrerequisite} (under CI=true), and returns false.
 */
export function needIn(t: TestContext, ok: boolean, reason: string): boolean {
  if (ok) return true;
  if (strict()) throw new MissingPrerequisite(reason);
  t.skip(reason);
  return false;
}
