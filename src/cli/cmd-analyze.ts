/**
 * @module cli/cmd-analyze
 * `chokepoint analyze [--format jsonl|table] [--node NAME] [--eve-compat] [--progress] FILE...` — one
 * Suricata EVE flow record per line on stdout (output/eve.ts; or a table and summary); progress on
 * stderr only when stderr is a terminal (or --progress).
 * Exit 0 ok, 1 when some input could not be read, 2 usage.
 */
import { parseArgs } from 'node:util';
import { analyzeFiles } from '../engine/analyze.js';
import { JsonlWriter, writeAllSync } from '../output/jsonl.js';
import { flowToEve, type EveContext } from '../output/eve.js';
import { Summary, tableHeader, tableRow } from '../output/summary.js';
import { UsageError } from '../util/errors.js';

const HELP = `usage: chokepoint analyze [--format jsonl|table] [--node NAME] [--progress] [--no-progress] FILE... ('-' = stdin)

  --format jsonl   one Suricata EVE flow record per line on stdout (default; schema/flow-record.schema.json)
  --format table   a table of flows and a summary
  --node NAME      sensor name: written as EVE \`host\` and folded into flow_id (default: no host)
  --eve-compat     write the pre-EVE record (schema version 1) instead; deprecated, removed in 0.3
  --progress       progress on stderr (default: only when stderr is a terminal)
`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      format: { type: 'string', default: 'jsonl' },
      node: { type: 'string' },
      'eve-compat': { type: 'boolean' },
      progress: { type: 'boolean' },
      'no-progress': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('no capture file given\n' + HELP);
  const format = values.format;
  if (format !== 'jsonl' && format !== 'table')
    throw new UsageError(`--format must be jsonl or table, not '${format}'`);
  const progress = values['no-progress'] ? false : (values.progress ?? process.stderr.isTTY === true);
  if (values.node !== undefined && values.node === '') throw new UsageError('--node needs a name');
  return analyzeCommand(positionals, format, progress, { node: values.node }, values['eve-compat'] === true);
}

export async function analyzeCommand(
  files: string[],
  format: 'jsonl' | 'table',
  progress: boolean,
  eve: EveContext = {},
  compat = false,
): Promise<number> {
  const out = new JsonlWriter(1);
  const summary = new Summary();
  const rows: string[] = [];
  const t0 = process.hrtime.bigint();
  const res = await analyzeFiles(files, {
    onRecord(r) {
      if (format === 'jsonl') {
        out.write(compat ? r : flowToEve(r, eve));
        if (progress) summary.add(r);
      } else {
        summary.add(r);
        rows.push(tableRow(r));
      }
    },
    onProgress: progress
      ? (file, bytes, total) => {
          const p = total ? ` ${((100 * bytes) / total).toFixed(0)}%` : '';
          process.stderr.write(`\r${file}: ${(bytes / 1048576).toFixed(0)} MiB${p}   `);
        }
      : undefined,
  });
  if (progress) process.stderr.write('\n');
  out.flush();
  if (format === 'table') {
    writeAllSync(1, tableHeader() + rows.join('') + '\n' + summary.render());
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const f of res.files) {
    if (f.truncated)
      process.stderr.write(`chokepoint analyze: ${f.file}: ${f.truncated} (kept what was read)\n`);
  }
  if (progress) {
    const pk = res.files.reduce((a, f) => a + f.packets, 0);
    process.stderr.write(`${pk} packets, ${summary.flows} flows in ${secs.toFixed(2)} s\n`);
  }
  for (const e of res.errors) process.stderr.write(`chokepoint analyze: ${e.message}\n`);
  return res.errors.length ? 1 : 0;
}
