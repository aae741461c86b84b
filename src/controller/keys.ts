/**
 * @module controller/keys
 * Keys in TUF's model, with Ed25519 from node:crypto:
 * - the **root** key pair is made by `chokepoint controller root-key create` and kept offline; only
 *   its public key goes to the boxes (`--trust`);
 * - the root signs a **trust document** — `{version, created, expires, signing_keys, revoked}` —
 *   which certifies the online **signing** keys (their private halves live in the database, so every
 *   replica signs alike). Rotating or revoking a signing key is a new trust document with a higher
 *   version, signed with the root key on the controller host; boxes never accept a lower one.
 * Key ids are the SHA-256 of the public key (SPKI DER), hex.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { appendAudit } from './audit.js';
import type { Db } from './db.js';
import { ChokepointError } from '../util/errors.js';
import { keyId, type TrustDoc } from '../bundle/verify.js';

export { keyId, verifyText, type TrustDoc } from '../bundle/verify.js';

export interface SignedTrust {
  /** The document exactly as signed (JSON text). */
  doc: string;
  /** Base64 Ed25519 signature by the root key over `doc`. */
  signature: string;
}

export function pubPem(pub: KeyObject): string {
  return pub.export({ type: 'spki', format: 'pem' }).toString();
}

/** Write `root.key` (private, mode 0600) and `root.pub` into `dir`. */
export async function createRootKey(
  dir: string,
): Promise<{ keyid: string; privateFile: string; publicFile: string }> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const privateFile = join(dir, 'root.key');
  const publicFile = join(dir, 'root.pub');
  await writeFile(privateFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), {
    mode: 0o600,
    flag: 'wx',
  });
  await chmod(privateFile, 0o600);
  await writeFile(publicFile, pubPem(publicKey), { flag: 'wx' });
  return { keyid: keyId(publicKey), privateFile, publicFile };
}

export function signText(key: KeyObject | string, text: string): string {
  const k = typeof key === 'string' ? createPrivateKey(key) : key;
  return sign(null, Buffer.from(text), k).toString('base64');
}

export async function currentTrust(db: Db): Promise<(SignedTrust & { version: number }) | undefined> {
  return db.get<SignedTrust & { version: number }>(
    'SELECT version, doc, signature FROM trust ORDER BY version DESC LIMIT 1',
  );
}

const TRUST_DAYS = 365;

/**
 * Make a new signing key (unless `revokeOnly`), and sign a new trust document with the root key:
 * the new key becomes the only active one, the previous ones are retired (still listed, so bundles
 * signed a moment ago stay valid until the next publish) or, with `revoke`, revoked (listed in
 * `revoked`, refused by boxes from this document on). Audited.
 */
export async function rotateSigningKey(
  db: Db,
  o: { rootPrivatePem: string; actor: string; revoke?: string[]; newKey?: boolean },
): Promise<{ keyid: string | null; trustVersion: number }> {
  const root = createPrivateKey(o.rootPrivatePem);
  const rootPub = createPublicKey(root);
  const rootId = keyId(rootPub);
  const knownRoot = await db.get<{ value: string }>("SELECT value FROM meta WHERE key = 'root_public_key'");
  if (knownRoot && keyId(createPublicKey(knownRoot.value)) !== rootId)
    throw new KeyError(
      `this is not the controller's root key (expected key id ${keyId(createPublicKey(knownRoot.value)).slice(0, 16)}…)`,
    );
  let kp: { publicKey: KeyObject; privateKey: KeyObject } | null = null;
  if (o.newKey !== false) kp = generateKeyPairSync('ed25519');
  return db.tx(async (q) => {
    const now = Date.now();
    const prev = await q.get<{ version: number; doc: string }>(
      `SELECT version, doc FROM trust ORDER BY version DESC LIMIT 1${db.forUpdate}`,
    );
    const prevDoc = prev ? (JSON.parse(prev.doc) as TrustDoc) : null;
    const revoked = new Set(prevDoc?.revoked ?? []);
    for (const r of o.revoke ?? []) {
      const k = await q.get<{ keyid: string }>(
        'SELECT keyid FROM signing_keys WHERE keyid = $1 OR keyid LIKE $2',
        [r, r + '%'],
      );
      if (!k) throw new KeyError(`no signing key ${r}`);
      revoked.add(k.keyid);
      await q.run("UPDATE signing_keys SET status = 'revoked' WHERE keyid = $1", [k.keyid]);
    }
    let newId: string | null = null;
    if (kp) {
      newId = keyId(kp.publicKey);
      await q.run("UPDATE signing_keys SET status = 'retired' WHERE status = 'active'");
      await q.run(
        "INSERT INTO signing_keys (keyid, public_key, private_key, created_at, status) VALUES ($1, $2, $3, $4, 'active')",
        [newId, pubPem(kp.publicKey), kp.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), now],
      );
    }
    const keys = await q.all<{ keyid: string; public_key: string; status: string }>(
      "SELECT keyid, public_key, status FROM signing_keys WHERE status IN ('active', 'retired') ORDER BY created_at DESC",
    );
    if (!keys.some((k) => k.status === 'active'))
      throw new KeyError('no active signing key would be left: rotate to a new key instead');
    const doc: TrustDoc = {
      type: 'chokepoint-trust',
      version: (prev?.version ?? 0) + 1,
      created: new Date(now).toISOString(),
      expires: new Date(now + TRUST_DAYS * 86_400_000).toISOString(),
      root_keyid: rootId,
      // the active key first, then at most one retired key (bundles signed just before a rotation)
      signing_keys: keys
        .filter((k) => !revoked.has(k.keyid))
        .slice(0, 2)
        .map((k) => ({ keyid: k.keyid, public_key: k.public_key })),
      revoked: [...revoked].sort(),
    };
    const text = JSON.stringify(doc);
    await q.run('INSERT INTO trust (version, doc, signature, created_at) VALUES ($1, $2, $3, $4)', [
      doc.version,
      text,
      signText(root, text),
      now,
    ]);
    if (!knownRoot)
      await q.run("INSERT INTO meta (key, value) VALUES ('root_public_key', $1)", [pubPem(rootPub)]);
    await appendAudit(db, q, {
      actor: o.actor,
      action: kp ? 'keys.rotate' : 'keys.revoke',
      target: `trust:${doc.version}`,
      before: prevDoc
        ? {
            version: prevDoc.version,
            signing_keys: prevDoc.signing_keys.map((k) => k.keyid),
            revoked: prevDoc.revoked,
          }
        : null,
      after: {
        version: doc.version,
        signing_keys: doc.signing_keys.map((k) => k.keyid),
        revoked: doc.revoked,
      },
    });
    return { keyid: newId, trustVersion: doc.version };
  });
}

export async function activeSigningKey(db: Db): Promise<{ keyid: string; private_key: string } | undefined> {
  return db.get<{ keyid: string; private_key: string }>(
    "SELECT keyid, private_key FROM signing_keys WHERE status = 'active' ORDER BY created_at DESC LIMIT 1",
  );
}

export class KeyError extends ChokepointError {
  constructor(message: string) {
    super('ERR_KEYS', message);
  }
}
