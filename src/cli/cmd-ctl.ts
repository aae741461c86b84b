/**
 * @module cli/cmd-ctl
 * `chokepoint ctl <area> <command>` — the controller's CLI client, one subcommand per API operation.
 * `--url` / CHOKEPOINT_URL, `--token` / CHOKEPOINT_TOKEN, `--format human|json` everywhere. Exit
 * status 0 ok, 1 refused or failed (the server's message on stderr), 2 usage. `ctl audit verify`
 * downloads the whole log and checks the chain itself (it does not trust the server's word).
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- API answers are untyped JSON, checked field by field */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { UsageError } from '../util/errors.js';
import { Client, ClientError } from '../controller/client.js';
import { verifyChain, type AuditHead, type AuditRow } from '../controller/audit.js';

const HELP = `usage: chokepoint ctl <area> <command> [options]   (--url URL --token TOKEN --format human|json)

  whoami
  registry add --kind exact|suffix|subdomains|substring|endswith|cidr --value V [--action block|throttle|log|allow]
               [--method rst|drop] [--rate 128kbit] [--burst 16KB] [--expires DATE] [--authority A] [--reference R]
               [--legal-basis L] [--decided DATE] [--requested-by WHO] [--takedown ID]
  registry import --input-format zi-csv|domains|hosts|adblock|cidr --source NAME [--action A ...] [--match exact|suffix] FILE
  registry search [--q TEXT] [--kind K] [--status active|retired] [--source S] [--limit N] [--after ID]
  registry show ID | registry retire ID
  registry why NAME | --ip ADDRESS
  takedowns list | add --authority A [--reference R] [--legal-basis L] [--requested-by W] [--details D]
  takedowns show ID | takedowns set ID reviewed|enacted|rejected [--note TEXT]
  versions submit FILE | --from-registry   [--note TEXT] [--draft] [--traffic FLOWS.jsonl]
  versions list [--status S] | show ID | export ID --out DIR
  versions approve ID [--override REASON] | reject ID --reason R | publish ID | rollback --reason R
  audit list [--after SEQ] [--limit N] [--target T] | audit verify [--manifest FILE]
  tokens list | create --name NAME --role ROLE [--label L] | revoke ID
  settings show | settings set FILE.json
  keys show | bundle show | nodes
  emergency-stop --reason R      (signed allow-all bundle to every node at once; audited)
  rollout start VERSION_ID [--plan FILE.yaml|json] | rollout list | status|pause|resume|abort|rollback ID

  environment: CHOKEPOINT_URL (default http://127.0.0.1:8443), CHOKEPOINT_TOKEN
`;

const COMMON = {
  url: { type: 'string' },
  token: { type: 'string' },
  format: { type: 'string', default: 'human' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = Record<string, string | boolean | undefined>;

function parse(
  args: string[],
  options: ParseArgsConfig['options'] = {},
  positionals = 0,
): { v: Values; p: string[] } {
  const { values, positionals: p } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...COMMON, ...options },
  });
  if (values.format !== 'human' && values.format !== 'json')
    throw new UsageError('--format must be human or json');
  if (p.length !== positionals)
    throw new UsageError(
      `expected ${positionals} argument(s), got ${p.length}${p.length ? `: ${p.join(' ')}` : ''}`,
    );
  return { v: values as Values, p };
}

