/**
 * @module controller/content
 * A version's content and what the controller computes from it, all through the policy modules the
 * box uses (one implementation of each thing):
 * - {@link registryContent}: registry entries + settings → `policy.json` + sorted list files (entries
 *   grouped into one rule per action/rate/expiry; expired entries left out, expiring ones warned);
 * - {@link checkSubmittedText}: policy text from a user — YAML/JSON — refused if it reads list files
 *   from the controller's disk; errors name `file:line:column`;
 * - {@link loadContent}: the files → a loaded {@link Policy} (`loadPolicyFile`, via a temp dir);
 * - {@link reviewPolicy}: `lintPolicy` against the reference lists (a `protected_override` written in
 *   the text counts as an error here: only an admin's recorded override may pass it) and the diff of
 *   verdicts against the active version, per reference name, with the same compiled matcher.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { isMap, isPair, isScalar, isSeq, type Node } from 'yaml';
import { compilePolicy, type Matcher } from '../policy/compile.js';
import { lintPolicy, type Finding } from '../policy/lint.js';
import { loadPolicyFile } from '../policy/load.js';
import { PolicyError } from '../policy/errors.js';
import type { Reference } from '../policy/reference.js';
import type { Decision, MatchInput, Policy } from '../policy/types.js';
import { YamlSource } from '../policy/yamlpos.js';
import { expiresAtMs } from '../policy/load.js';

export type Files = Map<string, Buffer>;

export const ENTRY_KINDS = ['exact', 'suffix', 'subdomains', 'substring', 'endswith', 'cidr'] as const;
export type EntryKind = (typeof ENTRY_KINDS)[number];

export interface EntryLite {
  kind: EntryKind;
  value: string;
  action: string;
  method: string | null;
  rate_bps: number | null;
  burst_bytes: number | null;
  expires: string | null;
}

export interface Settings {
  protected?: { exact?: string[]; suffix?: string[]; cidr?: string[] };
  inspection?: Record<string, unknown>;
  default?: unknown;
  names?: { trailing_dot?: 'ignore' | 'literal' };
  name?: string;
}

export function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

function ruleKey(e: EntryLite): string {
  return [e.action, e.method ?? '', e.rate_bps ?? '', e.burst_bytes ?? '', e.expires ?? ''].join('|');
}

function ruleId(e: EntryLite): string {
  let id = `registry-${e.action}`;
  if (e.action === 'block' && e.method) id += `-${e.method}`;
  if (e.action === 'throttle') id += `-${e.rate_bps}bps${e.burst_bytes ? `-${e.burst_bytes}B` : ''}`;
  if (e.expires) id += `-until-${e.expires.replace(/[^0-9A-Za-z]/g, '')}`;
  return id;
}

const WARN_BEFORE_MS = 7 * 86_400_000;

/**
 * Build a version's files from the registry. `entries` are the active entries, any order; the output
 * is canonical (rules and lists sorted), so the same registry gives the same bytes.
 */
export function registryContent(
  entries: Iterable<EntryLite>,
  settings: Settings,
  o: { now?: number; registryRev: number },
): {
  files: Files;
  main: string;
  expired: number;
  expiring: { value: string; kind: string; expires: string }[];
} {
  const now = o.now ?? Date.now();
  const groups = new Map<string, { sample: EntryLite; lists: Map<EntryKind, string[]> }>();
  let expired = 0;
  const expiring: { value: string; kind: string; expires: string }[] = [];
  for (const e of entries) {
    if (e.expires) {
      const at = expiresAtMs(e.expires);
      if (at <= now) {
        expired++;
        continue;
      }
      if (at - now <= WARN_BEFORE_MS && expiring.length < 1000)
        expiring.push({ value: e.value, kind: e.kind, expires: e.expires });
    }
    const k = ruleKey(e);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { sample: e, lists: new Map() }));
    let l = g.lists.get(e.kind);
    if (!l) g.lists.set(e.kind, (l = []));
    l.push(e.value);
  }
  const files: Files = new Map();
  const rules: Record<string, unknown>[] = [];
  const keys = [...groups.keys()].sort();
  for (const k of keys) {
    const g = groups.get(k)!;
    const e = g.sample;
    // names and addresses are separate rules: conditions in one rule are ANDed
    for (const part of ['names', 'ip'] as const) {
      const kinds = part === 'ip' ? (['cidr'] as const) : ENTRY_KINDS.filter((x) => x !== 'cidr');
      if (!kinds.some((kind) => g.lists.has(kind))) continue;
      const id = ruleId(e) + (part === 'ip' ? '-ip' : '');
      const rule: Record<string, unknown> = { id, action: e.action };
      if (e.action === 'block' && e.method) rule.method = e.method;
      if (e.action === 'throttle') {
        rule.rate = e.rate_bps;
        if (e.burst_bytes) rule.burst = e.burst_bytes;
      }
      if (e.expires) rule.expires = e.expires;
      const host: Record<string, string> = {};
      const match: Record<string, unknown> = {};
      let count = 0;
      for (const kind of kinds) {
        const l = g.lists.get(kind);
        if (!l) continue;
        l.sort();
        count += l.length;
        const file = `lists/${id}.${kind}.txt`;
        files.set(file, Buffer.from(l.join('\n') + '\n'));
        if (kind === 'cidr') match.dest_ip_file = file;
        else host[`${kind}_file`] = file;
      }
      if (Object.keys(host).length) match.host = host;
      rule.match = match;
      rule.provenance = {
        source: 'chokepoint controller registry',
        entries: String(count),
        per_entry: 'controller registry (ctl registry why)',
      };
      rules.push(rule);
    }
  }
  const doc: Record<string, unknown> = {
    version: 1,
    name: settings.name ?? 'registry',
    description: `built from the controller registry at revision ${o.registryRev}`,
  };
  if (settings.default !== undefined) doc.default = settings.default;
  if (settings.names) doc.names = settings.names;
  if (settings.inspection) doc.inspection = settings.inspection;
  if (settings.protected) doc.protected = settings.protected;
  doc.rules = rules;
  files.set('policy.json', Buffer.from(JSON.stringify(doc, null, 1) + '\n'));
  return { files, main: 'policy.json', expired, expiring };
}

