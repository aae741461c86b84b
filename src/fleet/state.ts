/**
 * @module fleet/state
 * The box's last-known-good bundle in `--state DIR`: `blobs/SHA256` (each file of the bundle) and
 * `bundle.json` (the signed envelope exactly as received). Every write is temp file + fsync + rename
 * + fsync of the directory, and `bundle.json` is written last, so a crash at any point leaves either
 * the previous bundle or the new one, never a mix. What is read back is verified again like a
 * download (signature chain, sizes, hashes), so a state directory edited on disk is refused, not used.
 */
import { mkdir, open, readFile, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { asEnvelope, type Envelope } from '../bundle/verify.js';

export interface StoredBundle {
  env: Envelope;
  files: Map<string, Buffer>;
}

async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Write `data` to `path` atomically (temp + fsync + rename + fsync of the directory). */
export async function atomicWrite(dir: string, name: string, data: Buffer | string): Promise<void> {
  const tmp = join(dir, `.${name}.${process.pid}.${Date.now()}.tmp`);
  const h = await open(tmp, 'w', 0o600);
  try {
    await h.writeFile(data);
    await h.sync();
  } finally {
    await h.close();
  }
  await rename(tmp, join(dir, name));
  await fsyncDir(dir);
}

export class StateStore {
  private readonly blobs: string;
  constructor(readonly dir: string) {
    this.blobs = join(dir, 'blobs');
  }

  /** Save a verified bundle as the last-known-good one (files first, the envelope last). */
  async save(env: Envelope, files: Map<string, Buffer>, hashes: Map<string, string>): Promise<void> {
    await mkdir(this.blobs, { recursive: true, mode: 0o700 });
    for (const [name, data] of files) await atomicWrite(this.blobs, hashes.get(name)!, data);
    await atomicWrite(this.dir, 'bundle.json', JSON.stringify({ envelope: env }) + '\n');
    // files of older bundles are no longer referenced
    const keep = new Set(hashes.values());
    for (const f of await readdir(this.blobs))
      if (!keep.has(f)) await unlink(join(this.blobs, f)).catch(() => undefined);
  }

  /**
   * The stored envelope and its files by manifest name (not verified here: the agent verifies them
   * like a download). Null when there is none; an error when it is unreadable.
   */
  async load(
    fileHashes: (env: Envelope) => { name: string; sha256: string }[],
  ): Promise<StoredBundle | null> {
    let text: string;
    try {
      text = await readFile(join(this.dir, 'bundle.json'), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    const env = asEnvelope((JSON.parse(text) as { envelope: unknown }).envelope);
    const files = new Map<string, Buffer>();
    for (const f of fileHashes(env)) {
      if (!/^[0-9a-f]{64}$/.test(f.sha256)) throw new Error(`bad hash for ${f.name} in the stored manifest`);
      files.set(f.name, await readFile(join(this.blobs, f.sha256)));
    }
    return { env, files };
  }
}
