/**
 * @module probe/child
 * Process entry used by probe/in-ns: `node child.js probe '<ProbeOptions JSON>'` runs the probe and
 * prints the ProbeReport as JSON on stdout; `node child.js server HOST PORT` runs a probe-server and
 * prints `listening HOST:PORT` once ready. Exists because a Node process cannot switch network
 * namespace itself: tests start this under `ip netns exec`.
 */
import { runProbe, type ProbeOptions } from './probe.js';
import { startProbeServer } from './server.js';

async function main(): Promise<void> {
  const [mode, a, b] = process.argv.slice(2);
  if (mode === 'probe') {
    const opts = JSON.parse(a) as ProbeOptions;
    const report = await runProbe({ ...opts, onProgress: (l) => process.stderr.write(`probe: ${l}\n`) });
    process.stdout.write(JSON.stringify(report) + '\n');
  } else if (mode === 'server') {
    const srv = await startProbeServer({ host: a, port: Number(b) });
    process.stdout.write(`listening ${srv.address.host}:${srv.address.port}\n`);
    const stop = () => void srv.close().then(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  } else {
    process.stderr.write('usage: child.js probe JSON | server HOST PORT\n');
    process.exitCode = 2;
  }
}

main().catch((e) => {
  process.stderr.write(String((e as Error)?.stack ?? e) + '\n');
  process.exitCode = 1;
});
