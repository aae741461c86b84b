/**
 * @module cli/cmd-gen
 * `chokepoint gen --out FILE [--flows N | --size 400MB] [--seed S] [--truth FILE.tsv] [--names FILE]`:
 * writes a synthetic pcap and (optionally) its ground truth as TSV.
 */
import { parseArgs } from 'node:util';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { PcapWriter } from '../gen/pcap-writer.js';
import { generate, type TruthRow } from '../gen/synth.js';
import { UsageError } from '../util/errors.js';

const HELP = `usage: chokepoint gen --out FILE [--flows N | --size BYTES[KB|MB|GB]] [--seed N] [--truth FILE.tsv] [--names FILE] [--tls-share 0.75]
`;

export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$/i.exec(s.trim());
  if (!m) throw new UsageError(`bad size '${s}'`);
  const mult: Record<string, number> = {
    b: 1,
    kb: 1e3,
    mb: 1e6,
    gb: 1e9,
    kib: 1024,
    mib: 1048576,
    gib: 1073741824,
  };
  return Math.floor(Number(m[1]) * mult[(m[2] ?? 'b').toLowerCase()]);
}

export function truthTsv(rows: TruthRow[]): string {
  const head = 'proto\tsrc_ip\tsrc_port\tdest_ip\tdest_port\tapp_proto\thost\tscenario\n';
  return (
    head +
    rows
      .map((t) =>
        [t.proto, t.src_ip, t.src_port, t.dest_ip, t.dest_port, t.app_proto, t.host ?? '-', t.scenario].join(
          '\t',
        ),
      )
      .join('\n') +
    '\n'
  );
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string', short: 'o' },
      flows: { type: 'string' },
      size: { type: 'string' },
      seed: { type: 'string', default: '1' },
      truth: { type: 'string' },
      names: { type: 'string' },
      'tls-share': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (!values.out) throw new UsageError('--out is required\n' + HELP);
  const fd = values.out === '-' ? 1 : openSync(values.out, 'w');
  const w = new PcapWriter(fd);
  const names = values.names
    ? readFileSync(values.names, 'utf8')
        .split('\n')
        .map((s) => s.trim())
        .filter((s) => s && !s.startsWith('#'))
    : undefined;
  const truth = generate(w, {
    seed: Number(values.seed),
    flows: values.flows ? Number(values.flows) : undefined,
    targetBytes: values.size ? parseSize(values.size) : undefined,
    tlsShare: values['tls-share'] ? Number(values['tls-share']) : undefined,
    names,
  });
  if (fd !== 1) closeSync(fd);
  if (values.truth) writeFileSync(values.truth, truthTsv(truth));
  process.stderr.write(`wrote ${w.packets} packets, ${w.bytes} bytes, ${truth.length} flows\n`);
  return 0;
}
