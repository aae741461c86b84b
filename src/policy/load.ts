/**
 * @module policy/load
 * Load a policy file: YAML (or JSON) → structural check against the JSON Schema → semantic checks and
 * normalisation into a {@link Policy}, reading every `*_file` list relative to the policy file. Any
 * problem rejects the whole file with a {@link PolicyError} at `file:line:column` (of the policy, or of
 * the list file's offending line).
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { PolicyError } from './errors.js';
import { parseList } from './lists.js';
import { FIRST_HEAD_BYTES } from '../record/record.js';
import { normalizeName, normalizePattern } from './names.js';
import { formatCidr, parseCidr } from './ip.js';
import { parseRate, parseSize } from './units.js';
import { validateStructure } from './schema.js';
import {
  ParsedSource,
  pathText,
  storedPolicy,
  type ParsedPolicy,
  type Path,
  type PolicySource,
} from './source.js';
import type {
  Action,
  BlockMethod,
  BlockParams,
  ResidualKey,
  DefaultAction,
  HostMatch,
  Inspection,
  Policy,
  PortRange,
  Rule,
  RuleMatch,
} from './types.js';

type Obj = Record<string, unknown>;

/** SNI-II: 5–8 more packets pass after the trigger (IMC22); the default is inside that range. */
export const STALL_AFTER_PACKETS = 6;
/** 2025 curtain: the freeze after ~15–20 KB server→client; default 16 KiB. */
export const CURTAIN_AFTER_BYTES = 16384;

export const INSPECTION_DEFAULTS: Record<Inspection['mode'], Inspection> = {
  normal: {
    mode: 'normal',
    on_timeout: 'allow',
    hold_ms: 500,
    budget_bytes: 16384,
    max_packets: 8,
    idle_timeout_s: 300,
  },
  'tspu-2021': {
    mode: 'tspu-2021',
    on_timeout: 'allow',
    hold_ms: 0,
    budget_bytes: 16384,
    max_packets: 20,
    idle_timeout_s: 600,
  },
};

/** Default throttle bucket: 100 ms at the rate, at least two full-size packets. */
export function defaultBurst(rateBps: number): number {
  return Math.max(3000, Math.round(rateBps / 80));
}

const HOST_KINDS = ['exact', 'suffix', 'subdomains', 'substring', 'endswith'] as const;
const JA4_RE = /^[tqd][0-9a-z]{2}[di][0-9]{4}[0-9a-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$/;
const QUIC_NAMES: Record<string, number> = { v1: 1, v2: 0x6b3343cf, 'draft-29': 0xff00001d };

/** Read and load a policy file. Throws PolicyError (code ERR_POLICY). */
export async function loadPolicyFile(path: string): Promise<Policy> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new PolicyError(path, 1, 1, `cannot read policy: ${(e as Error).message}`, { cause: e });
  }
  return parsePolicy(text, path);
}

/** Reads a list file (absolute path) as text; the default reads the disk. */
export type ListReader = (path: string) => Promise<string>;

export interface ParseOptions {
  /** Where list files come from (e.g. the bytes of a policy version read once: enforce/policy-source). */
  readList?: ListReader;
  /** `text` already parsed (its value and rule positions, as the compiled registry file keeps them):
   *  the `yaml` package is then not loaded. Everything else is checked as for the text. */
  parsed?: ParsedPolicy;
}

const diskReader: ListReader = (p) => readFile(p, 'utf8');

/** Load a policy from text; `file` names it in errors and anchors relative list paths. */
export async function parsePolicy(text: string, file: string, opts: ParseOptions = {}): Promise<Policy> {
  return (await parsePolicyAndValue(text, file, opts)).policy;
}

/**
 * {@link parsePolicy}, also returning the parsed value with the rules' positions in the form the
 * compiled registry file stores (undefined when JSON cannot carry the value unchanged): one parse
 * serves both.
 */
export async function parsePolicyAndValue(
  text: string,
  file: string,
  opts: ParseOptions = {},
): Promise<{ policy: Policy; parsed: ParsedPolicy | undefined }> {
  // the yaml package is loaded only when there is YAML to parse (~40 ms of module loading)
  const src: PolicySource = opts.parsed
    ? new ParsedSource(file, opts.parsed)
    : new (await import('./yamlpos.js')).YamlSource(file, text);
  const value = src.toJS();
  if (value === null || value === undefined)
    throw new PolicyError(file, 1, 1, 'policy is empty (expected a mapping with at least `rules:`)');
  if (typeof value !== 'object' || Array.isArray(value))
    throw src.error(
      [],
      'policy must be a mapping (key: value), not a ' + (Array.isArray(value) ? 'list' : typeof value),
    );
  validateStructure(value, src);
  const policy = await new Builder(src, file, opts.readList ?? diskReader).build(value as Obj);
  return { policy, parsed: opts.parsed ?? storedPolicy(value, policy.rules) };
}

