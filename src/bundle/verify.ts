/**
 * @module bundle/verify
 * The signed-bundle format shared by the controller (which builds and signs bundles) and the box
 * (which verifies them): manifest, envelope and trust-document types, key ids, Ed25519 verification,
 * and {@link verifyBundle} / {@link verifyFile} — what a box runs before it uses a bundle. Pure: no
 * storage, no network. Threat model in docs/FLEET.md.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { ChokepointError } from '../util/errors.js';

/** Format of the bundle's compiled content: 1 = `policy.json` (or YAML) + newline-separated list files. */
export const BUNDLE_FORMAT_VERSION = 1;

/** Where a bundle's files live on a box (a virtual root: never read from disk; see fleet/version). */
export const BUNDLE_ROOT = '/chokepoint-bundle';

export interface FileMeta {
  name: string;
  sha256: string;
  size: number;
}

export interface AuditHead {
  seq: number;
  hash: string;
}

/**
 * A second policy the box evaluates on every new flow beside the active one and never enforces
 * (shadow evaluation); its files are verified exactly like the active ones.
 */
export interface ShadowSection {
  policy_version: number;
  main: string;
  files: FileMeta[];
}

export interface Manifest {
  type: 'chokepoint-bundle';
  format_version: number;
  version: number;
  kind: 'publish' | 'resign' | 'rollback' | 'emergency' | 'stage' | 'shadow';
  /** Absent or null: no shadow evaluation (a bundle without it behaves as before). */
  shadow?: ShadowSection | null;
  /**
   * The rollout and stage this bundle was built for (absent or null: none). `report_every_s`, when
   * present, is how often the rollout's analysis samples: a box holding the bundle sends its status
   * report at least that often, so every analysis window has a report of its own.
   */
  rollout?: { id: number; stage: number; report_every_s?: number } | null;
  /**
   * The active policy compiled once by the controller (policy/compiled format, made from exactly
   * `files`): a box verifies it like the other files and loads it instead of re-parsing the text.
   * Absent or null (older bundles): the box compiles the text.
   */
  compiled?: FileMeta | null;
  policy_version: number;
  created: string;
  expires: string;
  main: string;
  files: FileMeta[];
  author: string;
  approvals: { user: string; at: string }[];
  override: { by: string; reason: string; at: string } | null;
  audit_head: AuditHead;
  signing_keyid: string;
  trust_version: number;
}

export interface Envelope {
  manifest: string;
  signature: string;
  keyid: string;
  trust: { doc: string; signature: string };
}

export interface TrustDoc {
  type: 'chokepoint-trust';
  version: number;
  created: string;
  expires: string;
  root_keyid: string;
  signing_keys: { keyid: string; public_key: string }[];
  revoked: string[];
}

export class BundleError extends ChokepointError {}

/** Key id: SHA-256 of the public key (SPKI DER), hex. */
export function keyId(pub: KeyObject): string {
  return createHash('sha256')
    .update(pub.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

export function verifyText(pub: KeyObject | string, text: string, sig: string): boolean {
  try {
    const k = typeof pub === 'string' ? createPublicKey(pub) : pub;
    return verify(null, Buffer.from(text), k, Buffer.from(sig, 'base64'));
  } catch {
    return false;
  }
}

function parse<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new BundleError('ERR_BUNDLE_FORMAT', `${what} is not valid JSON`);
  }
}

/** The shape of an envelope as received (any JSON): a clear error instead of a TypeError. */
export function asEnvelope(v: unknown): Envelope {
  const o = v as Record<string, unknown> | null;
  const t = o?.trust as Record<string, unknown> | undefined;
  if (
    !o ||
    typeof o.manifest !== 'string' ||
    typeof o.signature !== 'string' ||
    typeof o.keyid !== 'string' ||
    !t ||
    typeof t.doc !== 'string' ||
    typeof t.signature !== 'string'
  )
    throw new BundleError('ERR_BUNDLE_FORMAT', 'not a bundle envelope {manifest, signature, keyid, trust}');
  return {
    manifest: o.manifest,
    signature: o.signature,
    keyid: o.keyid,
    trust: { doc: t.doc, signature: t.signature },
  };
}

export interface VerifyOptions {
  /** Lowest bundle version acceptable (the one held): anything lower is a rollback. */
  minVersion?: number;
  /** Lowest trust-document version acceptable (the one held). */
  minTrustVersion?: number;
  now?: number;
  /** Accept an expired manifest (used only to re-read the box's own last-known-good copy). */
  allowExpired?: boolean;
}

