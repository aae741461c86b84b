/**
 * @module lab/relay
 * A byte relay between a TCP address and a Unix socket, so a process inside a lab namespace can
 * reach a service on the host's loopback without any link between the namespaces: a Unix socket is
 * a file, visible from every network namespace. The test process listens on a socket file and
 * forwards to `127.0.0.1:PORT` (host side); a relay process inside the namespace listens on its own
 * `127.0.0.1:PORT` and forwards to the socket file (namespace side). Nothing leaves loopback.
 *
 * Entry: `node relay.js LISTEN TARGET` — each `HOST:PORT` or an absolute socket path; prints
 * `relay listening` when ready.
 */
import { connect, createServer, type Server } from 'node:net';
import { rmSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** A TCP address or a Unix socket path. */
export type RelayEnd = { host: string; port: number } | { path: string };

/** `HOST:PORT` or `/absolute/socket/path` → a relay end (throws naming the bad argument). */
export function parseRelayEnd(s: string): RelayEnd {
  if (s.startsWith('/')) return { path: s };
  const m = /^(.+):(\d{1,5})$/.exec(s);
  if (!m || Number(m[2]) > 65535) throw new Error(`relay: '${s}' is neither HOST:PORT nor an absolute path`);
  return { host: m[1], port: Number(m[2]) };
}

/** Listen on `from` and pipe every connection to a new connection to `to`. */
export function startRelay(from: RelayEnd, to: RelayEnd): Promise<Server> {
  const server = createServer((a) => {
    const b = 'path' in to ? connect(to.path) : connect(to.port, to.host);
    const end = (): void => {
      a.destroy();
      b.destroy();
    };
    a.on('error', end).on('close', end);
    b.on('error', end).on('close', end);
    a.pipe(b);
    b.pipe(a);
  });
  if ('path' in from) rmSync(from.path, { force: true });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const ready = (): void => resolve(server);
    if ('path' in from) server.listen(from.path, ready);
    else server.listen(from.port, from.host, ready);
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [a, b] = process.argv.slice(2);
  if (!a || !b) {
    process.stderr.write('usage: node relay.js LISTEN TARGET (HOST:PORT or /socket/path)\n');
    process.exit(2);
  }
  startRelay(parseRelayEnd(a), parseRelayEnd(b)).then(
    () => process.stdout.write('relay listening\n'),
    (e: Error) => {
      process.stderr.write(`relay: ${e.message}\n`);
      process.exit(1);
    },
  );
}
