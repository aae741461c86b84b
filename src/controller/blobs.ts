/**
 * @module controller/blobs
 * Content-addressed file blobs (the `blobs` table): store a version's files, read them back by hash.
 */
import type { FileMeta } from '../bundle/verify.js';
import { sha256, type Files } from './content.js';
import type { Queryable } from './db.js';

export async function storeFiles(q: Queryable, files: Files): Promise<FileMeta[]> {
  const out: FileMeta[] = [];
  for (const [name, data] of [...files.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const h = sha256(data);
    await q.run(
      'INSERT INTO blobs (sha256, size, data) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING',
      [h, data.length, data],
    );
    out.push({ name, sha256: h, size: data.length });
  }
  return out;
}

export async function readFiles(q: Queryable, metas: FileMeta[]): Promise<Files> {
  const files: Files = new Map();
  for (const m of metas) {
    const b = await q.get<{ data: Buffer | Uint8Array }>('SELECT data FROM blobs WHERE sha256 = $1', [
      m.sha256,
    ]);
    if (!b) throw new Error(`blob ${m.sha256} of ${m.name} is missing`);
    files.set(m.name, Buffer.from(b.data));
  }
  return files;
}