/**
 * What a box checks before using a bundle: the trust document is signed by the pinned root, names
 * it, is not older than the one held and not expired; the manifest is signed by a key the trust
 * document lists (and not revoked); the manifest is a bundle of a known format, not expired, and its
 * version is not lower than `minVersion` (no rollback). Returns the manifest and the trust document.
 */
export function verifyEnvelope(
  env: Envelope,
  rootPublicPem: string,
  o: VerifyOptions = {},
): { manifest: Manifest; trust: TrustDoc } {
  const now = o.now ?? Date.now();
  const root = createPublicKey(rootPublicPem);
  if (!verifyText(root, env.trust.doc, env.trust.signature))
    throw new BundleError('ERR_BUNDLE_TRUST', 'trust document is not signed by the trusted root key');
  const trust = parse<TrustDoc>(env.trust.doc, 'trust document');
  if (trust.root_keyid !== keyId(root))
    throw new BundleError('ERR_BUNDLE_TRUST', 'trust document names another root key');
  if (o.minTrustVersion !== undefined && !(trust.version >= o.minTrustVersion))
    throw new BundleError(
      'ERR_BUNDLE_ROLLBACK',
      `trust document version ${trust.version} is lower than the one held (${o.minTrustVersion})`,
    );
  if (Date.parse(trust.expires) <= now)
    throw new BundleError('ERR_BUNDLE_TRUST_EXPIRED', `trust document expired at ${trust.expires}`);
  if (trust.revoked.includes(env.keyid))
    throw new BundleError('ERR_BUNDLE_KEY_REVOKED', `signing key ${env.keyid.slice(0, 16)}… is revoked`);
  const k = trust.signing_keys.find((x) => x.keyid === env.keyid);
  if (!k)
    throw new BundleError(
      'ERR_BUNDLE_KEY_UNKNOWN',
      `signing key ${env.keyid.slice(0, 16)}… is not certified by the root`,
    );
  if (!verifyText(k.public_key, env.manifest, env.signature))
    throw new BundleError('ERR_BUNDLE_SIGNATURE', 'manifest signature does not verify');
  const m = parse<Manifest>(env.manifest, 'manifest');
  if (m.type !== 'chokepoint-bundle')
    throw new BundleError('ERR_BUNDLE_FORMAT', 'not a chokepoint bundle manifest');
  if (m.format_version > BUNDLE_FORMAT_VERSION)
    throw new BundleError(
      'ERR_BUNDLE_FORMAT',
      `format_version ${m.format_version} is newer than this box supports (${BUNDLE_FORMAT_VERSION})`,
    );
  if (!Number.isInteger(m.version) || !Array.isArray(m.files) || typeof m.main !== 'string')
    throw new BundleError('ERR_BUNDLE_FORMAT', 'manifest lacks version, main or files');
  checkManifestFiles(m.files);
  checkSections(m);
  if (m.signing_keyid !== undefined && m.signing_keyid !== env.keyid)
    throw new BundleError('ERR_BUNDLE_SIGNATURE', 'manifest names another signing key than the envelope');
  if (!o.allowExpired && Date.parse(m.expires) <= now)
    throw new BundleError('ERR_BUNDLE_EXPIRED', `bundle ${m.version} expired at ${m.expires}`);
  if (o.minVersion !== undefined && m.version < o.minVersion)
    throw new BundleError(
      'ERR_BUNDLE_ROLLBACK',
      `bundle version ${m.version} is lower than the version held (${o.minVersion})`,
    );
  return { manifest: m, trust };
}

/** {@link verifyEnvelope}, returning the manifest only. */
export function verifyBundle(
  env: Envelope,
  rootPublicPem: string,
  o: { minVersion?: number; now?: number } = {},
): Manifest {
  return verifyEnvelope(env, rootPublicPem, o).manifest;
}

/** Most files a manifest may list, and most bytes they may add up to (what a box will download). */
export const MAX_BUNDLE_FILES = 4096;
export const MAX_BUNDLE_BYTES = 1024 * 1024 * 1024;

