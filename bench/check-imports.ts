/**
 * @module bench/check-imports
 * `npm run lint`'s layering step: prints every import cycle and layering violation of src/ and
 * bench/ (rules in src/testutil/imports.ts) and exits 1 if there is any.
 */
import { fileURLToPath } from 'node:url';
import { checkImports, importGraph } from '../src/testutil/imports.js';

const root = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '..' : '../..', import.meta.url));
const g = importGraph(root);
const problems = checkImports(g);
for (const p of problems) console.error(p);
console.log(`check-imports: ${g.size} files, ${problems.length} problem(s)`);
process.exitCode = problems.length ? 1 : 0;
