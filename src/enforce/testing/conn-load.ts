/**
 * @module enforce/testing/conn-load
 * Connection-rate load for the inline benchmark:
 * `node conn-load.js HOST PORT CONCURRENCY DURATION_MS [RATE]`.
 * Each connection connects, sends a real ClientHello (one of 16 names, captured from Node's TLS
 * client), waits for the echo server's first byte back and closes.
 * - Closed loop (no RATE): CONCURRENCY loops each run one connection after another; latency =
 *   connect() → first echoed byte.
 * - Open loop (RATE > 0, connections/s): connection k is scheduled at start + k / RATE whatever the
 *   others do (CONCURRENCY is ignored); latency = scheduled start → first echoed byte, so a late start
 *   (the generator's own queueing) counts against the figure instead of hiding it.
 * Prints JSON: {conns, failed, perSec, p50Ms, p99Ms, maxMs}.
 */
import net from 'node:net';
import { captureClientHello } from './ch-client.js';

async function main(): Promise<void> {
  const [host, portS, concS, durS, rateS] = process.argv.slice(2);
  const rate = Number(rateS ?? 0);
  const port = Number(portS);
  const hellos: Buffer[] = [];
  for (let i = 0; i < 16; i++) hellos.push(await captureClientHello(`host${i}.bench.example`));
  const lat: number[] = [];
  let failed = 0;
  const end = Date.now() + Number(durS);
  const one = (i: number, t0 = process.hrtime.bigint()): Promise<void> =>
    new Promise((resolve) => {
      const s = net.connect({ host, port, noDelay: true });
      const timer = setTimeout(() => {
        failed++;
        s.destroy();
        resolve();
      }, 5000);
      s.once('connect', () => s.write(hellos[i & 15]));
      s.once('data', () => {
        lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
        clearTimeout(timer);
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        failed++;
        clearTimeout(timer);
        resolve();
      });
    });
  const t0 = Date.now();
  let n = 0;
  if (rate > 0) {
    // open loop: start every connection that is due on each tick, timed from its own schedule
    const start = process.hrtime.bigint();
    const total = Math.floor((rate * Number(durS)) / 1000);
    const step = 1e9 / rate;
    const pending: Promise<void>[] = [];
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = Number(process.hrtime.bigint() - start);
        while (n < total && n * step <= now) {
          pending.push(one(n, start + BigInt(Math.round(n * step))));
          n++;
        }
        if (n >= total) resolve();
        else setTimeout(tick, 1); // a 1 ms tick, not a busy loop: the generator shares the cores
      };
      tick();
    });
    await Promise.all(pending);
  } else {
    await Promise.all(
      Array.from({ length: Number(concS) }, async () => {
        while (Date.now() < end) await one(n++);
      }),
    );
  }
  const secs = (Date.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  process.stdout.write(
    JSON.stringify({
      conns: lat.length,
      failed,
      perSec: lat.length / secs,
      p50Ms: q(0.5),
      p99Ms: q(0.99),
      maxMs: lat[lat.length - 1] ?? NaN,
    }) + '\n',
  );
}

main().catch((e: Error) => {
  process.stderr.write(String(e.stack ?? e) + '\n');
  process.exitCode = 1;
});
