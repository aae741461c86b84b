/**
 * @module testutil/imports
 * The repository's import graph (src/ and bench/, every static and literal dynamic import,
 * type-only imports included, read with the TypeScript compiler's pre-processor) and the layering
 * rules checked on it by `imports.test.ts` and `npm run lint` (bench/check-imports.ts):
 * - no import cycle between files (tests included);
 * - no cycle between the folders of src/ (tests excluded: a test may import anything);
 * - the published code (src/ without tests and test helpers) imports no test helper or fixture;
 * - dissect/ does not import gen/, and gen/ imports no parser of the packet path (its captures are
 *   the ground truth those are tested against);
 * - processes are started through util/run: node:child_process is imported only by the modules in
 *   {@link CHILD_PROCESS_ALLOWED} (long-running or detached children) and by tests.
 */
import ts from 'typescript';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/**
 * File → what it imports: repository files (paths relative to the root, with `/`) and Node's
 * built-in modules (`node:…`, which are no node of the graph).
 */
export type ImportGraph = Map<string, string[]>;

const posix = (p: string): string => p.split(sep).join('/');

/** Read every .ts file under `dirs` of `root` and resolve its relative imports to .ts files. */
export function importGraph(root: string, dirs: readonly string[] = ['src', 'bench']): ImportGraph {
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) files.push(p);
    }
  };
  for (const d of dirs) walk(join(root, d));
  const g: ImportGraph = new Map();
  for (const f of files) {
    const info = ts.preProcessFile(readFileSync(f, 'utf8'), true, true);
    const deps: string[] = [];
    for (const i of info.importedFiles) {
      if (i.fileName === 'child_process' || i.fileName.startsWith('node:')) {
        deps.push(i.fileName.startsWith('node:') ? i.fileName : `node:${i.fileName}`);
        continue;
      }
      if (!i.fileName.startsWith('.')) continue;
      const target = resolve(dirname(f), i.fileName.replace(/\.js$/, '.ts'));
      deps.push(posix(relative(root, target)));
    }
    g.set(posix(relative(root, f)), deps);
  }
  return g;
}

/** Strongly connected components with more than one node, or a self-loop (Tarjan, iterative). */
export function cycles(g: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  let next = 0;
  for (const start of g.keys()) {
    if (index.has(start)) continue;
    const work: [string, number][] = [[start, 0]];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length) {
      const top = work[work.length - 1];
      const [v, i] = top;
      const deps = (g.get(v) ?? []).filter((w) => g.has(w));
      if (i < deps.length) {
        top[1]++;
        const w = deps[i];
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          work.push([w, 0]);
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
        continue;
      }
      work.pop();
      if (work.length) {
        const parent = work[work.length - 1][0];
        low.set(parent, Math.min(low.get(parent)!, low.get(v)!));
      }
      if (low.get(v) === index.get(v)) {
        const comp: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          comp.push(w);
        } while (w !== v);
        if (comp.length > 1 || (g.get(v) ?? []).includes(v)) out.push(comp.sort());
      }
    }
  }
  return out;
}

/** Whether a file is a test or a test helper (not part of the published code). */
export function isTestCode(f: string): boolean {
  return (
    f.endsWith('.test.ts') ||
    f.startsWith('src/testutil/') ||
    f.includes('/testing/') ||
    f.includes('/fixtures/') ||
    f === 'src/probe/fixtures.ts' ||
    f === 'src/policy/clitest.ts' ||
    f === 'src/policy/testutil.ts' ||
    f === 'src/controller/testutil.ts' ||
    f === 'src/controller/proc.ts'
  );
}

/** The folder graph of src/ (src/<folder>), over non-test files only. */
export function folderGraph(g: ImportGraph): Map<string, string[]> {
  const out = new Map<string, Set<string>>();
  const folder = (f: string): string | null => (f.startsWith('src/') ? f.split('/')[1] : null);
  for (const [f, deps] of g) {
    const a = folder(f);
    if (!a || isTestCode(f) || !f.slice(4).includes('/')) continue;
    if (!out.has(a)) out.set(a, new Set());
    for (const d of deps) {
      const b = folder(d);
      if (b && b !== a && !isTestCode(d)) out.get(a)!.add(b);
    }
  }
  return new Map([...out].map(([k, v]) => [k, [...v].sort()]));
}

/**
 * Published modules that may import node:child_process: the runner itself, and the few that keep a
 * long-running or detached child (stream its output, kill it later). src/enforce/ is left to its
 * owners until it adopts util/run.
 */
export const CHILD_PROCESS_ALLOWED: readonly string[] = [
  'src/util/run.ts',
  'src/lab/ns.ts', // spawnIn: long-running processes inside a namespace
  'src/lab/lab.ts', // the ChildProcess type of Lab.spawn
  'src/lab/manage.ts', // the detached services process of `lab up`
  'src/probe/in-ns.ts', // the probe and probe-server children, streaming progress
];

/** Imports that break a layering rule, as `from → to: why`. */
export function layerViolations(g: ImportGraph): string[] {
  const bad: string[] = [];
  for (const [f, deps] of g) {
    if (!f.startsWith('src/') || isTestCode(f)) continue;
    for (const d of deps) {
      if (d === 'node:child_process' && !CHILD_PROCESS_ALLOWED.includes(f) && !f.startsWith('src/enforce/'))
        bad.push(`${f} → ${d}: start processes through src/util/run.ts`);
      if (isTestCode(d)) bad.push(`${f} → ${d}: published code imports a test helper or fixture`);
      if (f.startsWith('src/dissect/') && d.startsWith('src/gen/'))
        bad.push(`${f} → ${d}: a parser imports the synthetic-capture generator`);
      if (f.startsWith('src/gen/') && /^src\/(dissect|decode|flow|engine|capture)\//.test(d))
        bad.push(`${f} → ${d}: the ground-truth generator imports the code it is the ground truth for`);
    }
  }
  return bad;
}

/** Everything wrong with the graph, one line each (empty when the layering holds). */
export function checkImports(g: ImportGraph): string[] {
  return [
    ...cycles(g).map((c) => `import cycle between files: ${c.join(' ↔ ')}`),
    ...cycles(folderGraph(g)).map((c) => `import cycle between folders of src/: ${c.join(' ↔ ')}`),
    ...layerViolations(g),
  ];
}
