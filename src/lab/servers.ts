/**
 * @module lab/servers
 * The lab's "internet" services, run as one process inside the `net` namespace by `chokepoint lab
 * up` (or by tests): HTTPS on :443 answering for ANY name (a certificate per SNI, minted on first
 * use with the openssl CLI and signed by the lab's test CA), plain HTTP on :80, a tiny DNS
 * responder on :53/udp (every A/AAAA query resolves to the server address), a UDP responder on
 * :443/udp (echoes each datagram: enough for a QUIC Initial to get an answer), and plug-in
 * services on the second address (the probe-server, passed in by `chokepoint lab up`: the lab
 * knows no service of a higher layer, see {@link LabPlugin}). HTTP(S) paths: `/` (a short text)
 * and `/bytes/N` (N bytes, for throughput tests).
 *
 * Entry: `node servers.js STATE_DIR HOST HOST6 HOST2 [PLUGIN_MODULE...]` — writes `ready` on stdout
 * when all listen.
 */
import { createServer as createHttp, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { createSecureContext, type SecureContext } from 'node:tls';
import dgram from 'node:dgram';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../util/run.js';
import { pathToFileURL } from 'node:url';

const MAX_BYTES = 1 << 30;

/** Create the lab CA and a shared leaf key in `dir` (openssl CLI). Idempotent. */
export async function ensureCa(dir: string): Promise<{ caCert: string; caKey: string; leafKey: string }> {
  const caKey = join(dir, 'ca.key');
  const caCert = join(dir, 'ca.crt');
  const leafKey = join(dir, 'leaf.key');
  if (!existsSync(caCert)) {
    await run(
      [
        'openssl',
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        caKey,
        '-out',
        caCert,
        '-days',
        '30',
        '-subj',
        '/CN=Chokepoint lab test CA',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      { check: true },
    );
  }
  if (!existsSync(leafKey)) {
    await run(
      ['openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', leafKey],
      { check: true },
    );
  }
  return { caCert, caKey, leafKey };
}

const NAME_OK = /^[a-z0-9*]([a-z0-9-]{0,62}\.)*[a-z0-9-]{1,63}\.?$/i;

/** Mint (or reuse) a certificate for `name` signed by the lab CA. */
export async function certFor(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const { caCert, caKey, leafKey } = await ensureCa(dir);
  const safe = name.toLowerCase().replace(/\.$/, '');
  if (!NAME_OK.test(safe) || safe.length > 253) throw new Error(`not a host name: ${name}`);
  const file = join(dir, `cert-${safe}.pem`);
  if (!existsSync(file)) {
    const csr = await run(['openssl', 'req', '-new', '-key', leafKey, '-subj', `/CN=${safe}`], {
      check: true,
    });
    const ext = join(dir, `ext-${safe}.cnf`);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(ext, `subjectAltName=DNS:${safe}\nextendedKeyUsage=serverAuth\n`);
    await run(
      [
        'openssl',
        'x509',
        '-req',
        '-CA',
        caCert,
        '-CAkey',
        caKey,
        '-CAcreateserial',
        '-days',
        '30',
        '-out',
        file,
        '-extfile',
        ext,
      ],
      { input: csr.stdout, check: true },
    );
  }
  return { cert: readFileSync(file, 'utf8'), key: readFileSync(leafKey, 'utf8') };
}

function handler(req: IncomingMessage, res: ServerResponse): void {
  const m = /^\/bytes\/(\d+)$/.exec(req.url ?? '');
  if (m) {
    const n = Math.min(MAX_BYTES, Number(m[1]));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(n) });
    const chunk = Buffer.alloc(65536, 0x61);
    let left = n;
    const pump = () => {
      while (left > 0) {
        const k = Math.min(left, chunk.length);
        left -= k;
        if (!res.write(k === chunk.length ? chunk : chunk.subarray(0, k)))
          return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
    return;
  }
  const body = `chokepoint lab: ${req.headers.host ?? '(no host)'} ${req.url}\n`;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}

/** Answer a DNS query (RFC 1035) with one A or AAAA record; anything else gets an empty answer. */
export function dnsAnswer(q: Buffer, a4: string, a6: string): Buffer | null {
  if (q.length < 12 || (q[2] & 0x80) !== 0) return null;
  const qd = q.readUInt16BE(4);
  if (qd !== 1) return null;
  let p = 12;
  while (p < q.length && q[p] !== 0) {
    if ((q[p] & 0xc0) !== 0) return null;
    p += q[p] + 1;
  }
  if (p + 5 > q.length) return null;
  const qtype = q.readUInt16BE(p + 1);
  const qend = p + 5;
  const header = Buffer.from(q.subarray(0, 12));
  header[2] = 0x84 | (q[2] & 0x01); // QR, AA, copy RD
  header[3] = 0x00;
  let rdata: Buffer | null = null;
  if (qtype === 1) rdata = Buffer.from(a4.split('.').map(Number));
  else if (qtype === 28) {
    const parts = a6.split('::');
    const head = parts[0] ? parts[0].split(':') : [];
    const tail = parts[1] ? parts[1].split(':') : [];
    const words = [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail];
    rdata = Buffer.alloc(16);
    words.forEach((w, i) => rdata!.writeUInt16BE(parseInt(w || '0', 16), i * 2));
  }
  header.writeUInt16BE(rdata ? 1 : 0, 6);
  header.writeUInt16BE(0, 8);
  header.writeUInt16BE(0, 10);
  const parts = [header, q.subarray(12, qend)];
  if (rdata) {
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(qtype, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(60, 6);
    rr.writeUInt16BE(rdata.length, 10);
    parts.push(rr, rdata);
  }
  return Buffer.concat(parts);
}

export interface LabServices {
  close(): Promise<void>;
}

/** Addresses a plug-in service may listen on (inside `net`). */
export interface LabServiceAddrs {
  host: string;
  host6: string;
  /** The second IPv4 address of `net`, free for plug-ins. */
  host2: string;
}

/**
 * A service of a higher layer that the lab runs in `net` (e.g. the probe-server): `module` is the
 * absolute path of an ES module exporting `startLabService(addrs: LabServiceAddrs):
 * Promise<LabServices>`; it is imported at run time inside the services process, so the lab has
 * no import of it.
 */
export interface LabPlugin {
  module: string;
  /** For `lab status`. */
  name: string;
  /** Where it listens, for `lab status` (e.g. `10.231.1.19:443 tcp+udp`). */
  listen: (a: LabServiceAddrs) => string;
}

export async function startServices(
  dir: string,
  host: string,
  host6: string,
  host2: string,
  pluginModules: string[] = [],
): Promise<LabServices> {
  const closers: (() => Promise<void>)[] = [];
  const base = await certFor(dir, 'lab.invalid');
  const cache = new Map<string, SecureContext>();
  const sniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => {
    const hit = cache.get(servername);
    if (hit) return cb(null, hit);
    certFor(dir, servername).then(
      (c) => {
        const ctx = createSecureContext(c);
        if (cache.size < 10_000) cache.set(servername, ctx);
        cb(null, ctx);
      },
      (e: Error) => cb(e, undefined),
    );
  };
  // one server object per address: the probe-server holds port 443 on the second address
  for (const addr of [host, host6]) {
    const https = createHttps({ cert: base.cert, key: base.key, SNICallback: sniCallback }, handler);
    const http = createHttp(handler);
    for (const [srv, port] of [
      [https, 443],
      [http, 80],
    ] as const) {
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(port, addr, () => resolve());
      });
      closers.push(() => new Promise((r) => srv.close(() => r())));
    }
  }
  for (const [type, addr] of [
    ['udp4', host],
    ['udp6', host6],
  ] as const) {
    const dns = dgram.createSocket(type);
    dns.on('message', (m, r) => {
      const a = dnsAnswer(m, host, host6);
      if (a) dns.send(a, r.port, r.address);
    });
    const echo = dgram.createSocket(type);
    echo.on('message', (m, r) => echo.send(m, r.port, r.address));
    for (const [s, port] of [
      [dns, 53],
      [echo, 443],
    ] as const) {
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind(port, addr, () => resolve());
      });
      closers.push(() => new Promise((r) => s.close(() => r())));
    }
  }
  for (const m of pluginModules) {
    const mod = (await import(pathToFileURL(m).href)) as {
      startLabService?: (a: LabServiceAddrs) => Promise<LabServices>;
    };
    if (typeof mod.startLabService !== 'function') throw new Error(`${m}: no startLabService export`);
    const s = await mod.startLabService({ host, host6, host2 });
    closers.push(() => s.close());
  }
  return {
    close: async () => {
      for (const c of closers) await c().catch(() => {});
    },
  };
}

// entry point
const isMain = process.argv[1] && /servers\.(ts|js)$/.test(process.argv[1]);
if (isMain) {
  const [dir, host, host6, host2, ...plugins] = process.argv.slice(2);
  startServices(dir, host, host6, host2, plugins).then(
    (s) => {
      process.stdout.write('ready\n');
      const stop = () => void s.close().then(() => process.exit(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    },
    (e: Error) => {
      process.stderr.write(`lab servers: ${e.message}\n`);
      process.exit(1);
    },
  );
}
