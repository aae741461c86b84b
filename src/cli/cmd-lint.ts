/**
 * @module cli/cmd-lint
 * `chokepoint lint POLICY [--reference NAMES|CAPTURE]... [--protected NAMES] [--format human|json]`
 * — static checks and blast radius of a policy (src/policy/lint.ts). Human output, or JSON
 * `{findings: [{severity, code, rule_id, message, examples}], summary}` on stdout.
 * Exit 0: no errors; 1: errors found (or the policy/reference could not be loaded); 2: usage.
 */
import { parseArgs } from 'node:util';
import { loadPolicyFile } from '../policy/load.js';
import { PolicyError } from '../policy/errors.js';
import { formatFindings, lintPolicy } from '../policy/lint.js';
import { inputFromRecord } from '../policy/match-input.js';
import type { MatchInput } from '../policy/types.js';
import { isCaptureFile, namesFromHosts, readNamesFile, type Reference } from '../policy/reference.js';
import { UsageError } from '../util/errors.js';
import { isFlowLog, readFlowLog } from '../output/flowlog.js';

const HELP = `usage: chokepoint lint POLICY [options]

  --reference FILE...  names file (one per line, most important first; e.g. a top-sites list), a
                     capture (pcap/pcapng: the names seen in its flows) or a flow log (EVE JSON
                     lines from analyze/simulate/enforce: the names of its flows); repeatable, or several
                     files after one --reference (after the POLICY). Enables blast
                     radius: how many reference names each rule matches, with examples
  --protected FILE   names that must never be blocked or throttled (one per line), in addition to
                     the policy's own protected list
  --format human|json   (default human)
  --examples N       examples per finding (default 10)
  --now DATE         evaluate expiry at this date (default: now)

exit status: 0 no errors, 1 errors found or input unreadable, 2 usage
`;

/** Names seen in captures, via the analyzer. */
export async function referenceFromCaptures(
  paths: string[],
): Promise<{ ref: Reference; errors: { file: string; message: string }[] }> {
  const { analyzeFiles } = await import('../engine/analyze.js');
  const hosts: string[] = [];
  const flows: MatchInput[] = [];
  const res = await analyzeFiles(paths, {
    onRecord: (r) => {
      if (r.host) hosts.push(r.host);
      flows.push(inputFromRecord(r));
    },
  });
  return { ref: { ...namesFromHosts(hosts, paths.join(', ')), flows }, errors: res.errors };
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      reference: { type: 'string', multiple: true },
      protected: { type: 'string', multiple: true },
      format: { type: 'string', default: 'human' },
      examples: { type: 'string', default: '10' },
      now: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  // `--reference A B C`: values after the first are positionals; they are references too
  if (positionals.length === 0) throw new UsageError('a POLICY file is required\n\n' + HELP);
  if (positionals.length > 1 && !values.reference)
    throw new UsageError('exactly one POLICY file expected\n\n' + HELP);
  const refPaths = [...(values.reference ?? []), ...positionals.slice(1)];
  const format = values.format;
  if (format !== 'human' && format !== 'json')
    throw new UsageError(`--format must be human or json, not '${format}'`);
  const maxExamples = Number(values.examples);
  if (!Number.isInteger(maxExamples) || maxExamples < 0)
    throw new UsageError('--examples must be a non-negative integer');
  const now = values.now ? Date.parse(values.now) : Date.now();
  if (Number.isNaN(now)) throw new UsageError(`--now: invalid date '${values.now}'`);

  const file = positionals[0];
  let policy;
  try {
    policy = await loadPolicyFile(file);
  } catch (e) {
    if (e instanceof PolicyError) {
      process.stderr.write(`chokepoint lint: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  const references: Reference[] = [];
  const captures: string[] = [];
  for (const r of refPaths) {
    try {
      if (await isCaptureFile(r)) captures.push(r);
      else if (isFlowLog(r)) {
        // a flow log (EVE JSON lines): the names of its flows, most flows first, as for captures
        const hosts: string[] = [];
        const flows: MatchInput[] = [];
        readFlowLog(r, (rec) => {
          if (rec.host) hosts.push(rec.host);
          flows.push(inputFromRecord(rec));
        });
        references.push({ ...namesFromHosts(hosts, r), flows });
      } else {
        const ref = await readNamesFile(r);
        if (ref.skipped)
          process.stderr.write(
            `chokepoint lint: ${r}: skipped ${ref.skipped} line(s) that are not domain names\n`,
          );
        references.push(ref);
      }
    } catch (e) {
      process.stderr.write(`chokepoint lint: cannot read reference '${r}': ${(e as Error).message}\n`);
      return 1;
    }
  }
  if (captures.length) {
    const { ref, errors } = await referenceFromCaptures(captures);
    for (const e of errors) process.stderr.write(`chokepoint lint: ${e.file}: ${e.message}\n`);
    if (errors.length) return 1;
    references.push(ref);
  }
  const protectedNames: string[] = [];
  for (const pth of values.protected ?? []) {
    try {
      protectedNames.push(...(await readNamesFile(pth)).names);
    } catch (e) {
      process.stderr.write(`chokepoint lint: cannot read protected list '${pth}': ${(e as Error).message}\n`);
      return 1;
    }
  }
  const findings = lintPolicy(policy, { references, protectedNames, now, maxExamples });
  const count = (s: string) => findings.filter((f) => f.severity === s).length;
  if (format === 'json') {
    const out = {
      policy: file,
      references: references.map((r) => ({ source: r.source, names: r.names.length })),
      findings: findings.map((f) => ({
        severity: f.severity,
        code: f.code,
        rule_id: f.rule_id,
        message: f.message,
        examples: f.examples,
        ...(f.count !== undefined ? { count: f.count } : {}),
        ...(f.pos ? { line: f.pos.line, column: f.pos.column } : {}),
      })),
      summary: { errors: count('error'), warnings: count('warning'), info: count('info') },
    };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  } else process.stdout.write(formatFindings(findings, file));
  return count('error') > 0 ? 1 : 0;
}