function client(v: Values): Client {
  const url = (v.url as string | undefined) ?? process.env.CHOKEPOINT_URL ?? 'http://127.0.0.1:8443';
  const token = (v.token as string | undefined) ?? process.env.CHOKEPOINT_TOKEN ?? null;
  if (!/^https?:\/\//.test(url)) throw new UsageError('--url / CHOKEPOINT_URL must be http:// or https://');
  return new Client(url, token);
}

function id(s: string, name = 'ID'): number {
  if (!/^\d+$/.test(s)) throw new UsageError(`${name} must be a number, got '${s}'`);
  return Number(s);
}

function out(v: Values, data: unknown, human: (d: any) => string): void {
  process.stdout.write(v.format === 'json' ? JSON.stringify(data, null, 2) + '\n' : human(data));
}

const when = (ms: unknown) => (ms ? new Date(Number(ms)).toISOString() : '-');

function kv(o: Record<string, unknown>, keys: string[]): string {
  return keys
    .filter((k) => o[k] !== null && o[k] !== undefined)
    .map((k) => `  ${k}: ${typeof o[k] === 'object' ? JSON.stringify(o[k]) : String(o[k])}`)
    .join('\n');
}

function entryLine(e: any): string {
  const act = e.action === 'throttle' ? `throttle ${e.rate_bps} bit/s` : e.action;
  return `${String(e.id).padStart(7)}  ${String(e.status ?? 'active').padEnd(7)}  ${e.kind.padEnd(10)}  ${e.value}  ${act}  [${[e.authority, e.reference, e.decided].filter(Boolean).join('; ') || 'no provenance'}]  source=${e.source}${e.expires ? ` expires=${e.expires}` : ''}\n`;
}

function versionText(x: any): string {
  let s = `version ${x.id}: ${x.status} (${x.origin}, by ${x.author}${x.note ? `, "${x.note}"` : ''})\n`;
  s += `  errors ${x.errors ?? '-'}, warnings ${x.warnings ?? '-'}; approvals: ${x.approvals.map((a: any) => a.user).join(', ') || 'none'}\n`;
  if (x.override) s += `  OVERRIDE by ${x.override.by}: ${x.override.reason}\n`;
  if (x.rejected_reason) s += `  rejected: ${x.rejected_reason}\n`;
  if (x.bundle_version) s += `  bundle ${x.bundle_version}\n`;
  for (const f of x.findings ?? []) {
    if (f.severity === 'info' && f.code === 'blast-radius') continue;
    s += `  ${f.severity} [${f.code}]${f.rule_id ? ` rule '${f.rule_id}'` : ''}: ${f.message}\n`;
    if (f.examples?.length) s += `      e.g. ${f.examples.slice(0, 8).join(', ')}\n`;
  }
  if (x.diff) {
    s += `  diff against ${x.diff.baseline_version === null ? 'nothing active (allow all)' : `version ${x.diff.baseline_version}`}: ${x.diff.changed} of ${x.diff.names} reference names change verdict\n`;
    for (const g of x.diff.groups)
      s += `    ${g.from.rule_id ?? '(default)'}:${g.from.action} → ${g.to.rule_id ?? '(default)'}:${g.to.action}  ${g.count}: ${g.names.slice(0, 10).join(', ')}${g.count > 10 ? ', …' : ''}\n`;
  }
  if (x.diff?.traffic) {
    const d = x.diff.traffic;
    s += `  diff on attached traffic: ${d.changed} of ${d.names} names seen change verdict\n`;
    for (const g of d.groups)
      s += `    ${g.from.rule_id ?? '(default)'}:${g.from.action} → ${g.to.rule_id ?? '(default)'}:${g.to.action}  ${g.count}: ${g.names.slice(0, 10).join(', ')}\n`;
  }
  return s;
}

export async function run(argv: string[]): Promise<number> {
  const [area, cmd, ...rest] = argv;
  if (!area || area === '--help' || area === '-h') {
    process.stdout.write(HELP);
    return area ? 0 : 2;
  }
  try {
    return await dispatch(area, cmd, rest);
  } catch (e) {
    if (e instanceof ClientError) {
      process.stderr.write(
        `chokepoint ctl ${area}${cmd ? ' ' + cmd : ''}: ${e.message}${e.status ? ` (HTTP ${e.status}, ${e.code})` : ''}\n`,
      );
      return 1;
    }
    throw e;
  }
}

async function dispatch(area: string, cmd: string | undefined, rest: string[]): Promise<number> {
  const args = cmd === undefined ? [] : [cmd, ...rest];
  switch (area) {
    case 'whoami': {
      const { v } = parse(args);
      const r = await client(v).call('GET', '/v1/whoami');
      out(v, r, (d) => `${d.name} (${d.role})\n`);
      return 0;
    }
    case 'registry':
      return registry(cmd, rest);
    case 'takedowns':
      return takedowns(cmd, rest);
    case 'versions':
      return versions(cmd, rest);
    case 'rollback':
      return versions('rollback', rest);
    case 'audit':
      return audit(cmd, rest);
    case 'tokens':
      return tokens(cmd, rest);
    case 'settings': {
      if (cmd === 'show') {
        const { v } = parse(rest);
        out(v, await client(v).call('GET', '/v1/settings'), (d) => JSON.stringify(d, null, 2) + '\n');
        return 0;
      }
      if (cmd === 'set') {
        const { v, p } = parse(rest, {}, 1);
        let body: unknown;
        try {
          body = JSON.parse(await readFile(p[0], 'utf8'));
        } catch (e) {
          throw new UsageError(`${p[0]}: ${(e as Error).message}`);
        }
        out(v, await client(v).call('PUT', '/v1/settings', body), () => 'settings saved\n');
        return 0;
      }
      throw new UsageError('settings show | settings set FILE.json');
    }
    case 'keys': {
      const { v } = parse(rest);
      if (cmd !== 'show') throw new UsageError('keys show');
      out(v, await client(v).call('GET', '/v1/keys'), (d) => {
        let s = `trust document ${d.trust?.version ?? '-'}\n`;
        for (const k of d.signing_keys) s += `  ${k.keyid}  ${k.status}  created ${when(k.created_at)}\n`;
        return s;
      });
      return 0;
    }
    case 'bundle': {
      const { v } = parse(rest);
      if (cmd !== 'show') throw new UsageError('bundle show');
      const r = await client(v).call('GET', '/v1/bundle');
      const m = JSON.parse(r.manifest);
      out(
        v,
        { ...r, manifest: m },
        () =>
          `bundle ${m.version} (${m.kind}) of version ${m.policy_version}, expires ${m.expires}, signed by ${m.signing_keyid.slice(0, 16)}…, ${m.files.length} files, ${m.files.reduce((a: number, f: any) => a + f.size, 0)} bytes\n`,
      );
      return 0;
    }
    case 'nodes': {
      const { v } = parse(args);
      out(
        v,
        await client(v).call('GET', '/v1/nodes'),
        (d) =>
          d.nodes
            .map(
              (n: any) =>
                `${n.name.padEnd(20)} bundle ${n.active_version ?? '-'} intended ${n.intended_version ?? '-'}${n.drift ? ' (DRIFT)' : ''}  labels ${
                  Object.entries(n.labels)
                    .map(([k, x]) => `${k}=${String(x)}`)
                    .join(',') || '-'
                }  last seen ${when(n.last_seen)}${n.last_error ? '  last error: ' + JSON.stringify(n.last_error) : ''}\n`,
            )
            .join('') || 'no nodes\n',
      );
      return 0;
    }
    case 'rollout':
      return rollout(cmd, rest);
    case 'emergency-stop': {
      const { v } = parse(args, { reason: { type: 'string' } });
      if (!v.reason) throw new UsageError('--reason is required');
      out(
        v,
        await client(v).call('POST', '/v1/emergency-stop', { reason: v.reason }),
        (d) => `EMERGENCY STOP: allow-all version ${d.id} published as bundle ${d.bundle_version}\n`,
      );
      return 0;
    }
    default:
      throw new UsageError(`unknown area '${area}'\n\n${HELP}`);
  }
}

async function registry(cmd: string | undefined, rest: string[]): Promise<number> {
  switch (cmd) {
    case 'add': {
      const { v } = parse(rest, {
        kind: { type: 'string' },
        value: { type: 'string' },
        action: { type: 'string' },
        method: { type: 'string' },
        rate: { type: 'string' },
        burst: { type: 'string' },
        expires: { type: 'string' },
        authority: { type: 'string' },
        reference: { type: 'string' },
        'legal-basis': { type: 'string' },
        decided: { type: 'string' },
        'requested-by': { type: 'string' },
        takedown: { type: 'string' },
      });
      if (!v.kind || !v.value) throw new UsageError('--kind and --value are required');
      const body: Record<string, unknown> = { kind: v.kind, value: v.value, action: v.action ?? 'block' };
      for (const [k, f] of [
        ['method', 'method'],
        ['rate', 'rate'],
        ['burst', 'burst'],
        ['expires', 'expires'],
        ['authority', 'authority'],
        ['reference', 'reference'],
        ['legal-basis', 'legal_basis'],
        ['decided', 'decided'],
        ['requested-by', 'requested_by'],
      ] as const)
        if (v[k] !== undefined) body[f] = v[k];
      if (v.takedown !== undefined) body.takedown_id = id(v.takedown as string, '--takedown');
      out(v, await client(v).call('POST', '/v1/registry/entries', body), entryLine);
      return 0;
    }
    case 'import': {
      const { v, p } = parse(
        rest,
        {
          'input-format': { type: 'string' },
          source: { type: 'string' },
          action: { type: 'string' },
          method: { type: 'string' },
          rate: { type: 'string' },
          burst: { type: 'string' },
          expires: { type: 'string' },
          match: { type: 'string' },
          encoding: { type: 'string' },
          'skip-unsupported': { type: 'boolean' },
        },
        1,
      );
      if (!v['input-format'] || !v.source) throw new UsageError('--input-format and --source are required');
      const q = new URLSearchParams({
        format: v['input-format'] as string,
        source: v.source as string,
        filename: basename(p[0]),
      });
      for (const k of ['action', 'method', 'rate', 'burst', 'expires', 'match', 'encoding'])
        if (v[k] !== undefined) q.set(k, v[k] as string);
      if (v['skip-unsupported']) q.set('skip_unsupported', 'true');
      let last = 0;
      const tty = process.stderr.isTTY;
      const say = (msg: string, force = false) => {
        const now = Date.now();
        if (!force && now - last < 1000) return;
        last = now;
        process.stderr.write(`${tty ? '\r\x1b[K' : ''}${msg}${tty ? '' : '\n'}`);
      };
      const r = await client(v).importFile(`/v1/registry/import?${q}`, p[0], {
        onUpload: (sent, total) =>
          say(
            `uploading ${p[0]}: ${((100 * sent) / Math.max(total, 1)).toFixed(0)}% of ${total} bytes`,
            sent === total,
          ),
        onStage: (status, staged, total) =>
          say(
            status === 'staging'
              ? `staging ${staged} of ${total} entries`
              : `${status}${status === 'applying' ? ` ${total} entries in one transaction` : ''}`,
            status === 'done',
          ),
      });
      if (tty) process.stderr.write('\n');
      out(
        v,
        r,
        (d) =>
          `import ${d.id}: ${d.rows} rows, ${d.entries} entries: ${d.added} added, ${d.updated} updated, ${d.retired} retired, ${d.kept_other_source} left to another source\n`,
      );
      return 0;
    }
    case 'search': {
      const { v } = parse(rest, {
        q: { type: 'string' },
        kind: { type: 'string' },
        status: { type: 'string' },
        source: { type: 'string' },
        limit: { type: 'string' },
        after: { type: 'string' },
      });
      const q = new URLSearchParams();
      for (const k of ['q', 'kind', 'status', 'source', 'limit', 'after'])
        if (v[k] !== undefined) q.set(k, v[k] as string);
      out(
        v,
        await client(v).call('GET', `/v1/registry/entries?${q}`),
        (d) => d.entries.map(entryLine).join('') + (d.next ? `… more: --after ${d.next}\n` : ''),
      );
      return 0;
    }
    case 'show': {
      const { v, p } = parse(rest, {}, 1);
      out(v, await client(v).call('GET', `/v1/registry/entries/${id(p[0])}`), entryLine);
      return 0;
    }
    case 'retire': {
      const { v, p } = parse(rest, {}, 1);
      out(
        v,
        await client(v).call('PATCH', `/v1/registry/entries/${id(p[0])}`, { status: 'retired' }),
        entryLine,
      );
      return 0;
    }
    case 'why': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { ...COMMON, ip: { type: 'string' } },
      });
      const v = values as Values;
      if (positionals.length > 1 || (!positionals.length && !v.ip))
        throw new UsageError('registry why NAME | --ip ADDRESS');
      const q = new URLSearchParams();
      if (positionals[0]) q.set('name', positionals[0]);
      if (v.ip) q.set('ip', v.ip as string);
      out(v, await client(v).call('GET', `/v1/registry/why?${q}`), (d) => {
        let s = d.active
          ? `active version ${d.active.version}: ${d.active.decision.action}${d.active.decision.rule_id ? ` by rule '${d.active.decision.rule_id}'` : ' (default)'}\n`
          : 'no active version\n';
        if (!d.entries.length) s += 'no registry entry matches\n';
        for (const e of d.entries)
          s += entryLine(e).replace(/\n$/, '') + `  since version ${e.since_version ?? '(not yet active)'}\n`;
        return s;
      });
      return 0;
    }
    default:
      throw new UsageError('registry add | import | search | show | retire | why');
  }
}

