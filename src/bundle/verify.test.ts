/**
 * @module bundle/verify.test
 * Manifest file entries a box refuses before downloading anything: too many files, a size past the
 * limit (or files adding up past it), duplicate names, bad hashes; and `verifyFile` stays linear in
 * the number of files (one index per manifest, not a search per file).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  checkManifestFiles,
  checkSections,
  MAX_BUNDLE_BYTES,
  MAX_BUNDLE_FILES,
  verifyFile,
  type FileMeta,
  type Manifest,
} from './verify.js';

const H = 'ab'.repeat(32);
const refused = (files: FileMeta[], re: RegExp) =>
  assert.throws(
    () => checkManifestFiles(files),
    (e: Error & { code?: string }) => e.code === 'ERR_BUNDLE_FORMAT' && re.test(e.message),
  );

test('manifest file entries: count, sizes, total, duplicates and hashes are checked', () => {
  checkManifestFiles([
    { name: 'policy.json', sha256: H, size: 10 },
    { name: 'lists/a.txt', sha256: H, size: 0 },
  ]);
  refused(
    Array.from({ length: MAX_BUNDLE_FILES + 1 }, (_, i) => ({ name: `l/${i}`, sha256: H, size: 1 })),
    /lists 4097 files \(limit 4096\)/,
  );
  refused([{ name: 'big', sha256: H, size: MAX_BUNDLE_BYTES + 1 }], /big: bad size/);
  refused([{ name: 'neg', sha256: H, size: -1 }], /neg: bad size/);
  refused([{ name: 'frac', sha256: H, size: 1.5 }], /frac: bad size/);
  refused(
    [
      { name: 'a', sha256: H, size: MAX_BUNDLE_BYTES / 2 + 1 },
      { name: 'b', sha256: H, size: MAX_BUNDLE_BYTES / 2 + 1 },
    ],
    /add up to/,
  );
  refused(
    [
      { name: 'lists/a.txt', sha256: H, size: 1 },
      { name: 'lists/a.txt', sha256: H, size: 1 },
    ],
    /lists\/a.txt is listed twice/,
  );
  refused([{ name: 'x', sha256: 'AB'.repeat(32), size: 1 }], /bad name or hash/);
  refused([{ name: 7, sha256: H, size: 1 } as unknown as FileMeta], /bad name or hash/);
});

test('verifyFile over every file of a large manifest is linear', () => {
  const n = 4000;
  const data = Buffer.from('x');
  const sha = createHash('sha256').update(data).digest('hex');
  const files = Array.from({ length: n }, (_, i) => ({ name: `lists/${i}.txt`, sha256: sha, size: 1 }));
  const m = { files } as unknown as Manifest;
  // count comparisons of names: a search per file would make ~n²/2 of them
  let reads = 0;
  const counted = files.map((f) => {
    const o = { sha256: f.sha256, size: f.size } as FileMeta;
    Object.defineProperty(o, 'name', { get: () => (reads++, f.name), enumerable: true });
    return o;
  });
  (m as { files: FileMeta[] }).files = counted;
  for (const f of files) verifyFile(m, f.name, data);
  assert.ok(reads <= 2 * n, `${reads} name reads for ${n} files`);
  assert.throws(() => verifyFile(m, 'lists/none.txt', data), /not in the manifest/);
});

test('manifest rollout section: {id, stage} integers, optional report_every_s within 0.5..3600 s', () => {
  const m = (rollout: unknown) => ({ rollout }) as unknown as Manifest;
  checkSections(m(null));
  checkSections(m({ id: 1, stage: 0 }));
  checkSections(m({ id: 1, stage: 2, report_every_s: 0.5 }));
  const bad = (r: unknown, re: RegExp) =>
    assert.throws(
      () => checkSections(m(r)),
      (e: Error & { code?: string }) => e.code === 'ERR_BUNDLE_FORMAT' && re.test(e.message),
    );
  bad({ id: '1', stage: 0 }, /manifest rollout: must be \{id, stage\}/);
  for (const v of [0.1, 0, -5, 3601, '5', null, Number.NaN])
    bad({ id: 1, stage: 0, report_every_s: v }, /rollout\.report_every_s: must be 0\.5\.\.3600/);
});

test('manifest compiled section: a file entry or null; the compiled file is verified like the others', () => {
  const data = Buffer.from('CHKPREG\0compiled bytes');
  const sha = createHash('sha256').update(data).digest('hex');
  const m = (compiled: unknown) => ({ files: [], compiled }) as unknown as Manifest;
  checkSections(m(null));
  checkSections(m(undefined));
  checkSections(m({ name: 'registry.compiled', sha256: sha, size: data.length }));
  for (const [c, re] of [
    [[], /manifest compiled: must be a file entry/],
    ['x', /manifest compiled: must be a file entry/],
    [{ name: 'registry.compiled', sha256: 'zz', size: 1 }, /bad name or hash/],
    [{ name: 'registry.compiled', sha256: sha, size: -1 }, /bad size/],
  ] as [unknown, RegExp][])
    assert.throws(
      () => checkSections(m(c)),
      (e: Error & { code?: string }) => e.code === 'ERR_BUNDLE_FORMAT' && re.test(e.message),
    );
  const ok = m({ name: 'registry.compiled', sha256: sha, size: data.length });
  verifyFile(ok, 'registry.compiled', data, 'compiled');
  const tampered = Buffer.from(data);
  tampered[tampered.length - 1] ^= 1;
  assert.throws(
    () => verifyFile(ok, 'registry.compiled', tampered, 'compiled'),
    (e: Error & { code?: string }) =>
      e.code === 'ERR_BUNDLE_FILE' &&
      /compiled registry.compiled: content hash does not match/.test(e.message),
  );
  assert.throws(
    () => verifyFile(ok, 'registry.compiled', data.subarray(1), 'compiled'),
    /compiled registry.compiled: \d+ bytes, manifest says/,
  );
  assert.throws(
    () => verifyFile(m(null), 'registry.compiled', data, 'compiled'),
    /compiled file registry.compiled is not in the manifest/,
  );
});
