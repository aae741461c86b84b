/**
 * @module policy/lists
 * List files referenced by `*_file` keys: one entry per line, blank lines and `#` comments ignored,
 * surrounding whitespace trimmed. Each entry is normalised by the caller's function; the first bad line
 * rejects the whole policy with the list file's own `file:line:column`.
 */
import { readFile } from 'node:fs/promises';
import { PolicyError } from './errors.js';

/**
 * Read `path` and normalise every entry with `norm` (returns the entry, or '!reason'). Entries are
 * returned in file order (duplicates kept; the compiler dedupes).
 */
export async function readList(path: string, norm: (s: string) => string): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  return parseList(text, path, norm);
}

export function parseList(text: string, path: string, norm: (s: string) => string): string[] {
  const out: string[] = [];
  let lineNo = 0;
  let pos = 0;
  const n = text.length;
  if (text.charCodeAt(0) === 0xfeff) pos = 1;
  while (pos < n) {
    let eol = text.indexOf('\n', pos);
    if (eol < 0) eol = n;
    lineNo++;
    const start = pos;
    let a = pos;
    let b = eol;
    pos = eol + 1;
    for (let k = a; k < b; k++) {
      if (text.charCodeAt(k) === 35 /* # */) {
        b = k;
        break;
      }
    }
    while (a < b && isSpace(text.charCodeAt(a))) a++;
    while (b > a && isSpace(text.charCodeAt(b - 1))) b--;
    if (a === b) continue;
    const entry = text.slice(a, b);
    const v = norm(entry);
    if (v.charCodeAt(0) === 33 /* ! */) {
      const col = a - start + 1;
      throw new PolicyError(path, lineNo, col, v.slice(1));
    }
    out.push(v);
  }
  return out;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 13;
}
