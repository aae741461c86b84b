/**
 * @module testutil/package.test
 * What `npm pack` would publish (the package.json `files` rules, read by npm itself): the CLI
 * (`bin`) and everything it imports, schemas and profiles — and no test, test helper or recorded
 * fixture; no `main` pointing at a file that is not there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { run } from '../util/run.js';
import { haveTool, need } from './require.js';

const root = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../..' : '../../..', import.meta.url));

test(
  'npm pack: CLI, schemas and profiles, no tests, helpers or fixtures; every import resolves',
  {
    skip: need(
      haveTool('npm') && existsSync(join(root, 'dist', 'src', 'cli', 'main.js')),
      'npm or the build (dist/) missing',
    ),
    timeout: 60_000,
  },
  async () => {
    const r = await run(['npm', 'pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: root,
      timeoutMs: 50_000,
    });
    assert.equal(r.code, 0, r.stderr);
    const files = new Set(
      (JSON.parse(r.stdout) as { files: { path: string }[] }[])[0].files.map((f) => f.path),
    );
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      main?: string;
      bin: Record<string, string>;
    };
    assert.ok(pkg.main === undefined || files.has(pkg.main), `main ${pkg.main} is published`);
    for (const b of Object.values(pkg.bin)) assert.ok(files.has(b), `bin ${b} is published`);
    for (const f of [
      'schema/flow-record.schema.json',
      'schema/policy.schema.json',
      'profiles/tspu-2021-03-10.yaml',
    ])
      assert.ok(files.has(f), f);
    const unwanted = [...files].filter((f) =>
      /\.test\.js$|\/testutil\/|\/testing\/|\/fixtures\/|probe\/fixtures\.js$|policy\/(clitest|testutil)\.js$|\.map$|^src\//.test(
        f,
      ),
    );
    assert.deepEqual(unwanted, []);
    // self-contained: each published module's relative imports are published too
    const dangling: string[] = [];
    for (const f of files) {
      if (!f.endsWith('.js')) continue;
      for (const i of ts.preProcessFile(readFileSync(join(root, f), 'utf8'), true, true).importedFiles) {
        if (!i.fileName.startsWith('.')) continue;
        const target = posix.normalize(posix.join(dirname(f), i.fileName));
        if (!files.has(target)) dangling.push(`${f} → ${target}`);
      }
    }
    assert.deepEqual(dangling, []);
  },
);
