/**
 * @module cli/cmd-analyze
 * `chokepoint analyze [--format jsonl|table] [--node NAME] [--eve-compat] [--progress] FILE...` — one
 * Suricata EVE flow record per line on stdout (output/eve.ts; or a table and summary); progress on
 * stderr only when stderr is a terminal (or --progress).
 * `--interface IFACE [--filter BPF] [--flow-interval 60s]` reads live from an interface instead
 * (engine/live) until SIGINT/SIGTERM, then ends every flow and prints the capture counters (kernel
 * drops included) on stderr. `--policy P` adds each flow's decision (`policy: {rule_id, action}`, as
 * simulate), and `--evidence DIR` writes the first packets of blocked/throttled flows to pcap files.
 * Exit 0 ok, 1 when some input could not be read or was truncated (after writing what was read), 2 usage.
 */
import { parseArgs } from 'node:util';
import { analyzeFiles, type AnalyzeOptions } from '../engine/analyze.js';
import { JsonlWriter, writeAllSync } from '../output/jsonl.js';
import { writeEveLine, type EveContext } from '../output/eve.js';
import { hostname } from 'node:os';
import { Summary, tableHeader, tableRow } from '../output/summary.js';
import { EvidenceWriter } from '../output/evidence.js';
import { UsageError, ChokepointError } from '../util/errors.js';
import { optInt, optSize } from './options.js';
import type { Flow } from '../flow/flow.js';
import type { Engine } from '../engine/engine.js';
import type { FlowRecord } from '../record/record.js';
import { AnalyzePolicy } from './analyze-policy.js';

