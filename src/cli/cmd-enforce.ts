/**
 * @module cli/cmd-enforce
 * `chokepoint enforce --policy FILE [--queues 0-1] [--eve FILE|-] [--metrics HOST:PORT]
 *  [--throttle userspace|kernel] [--chain NAME] [--mark-mask 0xff0000] [--connbytes 64] [--no-install]
 *  [--evidence DIR [--evidence-flow-packets N] [--evidence-flow-bytes SIZE] [--evidence-file-size SIZE]
 *  [--evidence-max-size SIZE]]`
 * Runs inline on NFQUEUE as root where traffic is forwarded; see docs/ENFORCE.md. With `--eve -`, a
 * closed stdout stops the daemon cleanly (rules removed), as SIGTERM does.
 * As a fleet member (`--controller URL --token T --trust ROOT.pub --node NAME …`, docs/FLEET.md) the
 * policy comes from signed bundles instead of `--policy`.
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../util/errors.js';
import { setOutputClosedHandler } from '../util/epipe.js';
import { optInt, optSize } from './options.js';
import { DEFAULT_RULE_OPTIONS, removeRules, rulesScript, type RuleOptions } from '../enforce/rules.js';

export const summary = 'run inline on NFQUEUE and enforce a policy';

const HELP = `usage: chokepoint enforce --policy FILE [options]
       chokepoint enforce --controller URL --token TOKEN --trust ROOT.pub --node NAME [options]

  --policy FILE          policy file (reloaded on SIGHUP and when it or a list file changes)
  --controller URL       fleet member: pull signed bundles from this controller (docs/FLEET.md)
  --token TOKEN          the node's API token (or CHOKEPOINT_TOKEN)
  --trust FILE           the root public key (PEM) bundles must chain to
  --node NAME            this box's name in the fleet, and the sensor name (host) in the EVE log
                         (default: the host name)
  --labels k=v,...       labels reported with status (e.g. region=north,tier=canary)
  --state DIR            last-known-good bundle (default ./chokepoint-state)
  --on-expired MODE      keep (default: keep enforcing, alarm) | fail-open (allow all) when the bundle expires
  --poll-wait SECONDS    long-poll wait asked of the controller (default 60)
  --status-every SECONDS status report interval (default 30)
  --queues N|A-B         NFQUEUE numbers, one worker thread each (default 0)
  --eve FILE|-           append an EVE JSON line per verdict (flow record + policy + action)
  --metrics HOST:PORT    serve Prometheus /metrics
  --throttle MODE        userspace (default: exact token-bucket policing) | kernel (hashlimit)
  --chain NAME           iptables chain name in mangle and filter (default CHOKEPOINT)
  --mark-mask MASK       mark bits owned by chokepoint (default 0x00ff0000)
  --connbytes N          packets per connection sent to userspace while unclassified (default 64)
  --no-install           print the iptables rules instead of installing them
  --evidence DIR         write the first packets of blocked/throttled flows to DIR/q<queue>-NNNNNN.pcap,
                         with an index DIR/q<queue>-NNNNNN.jsonl (flow_id, community_id, 5-tuple, ...)
  --evidence-flow-packets N   packets per flow (default 32)
  --evidence-flow-bytes SIZE  captured bytes per flow (default 64KiB)
  --evidence-file-size SIZE   rotate files at SIZE (default 16MiB, at most the per-queue share)
  --evidence-max-size SIZE    keep at most SIZE of evidence files over all queues, oldest deleted
                              (default 256MiB; each queue keeps SIZE / number of queues)
  --cleanup              remove leftover rules (after a crash) and exit
  --replay CAPTURE       replay box (no root, no NFQUEUE): feed the capture's packets to the decision
                         core as if live; with the fleet options it is a fleet member (docs/FLEET.md)
  --rate PPS             replay packets per second (default 1000)
  --speed X              replay at X times the capture's own timing (instead of --rate)
  --loop N|forever       replay iterations (default 1); each iteration shifts ports ≥ 1024 (new flows)
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
      evidence: { type: 'string' },
      'evidence-flow-packets': { type: 'string' },
      'evidence-flow-bytes': { type: 'string' },
      'evidence-file-size': { type: 'string' },
      'evidence-max-size': { type: 'string' },
      cleanup: { type: 'boolean', default: false },
      controller: { type: 'string' },
      token: { type: 'string' },
      trust: { type: 'string' },
      node: { type: 'string' },
      labels: { type: 'string' },
      state: { type: 'string', default: './chokepoint-state' },
      'on-expired': { type: 'string', default: 'keep' },
      'poll-wait': { type: 'string', default: '60' },
      'status-every': { type: 'string', default: '30' },
      help: { type: 'boolean', short: 'h', default: false },
      // h-delta: replay boxes
      replay: { type: 'string' },
      rate: { type: 'string' },
      speed: { type: 'string' },
      loop: { type: 'string', default: '1' },
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
  const fleet = values.controller ? await fleetOptions(values) : null;
  if (fleet && values.policy) throw new UsageError('--policy and --controller exclude each other');
  if (!fleet && !values.policy)
    throw new UsageError('--policy FILE (or --controller URL) is required\n\n' + HELP);
  if (values.replay !== undefined) return runReplay(values, fleet);
  const mask = Number(values['mark-mask']);
  if (!Number.isInteger(mask) || mask <= 0 || mask > 0xffffffff)
    throw new UsageError('--mark-mask: bad mask');
  const connbytes = Number(values.connbytes);
  if (!Number.isInteger(connbytes) || connbytes < 2 || connbytes > 1000)
    throw new UsageError('--connbytes: 2..1000');
  const throttle = values.throttle;
  if (throttle !== 'userspace' && throttle !== 'kernel')
    throw new UsageError('--throttle: userspace | kernel');
  if (values.evidence === undefined) {
    for (const k of [
      'evidence-flow-packets',
      'evidence-flow-bytes',
      'evidence-file-size',
      'evidence-max-size',
    ] as const)
      if (values[k] !== undefined) throw new UsageError(`--${k} needs --evidence DIR`);
  }
  const evidence =
    values.evidence === undefined
      ? undefined
      : {
          dir: values.evidence,
          flowPackets: optInt(values['evidence-flow-packets'], '--evidence-flow-packets'),
          flowBytes: optSize(values['evidence-flow-bytes'], '--evidence-flow-bytes'),
          fileBytes: optSize(values['evidence-file-size'], '--evidence-file-size'),
          totalBytes: optSize(values['evidence-max-size'], '--evidence-max-size'),
        };
  const ro: RuleOptions = { chain, queues: parseQueues(values.queues!), connbytes, markMask: mask >>> 0 };
  const install = !values['no-install'];
  if (!install) process.stdout.write(rulesScript(ro) + '\n');

  const { EnforceDaemon } = await import('../enforce/daemon.js');
  const { EnforceMetrics } = await import('../enforce/metrics.js');
  let agent: import('../fleet/agent.js').FleetAgent | null = null;
  let initial: import('../enforce/policy-source.js').PolicyVersion | undefined;
  const metricsRegistry = new EnforceMetrics();
  if (fleet) {
    const { FleetAgent } = await import('../fleet/agent.js');
    agent = new FleetAgent({ ...fleet, registry: metricsRegistry.registry });
    initial = await agent.bootstrap();
  }
  const enf = await EnforceDaemon.start({
    ...ro,
    policyPath: values.policy ?? '',
    initial,
    throttle,
    install,
    eve: values.eve,
    metrics: values.metrics,
    evidence,
    metricsObject: metricsRegistry,
    ...(values.node !== undefined ? { node: values.node } : {}),
  });
  agent?.run(enf);
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
      (agent ? agent.stop() : Promise.resolve())
        .then(() => enf.stop())
        .then(
          () => resolveRun(0),
          (e: Error) => {
            process.stderr.write(`chokepoint enforce: cleanup failed: ${e.message}\n`);
            resolveRun(1);
          },
        );
    };
    // `--eve -` and the reader of stdout went away: clean up (remove the rules), do not just exit
    if (values.eve === '-')
      setOutputClosedHandler(() => {
        enf.eveClosed();
        finish('stdout closed');
      });
    process.on('SIGINT', () => finish('SIGINT'));
    process.on('SIGTERM', () => finish('SIGTERM'));
    process.on('SIGHUP', () => void enf.reload('SIGHUP'));
  });
}

/** `enforce --replay`: a replay box (fleet/replay), with the same agent, EVE and /metrics. */
async function runReplay(
  values: Record<string, string | boolean | undefined>,
  fleet: Awaited<ReturnType<typeof fleetOptions>> | null,
): Promise<number> {
  const str = (k: string) => values[k] as string | undefined;
  const num = (k: string, lo: number, hi: number): number | undefined => {
    const v = str(k);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!(n >= lo && n <= hi)) throw new UsageError(`--${k}: ${lo}..${hi}`);
    return n;
  };
  const pps = num('rate', 1, 10_000_000);
  const speed = num('speed', 0.001, 1_000_000);
  if (pps !== undefined && speed !== undefined) throw new UsageError('--rate and --speed exclude each other');
  const loopS = str('loop')!;
  const loops = loopS === 'forever' ? Infinity : Number(loopS);
  if (!(loops === Infinity || (Number.isInteger(loops) && loops >= 1)))
    throw new UsageError('--loop: a positive integer or forever');
  const { EnforceMetrics } = await import('../enforce/metrics.js');
  const { ReplayBox } = await import('../fleet/replay.js');
  const { createWriteStream } = await import('node:fs');
  const metrics = new EnforceMetrics();
  let agent: import('../fleet/agent.js').FleetAgent | null = null;
  let initial: import('../enforce/policy-source.js').PolicyVersion;
  if (fleet) {
    const { FleetAgent } = await import('../fleet/agent.js');
    // a lab starts its replay fleet with (or before) the controller: wait longer for a first bundle
    agent = new FleetAgent({ ...fleet, registry: metrics.registry, bootstrapTimeoutMs: 300_000 });
    initial = await agent.bootstrap();
  } else {
    const { readVersion } = await import('../enforce/policy-source.js');
    initial = (await readVersion(str('policy')!)).version;
  }
  const eveArg = str('eve');
  const eve =
    eveArg === undefined ? null : eveArg === '-' ? process.stdout : createWriteStream(eveArg, { flags: 'a' });
  const box = await ReplayBox.start(initial, {
    capture: str('replay')!,
    pps,
    speed,
    loops,
    eve,
    node: str('node'),
    metrics,
  });
  const port = str('metrics') ? await metrics.listen(str('metrics')!) : 0;
  agent?.run(box);
  process.stderr.write(
    `chokepoint enforce: replaying ${str('replay')} (${loops === Infinity ? 'forever' : `${loops} iteration(s)`})` +
      (port ? `, metrics on port ${port}` : '') +
      '\n',
  );
  const finish = (): void => box.stop();
  process.on('SIGINT', finish);
  process.on('SIGTERM', finish);
  await box.run();
  process.off('SIGINT', finish);
  process.off('SIGTERM', finish);
  await agent?.report();
  await agent?.stop();
  metrics.close();
  if (eve && eve !== process.stdout)
    await new Promise<void>((r) => (eve as import('node:fs').WriteStream).end(r));
  process.stderr.write(
    `chokepoint enforce: replay done: ${box.iterations} iteration(s), ${box.verdicts} verdicts\n`,
  );
  return 0;
}

