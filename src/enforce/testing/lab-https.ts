/**
 * @module enforce/testing/lab-https
 * A small HTTPS server for the inline lab tests and the inline benchmark: answers any SNI with one
 * self-signed certificate; `GET /bytes/N` sends N bytes, any request with a body (PUT/POST) is read to
 * the end and answered with the byte count. Run inside the lab's `net` namespace:
 * `node lab-https.js PORT CERT KEY [SINK_PORT]`; prints `listening` when ready. SINK_PORT: a plain TCP
 * sink that reads and discards everything and never answers or closes (for junk-first tests);
 * SINK_PORT+1: a TCP echo server; UDP 53: a DNS responder answering NXDOMAIN to everything; UDP 443: a
 * silent sink logging `udp443 SRCPORT LEN` per datagram (QUIC tests).
 */
import https from 'node:https';
import net from 'node:net';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';

const [portS, cert, key, sinkS] = process.argv.slice(2);
const chunk = Buffer.alloc(16384, 0x61);

const server = https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
  const m = /^\/bytes\/(\d+)$/.exec(req.url ?? '');
  if (req.method === 'GET' && m) {
    let left = Math.min(Number(m[1]), 1 << 30);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(left) });
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
    return;
  }
  let n = 0;
  req.on('data', (d: Buffer) => (n += d.length));
  req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end(`${n}\n`));
});
server.keepAliveTimeout = 1000;
let pending = sinkS ? 2 : 1;
const ready = (): void => {
  if (--pending === 0) process.stdout.write('listening\n');
};
server.listen(Number(portS), '::', ready);
if (sinkS) {
  const sink = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('data', () => {});
    s.on('error', () => {});
  });
  sink.listen(Number(sinkS), '::', ready);
  // SINK_PORT + 1: echo (connection-setup latency in the inline benchmark)
  pending++;
  const echo = net.createServer((s) => {
    s.on('data', (d) => s.write(d));
    s.on('error', () => {});
  });
  echo.listen(Number(sinkS) + 1, '::', ready);
  // UDP 53: a DNS responder that answers every query NXDOMAIN (the question echoed, QR=1, RCODE=3)
  pending++;
  const dns = dgram.createSocket({ type: 'udp6', ipv6Only: false });
  dns.on('message', (m, rinfo) => {
    if (m.length < 12) return;
    const r = Buffer.from(m);
    r[2] = 0x80 | (m[2] & 0x79); // QR=1, opcode and RD kept
    r[3] = 0x80 | 3; // RA=1, NXDOMAIN
    dns.send(r, rinfo.port, rinfo.address);
  });
  dns.bind(53, '::', ready);
  // UDP 443: a silent QUIC sink that logs each datagram's source port and size on stdout
  pending++;
  const quic = dgram.createSocket({ type: 'udp6', ipv6Only: false });
  quic.on('message', (m, rinfo) => process.stdout.write(`udp443 ${rinfo.port} ${m.length}\n`));
  quic.bind(443, '::', ready);
}
process.on('SIGTERM', () => process.exit(0));