async function takedowns(cmd: string | undefined, rest: string[]): Promise<number> {
  switch (cmd) {
    case 'list': {
      const { v } = parse(rest, { status: { type: 'string' } });
      out(
        v,
        await client(v).call(
          'GET',
          `/v1/takedowns${v.status ? `?status=${encodeURIComponent(v.status as string)}` : ''}`,
        ),
        (d) =>
          d.takedowns
            .map(
              (t: any) =>
                `${t.id}  ${t.status.padEnd(9)} ${t.authority} ${t.reference ?? ''}  received ${when(t.received_at)}\n`,
            )
            .join('') || 'none\n',
      );
      return 0;
    }
    case 'add': {
      const { v } = parse(rest, {
        authority: { type: 'string' },
        reference: { type: 'string' },
        'legal-basis': { type: 'string' },
        'requested-by': { type: 'string' },
        details: { type: 'string' },
      });
      const body: Record<string, unknown> = {};
      for (const [k, f] of [
        ['authority', 'authority'],
        ['reference', 'reference'],
        ['legal-basis', 'legal_basis'],
        ['requested-by', 'requested_by'],
        ['details', 'details'],
      ] as const)
        if (v[k] !== undefined) body[f] = v[k];
      out(v, await client(v).call('POST', '/v1/takedowns', body), (d) => `takedown ${d.id} received\n`);
      return 0;
    }
    case 'show': {
      const { v, p } = parse(rest, {}, 1);
      out(
        v,
        await client(v).call('GET', `/v1/takedowns/${id(p[0])}`),
        (d) =>
          `takedown ${d.id}: ${d.status}\n${kv(d, ['authority', 'reference', 'legal_basis', 'requested_by', 'details', 'note'])}\n${d.entries.map(entryLine).join('')}`,
      );
      return 0;
    }
    case 'set': {
      const { v, p } = parse(rest, { note: { type: 'string' } }, 2);
      out(
        v,
        await client(v).call('POST', `/v1/takedowns/${id(p[0])}/status`, { status: p[1], note: v.note }),
        (d) => `takedown ${d.id}: ${d.status}\n`,
      );
      return 0;
    }
    default:
      throw new UsageError('takedowns list | add | show | set');
  }
}

