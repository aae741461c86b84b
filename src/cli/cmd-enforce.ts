/**
 * @module cli/cmd-enforce
 * `chokepoint enforce --policy FILE [--queues 0-1] [--eve FILE|-] [--metrics HOST:PORT]
 *  [--throttle userspace|kernel] [--chain NAME] [--mark-mask 0xff0000] [--connbytes 64] [--no-install]`
 * Runs inline on NFQUEUE as root where traffic is forwarded; see docs/ENFORCE.md.
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../util/errors.js';
import { DEFAULT_RULE_OPTIONS, removeRules, rulesScript, type RuleOptions } from '../enforce/rules.js';

export const summary = 'run inline on NFQUEUE and enforce a policy';

const HELP = `usage: chokepoint enforce --policy FILE [options]

  --policy FILE          policy file (reloaded on SIGHUP and when it or a list file changes)
  --queues N|A-B         NFQUEUE numbers, one worker thread each (default 0)
  --eve FILE|-           append an EVE JSON line per verdict (flow record + policy + action)
  --metrics HOST:PORT    serve Prometheus /metrics
  --throttle MODE        userspace (default: exact token-bucket policing) | kernel (hashlimit)
  --chain NAME           iptables chain name in mangle and filter (default CHOKEPOINT)
  --mark-mask MASK       mark bits owned by chokepoint (default 0x00ff0000)
  --connbytes N          packets per connection sent to userspace while unclassified (default 64)
  --no-install           print the iptables rules instead of installing them
  --cleanup              remove leftover rules (after a crash) and exit
`;

function parseQueues(s: string): [number, number] {
  const m = /^(\d+)(?:[-:](\d+))?$/.exec(s);
  if (!m) throw new UsageError(`--queues: expected N or A-B, got '${s}'`);
  const a = Number(m[1]);
  const b = m[2] !== undefined ? Number(m[2]) : a;
  if (a > 65535 || b > 65535 || b < a) throw new UsageError(`--queues: bad range '${s}'`);
  return [a, b];
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      policy: { type: 'string' },
      queues: { type: 'string', default: '0' },
      eve: { type: 'string' },
      metrics: { type: 'string' },
      throttle: { type: 'string', default: 'userspace' },
      chain: { type: 'string', default: DEFAULT_RULE_OPTIONS.chain },
      'mark-mask': { type: 'string', default: '0x00ff0000' },
      connbytes: { type: 'string', default: String(DEFAULT_RULE_OPTIONS.connbytes) },
      'no-install': { type: 'boolean', default: false },
      cleanup: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const chain = values.chain!;
  if (!/^[A-Za-z][A-Za-z0-9_-]{0,27}$/.test(chain)) throw new UsageError(`--chain: bad name '${chain}'`);
  if (values.cleanup) {
    await removeRules(chain);
    process.stderr.write(`chokepoint enforce: removed chain ${chain} (if present)\n`);
    return 0;
  }
  if (!values.policy) throw new UsageError('--policy FILE is required\n\n' + HELP);
  const mask = Number(values['mark-mask']);
  if (!Number.isInteger(mask) || mask <= 0 || mask > 0xffffffff)
    throw new UsageError('--mark-mask: bad mask');
  const connbytes = Number(values.connbytes);
  if (!Number.isInteger(connbytes) || connbytes < 2 || connbytes > 1000)
    throw new UsageError('--connbytes: 2..1000');
  const throttle = values.throttle;
  if (throttle !== 'userspace' && throttle !== 'kernel')
    throw new UsageError('--throttle: userspace | kernel');
  const ro: RuleOptions = { chain, queues: parseQueues(values.queues!), connbytes, markMask: mask >>> 0 };
  const install = !values['no-install'];
  if (!install) process.stdout.write(rulesScript(ro) + '\n');

  const { EnforceDaemon } = await import('../enforce/daemon.js');
  const enf = await EnforceDaemon.start({
    ...ro,
    policyPath: values.policy,
    throttle,
    install,
    eve: values.eve,
    metrics: values.metrics,
  });
  process.stderr.write(
    `chokepoint enforce: queues ${ro.queues[0]}-${ro.queues[1]} bound, chain ${chain}${install ? ' installed' : ' (not installed)'}` +
      (enf.metricsPort ? `, metrics on port ${enf.metricsPort}` : '') +
      '\n',
  );
  return new Promise<number>((resolveRun) => {
    let done = false;
    const finish = (sig: string): void => {
      if (done) return;
      done = true;
      process.stderr.write(`chokepoint enforce: ${sig}, removing rules\n`);
      enf.stop().then(
        () => resolveRun(0),
        (e: Error) => {
          process.stderr.write(`chokepoint enforce: cleanup failed: ${e.message}\n`);
          resolveRun(1);
        },
      );
    };
    process.on('SIGINT', () => finish('SIGINT'));
    process.on('SIGTERM', () => finish('SIGTERM'));
    process.on('SIGHUP', () => void enf.reload('SIGHUP'));
  });
}
