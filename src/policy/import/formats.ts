/**
 * @module policy/import/formats
 * Plain list formats:
 * - `domains`: one name per line (`#` comments); `*.x` → subdomains, otherwise `--match` (exact by
 *   default, or suffix);
 * - `hosts`: hosts-file lines `ADDRESS NAME [NAME…]` (`#` comments); the address (a sinkhole) is
 *   ignored, the names imported like `domains`; localhost-style names are skipped;
 * - `adblock`: `||name^` → suffix (adblock's "domain and subdomains" anchor); `!` comments and the
 *   `[Adblock …]` header skipped; any other rule (options, paths, exceptions, cosmetic) is
 *   unsupported: an error, or skipped and counted with `skipUnsupported`;
 * - `cidr`: one address or prefix per line (`#` comments), v4 or v6.
 */
import { normalizeName } from '../names.js';
import { formatCidr, parseCidr } from '../ip.js';
import { emptyImport, ImportError, lines, note, type Imported } from './types.js';

export interface ListOptions {
  match?: 'exact' | 'suffix';
  skipUnsupported?: boolean;
}

const LOCAL_NAMES = new Set([
  'localhost',
  'localhost.localdomain',
  'local',
  'broadcasthost',
  'ip6-localhost',
  'ip6-loopback',
  'ip6-localnet',
  'ip6-mcastprefix',
  'ip6-allnodes',
  'ip6-allrouters',
  'ip6-allhosts',
  '0.0.0.0',
]);

function stripComment(line: string, mark = '#'): string {
  const i = line.indexOf(mark);
  return i >= 0 ? line.slice(0, i) : line;
}

function addName(
  imp: Imported,
  raw: string,
  file: string,
  n: number,
  col: number,
  match: 'exact' | 'suffix',
): void {
  const mask = raw.startsWith('*.');
  const name = normalizeName(mask ? raw.slice(2) : raw);
  if (name.startsWith('!')) throw new ImportError(file, n, col, `invalid name: ${name.slice(1)}`);
  const map = mask ? imp.subdomains : match === 'suffix' ? imp.suffix : imp.exact;
  if (!map.has(name)) map.set(name, { line: n });
  else note(imp, 'duplicate names');
}

export function parseDomains(text: string, file: string, o: ListOptions = {}): Imported {
  const imp = emptyImport('domains');
  for (const [n, line] of lines(text)) {
    const s = stripComment(line);
    const t = s.trim();
    if (!t) continue;
    if (/\s/.test(t))
      throw new ImportError(
        file,
        n,
        s.indexOf(t) + 1,
        `one name per line expected, got '${t.slice(0, 60)}' (a hosts file? use --format hosts)`,
      );
    imp.rows++;
    addName(imp, t, file, n, s.indexOf(t) + 1, o.match ?? 'exact');
  }
  return imp;
}

export function parseHosts(text: string, file: string, o: ListOptions = {}): Imported {
  const imp = emptyImport('hosts');
  for (const [n, line] of lines(text)) {
    const s = stripComment(line);
    if (!s.trim()) continue;
    const parts: { text: string; col: number }[] = [];
    const re = /\S+/g;
    let m: RegExpExecArray | null;
    while ((m = re.exec(s))) parts.push({ text: m[0], col: m.index + 1 });
    if (parts.length < 2)
      throw new ImportError(file, n, parts[0].col, `hosts line needs an address and at least one name`);
    if (typeof parseCidr(parts[0].text) === 'string' || parts[0].text.includes('/'))
      throw new ImportError(file, n, parts[0].col, `'${parts[0].text}' is not an address`);
    imp.rows++;
    for (const p of parts.slice(1)) {
      if (LOCAL_NAMES.has(p.text.toLowerCase())) {
        note(imp, 'localhost-style names skipped');
        continue;
      }
      addName(imp, p.text, file, n, p.col, o.match ?? 'exact');
    }
  }
  return imp;
}

export function parseAdblock(text: string, file: string, o: ListOptions = {}): Imported {
  const imp = emptyImport('adblock');
  for (const [n, line] of lines(text)) {
    const t = line.trim();
    if (!t || t.startsWith('!') || /^\[adblock/i.test(t)) continue;
    const col = line.indexOf(t) + 1;
    const m = /^\|\|([^/^$|*]+)\^(\|)?$/.exec(t);
    if (!m) {
      if (o.skipUnsupported) {
        note(imp, 'unsupported adblock rules skipped');
        continue;
      }
      throw new ImportError(
        file,
        n,
        col,
        `unsupported adblock rule '${t.slice(0, 60)}': only '||name^' can be imported (use --skip-unsupported to skip such lines)`,
      );
    }
    imp.rows++;
    const name = normalizeName(m[1]);
    if (name.startsWith('!')) throw new ImportError(file, n, col + 2, `invalid name: ${name.slice(1)}`);
    if (!imp.suffix.has(name)) imp.suffix.set(name, { line: n });
    else note(imp, 'duplicate names');
  }
  return imp;
}

export function parseCidrList(text: string, file: string): Imported {
  const imp = emptyImport('cidr');
  for (const [n, line] of lines(text)) {
    const s = stripComment(line);
    const t = s.trim();
    if (!t) continue;
    const c = parseCidr(t);
    if (typeof c === 'string') throw new ImportError(file, n, s.indexOf(t) + 1, c.slice(1));
    imp.rows++;
    const k = formatCidr(c);
    if (!imp.cidr.has(k)) imp.cidr.set(k, { line: n });
    else note(imp, 'duplicate prefixes');
  }
  return imp;
}