async function versions(cmd: string | undefined, rest: string[]): Promise<number> {
  switch (cmd) {
    case 'submit': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          ...COMMON,
          'from-registry': { type: 'boolean' },
          note: { type: 'string' },
          draft: { type: 'boolean' },
          traffic: { type: 'string' },
        },
      });
      const v = values as Values;
      if (!!v['from-registry'] === positionals.length > 0 || positionals.length > 1)
        throw new UsageError('versions submit FILE | --from-registry');
      const body: Record<string, unknown> = { note: v.note, submit: !v.draft };
      if (v.traffic)
        body.traffic = await readFile(v.traffic as string, 'utf8').catch((e) => {
          throw new UsageError(`${v.traffic}: ${(e as Error).message}`);
        });
      if (v['from-registry']) body.from_registry = true;
      else {
        body.policy = await readFile(positionals[0], 'utf8').catch((e) => {
          throw new UsageError(`${positionals[0]}: ${(e as Error).message}`);
        });
        body.filename = basename(positionals[0]);
      }
      const r = await client(v).call('POST', '/v1/versions', body);
      out(v, r, versionText);
      return 0;
    }
    case 'list': {
      const { v } = parse(rest, { status: { type: 'string' } });
      out(
        v,
        await client(v).call(
          'GET',
          `/v1/versions${v.status ? `?status=${encodeURIComponent(v.status as string)}` : ''}`,
        ),
        (d) =>
          d.versions
            .map(
              (x: any) =>
                `${String(x.id).padStart(5)}  ${x.status.padEnd(11)} ${x.origin.padEnd(8)} by ${x.author.padEnd(10)} errors ${x.errors ?? '-'}  approvals ${x.approvals.length}${x.override ? '  OVERRIDDEN' : ''}${x.bundle_version ? `  bundle ${x.bundle_version}` : ''}\n`,
            )
            .join('') || 'no versions\n',
      );
      return 0;
    }
    case 'show': {
      const { v, p } = parse(rest, {}, 1);
      out(v, await client(v).call('GET', `/v1/versions/${id(p[0])}`), versionText);
      return 0;
    }
    case 'export': {
      const { v, p } = parse(rest, { out: { type: 'string' } }, 1);
      if (!v.out) throw new UsageError('--out DIR is required');
      const r = await client(v).call('GET', `/v1/versions/${id(p[0])}/export`);
      for (const f of r.files) {
        if (f.name.includes('..') || f.name.startsWith('/'))
          throw new ClientError(0, 'ERR_BAD_FILE', `refusing file name ${f.name}`);
        const path = join(v.out as string, f.name);
        await mkdir(dirname(path), { recursive: true });
        await writeFile(path, f.text);
      }
      out(v, { main: join(v.out as string, r.main), files: r.files.length }, (d) => `${d.main}\n`);
      return 0;
    }
    case 'approve': {
      const { v, p } = parse(rest, { override: { type: 'string' } }, 1);
      const n = id(p[0]);
      const c = client(v);
      if (v.override !== undefined) {
        const r = await c.call('POST', `/v1/versions/${n}/override`, { reason: v.override });
        out(
          v,
          r,
          (d) =>
            versionText(d) + 'override recorded; it is not an approval: two approvers must still approve\n',
        );
        return 0;
      }
      out(v, await c.call('POST', `/v1/versions/${n}/approve`), versionText);
      return 0;
    }
    case 'reject': {
      const { v, p } = parse(rest, { reason: { type: 'string' } }, 1);
      if (!v.reason) throw new UsageError('--reason is required');
      out(
        v,
        await client(v).call('POST', `/v1/versions/${id(p[0])}/reject`, { reason: v.reason }),
        versionText,
      );
      return 0;
    }
    case 'publish': {
      const { v, p } = parse(rest, {}, 1);
      out(v, await client(v).call('POST', `/v1/versions/${id(p[0])}/publish`), versionText);
      return 0;
    }
    case 'rollback': {
      const { v } = parse(rest, { reason: { type: 'string' } });
      if (!v.reason) throw new UsageError('--reason is required');
      out(
        v,
        await client(v).call('POST', '/v1/rollback', { reason: v.reason }),
        (d) => `rolled back: ${versionText(d)}`,
      );
      return 0;
    }
    default:
      throw new UsageError('versions submit | list | show | export | approve | reject | publish | rollback');
  }
}

