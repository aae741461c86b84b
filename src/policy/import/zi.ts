/**
 * @module policy/import/zi
 * The Russian registry dump (`dump.csv`, as published by zapret-info): windows-1251 text, first line
 * `Updated: <timestamp>`, then rows `IP[ | IP…];domain;URL[ | URL…];authority;decision-number;date`.
 *
 * Mapping (documented in docs/POLICY.md):
 * - domain `example.com` → exact; domain mask `*.example.com` → subdomains (strictly below, as the
 *   mask says; the registry lists the bare domain as its own row when it is blocked too);
 * - a row with URLs but no domain → exact on each URL's host (TLS only shows the host, so URL-level
 *   decisions become host decisions — over-blocking that the blast radius shows);
 * - a row with only addresses → dest_ip (addresses and subnets, v4 and v6); addresses on rows that
 *   have a domain or URL are the name's resolutions at dump time and are NOT imported as blocks
 *   (counted in the notes);
 * - a domain column holding an address is treated as an address.
 * A row with fewer than 6 fields, an invalid address, name, URL or date stops the import.
 */
import iconv from 'iconv-lite';
import { normalizeName } from '../names.js';
import { formatCidr, parseCidr } from '../ip.js';
import { emptyImport, ImportError, lines, note, type EntryProvenance, type Imported } from './types.js';

export function decodeZi(buf: Buffer, encoding = 'windows-1251'): string {
  return iconv.decode(buf, encoding);
}

function colOf(line: string, fieldIndex: number): number {
  let col = 0;
  for (let i = 0; i < fieldIndex; i++) col = line.indexOf(';', col) + 1;
  return col + 1;
}

export function parseZi(text: string, file: string): Imported {
  const imp = emptyImport('zi-csv');
  let first = true;
  for (const [n, raw] of lines(text)) {
    if (first) {
      first = false;
      const m = /^Updated:\s*(.+?)\s*$/.exec(raw);
      if (!m)
        throw new ImportError(
          file,
          n,
          1,
          `expected the 'Updated: <timestamp>' header line, got '${raw.slice(0, 40)}'`,
        );
      imp.updated = m[1];
      continue;
    }
    if (raw.trim() === '') continue;
    const f = raw.split(';');
    if (f.length < 6)
      throw new ImportError(
        file,
        n,
        1,
        `expected 6 ';'-separated fields (IP;domain;URL;authority;number;date), got ${f.length}`,
      );
    // URLs may contain ';': the first two and last three fields are fixed, the URL is the rest.
    const ipField = f[0];
    const domField = f[1];
    const urlField = f.slice(2, f.length - 3).join(';');
    const [authority, number, date] = f.slice(f.length - 3);
    const dateCol = raw.length - date.length + 1;
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date.trim()) || Number.isNaN(Date.parse(date.trim())))
      throw new ImportError(file, n, dateCol, `invalid decision date '${date}' (expected YYYY-MM-DD)`);
    imp.rows++;
    const prov: EntryProvenance = {
      line: n,
      authority: authority.trim() || undefined,
      reference: number.trim() || undefined,
      decided: date.trim(),
    };
    const ips: { text: string; col: number }[] = [];
    if (ipField.trim()) {
      let off = 0;
      for (const part of ipField.split('|')) {
        const lead = part.length - part.trimStart().length;
        if (part.trim()) ips.push({ text: part.trim(), col: off + lead + 1 });
        off += part.length + 1;
      }
    }
    let named = false;
    const dom = domField.trim();
    if (dom) {
      const dcol = colOf(raw, 1) + (domField.length - domField.trimStart().length);
      const asIp = parseCidr(dom);
      if (typeof asIp !== 'string') {
        ips.push({ text: dom, col: dcol });
      } else {
        named = true;
        const mask = dom.startsWith('*.');
        const name = normalizeName(mask ? dom.slice(2) : dom);
        if (name.startsWith('!')) throw new ImportError(file, n, dcol, `invalid domain: ${name.slice(1)}`);
        (mask ? imp.subdomains : imp.exact).set(name, prov);
      }
    }
    if (urlField.trim()) {
      const ucol0 = colOf(raw, 2);
      let off = 0;
      for (const part of urlField.split(' | ')) {
        const u = part.trim();
        const ucol = ucol0 + off + (part.length - part.trimStart().length);
        off += part.length + 3;
        if (!u) continue;
        let host: string;
        try {
          host = new URL(u).hostname;
        } catch {
          throw new ImportError(file, n, ucol, `invalid URL '${u.slice(0, 80)}'`);
        }
        if (!host) throw new ImportError(file, n, ucol, `URL without a host '${u.slice(0, 80)}'`);
        if (host.startsWith('[') || typeof parseCidr(host) !== 'string') {
          note(imp, 'URL with an address as host (not imported)');
          continue;
        }
        if (dom) continue; // the domain column already covers the row
        const name = normalizeName(host);
        if (name.startsWith('!'))
          throw new ImportError(file, n, ucol, `invalid host in URL: ${name.slice(1)}`);
        named = true;
        if (!imp.exact.has(name)) imp.exact.set(name, prov);
        note(imp, 'URL-only rows turned into host rules');
      }
    }
    for (const ip of ips) {
      const c = parseCidr(ip.text, true);
      if (typeof c === 'string')
        throw new ImportError(file, n, ip.col, `invalid address or subnet: ${c.slice(1)}`);
      if (named) {
        note(imp, 'addresses of domain/URL rows (resolutions, not imported)');
        continue;
      }
      imp.cidr.set(formatCidr(c), prov);
    }
  }
  if (first) throw new ImportError(file, 1, 1, `empty file (expected the 'Updated:' header)`);
  return imp;
}
