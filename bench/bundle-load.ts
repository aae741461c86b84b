/**
 * @module bench/bundle-load
 * `npm run bench:bundle-load [-- --names 1e6 --cidrs 1e5 --runs 3]`: what a box's main thread spends
 * turning a verified bundle into the version its workers map (fleet/version bundleVersion +
 * checkVersion), for the same registry (bench/registry-gen) as text files only (an older bundle: the
 * text is parsed and compiled here) and with the compiled registry file the controller adds
 * (controller/compiled: decoded and checked only). Also the controller's compile of that file and
 * its size against the text. Pin it (`taskset -c 1`) to compare on one core.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { parseArgs } from 'node:util';
import { BUNDLE_ROOT, type Manifest } from '../src/bundle/verify.js';
import { bundleVersion, checkVersion, COMPILED_KEY } from '../src/fleet/version.js';
import { compileFiles } from '../src/policy/compiled.js';
import { writeRegistry } from './registry-gen.js';

const { values } = parseArgs({
  options: {
    names: { type: 'string', default: '1e6' },
    cidrs: { type: 'string', default: '1e5' },
    runs: { type: 'string', default: '3' },
  },
});
const median = (a: number[]): number => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
const dir = mkdtempSync(join(tmpdir(), 'chokepoint-bench-bundle-'));
try {
  writeRegistry(dir, Number(values.names), Number(values.cidrs));
  const names = ['policy.yaml', 'names.txt', 'nets.txt'];
  const files = new Map(names.map((n) => [n, readFileSync(join(dir, n))]));
  const m = {
    main: 'policy.yaml',
    files: names.map((n) => ({ name: n, sha256: '0'.repeat(64), size: files.get(n)!.length })),
  } as unknown as Manifest;
  let t = performance.now();
  const c = await compileFiles(
    names.map((n) => [posix.join(BUNDLE_ROOT, n), files.get(n)!.toString('utf8')] as [string, string]),
    { now: 0, compiledAt: '1970-01-01T00:00:00.000Z', shared: false },
  );
  const compileMs = performance.now() - t;
  const textBytes = [...files.values()].reduce((a, b) => a + b.length, 0);
  const withC = new Map<string, Buffer>(files);
  withC.set(COMPILED_KEY, Buffer.from(c.buffer, c.byteOffset, c.length));
  const mc = { ...m, compiled: { name: 'registry.compiled', sha256: '0'.repeat(64), size: c.length } };
  const text: number[] = [];
  const compiled: number[] = [];
  for (let i = 0; i < Number(values.runs); i++) {
    t = performance.now();
    await checkVersion(bundleVersion(m, files), 1);
    text.push(performance.now() - t);
    t = performance.now();
    await checkVersion(bundleVersion(mc, withC), 1);
    compiled.push(performance.now() - t);
  }
  const fmt = (a: number[]): string =>
    `${(median(a) / 1000).toFixed(2)} s [${a.map((x) => (x / 1000).toFixed(2)).join(', ')}]`;
  console.log(
    `registry ${values.names} names + ${values.cidrs} CIDRs: text ${(textBytes / 1e6).toFixed(1)} MB, compiled file ${(c.length / 1e6).toFixed(1)} MB (${(c.length / textBytes).toFixed(2)}×); controller compile ${(compileMs / 1000).toFixed(2)} s`,
  );
  console.log(
    `box, bundle -> version for the workers: text ${fmt(text)}; compiled ${fmt(compiled)}; ${(median(text) / median(compiled)).toFixed(1)}× faster`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