async function fetchAudit(c: Client): Promise<AuditRow[]> {
  const rows: AuditRow[] = [];
  let after = 0;
  for (let i = 0; i < 1_000_000; i++) {
    const r = await c.call('GET', `/v1/audit?after=${after}&limit=5000`);
    for (const x of r.rows) rows.push({ ...x, seq: Number(x.seq), at: Number(x.at) });
    if (r.next === null || !r.rows.length) break;
    after = Number(r.next);
  }
  return rows;
}

async function audit(cmd: string | undefined, rest: string[]): Promise<number> {
  if (cmd === 'list') {
    const { v } = parse(rest, {
      after: { type: 'string' },
      limit: { type: 'string' },
      target: { type: 'string' },
    });
    const q = new URLSearchParams();
    for (const k of ['after', 'limit', 'target']) if (v[k] !== undefined) q.set(k, v[k] as string);
    out(v, await client(v).call('GET', `/v1/audit?${q}`), (d) =>
      d.rows
        .map(
          (r: any) =>
            `${String(r.seq).padStart(6)}  ${when(r.at)}  ${r.actor.padEnd(12)} ${r.action.padEnd(18)} ${r.target ?? ''}\n`,
        )
        .join(''),
    );
    return 0;
  }
  if (cmd === 'verify') {
    const { v } = parse(rest, { manifest: { type: 'string' } });
    const c = client(v);
    const rows = await fetchAudit(c);
    const heads = await c.call('GET', '/v1/audit/heads');
    const check: { label: string; head: AuditHead }[] = [];
    if (heads.stored) check.push({ label: 'the stored audit head', head: heads.stored });
    if (heads.bundle)
      check.push({ label: `bundle ${heads.bundle.version}'s manifest`, head: heads.bundle.head });
    if (v.manifest) {
      const text = await readFile(v.manifest as string, 'utf8');
      const j = JSON.parse(text);
      const m = typeof j.manifest === 'string' ? JSON.parse(j.manifest) : j;
      check.push({ label: `${v.manifest}`, head: m.audit_head });
    }
    const r = verifyChain(rows, check);
    out(v, r, (d) =>
      d.ok
        ? `audit log ok: ${d.rows} rows, head ${d.head.seq} ${d.head.hash.slice(0, 16)}…\n`
        : `audit log BROKEN at row ${d.bad.seq}: ${d.bad.reason}\n`,
    );
    if (!r.ok && v.format !== 'json')
      process.stderr.write(`chokepoint ctl audit verify: first bad row ${r.bad!.seq}: ${r.bad!.reason}\n`);
    return r.ok ? 0 : 1;
  }
  throw new UsageError('audit list | verify');
}

