/**
 * @module fleet/version
 * A verified bundle as a box policy version: the manifest's files become the version's bytes under a
 * fixed virtual root (nothing is written into the operator's policy path, and the version id is the
 * same on every box for the same content), checked by compiling them on the main thread before any
 * worker sees them. Also the allow-all version a box falls back to when its bundle expires and the
 * operator chose `--on-expired fail-open`.
 */
import { posix } from 'node:path';
import { BundleError, type Manifest } from '../bundle/verify.js';
import { compileVersion, versionId, type PolicyVersion } from '../enforce/policy-source.js';

/** Where a bundle's files live in a version (virtual: never read from disk). */
export const BUNDLE_ROOT = '/chokepoint-bundle';

/** A file name from a manifest: relative, no `..`, no NUL, no backslash; else the bundle is refused. */
export function checkName(name: string): string {
  if (
    typeof name !== 'string' ||
    name.length === 0 ||
    name.length > 255 ||
    name.includes('\0') ||
    name.includes('\\') ||
    posix.isAbsolute(name) ||
    posix.normalize(name) !== name ||
    name.split('/').includes('..')
  )
    throw new BundleError('ERR_BUNDLE_FORMAT', `bad file name in manifest: ${JSON.stringify(name)}`);
  return name;
}

/** The version of a manifest and its (already verified) files; the main file first. */
export function bundleVersion(m: Manifest, files: Map<string, Buffer>, at = Date.now()): PolicyVersion {
  checkName(m.main);
  const main = files.get(m.main);
  if (!main) throw new BundleError('ERR_BUNDLE_FORMAT', `main file ${m.main} is not in the manifest`);
  const path = posix.join(BUNDLE_ROOT, m.main);
  const out: [string, string][] = [[path, main.toString('utf8')]];
  for (const f of m.files) {
    checkName(f.name);
    if (f.name === m.main) continue;
    out.push([posix.join(BUNDLE_ROOT, f.name), files.get(f.name)!.toString('utf8')]);
  }
  return { id: versionId(out), path, files: out, at };
}

/** Compile the version here first: a bundle whose policy does not compile is refused whole. */
export async function checkVersion(v: PolicyVersion, bundle: number): Promise<void> {
  try {
    await compileVersion(v);
  } catch (e) {
    throw new BundleError('ERR_BUNDLE_POLICY', `bundle ${bundle}: ${(e as Error).message}`, { cause: e });
  }
}

/** Allow everything (the fail-open fallback for an expired bundle). */
export function allowAllVersion(at = Date.now()): PolicyVersion {
  const path = posix.join(BUNDLE_ROOT, 'fail-open.json');
  const files: [string, string][] = [
    [path, JSON.stringify({ version: 1, name: 'fleet-fail-open', default: 'allow', rules: [] })],
  ];
  return { id: versionId(files), path, files, at };
}
