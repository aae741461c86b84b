/**
 * @module cli/cmd-registry
 * `chokepoint registry import --format zi-csv|domains|hosts|adblock|cidr [--action block] --out DIR FILE`
 * — turn a registry dump or list into `DIR/policy.yaml` + list files with provenance. A malformed line
 * stops the import with its `file:line:column` and nothing is written. The result is loaded back
 * (and so validated) before the command reports success.
 * `chokepoint registry compile POLICY [--out FILE]` — write the compiled registry file (policy/compiled)
 * that `simulate --compiled` loads without re-parsing the lists.
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import {
  IMPORT_FORMATS,
  ImportError,
  importFile,
  writeImport,
  type ImportFormat,
} from '../policy/import/index.js';
import { loadPolicyFile } from '../policy/load.js';
import { compilePolicyToFile } from '../policy/compiled.js';
import { PolicyError } from '../policy/errors.js';
import { parseRate, parseSize } from '../policy/units.js';
import { UsageError } from '../util/errors.js';
import type { Action, BlockMethod } from '../policy/types.js';

const HELP = `usage: chokepoint registry import --format FORMAT --out DIR [options] FILE
       chokepoint registry compile POLICY [--out FILE]

  compile: load POLICY and its list files and write the compiled registry file (default
  POLICY.compiled): the lookup indexes as typed arrays, loaded by \`simulate --compiled FILE\` (or
  \`--policy FILE\`) without re-parsing text; it records the sha256 of every source file, so a stale one
  is refused.


  --format zi-csv|domains|hosts|adblock|cidr
      zi-csv   Russian registry dump (windows-1251, 'Updated:' header, IP;domain;URL;authority;number;date)
      domains  one name per line ('*.x' = subdomains of x)
      hosts    hosts file (ADDRESS NAME...; the address is ignored)
      adblock  '||name^' rules (name and subdomains)
      cidr     one address or prefix per line
  --out DIR            output directory (policy.yaml, lists/); must not exist unless --force
  --force              replace DIR if it exists
  --action A           allow|log|block|throttle (default block)
  --method rst|drop    for block (default rst)
  --rate RATE          for throttle, e.g. 128kbit
  --burst SIZE         for throttle, e.g. 16KB
  --match exact|suffix how plain names are matched (domains, hosts; default exact)
  --prefix ID          rule id prefix (default registry)
  --encoding ENC       source encoding (default windows-1251 for zi-csv, utf8 otherwise)
  --skip-unsupported   adblock: skip rules other than '||name^' instead of failing
`;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h') {
    process.stdout.write(HELP);
    return sub ? 0 : 2;
  }
  if (sub === 'compile') return compile(rest);
  if (sub !== 'import')
    throw new UsageError(`unknown subcommand '${sub}' (expected: import, compile)\n\n${HELP}`);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      format: { type: 'string' },
      out: { type: 'string' },
      force: { type: 'boolean', default: false },
      action: { type: 'string', default: 'block' },
      method: { type: 'string' },
      rate: { type: 'string' },
      burst: { type: 'string' },
      match: { type: 'string', default: 'exact' },
      prefix: { type: 'string', default: 'registry' },
      encoding: { type: 'string' },
      'skip-unsupported': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const format = values.format as ImportFormat;
  if (!format || !IMPORT_FORMATS.includes(format))
    throw new UsageError(`--format must be one of ${IMPORT_FORMATS.join(', ')}`);
  if (!values.out) throw new UsageError('--out DIR is required');
  if (positionals.length !== 1) throw new UsageError('exactly one input FILE expected');
  const action = values.action as Action;
  if (!['allow', 'log', 'block', 'throttle'].includes(action))
    throw new UsageError(`--action must be allow, log, block or throttle`);
  if (values.method && (action !== 'block' || !['rst', 'drop'].includes(values.method)))
    throw new UsageError('--method rst|drop applies to --action block');
  if (action === 'throttle') {
    if (!values.rate) throw new UsageError('--action throttle needs --rate (e.g. 128kbit)');
    const r = parseRate(values.rate);
    if (typeof r === 'string') throw new UsageError(`--rate: ${r.slice(1)}`);
    if (values.burst) {
      const b = parseSize(values.burst);
      if (typeof b === 'string') throw new UsageError(`--burst: ${b.slice(1)}`);
    }
  } else if (values.rate || values.burst) throw new UsageError('--rate/--burst apply to --action throttle');
  if (values.match !== 'exact' && values.match !== 'suffix')
    throw new UsageError('--match must be exact or suffix');
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,100}$/.test(values.prefix))
    throw new UsageError('--prefix: letters, digits, . _ : - only');
  const file = positionals[0];
  let imported;
  try {
    imported = await importFile(file, format, {
      match: values.match,
      skipUnsupported: values['skip-unsupported'],
      encoding: values.encoding,
    });
  } catch (e) {
    if (e instanceof ImportError) {
      process.stderr.write(`chokepoint registry import: ${e.message}\nnothing was written\n`);
      return 1;
    }
    process.stderr.write(`chokepoint registry import: cannot read ${file}: ${(e as Error).message}\n`);
    return 1;
  }
  const { imp, bytes } = imported;
  let res;
  try {
    res = await writeImport(values.out, imp, {
      action,
      method: values.method as BlockMethod | undefined,
      rate: values.rate,
      burst: values.burst,
      prefix: values.prefix,
      source: file,
      sourceBytes: bytes,
      force: values.force,
    });
  } catch (e) {
    process.stderr.write(`chokepoint registry import: ${(e as Error).message}\n`);
    return 1;
  }
  // load it back: the output must be a valid policy
  const p = await loadPolicyFile(join(res.dir, 'policy.yaml'));
  process.stderr.write(
    `imported ${imp.rows} row(s) from ${file} into ${join(values.out, 'policy.yaml')}: ${res.rules.map((r) => `${r.id} ${r.entries}`).join(', ') || 'no rules'}\n`,
  );
  for (const [k, v] of Object.entries(imp.notes)) process.stderr.write(`  ${k}: ${v}\n`);
  void p;
  return 0;
}

async function compile(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('registry compile: exactly one POLICY expected');
  const policy = positionals[0];
  const out = values.out ?? `${policy}.compiled`;
  const t0 = performance.now();
  try {
    const r = await compilePolicyToFile(policy, out);
    const ix = r.matcher.indexes;
    process.stderr.write(
      `compiled ${policy} (${r.matcher.ruleCount} rule(s), ${ix.domains.size} name(s), ${ix.dstCount + ix.srcCount + ix.excCount} prefix(es), ${r.sources.length} source file(s)) into ${out}: ${(r.bytes / 1048576).toFixed(1)} MiB in ${((performance.now() - t0) / 1000).toFixed(2)} s\n`,
    );
    return 0;
  } catch (e) {
    if (e instanceof PolicyError) {
      process.stderr.write(`chokepoint registry compile: ${e.message}\nnothing was written\n`);
      return 1;
    }
    throw e;
  }
}