const HELP = `usage: chokepoint analyze [options] FILE...            ('-' = stdin)
       chokepoint analyze [options] --interface IFACE     (live, until Ctrl-C / SIGTERM)

  --format jsonl        one Suricata EVE flow record per line on stdout (default; schema/flow-record.schema.json)
  --format table        a table of flows and a summary
  --node NAME           sensor name: EVE \`host\` and the high bits of flow_id (default: none for files,
                        the host name for --interface)
  --eve-compat          write the pre-EVE record (schema version 1) instead; deprecated, removed in 0.3
  --progress            progress on stderr (default: only when stderr is a terminal)

live capture (libpcap; needs root or CAP_NET_RAW):
  --interface IFACE     read packets live from IFACE (e.g. a mirror port)
  --filter BPF          capture filter in tcpdump syntax, e.g. 'tcp port 443 or udp'
  --flow-interval DUR   also a record every DUR for flows still running ("partial": true), e.g. 60s
  --snaplen BYTES       bytes kept per packet (default 65535)
  --buffer SIZE         kernel capture ring (default 32MiB)
  --no-promisc          do not put the interface in promiscuous mode

policy and evidence:
  --policy FILE         add each flow's decision (policy.rule_id, policy.action), as simulate does
  --evidence DIR        write the first packets of blocked/throttled flows to DIR/evidence-NNNNNN.pcap,
                        with an index DIR/evidence-NNNNNN.jsonl (flow_id, community_id, 5-tuple, ...)
  --evidence-flow-packets N   packets per flow (default 32)
  --evidence-flow-bytes SIZE  captured bytes per flow (default 64KiB)
  --evidence-file-size SIZE   rotate files at SIZE (default 16MiB)
  --evidence-max-size SIZE    keep at most SIZE of evidence files, oldest deleted (default 256MiB)
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
      interface: { type: 'string', short: 'i' },
      filter: { type: 'string' },
      'flow-interval': { type: 'string' },
      snaplen: { type: 'string' },
      buffer: { type: 'string' },
      'no-promisc': { type: 'boolean' },
      policy: { type: 'string' },
      evidence: { type: 'string' },
      'evidence-flow-packets': { type: 'string' },
      'evidence-flow-bytes': { type: 'string' },
      'evidence-file-size': { type: 'string' },
      'evidence-max-size': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const live = values.interface;
  if (live === undefined && positionals.length === 0) throw new UsageError('no capture file given\n' + HELP);
  if (live !== undefined && positionals.length > 0)
    throw new UsageError('give either --interface or capture files, not both');
  if (live === undefined) {
    for (const k of ['filter', 'flow-interval', 'snaplen', 'buffer', 'no-promisc'] as const)
      if (values[k] !== undefined) throw new UsageError(`--${k} needs --interface`);
  }
  const format = values.format;
  if (format !== 'jsonl' && format !== 'table')
    throw new UsageError(`--format must be jsonl or table, not '${format}'`);
  if (values.evidence !== undefined && values.policy === undefined)
    throw new UsageError('--evidence needs --policy (evidence is kept for blocked and throttled flows)');
  const progress = values['no-progress'] ? false : (values.progress ?? process.stderr.isTTY === true);
  if (values.node === '') throw new UsageError('--node needs a name');
  const compat = values['eve-compat'] === true;
  // live capture is a sensor: its records name it (host) unless --node says otherwise
  const node = values.node ?? (live !== undefined ? hostname() : undefined);

  let policy: AnalyzePolicy | null = null;
  let evidence: EvidenceWriter<Flow> | null = null;
  if (values.policy !== undefined) {
    const { loadPolicyFile } = await import('../policy/load.js');
    const { compilePolicy } = await import('../policy/compile.js');
    const { PolicyError } = await import('../policy/errors.js');
    let compiled;
    try {
      compiled = compilePolicy(await loadPolicyFile(values.policy));
    } catch (e) {
      if (e instanceof PolicyError) {
        process.stderr.write(`chokepoint analyze: policy: ${e.message}\n`);
        return 1;
      }
      throw e;
    }
    if (values.evidence !== undefined) {
      evidence = new EvidenceWriter<Flow>({
        dir: values.evidence,
        node, // the index carries the records' flow_id
        flowPackets: optInt(values['evidence-flow-packets'], '--evidence-flow-packets'),
        flowBytes: optSize(values['evidence-flow-bytes'], '--evidence-flow-bytes'),
        fileBytes: optSize(values['evidence-file-size'], '--evidence-file-size'),
        totalBytes: optSize(values['evidence-max-size'], '--evidence-max-size'),
      });
    }
    policy = new AnalyzePolicy(compiled, evidence);
  }
  try {
    if (live !== undefined) {
      return await liveCommand(
        live,
        format,
        progress,
        policy,
        { eve: { node }, compat },
        {
          filter: values.filter,
          flowIntervalMs: values['flow-interval'] ? parseDuration(values['flow-interval']) : 0,
          snaplen: optInt(values.snaplen, '--snaplen'),
          bufferBytes: optSize(values.buffer, '--buffer'),
          promisc: !values['no-promisc'],
        },
      );
    }
    return await analyzeCommand(positionals, format, progress, policy, {
      eve: { node },
      compat,
    });
  } finally {
    evidence?.close();
    if (evidence && evidence.stats.flows > 0)
      process.stderr.write(
        `chokepoint analyze: evidence: ${evidence.stats.flows} flows, ${evidence.stats.packets} packets in ${values.evidence}\n`,
      );
  }
}

/** `500ms`, `30s`, `5m`, `1h`, or a bare number of seconds → milliseconds. */
export function parseDuration(v: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(v);
  if (!m) throw new UsageError(`invalid duration '${v}' (examples: 500ms, 60s, 5m)`);
  const ms =
    Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  if (!(ms >= 100)) throw new UsageError(`duration '${v}' is below 100ms`);
  return Math.round(ms);
}

/** How records are written: EVE (output/eve.ts) with the sensor's name, or the version-1 shape. */
export interface WriteOptions {
  eve: EveContext;
  compat: boolean;
}

/** Where records go: jsonl lines or table rows, and the summary. */
class Output {
  readonly out = new JsonlWriter(1);
  readonly summary = new Summary();
  private readonly rows: string[] = [];
  constructor(
    private readonly format: 'jsonl' | 'table',
    private readonly progress: boolean,
    private readonly policy: AnalyzePolicy | null,
    private readonly w: WriteOptions = { eve: {}, compat: false },
  ) {}

  readonly record = (r: FlowRecord, f: Flow): void => {
    this.policy?.record(r, f);
    if (this.format === 'jsonl') {
      if (this.w.compat) this.out.write(r);
      else writeEveLine(this.out, r, this.w.eve);
      if (this.progress && !r.partial) this.summary.add(r);
    } else if (!r.partial) {
      this.summary.add(r);
      this.rows.push(tableRow(r));
    }
  };

  hooks(): Pick<AnalyzeOptions, 'onClassified' | 'onPacket'> & { onEngine?: (e: Engine) => void } {
    const p = this.policy;
    return p ? { onEngine: p.onEngine, onClassified: p.onClassified, onPacket: p.onPacket } : {};
  }

  finish(): void {
    this.out.flush();
    if (this.format === 'table')
      writeAllSync(1, tableHeader() + this.rows.join('') + '\n' + this.summary.render());
  }
}

export async function analyzeCommand(
  files: string[],
  format: 'jsonl' | 'table',
  progress: boolean,
  policy: AnalyzePolicy | null = null,
  w?: WriteOptions,
): Promise<number> {
  const o = new Output(format, progress, policy, w);
  const t0 = process.hrtime.bigint();
  const res = await analyzeFiles(files, {
    ...o.hooks(),
    onRecord: o.record,
    onProgress: progress
      ? (file, bytes, total) => {
          const p = total ? ` ${((100 * bytes) / total).toFixed(0)}%` : '';
          process.stderr.write(`\r${file}: ${(bytes / 1048576).toFixed(0)} MiB${p}   `);
        }
      : undefined,
  });
  if (progress) process.stderr.write('\n');
  o.finish();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const f of res.files) {
    if (f.truncated)
      process.stderr.write(`chokepoint analyze: ${f.file}: ${f.truncated} (kept what was read)\n`);
  }
  if (progress) {
    const pk = res.files.reduce((a, f) => a + f.packets, 0);
    process.stderr.write(`${pk} packets, ${o.summary.flows} flows in ${secs.toFixed(2)} s\n`);
  }
  for (const e of res.errors) process.stderr.write(`chokepoint analyze: ${e.message}\n`);
  // a truncated capture is an input error too: its records are out, but the run did not see everything
  return res.errors.length || res.files.some((f) => f.truncated) ? 1 : 0;
}

interface LiveCliOptions {
  filter?: string;
  flowIntervalMs: number;
  snaplen?: number;
  bufferBytes?: number;
  promisc: boolean;
}

async function liveCommand(
  iface: string,
  format: 'jsonl' | 'table',
  progress: boolean,
  policy: AnalyzePolicy | null,
  w: WriteOptions,
  lo: LiveCliOptions,
): Promise<number> {
  const { captureLive } = await import('../engine/live.js');
  const o = new Output(format, progress, policy, w);
  const ac = new AbortController();
  const stop = (sig: string) => {
    if (!ac.signal.aborted) process.stderr.write(`chokepoint analyze: ${sig}: stopping\n`);
    ac.abort();
  };
  const onInt = () => stop('SIGINT');
  const onTerm = () => stop('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    const st = await captureLive({
      iface,
      ...lo,
      ...o.hooks(),
      stop: ac.signal,
      onRecord: (r, f) => {
        o.record(r, f);
        // live output is read as it comes: flush at least every record batch
        if (format === 'jsonl') o.out.flush();
      },
      onReady: () =>
        process.stderr.write(
          `chokepoint analyze: capturing on ${iface}${lo.filter ? ` (filter: ${lo.filter})` : ''}\n`,
        ),
      onTick: (s) => {
        policy?.flush(); // evidence packets reach the disk within a second
        if (progress)
          process.stderr.write(
            `\r${iface}: ${s.packets} packets, ${s.engine.flows} flows, ${s.kernel.dropped} dropped by the kernel   `,
          );
      },
    });
    if (progress) process.stderr.write('\n');
    o.finish();
    process.stderr.write(
      `chokepoint analyze: ${iface}: ${st.packets} packets captured, ${st.kernel.dropped} dropped by the kernel, ` +
        `${st.kernel.ifDropped} dropped by the interface; ${st.engine.flows} flows, ${st.records} records ` +
        `(${st.partialRecords} partial)\n`,
    );
    return 0;
  } catch (e) {
    o.finish();
    if (e instanceof ChokepointError && e.code.startsWith('ERR_PCAP')) {
      process.stderr.write(`chokepoint analyze: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}
