/**
 * @module enforce/policy-source
 * A policy *version*: the bytes of the policy file and of every list file it names, read once, with
 * an id that is the content hash of all of them ({@link readVersion}). The main thread reads,
 * validates and compiles a version *once*, into the compiled registry form (policy/compiled) held in
 * a SharedArrayBuffer ({@link sealVersion}); every worker decodes those same bytes without copying
 * them ({@link compileVersion}: no disk read, no list parsing, the same compile instant), so all
 * queues enforce exactly one version and a worker restarted after a crash comes up on the bytes of
 * the version the daemon acknowledged, whatever is on disk by then. A version without compiled bytes
 * (built by hand) is compiled from its text, as before.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InputError } from '../util/errors.js';
import { compilePolicy, type Matcher } from '../policy/compile.js';
import { compiledShared, decodeCompiled, sourcesOf } from '../policy/compiled.js';
import { parsePolicyAndValue } from '../policy/load.js';
import type { ParsedPolicy } from '../policy/source.js';
import type { CompiledPolicy } from '../policy/types.js';

/** One policy version, as sent to workers (structured-clone safe). */
export interface PolicyVersion {
  /** Content hash (sha256, first 16 hex digits) over the policy file and its list files. */
  id: string;
  /** Absolute path of the policy file. */
  path: string;
  /** [absolute path, text] of the policy file first, then each list file in the order read. */
  files: [string, string][];
  /** The compile instant (ms): rule expiry is judged at the same time by every worker. */
  at: number;
  /**
   * A second version evaluated on every new flow beside this one and never enforced (fleet shadow
   * evaluation). When present, `id` covers both ({@link pairId}), so the two-phase reload treats the
   * pair as one version.
   */
  shadow?: PolicyVersion | null;
  /**
   * The version compiled once (policy/compiled format) in a SharedArrayBuffer: what workers load.
   * Not covered by `id` (it is derived from `files`, or verified against the bundle's manifest).
   */
  compiled?: Uint8Array | null;
}

/** Id of an (active, shadow) pair: the active id alone without a shadow. */
export function pairId(activeId: string, shadowId: string | null): string {
  if (shadowId === null) return activeId;
  return createHash('sha256').update(`${activeId}+shadow:${shadowId}`).digest('hex').slice(0, 16);
}

/** Content hash of the files (path and text of each, length-prefixed so no two sets collide). */
export function versionId(files: [string, string][]): string {
  const h = createHash('sha256');
  for (const [p, t] of files) {
    const pb = Buffer.from(p);
    const tb = Buffer.from(t);
    h.update(`${pb.length}:`).update(pb).update(`${tb.length}:`).update(tb);
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * Read the policy file and its list files, validate and compile them (file:line:column errors as
 * InputError). Returns the version and its compiled policy.
 */
export async function readVersion(path: string): Promise<{ version: PolicyVersion; policy: CompiledPolicy }> {
  const abs = resolve(path);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (e) {
    throw new InputError(`policy ${path}: cannot read policy: ${(e as Error).message}`, { cause: e });
  }
  const files: [string, string][] = [[abs, text]];
  const at = Date.now();
  const { policy, parsed } = await build(abs, text, at, async (p) => {
    const t = await readFile(p, 'utf8');
    files.push([p, t]);
    return t;
  });
  const version: PolicyVersion = { id: versionId(files), path: abs, files, at };
  version.compiled = compiledShared(policy, text, abs, sourcesOf(files), { parsed });
  return { version, policy };
}

/**
 * The version (and its shadow) with its compiled bytes: compiled here once from the text, unless
 * it carries them already (e.g. a bundle's compiled file: check those with {@link compileVersion}).
 * Throws InputError for a policy that does not compile.
 */
export async function sealVersion(v: PolicyVersion): Promise<PolicyVersion> {
  const shadow = v.shadow ? await sealVersion(v.shadow) : v.shadow;
  if (v.compiled) return { ...v, shadow };
  const { policy, parsed } = await compileText(v);
  const compiled = compiledShared(policy, v.files[0][1], v.path, sourcesOf(v.files), { parsed });
  return { ...v, shadow, compiled };
}

/**
 * What is posted to a worker: with compiled bytes, the version without its text files (the
 * SharedArrayBuffer is shared, the list text would be copied into every worker for nothing).
 */
export function forWorkers(v: PolicyVersion): PolicyVersion {
  const shadow = v.shadow ? forWorkers(v.shadow) : v.shadow;
  return v.compiled ? { ...v, files: [], shadow } : { ...v, shadow };
}

/** Compile a version and its shadow, if any (what every worker does on prepare). */
export async function compilePair(
  v: PolicyVersion,
): Promise<{ policy: CompiledPolicy; shadow: CompiledPolicy | null }> {
  const policy = await compileVersion(v);
  const shadow = v.shadow ? await compileVersion(v.shadow) : null;
  return { policy, shadow };
}

/** Compile a version from its own bytes (what every worker does): its compiled bytes when it has them. */
export async function compileVersion(v: PolicyVersion): Promise<CompiledPolicy> {
  if (!v.compiled) return (await compileText(v)).policy;
  try {
    return await decodeCompiled(v.compiled, v.path, { now: v.at });
  } catch (e) {
    throw new InputError(`policy ${v.path}: ${(e as Error).message}`, { cause: e });
  }
}

function compileText(v: PolicyVersion): Promise<Built> {
  const lists = new Map(v.files.slice(1));
  return build(v.path, v.files[0][1], v.at, async (p) => {
    const t = lists.get(p);
    if (t === undefined) throw new Error(`list file ${p} is not part of policy version ${v.id}`);
    return t;
  });
}

/** A compiled policy and the stored form of its parsed text (for the compiled bytes). */
interface Built {
  policy: Matcher;
  parsed: ParsedPolicy | undefined;
}

async function build(
  path: string,
  text: string,
  at: number,
  readList: (p: string) => Promise<string>,
): Promise<Built> {
  try {
    const { policy, parsed } = await parsePolicyAndValue(text, path, { readList });
    return { policy: compilePolicy(policy, { now: at }), parsed };
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`policy ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** Load and compile a policy file (the version's compiled policy). */
export async function loadPolicy(path: string): Promise<CompiledPolicy> {
  return (await readVersion(path)).policy;
}
