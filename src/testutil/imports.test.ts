/**
 * @module testutil/imports.test
 * The layering holds on the repository (no import cycle between files or folders, no test helper in
 * published code, generator and parsers apart), and the checker finds each kind of problem in
 * small hand-made graphs — so a green result is not a checker that finds nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { checkImports, cycles, folderGraph, importGraph, layerViolations } from './imports.js';

const root = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../..' : '../../..', import.meta.url));

test('the repository: no import cycle, no layering violation', () => {
  const g = importGraph(root);
  assert.ok(g.size > 100, `files read: ${g.size}`);
  assert.ok(g.get('src/cli/main.ts')!.length > 0, 'imports are resolved');
  assert.deepEqual(checkImports(g), []);
});

test('cycles: self-loops, two- and three-file cycles, no false positive on a diamond', () => {
  const g = new Map<string, string[]>([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
    ['d', ['d']],
    ['e', ['f', 'g']],
    ['f', ['h']],
    ['g', ['h']],
    ['h', []],
    ['x', ['y', 'missing']],
    ['y', ['x']],
  ]);
  assert.deepEqual(cycles(g).sort(), [['a', 'b', 'c'], ['d'], ['x', 'y']]);
  // a long chain does not overflow the stack (iterative)
  const chain = new Map<string, string[]>();
  for (let i = 0; i < 50_000; i++) chain.set(`n${i}`, i + 1 < 50_000 ? [`n${i + 1}`] : ['n0']);
  assert.equal(cycles(chain)[0].length, 50_000);
});

test('folders: a cycle through two folders is found; tests and helpers do not count', () => {
  const g = new Map<string, string[]>([
    ['src/lab/servers.ts', ['src/probe/server.ts']],
    ['src/probe/reorder.ts', ['src/lab/ns.ts']],
    ['src/probe/server.ts', []],
    ['src/lab/ns.ts', []],
    ['src/util/run.ts', []],
    ['src/util/run.test.ts', ['src/lab/ns.ts']],
    ['src/lab/lab.test.ts', ['src/util/run.ts']],
  ]);
  assert.deepEqual(folderGraph(g).get('util'), []);
  assert.deepEqual(
    checkImports(g).filter((p) => p.includes('folders')),
    ['import cycle between folders of src/: lab ↔ probe'],
  );
});

test('layering: test helpers in published code, dissect → gen, gen → dissect, child_process', () => {
  const g = new Map<string, string[]>([
    ['src/engine/engine.ts', ['src/testutil/net.ts']],
    ['src/cli/cmd-x.ts', ['src/enforce/testing/harness.ts']],
    ['src/dissect/quic.ts', ['src/gen/quic-initial.ts']],
    ['src/gen/quic-initial.ts', ['src/dissect/quic-keys.ts']],
    ['src/dissect/quic.test.ts', ['src/gen/quic-initial.ts']],
    ['src/gen/synth.ts', ['src/gen/frames.ts']],
    ['src/probe/server.ts', ['node:child_process', 'node:net']],
    ['src/util/run.ts', ['node:child_process']],
    ['src/probe/server.test.ts', ['node:child_process']],
  ]);
  assert.deepEqual(
    layerViolations(g).map((v) => v.split(':')[0]),
    [
      'src/engine/engine.ts → src/testutil/net.ts',
      'src/cli/cmd-x.ts → src/enforce/testing/harness.ts',
      'src/dissect/quic.ts → src/gen/quic-initial.ts',
      'src/gen/quic-initial.ts → src/dissect/quic-keys.ts',
      'src/probe/server.ts → node',
    ],
  );
});