/**
 * Refuse `*_file` keys in text submitted through the API (they would read the controller's disk);
 * list contents belong inline or in the registry. Throws PolicyError at the key's position.
 */
export function checkSubmittedText(text: string, file: string): void {
  const src = new YamlSource(file, text);
  const walk = (n: unknown, path: (string | number)[]): void => {
    if (isMap(n)) {
      for (const p of n.items) {
        if (!isPair(p)) continue;
        const k = isScalar(p.key) ? String(p.key.value) : String(p.key);
        if (k.endsWith('_file')) {
          throw src.error(
            [...path, k],
            `${[...path, k].join('.')}: list files cannot be submitted to the controller; put the entries inline or in the registry`,
            true,
          );
        }
        walk(p.value, [...path, k]);
      }
    } else if (isSeq(n)) n.items.forEach((x, i) => walk(x, [...path, i]));
  };
  walk(src.doc.contents as Node | null, []);
}

/** Load a version's policy from its files (written to a private temp dir and loaded as the box does). */
export async function loadContent(files: Files, main: string): Promise<Policy> {
  const dir = await mkdtemp(join(tmpdir(), 'chokepoint-version-'));
  try {
    for (const [name, data] of files) {
      if (name.includes('..') || name.startsWith('/')) throw new Error(`bad file name ${name}`);
      const p = join(dir, name);
      await mkdir(dirname(p), { recursive: true });
      await writeFile(p, data);
    }
    try {
      const p = await loadPolicyFile(join(dir, main));
      p.file = main;
      for (const r of p.rules) if (r.pos) r.pos = { ...r.pos, file: main };
      return p;
    } catch (e) {
      if (e instanceof PolicyError) {
        const rel = e.file.startsWith(dir + '/') ? e.file.slice(dir.length + 1) : e.file;
        throw new PolicyError(rel, e.line, e.column, e.detail);
      }
      throw e;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface DiffGroupOut {
  from: { rule_id: string | null; action: string };
  to: { rule_id: string | null; action: string };
  count: number;
  /** Reference names, in reference order (most important first), at most `maxNames`. */
  names: string[];
}

export interface Review {
  /** The version's compiled matcher (kept for "why"). */
  compiled: Matcher;
  findings: Finding[];
  errors: number;
  warnings: number;
  diff: {
    reference: string;
    names: number;
    changed: number;
    groups: DiffGroupOut[];
    baseline_version: number | null;
  };
}

/** The input a reference name is matched as: a TLS flow to port 443 (documentation addresses). */
export function nameInput(name: string): MatchInput {
  return {
    host: name,
    proto: 'TCP',
    src_ip: '192.0.2.1',
    dest_ip: '198.51.100.1',
    dest_port: 443,
    app_proto: 'tls',
    alpn: [],
    ja4: null,
    quic_version: null,
    ech: false,
    raw_host: name,
  };
}

function key(d: Decision): string {
  return `${d.rule_id ?? ''}\u0000${d.action}`;
}

export function reviewPolicy(
  p: Policy,
  o: {
    reference: Reference;
    baseline: Policy | null;
    baselineVersion: number | null;
    protectedNames?: string[];
    now?: number;
    extraFindings?: Finding[];
    maxNames?: number;
  },
): Review {
  const now = o.now ?? Date.now();
  const findings = lintPolicy(p, { references: [o.reference], protectedNames: o.protectedNames, now }).map(
    (f) =>
      f.code === 'protected-override'
        ? {
            ...f,
            severity: 'error' as const,
            message: `${f.message} — a protected_override written in the policy does not count at the controller: an admin must record an override`,
          }
        : f,
  );
  findings.push(...(o.extraFindings ?? []));
  const order = { error: 0, warning: 1, info: 2 };
  findings.sort((a, b) => order[a.severity] - order[b.severity]);
  const cur = compilePolicy(p, { now });
  const base = o.baseline ? compilePolicy(o.baseline, { now }) : null;
  const groups = new Map<string, DiffGroupOut>();
  const maxNames = o.maxNames ?? 50;
  let changed = 0;
  for (const name of o.reference.names) {
    const inp = nameInput(name);
    const a = base ? base.match(inp) : { rule_id: null, action: 'allow' as const };
    const b = cur.match(inp);
    if (key(a) === key(b)) continue;
    changed++;
    const k = key(a) + '\u0001' + key(b);
    let g = groups.get(k);
    if (!g)
      groups.set(
        k,
        (g = {
          from: { rule_id: a.rule_id, action: a.action },
          to: { rule_id: b.rule_id, action: b.action },
          count: 0,
          names: [],
        }),
      );
    g.count++;
    if (g.names.length < maxNames) g.names.push(name);
  }
  return {
    compiled: cur,
    findings,
    errors: findings.filter((f) => f.severity === 'error').length,
    warnings: findings.filter((f) => f.severity === 'warning').length,
    diff: {
      reference: o.reference.source,
      names: o.reference.names.length,
      changed,
      groups: [...groups.values()].sort((x, y) => y.count - x.count),
      baseline_version: o.baselineVersion,
    },
  };
}
