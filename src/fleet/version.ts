/**
 * @module fleet/version
 * A verified bundle as a box policy version: the manifest's files become the version's bytes under a
 * fixed virtual root (nothing is written into the operator's policy path, and the version id is the
 * same on every box for the same content), checked by compiling them on the main thread before any
 * worker sees them. Also the allow-all version a box falls back to when its bundle expires and the
 * operator chose `--on-expired fail-open`.
 */
import { posix } from 'node:path';
import { BUNDLE_ROOT, BundleError, type Manifest } from '../bundle/verify.js';
import { compiledSources, sourcesOf } from '../policy/compiled.js';
import {
  compileVersion,
  pairId,
  sealVersion,
  versionId,
  type PolicyVersion,
} from '../enforce/policy-source.js';

/** Where a bundle's files live in a version (virtual: never read from disk). */
export { BUNDLE_ROOT } from '../bundle/verify.js';

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

/** Where a bundle's shadow files live in a version (virtual, apart from the active ones). */
export const SHADOW_ROOT = '/chokepoint-bundle-shadow';

/**
 * Key of a shadow file in the agent's one file map (and the state store's): a NUL prefix, which no
 * manifest name can have ({@link checkName}), so a shadow file never shadows an active one.
 */
export function shadowKey(name: string): string {
  return `\0shadow/${name}`;
}

function filesVersion(
  root: string,
  main: string,
  list: { name: string }[],
  get: (name: string) => Buffer | undefined,
  at: number,
  what: string,
): PolicyVersion {
  checkName(main);
  const m = get(main);
  if (!m) throw new BundleError('ERR_BUNDLE_FORMAT', `${what}main file ${main} is not in the manifest`);
  const path = posix.join(root, main);
  const out: [string, string][] = [[path, m.toString('utf8')]];
  for (const f of list) {
    checkName(f.name);
    if (f.name === main) continue;
    const b = get(f.name);
    if (!b) throw new BundleError('ERR_BUNDLE_FORMAT', `${what}file ${f.name} was not downloaded`);
    out.push([posix.join(root, f.name), b.toString('utf8')]);
  }
  return { id: versionId(out), path, files: out, at };
}

/**
 * Key of the bundle's compiled registry file (manifest `compiled`) in the agent's file map and the
 * state store's: a NUL prefix, like {@link shadowKey}, so it never collides with a manifest name.
 */
export const COMPILED_KEY = '\0compiled';

/**
 * The bytes of a bundle's compiled file as the version's compiled bytes (a SharedArrayBuffer the
 * workers map), after checking that it was made from exactly the version's text files (the sources
 * the compiled file records, by SHA-256, in order); else the bundle is refused.
 */
function attachCompiled(v: PolicyVersion, data: Buffer): PolicyVersion {
  let ok: boolean;
  try {
    const got = compiledSources(data, COMPILED_KEY).map((s) => s.sha256);
    const want = sourcesOf(v.files).map((s) => s.sha256);
    ok = got.length === want.length && got.every((h, i) => h === want[i]);
  } catch {
    ok = false;
  }
  if (!ok)
    throw new BundleError(
      'ERR_BUNDLE_FILE',
      "compiled registry: not compiled from this bundle's files (its recorded sources differ)",
    );
  const u8 = new Uint8Array(new SharedArrayBuffer(data.length));
  u8.set(data);
  return { ...v, compiled: u8 };
}

/**
 * The version of a manifest and its (already verified) files; the main file first. With a `compiled`
 * entry (its verified bytes in the map under {@link COMPILED_KEY}) the version carries those bytes,
 * and the box loads them instead of compiling the text (an older bundle without it: the text). With a `shadow`
 * section (its files in the same map under {@link shadowKey}), the shadow version rides along and
 * the id covers the pair, so the daemon's reload swaps both as one version.
 */
export function bundleVersion(m: Manifest, files: Map<string, Buffer>, at = Date.now()): PolicyVersion {
  let v = filesVersion(BUNDLE_ROOT, m.main, m.files, (n) => files.get(n), at, '');
  if (m.compiled) {
    const c = files.get(COMPILED_KEY);
    if (!c) throw new BundleError('ERR_BUNDLE_FORMAT', `compiled file ${m.compiled.name} was not downloaded`);
    v = attachCompiled(v, c);
  }
  const sh = m.shadow;
  if (!sh) return v;
  const s = filesVersion(SHADOW_ROOT, sh.main, sh.files, (n) => files.get(shadowKey(n)), at, 'shadow ');
  return { ...v, id: pairId(v.id, s.id), shadow: s };
}

/**
 * Compile the version (and its shadow) here first, once, into the compiled bytes every worker maps
 * (enforce/policy-source sealVersion): a bundle whose policy does not compile is refused whole.
 * Bytes the version carries already (a bundle's compiled file) are decoded and checked here.
 */
export async function checkVersion(v: PolicyVersion, bundle: number): Promise<PolicyVersion> {
  const one = async (x: PolicyVersion, what: string): Promise<PolicyVersion> => {
    try {
      const s = await sealVersion({ ...x, shadow: null });
      if (x.compiled) await compileVersion(s);
      return s;
    } catch (e) {
      throw new BundleError('ERR_BUNDLE_POLICY', `bundle ${bundle}: ${what}${(e as Error).message}`, {
        cause: e,
      });
    }
  };
  const active = await one(v, '');
  if (!v.shadow) return active;
  return { ...active, shadow: await one(v.shadow, 'shadow: ') };
}

/** Allow everything (the fail-open fallback for an expired bundle). */
export function allowAllVersion(at = Date.now()): PolicyVersion {
  const path = posix.join(BUNDLE_ROOT, 'fail-open.json');
  const files: [string, string][] = [
    [path, JSON.stringify({ version: 1, name: 'fleet-fail-open', default: 'allow', rules: [] })],
  ];
  return { id: versionId(files), path, files, at };
}
