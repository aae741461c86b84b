/**
 * @module policy/import/types
 * What a registry importer produces: entries per match kind with per-entry provenance, and the
 * {@link ImportError} that stops an import at the first malformed line (nothing is written).
 */
import { ChokepointError } from '../../util/errors.js';

export class ImportError extends ChokepointError {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    readonly detail: string,
  ) {
    super('ERR_IMPORT', `${file}:${line}:${column}: ${detail}`);
  }
}

export interface EntryProvenance {
  authority?: string;
  reference?: string;
  decided?: string;
  /** Line of the source file the entry came from. */
  line: number;
}

export interface Imported {
  format: string;
  /** The source's own timestamp (zi-csv `Updated:`), if any. */
  updated: string | null;
  exact: Map<string, EntryProvenance>;
  suffix: Map<string, EntryProvenance>;
  subdomains: Map<string, EntryProvenance>;
  cidr: Map<string, EntryProvenance>;
  /** Things counted but not turned into rules, with the reason (e.g. resolved IPs of domain rows). */
  notes: Record<string, number>;
  /** Source lines read (excluding comments/blank). */
  rows: number;
}

export function emptyImport(format: string): Imported {
  return {
    format,
    updated: null,
    exact: new Map(),
    suffix: new Map(),
    subdomains: new Map(),
    cidr: new Map(),
    notes: {},
    rows: 0,
  };
}

/** Iterate lines with 1-based numbers, without the line terminator. */
export function* lines(text: string): Generator<[number, string]> {
  let n = 0;
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  while (pos <= text.length) {
    let eol = text.indexOf('\n', pos);
    if (eol < 0) eol = text.length;
    n++;
    let line = text.slice(pos, eol);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (!(eol === text.length && line === '')) yield [n, line];
    pos = eol + 1;
  }
}

export function note(imp: Imported, key: string, n = 1): void {
  imp.notes[key] = (imp.notes[key] ?? 0) + n;
}
