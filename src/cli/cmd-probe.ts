/**
 * @module cli/cmd-probe
 * `chokepoint probe --server HOST:PORT --name NAME [--control NAME] [--evasions] [--repeat N]
 * [--format table|json] [--html FILE]`: measure throttling/blocking of a name on the path to a
 * probe-server (docs/PROBE.md). Data on stdout, progress on stderr.
 */
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { UsageError } from '../util/errors.js';
import { runProbe } from '../probe/probe.js';
import { formatHtml, formatTable } from '../probe/report.js';
import { TECHNIQUES } from '../probe/triggers.js';

const HELP = `usage: chokepoint probe --server HOST:PORT --name NAME [options]

  --server HOST:PORT   a running 'chokepoint probe-server' (IPv6: [ADDR]:PORT)
  --name NAME          the name to test
  --control NAME       a name nothing should match (default example.org)
  --repeat N           runs per case (default 1)
  --evasions           run the evasion matrix (all techniques)
  --techniques A,B     run only these evasion techniques (implies --evasions):
                       ${TECHNIQUES.map((t) => t.id).join(', ')}
  --idle S1,S2         idle-timeout probes: after S seconds of silence, is a throttled
                       connection still throttled? (kept / forgotten)
  --residual S         residual blocking: after a trigger, retry the control name for up
                       to S seconds; reports residual / none and how long it lasted
  --locate MAXTTL       hop location: TTL-limited QUIC triggers with TTL 1..MAXTTL
  --no-quic            skip the QUIC (UDP) cases
  --no-tcp             skip the TCP cases
  --window MS          measurement window per run (default 3000)
  --down BYTES         download bytes per run (default 2000000)
  --up BYTES           upload bytes per run (default 512000; 0 = none)
  --format table|json  stdout format (default table)
  --html FILE          also write an HTML report with throughput charts
  --quiet              no progress on stderr
`;

export function parseHostPort(s: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
  if (!m) throw new UsageError(`--server wants HOST:PORT or [V6]:PORT, got '${s}'`);
  const port = Number(m[2]);
  if (!(port > 0 && port < 65536)) throw new UsageError(`bad port in '${s}'`);
  return { host: m[1], port };
}

function int(v: string | undefined, name: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${name} wants an integer ${min}..${max}, got '${v}'`);
  return n;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      server: { type: 'string' },
      name: { type: 'string' },
      control: { type: 'string' },
      repeat: { type: 'string' },
      evasions: { type: 'boolean' },
      techniques: { type: 'string' },
      idle: { type: 'string' },
      locate: { type: 'string' },
      residual: { type: 'string' },
      'no-quic': { type: 'boolean' },
      'no-tcp': { type: 'boolean' },
      window: { type: 'string' },
      down: { type: 'string' },
      up: { type: 'string' },
      format: { type: 'string' },
      html: { type: 'string' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (!values.server) throw new UsageError('--server HOST:PORT is required');
  if (!values.name) throw new UsageError('--name NAME is required');
  const { host, port } = parseHostPort(values.server);
  const format = values.format ?? 'table';
  if (format !== 'table' && format !== 'json')
    throw new UsageError(`--format wants table or json, got '${format}'`);
  let evasions: boolean | string[] = values.evasions ?? false;
  if (values.techniques) {
    evasions = values.techniques
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const known = new Set(TECHNIQUES.map((t) => t.id));
    for (const t of evasions) if (!known.has(t)) throw new UsageError(`unknown technique '${t}'`);
  }
  let idle: number[] | undefined;
  if (values.idle) {
    idle = values.idle.split(',').map((x) => Number(x.trim()));
    if (idle.some((x) => !Number.isFinite(x) || x < 0 || x > 3600))
      throw new UsageError(`--idle wants seconds 0..3600, got '${values.idle}'`);
  }
  if (values['no-quic'] && values['no-tcp'])
    throw new UsageError('--no-quic and --no-tcp leave nothing to do');
  const report = await runProbe({
    host,
    port,
    name: values.name,
    control: values.control,
    repeat: int(values.repeat, 'repeat', 1, 1000, 1),
    evasions,
    idle,
    residualMs:
      values.residual === undefined ? undefined : int(values.residual, 'residual', 1, 3600, 10) * 1000,
    locate: values.locate === undefined ? undefined : int(values.locate, 'locate', 1, 64, 8),
    quic: !values['no-quic'],
    tcp: !values['no-tcp'],
    windowMs: int(values.window, 'window', 200, 600_000, 3000),
    down: int(values.down, 'down', 1, 1 << 30, 2_000_000),
    up: int(values.up, 'up', 0, 1 << 30, 512_000),
    onProgress: values.quiet ? undefined : (l) => process.stderr.write(`probe: ${l}\n`),
  });
  if (values.html) writeFileSync(values.html, formatHtml(report));
  process.stdout.write(format === 'json' ? JSON.stringify(report, null, 2) + '\n' : formatTable(report));
  return report.verdict === 'error' ? 1 : 0;
}