async function tokens(cmd: string | undefined, rest: string[]): Promise<number> {
  switch (cmd) {
    case 'list': {
      const { v } = parse(rest);
      out(v, await client(v).call('GET', '/v1/tokens'), (d) =>
        d.tokens
          .map(
            (t: any) =>
              `${String(t.id).padStart(4)}  ${t.user.padEnd(16)} ${t.role.padEnd(9)} ${t.label ?? ''}  created ${when(t.created_at)}${t.revoked_at ? '  REVOKED' : ''}\n`,
          )
          .join(''),
      );
      return 0;
    }
    case 'create': {
      const { v } = parse(rest, {
        name: { type: 'string' },
        role: { type: 'string' },
        label: { type: 'string' },
      });
      if (!v.name || !v.role) throw new UsageError('--name and --role are required');
      out(
        v,
        await client(v).call('POST', '/v1/tokens', { name: v.name, role: v.role, label: v.label }),
        (d) => `${d.token}\n`,
      );
      return 0;
    }
    case 'revoke': {
      const { v, p } = parse(rest, {}, 1);
      out(v, await client(v).call('DELETE', `/v1/tokens/${id(p[0])}`), (d) => `token ${d.id} revoked\n`);
      return 0;
    }
    default:
      throw new UsageError('tokens list | create | revoke');
  }
}

