/**
 * @module cli/cmd-lab
 * `chokepoint lab up|down|status [--name NAME] [--index N] [--no-services] [--json]`: a persistent
 * three-namespace lab (sub —— box —— net) with test services in `net` (see lab/manage).
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../util/errors.js';
import { formatStatus, labDown, labStatus, labUp } from '../lab/manage.js';
import { probeLabPlugin } from '../probe/lab-service.js';

const HELP = `usage: chokepoint lab up|down|status [options]   (root)

  up       create namespaces <name>-sub, <name>-box, <name>-net and start the services in net
           (HTTPS for any name with a test CA, HTTP, DNS, UDP echo, probe-server); safe to repeat
  down     stop everything and delete the namespaces (also after a crash)
  status   show what runs where

  --name NAME      lab name (default cplab; [a-z][a-z0-9]{0,10})
  --index N        address block 10.231.N.0/24, fd00:cafe:N::/48 (default 231)
  --no-services    up: namespaces only
  --json           status/up: print the state as JSON
`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      index: { type: 'string' },
      'no-services': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const [verb, ...extra] = positionals;
  if (!verb) throw new UsageError('want up, down or status');
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
  const name = values.name ?? 'cplab';
  if (!/^[a-z][a-z0-9]{0,10}$/.test(name))
    throw new UsageError(`bad --name '${name}' (want [a-z][a-z0-9]{0,10})`);
  let index: number | undefined;
  if (values.index !== undefined) {
    index = Number(values.index);
    if (!Number.isInteger(index) || index < 0 || index > 255)
      throw new UsageError(`--index wants 0..255, got '${values.index}'`);
  }
  switch (verb) {
    case 'up': {
      const { state, created } = await labUp({
        name,
        index,
        services: !values['no-services'],
        plugins: [probeLabPlugin],
      });
      if (values.json) process.stdout.write(JSON.stringify(state, null, 2) + '\n');
      else {
        if (!created) process.stdout.write(`lab ${name} is already up\n`);
        process.stdout.write(formatStatus(labStatus(name)));
      }
      return 0;
    }
    case 'down': {
      const did = await labDown(name);
      process.stdout.write(did ? `lab ${name}: removed\n` : `lab ${name}: nothing to remove\n`);
      return 0;
    }
    case 'status': {
      const s = labStatus(name);
      process.stdout.write(values.json ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s));
      return s.healthy || !s.state ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown lab command '${verb}' (want up, down or status)`);
  }
}
