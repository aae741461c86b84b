/**
 * @module enforce/testing/ch-client
 * A TCP client that sends a *real* ClientHello (Node/OpenSSL's, captured from `tls.connect` over an
 * in-memory socket) to a server, shaped the way evasion tests need, and reports what came back:
 * `node ch-client.js HOST PORT SNI MODE [ARG]`, MODE one of
 * - `whole`: the ClientHello in one segment;
 * - `split N`: two segments, the first N bytes then the rest (50 ms apart, Nagle off);
 * - `records N`: one segment holding two TLS records (the handshake message cut after N bytes);
 * - `fake SNI2`: a complete ClientHello for SNI2 first, then (50 ms later) the real one;
 * - `junk N`: N bytes of junk first, then the ClientHello;
 * - `segments N`: the ClientHello in N-byte writes 1 ms apart (Nagle off: N-byte segments, what a
 *   tiny advertised window or an evasion tool produces);
 * - `padded N`: a ClientHello built by gen/ with the padding extension (RFC 7685) to N bytes (up to
 *   the 16 KB record limit), in one record, sent whole.
 * Prints one JSON line: {result: 'data'|'reset'|'closed'|'timeout', bytes, ms, chLen, localPort}.
 */
import net from 'node:net';
import tls from 'node:tls';
import { Duplex } from 'node:stream';
import { buildClientHello, wrapRecords } from '../../gen/clienthello.js';

/** The first flight a real TLS client writes for `sni` (one ClientHello record). */
export function captureClientHello(sni: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let done = false;
    const fake = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        cb();
        if (!done) {
          done = true;
          setImmediate(() => {
            resolve(Buffer.concat(chunks));
            s.destroy();
          });
        }
      },
    });
    const s = tls.connect({
      socket: fake,
      servername: sni,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    s.on('error', () => {});
    setTimeout(() => reject(new Error('no ClientHello written')), 5000).unref();
  });
}

/** Re-frame a single-record ClientHello as two records, the handshake message cut after n bytes. */
export function twoRecords(ch: Buffer, n: number): Buffer {
  const body = ch.subarray(5);
  const a = body.subarray(0, n);
  const b = body.subarray(n);
  const h = (len: number): Buffer => Buffer.from([0x16, ch[1], ch[2], len >> 8, len & 0xff]);
  return Buffer.concat([h(a.length), a, h(b.length), b]);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const [host, portS, sni, mode, arg] = process.argv.slice(2);
  const ch = await captureClientHello(sni);
  const t0 = Date.now();
  const sock = net.connect({ host, port: Number(portS), noDelay: true });
  let bytes = 0;
  let result = 'timeout';
  const finished = new Promise<void>((resolve) => {
    sock.on('data', (d: Buffer) => {
      bytes += d.length;
      result = 'data';
      resolve();
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      result = e.code === 'ECONNRESET' ? 'reset' : `error:${e.code}`;
      resolve();
    });
    sock.on('close', () => {
      if (result === 'timeout') result = 'closed';
      resolve();
    });
    setTimeout(resolve, Number(process.env.CH_TIMEOUT_MS ?? 3000)).unref();
  });
  await new Promise<void>((r, j) => {
    sock.once('connect', () => r());
    sock.once('error', j);
  });
  const localPort = sock.localPort;
  if (mode === 'whole') sock.write(ch);
  else if (mode === 'split') {
    const n = Number(arg);
    sock.write(ch.subarray(0, n));
    await sleep(50);
    sock.write(ch.subarray(n));
  } else if (mode === 'records') sock.write(twoRecords(ch, Number(arg)));
  else if (mode === 'fake') {
    sock.write(await captureClientHello(arg));
    await sleep(50);
    sock.write(ch);
  } else if (mode === 'junk') {
    sock.write(Buffer.alloc(Number(arg), 0x42));
    await sleep(50);
    sock.write(ch);
  } else if (mode === 'segments') {
    const n = Number(arg);
    for (let i = 0; i < ch.length; i += n) {
      sock.write(ch.subarray(i, i + n));
      await sleep(1); // the previous segment is acknowledged meanwhile: the kernel does not merge them
    }
  } else if (mode === 'padded') {
    sock.write(wrapRecords(buildClientHello({ sni, alpn: ['http/1.1'], padTo: Number(arg) })));
  } else throw new Error(`unknown mode ${mode}`);
  await finished;
  await sleep(Number(process.env.CH_LINGER_MS ?? 300)); // let the last write leave before closing
  process.stdout.write(
    JSON.stringify({ result, bytes, ms: Date.now() - t0, chLen: ch.length, localPort }) + '\n',
  );
  sock.destroy();
  process.exit(0);
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  main().catch((e: Error) => {
    process.stdout.write(JSON.stringify({ result: `error:${e.message}` }) + '\n');
    process.exitCode = 1;
  });
}
