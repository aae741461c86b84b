/**
 * @module controller/why
 * "Why is this blocked?": for a name, an address or a flow, (1) what the active version — the
 * policy the boxes enforce — decides, with the very compiled matcher the box uses, and (2) every
 * registry entry that matches, found through the same matcher compiled from the registry (label-walk
 * table, pattern automaton, prefix tries), with its provenance and the first active version that
 * carries it in its current form. Compiled matchers are cached per registry revision / version
 * (controller/matchers); the registry's includes the protected names under a pseudo-rule, whose hits
 * are dropped because no entry has that kind and value.
 */
import type { Ctx } from './context.js';
import type { Row } from './db.js';
import { badRequest } from './errors.js';
import { loadContent, nameInput, registryContent } from './content.js';
import { activeEntries, registryRev } from './registry.js';
import { activeVersionId, getSettings, versionPolicy } from './versions.js';
import { compilePolicy, type Matcher } from '../policy/compile.js';
import { collectPath } from '../policy/trie.js';
import { registryMatcherAt, setRegistryMatcher, setVersionMatcher, versionMatcher } from './matchers.js';
import { normalizeName } from '../policy/names.js';
import { formatCidr as formatCidrLocal, parseCidr } from '../policy/ip.js';
import type { MatchInput } from '../policy/types.js';

const KIND = ['exact', 'suffix', 'subdomains', 'substring', 'endswith'];

let regBuilding: { key: string; p: Promise<Matcher> } | null = null;

async function registryMatcher(ctx: Ctx): Promise<Matcher> {
  const rev = await registryRev(ctx.db);
  const hit = registryMatcherAt(ctx.db.kind, rev);
  if (hit) return hit;
  const key = `${ctx.db.kind}:${rev}`;
  if (regBuilding?.key !== key) {
    const p = (async () => {
      const [entries, settings] = await Promise.all([activeEntries(ctx.db), getSettings(ctx.db)]);
      const c = registryContent(entries, settings, { registryRev: rev });
      const m = compilePolicy(await loadContent(c.files, c.main));
      setRegistryMatcher(ctx.db.kind, rev, m);
      return m;
    })();
    regBuilding = { key, p };
    p.finally(() => {
      if (regBuilding?.p === p) regBuilding = null;
    }).catch(() => {});
  }
  return regBuilding!.p;
}

async function activeMatcher(ctx: Ctx): Promise<{ id: number; m: Matcher } | null> {
  const id = await activeVersionId(ctx.db);
  if (id === null) return null;
  let m = versionMatcher(ctx.db.kind, id);
  if (!m) {
    m = compilePolicy(await versionPolicy(ctx, ctx.db, id));
    setVersionMatcher(ctx.db.kind, id, m);
  }
  return { id, m };
}

export interface WhyQuery {
  name?: string;
  ip?: string;
  /** Flow fields beyond the name/address (defaults: TCP to 443, TLS). */
  proto?: string;
  port?: number;
}

export async function why(ctx: Ctx, w: WhyQuery): Promise<Row> {
  if (!w.name && !w.ip) throw badRequest('name', 'give name= and/or ip=');
  let name: string | null = null;
  if (w.name) {
    name = normalizeName(w.name);
    if (name.startsWith('!')) throw badRequest('name', name.slice(1));
  }
  let cidr = null;
  if (w.ip) {
    const c = parseCidr(w.ip.trim());
    if (typeof c === 'string' || (c.v === 4 ? c.len !== 32 : c.len !== 128))
      throw badRequest('ip', 'must be one IPv4 or IPv6 address');
    cidr = c;
  }
  const input: MatchInput = {
    ...nameInput(name ?? ''),
    host: name,
    raw_host: w.name ?? null,
    dest_ip: w.ip ? w.ip.trim() : '198.51.100.1',
    proto: w.proto?.toUpperCase() === 'UDP' ? 'UDP' : 'TCP',
    dest_port: w.port ?? 443,
    app_proto: name ? (w.proto?.toUpperCase() === 'UDP' ? 'quic' : 'tls') : null,
  };
  const av = await activeMatcher(ctx);
  const active = av ? { version: av.id, decision: { ...av.m.match(input) } } : null;
  const m = await registryMatcher(ctx);
  const hits: { kind: string; value: string }[] = [];
  if (name) {
    for (const h of m.domains.collect(name)) hits.push({ kind: KIND[h.kind], value: h.name });
    for (const h of m.patterns.collect(name)) hits.push({ kind: KIND[h.kind], value: h.pattern });
  }
  if (cidr) {
    const path = cidr.v === 4 ? collectPath(m.dst4, [cidr.addr], 32) : collectPath(m.dst6, cidr.w, 128);
    for (const h of path) {
      const words = cidr.v === 4 ? [cidr.addr] : cidr.w;
      hits.push({ kind: 'cidr', value: prefixText(cidr.v, words, h.len) });
    }
  }
  const seen = new Set<string>();
  const entries: Row[] = [];
  for (const h of hits) {
    const k = `${h.kind} ${h.value}`;
    if (seen.has(k)) continue;
    seen.add(k);
    const e = await ctx.db.get(
      "SELECT id, kind, value, action, method, rate_bps, authority, reference, legal_basis, decided, requested_by, expires, source, takedown_id, updated_rev FROM entries WHERE kind = $1 AND value = $2 AND status = 'active'",
      [h.kind, h.value],
    );
    if (!e) continue;
    const since = await ctx.db.get<{ id: number | null }>(
      "SELECT MIN(id) AS id FROM versions WHERE origin = 'registry' AND activated_at IS NOT NULL AND registry_rev >= $1",
      [e.updated_rev],
    );
    entries.push({ ...e, since_version: since?.id ?? null });
  }
  return { query: { name, ip: w.ip ?? null }, active, entries };
}

function prefixText(v: 4 | 6, words: ArrayLike<number>, len: number): string {
  if (v === 4) {
    const a = len === 0 ? 0 : (words[0] & (0xffffffff << (32 - len))) >>> 0;
    return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}/${len}`;
  }
  const w = new Uint32Array(4);
  for (let i = 0; i < 4; i++) {
    const bits = Math.max(0, Math.min(32, len - 32 * i));
    w[i] = bits === 0 ? 0 : (words[i] & (0xffffffff << (32 - bits))) >>> 0;
  }
  const g: string[] = [];
  for (let i = 0; i < 4; i++) g.push((w[i] >>> 16).toString(16), (w[i] & 0xffff).toString(16));
  const c = parseCidr(`${g.join(':')}/${len}`);
  return typeof c === 'string' ? `${g.join(':')}/${len}` : formatCidrLocal(c);
}
