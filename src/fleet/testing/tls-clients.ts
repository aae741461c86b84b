/**
 * @module fleet/testing/tls-clients
 * Lab subscribers that keep browsing: `node tls-clients.js HOST PERIOD_MS NAME...` opens, every
 * PERIOD_MS, one TLS connection per NAME to HOST:443 with that SNI (Node's real ClientHello), asks
 * `GET /`, reads the answer and closes. Each connection prints one line `NAME ok|fail MS`. Runs until
 * killed (SIGTERM). For the fleet lab tests: every name gives the box a steady stream of new flows.
 */
import tls from 'node:tls';

function once(host: string, name: string): Promise<void> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      process.stdout.write(`${name} ${ok ? 'ok' : 'fail'} ${Date.now() - t0}\n`);
      resolve();
    };
    const s = tls.connect({ host, port: 443, servername: name, rejectUnauthorized: false }, () => {
      s.write(`GET / HTTP/1.1\r\nHost: ${name}\r\nConnection: close\r\n\r\n`);
    });
    let got = 0;
    s.on('data', (d: Buffer) => (got += d.length));
    s.on('end', () => finish(got > 0));
    s.on('error', () => finish(false));
    const timer = setTimeout(() => finish(false), 10_000);
  });
}

const [host, periodS, ...names] = process.argv.slice(2);
const period = Number(periodS);
if (!host || !(period > 0) || !names.length) {
  process.stderr.write('usage: node tls-clients.js HOST PERIOD_MS NAME...\n');
  process.exit(2);
}
let stopped = false;
process.on('SIGTERM', () => (stopped = true));
const loop = async (): Promise<void> => {
  while (!stopped) {
    const t0 = Date.now();
    await Promise.all(names.map((n) => once(host, n)));
    await new Promise((r) => setTimeout(r, Math.max(0, period - (Date.now() - t0))));
  }
  process.exit(0);
};
void loop();