/** Parse a rule's `expires` into ms since epoch: a date means "through that UTC day". */
export function expiresAtMs(expires: string): number {
  if (/^\d{4}-\d{2}-\d{2}$/.test(expires)) return Date.parse(expires + 'T00:00:00Z') + 86_400_000;
  return Date.parse(expires.replace(' ', 'T'));
}

class Builder {
  private readonly baseDir: string;
  constructor(
    private readonly src: PolicySource,
    private readonly file: string,
    private readonly read: ListReader,
  ) {
    this.baseDir = dirname(file);
  }

  private err(path: Path, msg: string, key = false): PolicyError {
    return this.src.error(path, `${pathText(path)}: ${msg}`, key);
  }

  private listPath(rel: string): string {
    return isAbsolute(rel) ? rel : join(this.baseDir, rel);
  }

  private async readListFile(path: Path, rel: string, norm: (s: string) => string): Promise<string[]> {
    const p = this.listPath(rel);
    let text: string;
    try {
      text = await this.read(p);
    } catch (e) {
      throw this.err(
        path,
        `cannot read list file '${p}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
    return parseList(text, p, norm);
  }

  private names(path: Path, list: unknown[], norm: (s: string) => string): string[] {
    return list.map((v, i) => {
      const r = norm(String(v));
      if (r.startsWith('!')) throw this.err([...path, i], r.slice(1));
      return r;
    });
  }

  async build(o: Obj): Promise<Policy> {
    const inspection = this.inspection(o.inspection as Obj | undefined);
    const prot = (o.protected ?? {}) as Obj;
    const p: Policy = {
      file: this.file,
      version: 1,
      name: typeof o.name === 'string' ? o.name : null,
      description: typeof o.description === 'string' ? o.description : null,
      default: this.defaultAction(o.default),
      names: {
        trailing_dot: ((o.names as Obj | undefined)?.trailing_dot as 'ignore' | 'literal') ?? 'ignore',
      },
      inspection,
      protected: {
        exact: this.names(['protected', 'exact'], (prot.exact as unknown[]) ?? [], normalizeName),
        suffix: this.names(['protected', 'suffix'], (prot.suffix as unknown[]) ?? [], normalizeName),
        cidr: this.cidrs(['protected', 'cidr'], (prot.cidr as unknown[]) ?? []),
      },
      provenance: (o.provenance as Record<string, unknown>) ?? null,
      rules: [],
      subscriber: null,
    };
    if (typeof prot.exact_file === 'string')
      p.protected.exact = p.protected.exact.concat(
        await this.readListFile(['protected', 'exact_file'], prot.exact_file, normalizeName),
      );
    if (typeof prot.suffix_file === 'string')
      p.protected.suffix = p.protected.suffix.concat(
        await this.readListFile(['protected', 'suffix_file'], prot.suffix_file, normalizeName),
      );
    if (typeof prot.cidr_file === 'string')
      p.protected.cidr = p.protected.cidr.concat(
        await this.readListFile(['protected', 'cidr_file'], prot.cidr_file, cidrNorm),
      );
    const seen = new Map<string, number>();
    const rules = (o.rules as Obj[]) ?? [];
    for (let i = 0; i < rules.length; i++) {
      const r = await this.rule(rules[i], i);
      const first = seen.get(r.id);
      if (first !== undefined)
        throw this.err(
          ['rules', i, 'id'],
          `duplicate rule id '${r.id}' (first used at line ${this.src.pos(['rules', first, 'id'])[0]})`,
        );
      seen.set(r.id, i);
      p.rules.push(r);
    }
    const sub = o.subscriber as Obj | undefined;
    if (sub !== undefined) {
      // the engine's client is the side that opened the connection: "a subscriber initiated it" is
      // "the client address is on the subscriber side", the rules' own src_ip condition
      p.subscriber = this.cidrs(['subscriber', 'cidr'], sub.cidr as unknown[]);
      for (const r of p.rules)
        if ((r.action === 'block' || r.action === 'throttle') && r.match.src_ip === null)
          r.match.src_ip = p.subscriber.slice();
    }
    return p;
  }

  private inspection(o: Obj | undefined): Inspection {
    const mode = ((o?.mode as Inspection['mode']) ?? 'normal') as Inspection['mode'];
    return { ...INSPECTION_DEFAULTS[mode], ...(o ?? {}) } as Inspection;
  }

  private actionParts(
    path: Path,
    o: Obj,
    action: Action,
  ): Pick<DefaultAction, 'method' | 'rate_bps' | 'burst_bytes' | 'block'> {
    const out: Pick<DefaultAction, 'method' | 'rate_bps' | 'burst_bytes' | 'block'> = {};
    if (o.method !== undefined) {
      if (action !== 'block')
        throw this.err(
          [...path, 'method'],
          `'method' applies only to action 'block' (this is '${action}')`,
          true,
        );
      out.method = o.method as BlockMethod;
    } else if (action === 'block') out.method = 'rst';
    const block = this.blockParams(path, o, action, out.method);
    if (block) out.block = block;
    if (action === 'throttle') {
      if (o.rate === undefined) throw this.err(path, `action 'throttle' needs 'rate' (e.g. rate: 128kbit)`);
      const rate = parseRate(o.rate);
      if (typeof rate === 'string') throw this.err([...path, 'rate'], rate.slice(1));
      out.rate_bps = rate;
      if (o.burst !== undefined) {
        const b = parseSize(o.burst);
        if (typeof b === 'string') throw this.err([...path, 'burst'], b.slice(1));
        out.burst_bytes = b;
      } else out.burst_bytes = defaultBurst(rate);
    } else {
      if (o.rate !== undefined)
        throw this.err(
          [...path, 'rate'],
          `'rate' applies only to action 'throttle' (this is '${action}')`,
          true,
        );
      if (o.burst !== undefined)
        throw this.err(
          [...path, 'burst'],
          `'burst' applies only to action 'throttle' (this is '${action}')`,
          true,
        );
    }
    return out;
  }

  /**
   * The block method's parameters and residual blocking: each only with its method (else an error
   * naming the field), unverified figures defaulting to the documented value (docs/POLICY.md).
   */
  private blockParams(
    path: Path,
    o: Obj,
    action: Action,
    method: BlockMethod | undefined,
  ): BlockParams | null {
    const own: Record<string, BlockMethod> = {
      after_packets: 'stall',
      after_bytes: 'curtain',
      probability: 'degrade',
      location: 'redirect',
    };
    for (const k of Object.keys(own))
      if (o[k] !== undefined && method !== own[k])
        throw this.err(
          [...path, k],
          `'${k}' applies only to block method '${own[k]}' (this is ${action === 'block' ? `method '${method}'` : `action '${action}'`})`,
          true,
        );
    if (o.residual !== undefined && action !== 'block')
      throw this.err(
        [...path, 'residual'],
        `'residual' applies only to action 'block' (this is '${action}')`,
        true,
      );
    if (action !== 'block') return null;
    const b: BlockParams = {};
    if (method === 'stall') b.after_packets = (o.after_packets as number | undefined) ?? STALL_AFTER_PACKETS;
    if (method === 'curtain') {
      if (o.after_bytes === undefined) b.after_bytes = CURTAIN_AFTER_BYTES;
      else {
        const n = parseSize(o.after_bytes);
        if (typeof n === 'string') throw this.err([...path, 'after_bytes'], n.slice(1));
        b.after_bytes = n;
      }
    }
    if (method === 'degrade') {
      if (o.probability === undefined)
        throw this.err(
          path,
          `block method 'degrade' needs 'probability' (0 < p ≤ 1, e.g. probability: 0.05)`,
        );
      b.probability = o.probability as number;
    }
    if (method === 'redirect') {
      if (o.location === undefined)
        throw this.err(
          path,
          `block method 'redirect' needs 'location' (the block page, e.g. location: http://block.example/)`,
        );
      b.location = o.location as string;
    }
    const r = o.residual as Obj | undefined;
    if (r !== undefined) {
      b.residual_s = r.seconds as number;
      b.residual_key = (r.key as ResidualKey | undefined) ?? '5-tuple';
    }
    return Object.keys(b).length > 0 ? b : null;
  }

  private defaultAction(v: unknown): DefaultAction {
    if (v === undefined) return { action: 'allow' };
    if (typeof v === 'string') {
      if (v === 'throttle')
        throw this.err(
          ['default'],
          `default 'throttle' needs a rate: write default: {action: throttle, rate: ...}`,
        );
      return { action: v as Action, ...this.actionParts(['default'], {}, v as Action) };
    }
    const o = v as Obj;
    return { action: o.action as Action, ...this.actionParts(['default'], o, o.action as Action) };
  }

  private cidrs(path: Path, list: unknown[]): string[] {
    return list.map((v, i) => {
      const c = parseCidr(String(v));
      if (typeof c === 'string') throw this.err([...path, i], c.slice(1));
      return formatCidr(c);
    });
  }

  private async rule(o: Obj, i: number): Promise<Rule> {
    const path: Path = ['rules', i];
    const action = o.action as Action;
    const [line, column] = this.src.pos(path);
    const rule: Rule = {
      id: o.id as string,
      order: i,
      action,
      ...this.actionParts(path, o, action),
      priority: (o.priority as number) ?? 0,
      enabled: (o.enabled as boolean) ?? true,
      expires: (o.expires as string) ?? null,
      tags: (o.tags as string[]) ?? [],
      description: (o.description as string) ?? null,
      match: await this.match([...path, 'match'], (o.match as Obj) ?? {}),
      provenance: (o.provenance as Record<string, unknown>) ?? null,
      protected_override: (o.protected_override as { reason: string }) ?? null,
      pos: { file: this.file, line, column },
      lists: [],
    };
    if (rule.expires !== null && Number.isNaN(expiresAtMs(rule.expires)))
      throw this.err([...path, 'expires'], `invalid date '${rule.expires}'`);
    if (rule.protected_override && rule.action !== 'block' && rule.action !== 'throttle')
      throw this.err(
        [...path, 'protected_override'],
        `protected_override only makes sense on block/throttle rules`,
        true,
      );
    const m = o.match as Obj | undefined;
    const host = m?.host as Obj | undefined;
    for (const k of HOST_KINDS) {
      const f = host?.[`${k}_file`];
      if (typeof f === 'string') {
        const entries = await this.readListFile(
          [...path, 'match', 'host', `${k}_file`],
          f,
          k === 'substring' || k === 'endswith' ? normalizePattern : normalizeName,
        );
        rule.match.host![k] = rule.match.host![k].length ? rule.match.host![k].concat(entries) : entries;
        rule.lists.push({ field: `host.${k}_file`, file: this.listPath(f), entries: entries.length });
      }
    }
    for (const k of ['dest_ip', 'src_ip', 'except_dest_ip'] as const) {
      const f = m?.[`${k}_file`];
      if (typeof f === 'string') {
        const entries = await this.readListFile([...path, 'match', `${k}_file`], f, cidrNorm);
        rule.match[k] = (rule.match[k] ?? []).concat(entries);
        rule.lists.push({ field: `${k}_file`, file: this.listPath(f), entries: entries.length });
      }
    }
    return rule;
  }

  private async match(path: Path, o: Obj): Promise<RuleMatch> {
    const m: RuleMatch = {
      host: null,
      dest_ip: null,
      src_ip: null,
      dest_port: null,
      proto: null,
      app_proto: null,
      alpn: null,
      ja4: null,
      quic_version: null,
      ech: null,
      payload_len: null,
      payload: null,
      except_dest_ip: null,
    };
    if (o.host !== undefined) {
      const h = o.host as Obj;
      const host: HostMatch = { exact: [], suffix: [], subdomains: [], substring: [], endswith: [] };
      for (const k of HOST_KINDS) {
        if (Array.isArray(h[k]))
          host[k] = this.names(
            [...path, 'host', k],
            h[k] as unknown[],
            k === 'substring' || k === 'endswith' ? normalizePattern : normalizeName,
          );
      }
      m.host = host;
    }
    if (o.dest_ip !== undefined) m.dest_ip = this.cidrs([...path, 'dest_ip'], o.dest_ip as unknown[]);
    else if (o.dest_ip_file !== undefined) m.dest_ip = [];
    if (o.src_ip !== undefined) m.src_ip = this.cidrs([...path, 'src_ip'], o.src_ip as unknown[]);
    else if (o.src_ip_file !== undefined) m.src_ip = [];
    if (o.dest_port !== undefined) m.dest_port = this.ports([...path, 'dest_port'], o.dest_port);
    if (o.proto !== undefined) m.proto = String(o.proto).toUpperCase() as 'TCP' | 'UDP';
    if (o.app_proto !== undefined) m.app_proto = asList(o.app_proto).map((v) => String(v).toLowerCase());
    if (o.alpn !== undefined) m.alpn = asList(o.alpn).map(String);
    if (o.ja4 !== undefined) {
      const list = asList(o.ja4);
      m.ja4 = list.map((v, i) => {
        const s = String(v).toLowerCase();
        if (!JA4_RE.test(s))
          throw this.err(
            Array.isArray(o.ja4) ? [...path, 'ja4', i] : [...path, 'ja4'],
            `'${String(v)}' is not a JA4 fingerprint (like t13d1516h2_8daaf6152771_e5627efa2ab1)`,
          );
        return s;
      });
    }
    if (o.quic_version !== undefined) {
      const list = asList(o.quic_version);
      m.quic_version = list.map((v, i) => {
        const n = parseQuicVersion(v);
        if (n < 0)
          throw this.err(
            Array.isArray(o.quic_version) ? [...path, 'quic_version', i] : [...path, 'quic_version'],
            `'${String(v)}' is not a QUIC version (1, 0x00000001, v1, v2, draft-29)`,
          );
        return n;
      });
    }
    if (o.ech !== undefined) m.ech = o.ech as boolean;
    if (o.payload_len !== undefined) m.payload_len = this.lengths([...path, 'payload_len'], o.payload_len);
    if (o.payload !== undefined) {
      m.payload = (o.payload as Obj[]).map((b, i) => {
        const offset = b.offset as number;
        const hex = String(b.hex).toLowerCase();
        if (offset + hex.length / 2 > FIRST_HEAD_BYTES)
          throw this.err(
            [...path, 'payload', i],
            `offset ${offset} + ${hex.length / 2} bytes goes past the first ${FIRST_HEAD_BYTES} payload bytes that flow records keep`,
          );
        return { offset, hex };
      });
    }
    if (o.except_dest_ip !== undefined)
      m.except_dest_ip = this.cidrs([...path, 'except_dest_ip'], o.except_dest_ip as unknown[]);
    else if (o.except_dest_ip_file !== undefined) m.except_dest_ip = [];
    return m;
  }

  /** Payload length ranges: 'N', 'N-M', '>=N', '<=N' (0..65535). */
  private lengths(path: Path, v: unknown): PortRange[] {
    const list = asList(v);
    return list.map((x, i) => {
      const p = Array.isArray(v) ? [...path, i] : path;
      const s = String(x).trim();
      const mm = /^(?:(>=|≥|<=|≤)\s*(\d{1,5})|(\d{1,5})(?:\s*-\s*(\d{1,5}))?)$/.exec(s);
      if (!mm) throw this.err(p, `'${s}' is not a length or a range like 1001-1500, >=1001 or <=100`);
      let from: number;
      let to: number;
      if (mm[1] !== undefined) {
        const n = Number(mm[2]);
        [from, to] = mm[1] === '>=' || mm[1] === '≥' ? [n, 65535] : [0, n];
      } else {
        from = Number(mm[3]);
        to = mm[4] === undefined ? from : Number(mm[4]);
      }
      if (from > 65535 || to > 65535) throw this.err(p, `length out of range 0-65535: '${s}'`);
      if (from > to) throw this.err(p, `empty length range '${s}' (${from} > ${to})`);
      return { from, to };
    });
  }

  private ports(path: Path, v: unknown): PortRange[] {
    const list = asList(v);
    return list.map((x, i) => {
      const p = Array.isArray(v) ? [...path, i] : path;
      const s = String(x).trim();
      const mm = /^(\d{1,5})(?:\s*-\s*(\d{1,5}))?$/.exec(s);
      if (!mm) throw this.err(p, `'${s}' is not a port or a range like 8000-8099`);
      const from = Number(mm[1]);
      const to = mm[2] === undefined ? from : Number(mm[2]);
      if (from > 65535 || to > 65535) throw this.err(p, `port out of range 0-65535: '${s}'`);
      if (from > to) throw this.err(p, `empty port range '${s}' (${from} > ${to})`);
      return { from, to };
    });
  }
}

function asList(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [v];
}

function cidrNorm(s: string): string {
  const c = parseCidr(s);
  return typeof c === 'string' ? c : formatCidr(c);
}

/** QUIC version from a rule value (number, '0x..', decimal string, v1/v2/draft-29); -1 if invalid. */
export function parseQuicVersion(v: unknown): number {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 && v <= 0xffffffff ? v : -1;
  const s = String(v).trim().toLowerCase();
  if (s in QUIC_NAMES) return QUIC_NAMES[s];
  if (/^0x[0-9a-f]{1,8}$/.test(s)) return parseInt(s.slice(2), 16);
  if (/^\d{1,10}$/.test(s)) {
    const n = Number(s);
    return n <= 0xffffffff ? n : -1;
  }
  return -1;
}
