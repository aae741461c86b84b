/**
 * @module cli/cmd-simulate
 * `chokepoint simulate --policy POLICY [--compiled FILE] [--baseline POLICY] [--format jsonl|table] CAPTURE...`
 * — run the analyzer on captures and apply the policy offline. jsonl: every flow record as a Suricata
 * EVE `flow` event with `chokepoint.policy: {rule_id, action}` (output/eve.ts), then one
 * `{"timestamp", "event_type":"simulate_summary", "chokepoint": {...}}` line (per-rule summary,
 * throttle estimates, and with --baseline the diff). table: the summary for humans.
 * Exit 0 ok, 1 when the policy or a capture could not be read, 2 usage.
 */
import { parseArgs } from 'node:util';
import { loadPolicyFile } from '../policy/load.js';
import { compilePolicy } from '../policy/compile.js';
import { PolicyError } from '../policy/errors.js';
import { CompiledPolicyError, isCompiledFile, loadCompiled } from '../policy/compiled.js';
import { Simulation, renderSummary } from '../policy/simulate.js';
import { UsageError } from '../util/errors.js';
import { JsonlWriter } from '../output/jsonl.js';
import { OUR_KEY, eveTime, flowToEve } from '../output/eve.js';
import { isoMicro } from '../engine/record-build.js';
import type { CompiledPolicy } from '../policy/types.js';
import type { FlowRecord } from '../record/record.js';
import { isFlowLog, readFlowLog } from '../output/flowlog.js';

const HELP = `usage: chokepoint simulate --policy POLICY [--compiled FILE] [--baseline POLICY] [--format jsonl|table] INPUT...

  INPUT              a capture (pcap/pcapng, '-' = stdin) or a flow log: EVE JSON lines written by
                     analyze, simulate or enforce --eve (also the version-1 shape)

  --policy FILE      the policy to try (a policy file, or a compiled registry file from
                     \`chokepoint registry compile\`)
  --compiled FILE    use this compiled registry file for --policy: refused when it was not made from
                     --policy's current text and list files (stale or foreign)
  --baseline FILE    compare with this policy: every flow whose verdict changes, grouped, with names
  --format jsonl     flow records with policy verdicts, then a summary line (default)
  --format table     the summary only, for humans
  --names N          names shown per group (default 20)
  --node NAME        sensor name: EVE \`host\` and the high bits of flow_id (default: no host)
  --eve-compat       write the pre-EVE records (schema version 1); deprecated, removed in 0.3
`;

async function load(file: string, what: string, compiled?: string): Promise<CompiledPolicy | null> {
  try {
    if (compiled !== undefined) return await loadCompiled(compiled, { policy: file });
    if (isCompiledFile(file)) return await loadCompiled(file);
    return compilePolicy(await loadPolicyFile(file));
  } catch (e) {
    if (e instanceof PolicyError || e instanceof CompiledPolicyError) {
      process.stderr.write(`chokepoint simulate: ${what}: ${e.message}\n`);
      return null;
    }
    throw e;
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      policy: { type: 'string' },
      compiled: { type: 'string' },
      baseline: { type: 'string' },
      format: { type: 'string', default: 'jsonl' },
      names: { type: 'string', default: '20' },
      node: { type: 'string' },
      'eve-compat': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (!values.policy) throw new UsageError('--policy FILE is required\n\n' + HELP);
  if (positionals.length === 0) throw new UsageError('no capture file given\n\n' + HELP);
  const format = values.format;
  if (format !== 'jsonl' && format !== 'table')
    throw new UsageError(`--format must be jsonl or table, not '${format}'`);
  const topNames = Number(values.names);
  if (!Number.isInteger(topNames) || topNames < 1) throw new UsageError('--names must be a positive integer');
  const policy = await load(values.policy, 'policy', values.compiled);
  if (!policy) return 1;
  const baseline = values.baseline ? await load(values.baseline, 'baseline') : null;
  if (values.baseline && !baseline) return 1;
  if (values.node === '') throw new UsageError('--node needs a name');
  const compat = values['eve-compat'] === true;
  const eve = { node: values.node };
  const sim = new Simulation(policy, baseline, topNames);
  const { analyzeFiles } = await import('../engine/analyze.js');
  const out = new JsonlWriter(1);
  const onRecord = (r: FlowRecord): void => {
    sim.add(r);
    if (format === 'jsonl') out.write(compat ? r : flowToEve(r, eve));
  };
  // inputs in order: captures through the analyzer, flow logs (EVE JSON lines) through the reader
  const errors: { file: string; message: string }[] = [];
  const truncated: string[] = [];
  for (const path of positionals) {
    let log = false;
    try {
      log = path !== '-' && isFlowLog(path);
    } catch {
      /* unreadable: the analyzer reports it */
    }
    if (!log) {
      const res = await analyzeFiles([path], { onRecord });
      errors.push(...res.errors);
      for (const f of res.files) if (f.truncated) truncated.push(`${f.file}: ${f.truncated}`);
      continue;
    }
    try {
      // a log with a bad line is rejected whole: a first pass checks every line, the second uses them
      readFlowLog(path, () => undefined);
    } catch (e) {
      errors.push({ file: path, message: (e as Error).message });
      continue;
    }
    readFlowLog(path, onRecord);
  }
  for (const e of errors) process.stderr.write(`chokepoint simulate: ${e.file}: ${e.message}\n`);
  for (const t of truncated) process.stderr.write(`chokepoint simulate: ${t} (kept what was read)\n`);
  const summary = sim.summary();
  if (format === 'jsonl') {
    // EVE: a record of our own event type, its content under our key (like Suricata's `stats` events)
    const { event_type, ...content } = summary;
    out.write(
      compat ? summary : { timestamp: eveTime(isoMicro(Date.now())), event_type, [OUR_KEY]: content },
    );
    out.flush();
  } else process.stdout.write(renderSummary(summary));
  return errors.length || truncated.length ? 1 : 0;
}