/** File entries: each a string name, a SHA-256, a size; names unique; count and total size bounded. */
export function checkManifestFiles(files: readonly FileMeta[]): void {
  if (files.length > MAX_BUNDLE_FILES)
    throw new BundleError(
      'ERR_BUNDLE_FORMAT',
      `manifest lists ${files.length} files (limit ${MAX_BUNDLE_FILES})`,
    );
  const seen = new Set<string>();
  let total = 0;
  for (const f of files) {
    if (typeof f?.name !== 'string' || typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256))
      throw new BundleError('ERR_BUNDLE_FORMAT', `bad name or hash for file ${JSON.stringify(f?.name)}`);
    if (!Number.isSafeInteger(f.size) || f.size < 0 || f.size > MAX_BUNDLE_BYTES)
      throw new BundleError('ERR_BUNDLE_FORMAT', `${f.name}: bad size ${f.size} (0..${MAX_BUNDLE_BYTES})`);
    if (seen.has(f.name)) throw new BundleError('ERR_BUNDLE_FORMAT', `${f.name} is listed twice`);
    seen.add(f.name);
    total += f.size;
  }
  if (total > MAX_BUNDLE_BYTES)
    throw new BundleError('ERR_BUNDLE_FORMAT', `files add up to ${total} bytes (limit ${MAX_BUNDLE_BYTES})`);
}

/** name → entry per manifest (built once: checking every file stays linear). */
const byName = new WeakMap<readonly FileMeta[], Map<string, FileMeta>>();

/** The optional `shadow` and `rollout` sections, when present, are well-formed (else refused whole). */
export function checkSections(m: Manifest): void {
  const s = m.shadow as unknown;
  if (s !== undefined && s !== null) {
    const o = s as Partial<ShadowSection>;
    if (typeof o !== 'object' || Array.isArray(o))
      throw new BundleError('ERR_BUNDLE_FORMAT', 'manifest shadow: must be an object or null');
    if (!Number.isInteger(o.policy_version))
      throw new BundleError('ERR_BUNDLE_FORMAT', 'manifest shadow.policy_version: must be an integer');
    if (typeof o.main !== 'string')
      throw new BundleError('ERR_BUNDLE_FORMAT', 'manifest shadow.main: must be a file name');
    if (!Array.isArray(o.files))
      throw new BundleError('ERR_BUNDLE_FORMAT', 'manifest shadow.files: must be a list');
    checkManifestFiles(o.files);
    if (!o.files!.some((f) => f.name === o.main))
      throw new BundleError('ERR_BUNDLE_FORMAT', `manifest shadow.main ${o.main} is not in shadow.files`);
  }
  const c = m.compiled as unknown;
  if (c !== undefined && c !== null) {
    if (typeof c !== 'object' || Array.isArray(c))
      throw new BundleError('ERR_BUNDLE_FORMAT', 'manifest compiled: must be a file entry or null');
    checkManifestFiles([c as FileMeta]);
  }
  const r = m.rollout as unknown;
  if (r !== undefined && r !== null) {
    const o = r as { id?: unknown; stage?: unknown; report_every_s?: unknown };
    if (typeof o !== 'object' || !Number.isInteger(o.id) || !Number.isInteger(o.stage))
      throw new BundleError('ERR_BUNDLE_FORMAT', 'manifest rollout: must be {id, stage} integers or null');
    const e = o.report_every_s;
    if (e !== undefined && !(typeof e === 'number' && e >= 0.5 && e <= 3600))
      throw new BundleError(
        'ERR_BUNDLE_FORMAT',
        'manifest rollout.report_every_s: must be 0.5..3600 seconds',
      );
  }
}

/**
 * Check one downloaded file against the manifest (size, then SHA-256); `section` 'shadow' checks it
 * against the shadow section's list.
 */
export function verifyFile(
  m: Manifest,
  name: string,
  data: Buffer,
  section: 'active' | 'shadow' | 'compiled' = 'active',
): void {
  const list =
    section === 'shadow'
      ? (m.shadow?.files ?? [])
      : section === 'compiled'
        ? m.compiled
          ? [m.compiled]
          : []
        : m.files;
  let idx = byName.get(list);
  if (!idx) {
    idx = new Map();
    for (const x of list) if (!idx.has(x.name)) idx.set(x.name, x);
    byName.set(list, idx);
  }
  const f = idx.get(name);
  if (!f)
    throw new BundleError(
      'ERR_BUNDLE_FILE',
      `${section === 'active' ? '' : `${section} file `}${name} is not in the manifest`,
    );
  name = section === 'active' ? name : `${section} ${name}`;
  if (data.length !== f.size)
    throw new BundleError('ERR_BUNDLE_FILE', `${name}: ${data.length} bytes, manifest says ${f.size}`);
  if (createHash('sha256').update(data).digest('hex') !== f.sha256)
    throw new BundleError('ERR_BUNDLE_FILE', `${name}: content hash does not match the manifest`);
}
