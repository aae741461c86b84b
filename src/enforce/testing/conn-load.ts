/**
 * @module enforce/testing/conn-load
 * Connection-rate load for the inline benchmark: `node conn-load.js HOST PORT CONCURRENCY DURATION_MS`.
 * Each of CONCURRENCY loops connects, sends a real ClientHello (one of 16 names, captured from
 * Node's TLS client), waits for the echo server's first byte back, closes, and repeats. Prints JSON:
 * {conns, failed, perSec, p50Ms, p99Ms} where the latency is connect() → first echoed byte (TCP
 * handshake + ClientHello round trip, i.e. what the inline box adds to connection setup).
 */
import net from 'node:net';
import { captureClientHello } from './ch-client.js';

async function main(): Promise<void> {
  const [host, portS, concS, durS] = process.argv.slice(2);
  const port = Number(portS);
  const hellos: Buffer[] = [];
  for (let i = 0; i < 16; i++) hellos.push(await captureClientHello(`host${i}.bench.example`));
  const lat: number[] = [];
  let failed = 0;
  const end = Date.now() + Number(durS);
  const one = (i: number): Promise<void> =>
    new Promise((resolve) => {
      const t0 = process.hrtime.bigint();
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
  await Promise.all(
    Array.from({ length: Number(concS) }, async () => {
      while (Date.now() < end) await one(n++);
    }),
  );
  const secs = (Date.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  process.stdout.write(
    JSON.stringify({ conns: lat.length, failed, perSec: lat.length / secs, p50Ms: q(0.5), p99Ms: q(0.99) }) +
      '\n',
  );
}

main().catch((e: Error) => {
  process.stderr.write(String(e.stack ?? e) + '\n');
  process.exitCode = 1;
});
