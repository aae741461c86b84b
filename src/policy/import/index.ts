/**
 * @module policy/import/index
 * Registry import entry point: parse a source file in one of the supported formats.
 */
import { readFile } from 'node:fs/promises';
import { decodeZi, parseZi } from './zi.js';
import { parseAdblock, parseCidrList, parseDomains, parseHosts, type ListOptions } from './formats.js';
import type { Imported } from './types.js';

export const IMPORT_FORMATS = ['zi-csv', 'domains', 'hosts', 'adblock', 'cidr'] as const;
export type ImportFormat = (typeof IMPORT_FORMATS)[number];

export { ImportError, type Imported } from './types.js';
export { writeImport, renderImport, type WriteOptions, type WriteResult } from './write.js';

/** Read and parse `file`; returns the parsed registry and the raw bytes (for the provenance hash). */
export async function importFile(
  file: string,
  format: ImportFormat,
  o: ListOptions & { encoding?: string } = {},
): Promise<{ imp: Imported; bytes: Buffer }> {
  const bytes = await readFile(file);
  const text =
    format === 'zi-csv'
      ? decodeZi(bytes, o.encoding ?? 'windows-1251')
      : bytes.toString((o.encoding as BufferEncoding) ?? 'utf8');
  switch (format) {
    case 'zi-csv':
      return { imp: parseZi(text, file), bytes };
    case 'domains':
      return { imp: parseDomains(text, file, o), bytes };
    case 'hosts':
      return { imp: parseHosts(text, file, o), bytes };
    case 'adblock':
      return { imp: parseAdblock(text, file, o), bytes };
    case 'cidr':
      return { imp: parseCidrList(text, file), bytes };
  }
}
