/**
 * @module policy/reference
 * Reference name sets for blast radius: a names file (one per line, most important first; `#`
 * comments; Tranco-style `rank,name` lines accepted) or the names seen in captures (most flows first).
 */
import { open, readFile } from 'node:fs/promises';
import { normalizeName } from './names.js';
import type { MatchInput } from './types.js';

export interface Reference {
  /** Where it came from, for messages. */
  source: string;
  /** Distinct normalised names, in rank order (index 0 = most important). */
  names: string[];
  /** Captures and flow logs: what the matcher sees of each flow, for the flow radius of rules with
   *  payload conditions (`payload_len`, `payload`). Absent for names files. */
  flows?: MatchInput[];
}

const CAPTURE_MAGICS = [0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1, 0x0a0d0d0a];

/** True when the file starts with a pcap or pcapng magic number. */
export async function isCaptureFile(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    return bytesRead === 4 && CAPTURE_MAGICS.includes(b.readUInt32BE(0));
  } finally {
    await fh.close();
  }
}

/** Parse a names file. Lines that are not valid names are skipped (counted in `skipped`). */
export function parseNamesText(text: string, source: string): Reference & { skipped: number } {
  const seen = new Set<string>();
  const names: string[] = [];
  let skipped = 0;
  for (let line of text.split('\n')) {
    const hash = line.indexOf('#');
    if (hash >= 0) line = line.slice(0, hash);
    line = line.trim();
    if (!line) continue;
    const comma = line.lastIndexOf(',');
    if (comma >= 0) line = line.slice(comma + 1).trim();
    const n = normalizeName(line);
    if (n.startsWith('!')) {
      skipped++;
      continue;
    }
    if (!seen.has(n)) {
      seen.add(n);
      names.push(n);
    }
  }
  return { source, names, skipped };
}

export async function readNamesFile(path: string): Promise<Reference & { skipped: number }> {
  return parseNamesText(await readFile(path, 'utf8'), path);
}

/** Names from flow hosts, most frequent first (ties: first seen first). */
export function namesFromHosts(hosts: Iterable<string | null>, source: string): Reference {
  const count = new Map<string, number>();
  for (const h of hosts) {
    if (!h) continue;
    const n = normalizeName(h);
    if (n.startsWith('!')) continue;
    count.set(n, (count.get(n) ?? 0) + 1);
  }
  const names = [...count.entries()].sort((a, b) => b[1] - a[1]).map((e) => e[0]);
  return { source, names };
}