async function fleetOptions(values: Record<string, string | boolean | undefined>) {
  const { readFile } = await import('node:fs/promises');
  const str = (k: string) => values[k] as string | undefined;
  const token = str('token') ?? process.env.CHOKEPOINT_TOKEN;
  if (!token) throw new UsageError('--controller needs --token TOKEN (or CHOKEPOINT_TOKEN)');
  const trust = str('trust');
  if (!trust) throw new UsageError('--controller needs --trust ROOT.pub (the root public key)');
  let rootPublicPem: string;
  try {
    rootPublicPem = await readFile(trust, 'utf8');
    (await import('node:crypto')).createPublicKey(rootPublicPem);
  } catch (e) {
    throw new UsageError(`--trust ${trust}: not a readable public key (${(e as Error).message})`);
  }
  const node = str('node');
  if (!node || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(node))
    throw new UsageError('--controller needs --node NAME (letters, digits, . _ -; up to 64)');
  const labels: Record<string, string> = {};
  for (const kv of (str('labels') ?? '').split(',').filter(Boolean)) {
    const m = /^([A-Za-z0-9._-]{1,63})=([A-Za-z0-9._-]{0,63})$/.exec(kv);
    if (!m) throw new UsageError(`--labels: expected k=v,..., got '${kv}'`);
    labels[m[1]] = m[2];
  }
  const onExpired = str('on-expired');
  if (onExpired !== 'keep' && onExpired !== 'fail-open')
    throw new UsageError('--on-expired: keep | fail-open');
  const waitS = Number(str('poll-wait'));
  if (!Number.isInteger(waitS) || waitS < 0 || waitS > 300) throw new UsageError('--poll-wait: 0..300');
  const every = Number(str('status-every'));
  if (!(every >= 1 && every <= 3600)) throw new UsageError('--status-every: 1..3600 seconds');
  const url = str('controller')!;
  if (!/^https?:\/\//.test(url)) throw new UsageError('--controller: an http:// or https:// URL');
  return {
    controller: url,
    token,
    rootPublicPem,
    node,
    labels,
    stateDir: str('state')!,
    onExpired: onExpired as 'keep' | 'fail-open',
    waitS,
    statusEveryMs: every * 1000,
  };
}
