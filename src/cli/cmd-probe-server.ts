/**
 * @module cli/cmd-probe-server
 * `chokepoint probe-server --listen ADDR:PORT`: run the cooperating measurement server for
 * `chokepoint probe` (TCP and UDP on the same port) until SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../util/errors.js';
import { startProbeServer } from '../probe/server.js';
import { parseHostPort } from './cmd-probe.js';

const HELP = `usage: chokepoint probe-server --listen ADDR:PORT [--quiet]

  --listen ADDR:PORT  address to serve on, TCP and UDP (IPv6: [ADDR]:PORT; port 0 = any)
  --quiet             no per-session log on stderr
Prints 'listening ADDR:PORT' on stdout once ready.
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: 'string' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (!values.listen) throw new UsageError('--listen ADDR:PORT is required');
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(values.listen) ?? /^([^:]+):(\d+)$/.exec(values.listen);
  const { host, port } = m && m[2] === '0' ? { host: m[1], port: 0 } : parseHostPort(values.listen);
  const srv = await startProbeServer({
    host,
    port,
    log: values.quiet ? undefined : (l) => process.stderr.write(`probe-server: ${l}\n`),
  });
  const a = srv.address;
  process.stdout.write(`listening ${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await srv.close();
  return 0;
}