function rolloutText(d: any): string {
  let s = `rollout ${d.id}: version ${d.version_id} (from ${d.prev_version_id ?? '-'}) ${d.state}${d.reason ? ` — ${d.reason}` : ''}\n`;
  for (const st of d.stages ?? [])
    s += `  ${st.name.padEnd(12)} ${st.state.padEnd(8)} bake ${st.bake_s}s  nodes ${st.nodes.join(',') || '-'}\n`;
  const bad = (d.samples ?? []).filter((x: any) => !x.pass).slice(-5);
  for (const x of bad)
    s += `  FAIL ${x.node} ${x.metric} = ${x.value} (baseline ${x.baseline}, limit +${x.threshold})${x.names ? ' ' + x.names.join(',') : ''}\n`;
  return s;
}

async function rollout(cmd: string | undefined, rest: string[]): Promise<number> {
  switch (cmd) {
    case 'start': {
      const { v, p } = parse(rest, { plan: { type: 'string' } }, 1);
      let plan: string | undefined;
      if (v.plan) {
        try {
          plan = await readFile(v.plan as string, 'utf8');
        } catch (e) {
          throw new UsageError(`${String(v.plan)}: ${(e as Error).message}`);
        }
      }
      out(
        v,
        await client(v).call('POST', '/v1/rollouts', { version_id: id(p[0]), ...(plan ? { plan } : {}) }),
        rolloutText,
      );
      return 0;
    }
    case 'list': {
      const { v } = parse(rest);
      out(
        v,
        await client(v).call('GET', '/v1/rollouts'),
        (d) => d.rollouts.map(rolloutText).join('') || 'no rollouts\n',
      );
      return 0;
    }
    case 'status':
    case 'pause':
    case 'resume':
    case 'abort':
    case 'rollback': {
      const { v, p } = parse(rest, {}, 1);
      const r =
        cmd === 'status'
          ? await client(v).call('GET', `/v1/rollouts/${id(p[0])}`)
          : await client(v).call('POST', `/v1/rollouts/${id(p[0])}/${cmd}`);
      out(v, r, rolloutText);
      return 0;
    }
    default:
      throw new UsageError(
        'rollout start VERSION_ID [--plan FILE] | list | status|pause|resume|abort|rollback ID',
      );
  }
}
