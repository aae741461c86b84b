/**
 * @module dissect/tls-stream.test
 * The record layer: fragmentation over 1..N-byte records, every prefix, records before the
 * hello, SSLv2 and garbage, errors never thrown, fast-check fuzzing, linear time, and live real
 * clients (curl, openssl, Node) against a listener on 127.0.0.1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { spawn } from 'node:child_process';
import fc from 'fast-check';
import { tlsClientHelloFromStream, isTlsRecordStart, type TlsStreamResult } from './tls-stream.js';
import { buildClientHello, wrapRecords } from '../gen/clienthello.js';
import { fixtureBytes, bestTime } from './fixtures/index.js';
import { haveTool, need } from '../testutil/require.js';

const chromeLike = buildClientHello({
  sni: 'split.example.org',
  alpn: ['h2', 'http/1.1'],
  grease: true,
  pqKeyShare: true,
  ech: true,
});

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function done(r: TlsStreamResult) {
  assert.equal(r.status, 'done', JSON.stringify(r));
  if (r.status !== 'done') throw new Error('unreachable');
  return r;
}

test('record-layer fragmentation: 1..64-byte records and a few larger sizes give the same hello', () => {
  const whole = done(tlsClientHelloFromStream(wrapRecords(chromeLike)));
  assert.equal(whole.hello.sni, 'split.example.org');
  assert.deepEqual(whole.anomalies, []);
  for (const size of [...Array.from({ length: 64 }, (_, i) => i + 1), 100, 255, 512, 1000, 1500]) {
    const r = done(tlsClientHelloFromStream(wrapRecords(chromeLike, size)));
    assert.deepEqual(r.hello, whole.hello, `fragment ${size}`);
    assert.deepEqual(r.anomalies, ['tls_hello_fragmented']);
  }
});

test('every prefix is need-more until the hello is complete (1-, 7- and 16384-byte records)', () => {
  for (const size of [1, 7, 16384]) {
    const stream = wrapRecords(chromeLike, size);
    for (let i = 0; i < stream.length; i++) {
      assert.equal(tlsClientHelloFromStream(stream.subarray(0, i)).status, 'need-more', `${size}/${i}`);
    }
    assert.equal(tlsClientHelloFromStream(stream).status, 'done');
  }
});

test('bytes after the hello (next records, early data) do not matter', () => {
  const stream = concat(wrapRecords(chromeLike), new Uint8Array([23, 3, 3, 0, 2, 1, 2, 22]));
  assert.equal(done(tlsClientHelloFromStream(stream)).hello.sni, 'split.example.org');
});

test('ChangeCipherSpec (or alert) before the hello is skipped and reported', () => {
  const ccs = new Uint8Array([20, 3, 3, 0, 1, 1]);
  const alert = new Uint8Array([21, 3, 3, 0, 2, 1, 0]);
  const r = done(tlsClientHelloFromStream(concat(ccs, wrapRecords(chromeLike))));
  assert.equal(r.hello.sni, 'split.example.org');
  assert.deepEqual(r.anomalies, ['tls_record_before_hello']);
  const r2 = done(tlsClientHelloFromStream(concat(ccs, alert, wrapRecords(chromeLike, 50))));
  assert.deepEqual(r2.anomalies, ['tls_record_before_hello', 'tls_hello_fragmented']);
  // prefixes of the CCS stay need-more
  for (let i = 1; i <= ccs.length; i++)
    assert.equal(tlsClientHelloFromStream(ccs.subarray(0, i)).status, 'need-more');
  // A CCS interleaved inside a fragmented hello: skipped, reported.
  const recs = wrapRecords(chromeLike, 1000);
  const r3 = done(tlsClientHelloFromStream(concat(recs.subarray(0, 1005), ccs, recs.subarray(1005))));
  assert.deepEqual(r3.anomalies, ['tls_record_interleaved', 'tls_hello_fragmented']);
  assert.deepEqual(r3.hello, done(tlsClientHelloFromStream(recs)).hello);
  // Too many records before any handshake: not a connection start.
  const five = concat(ccs, ccs, ccs, ccs, ccs, wrapRecords(chromeLike));
  assert.deepEqual(tlsClientHelloFromStream(five), { status: 'error', anomaly: 'tls_no_client_hello' });
});

test("'not-mine' from the first bytes: HTTP, SSH, zeros, bad version, oversize record", () => {
  for (const s of [
    'GET / HTTP/1.1\r\n',
    'SSH-2.0-OpenSSH\r\n',
    '\x00\x00\x00\x00\x00',
    '\x16\x02\x00',
    '\x16\x03\x07',
    '\x16\x03\x01\xff\xff',
    '\x16\x03\x01\x00\x00',
  ]) {
    const b = new Uint8Array([...s].map((c) => c.charCodeAt(0)));
    assert.deepEqual(tlsClientHelloFromStream(b), { status: 'not-mine' }, JSON.stringify(s));
    assert.equal(isTlsRecordStart(b), false);
  }
  assert.equal(tlsClientHelloFromStream(new Uint8Array([0x47])).status, 'not-mine'); // 'G' alone
  assert.equal(tlsClientHelloFromStream(new Uint8Array(0)).status, 'need-more');
  assert.equal(tlsClientHelloFromStream(new Uint8Array([22])).status, 'need-more');
  assert.equal(tlsClientHelloFromStream(new Uint8Array([22, 3, 1, 2])).status, 'need-more');
  assert.equal(isTlsRecordStart(new Uint8Array([22, 3, 1, 2, 0])), true);
  assert.equal(isTlsRecordStart(new Uint8Array([20, 3, 3, 0, 1])), true);
  assert.equal(isTlsRecordStart(new Uint8Array(0)), false);
});

test('SSLv2-format ClientHello is reported as tls_sslv2_hello', () => {
  // SSLv2 CLIENT-HELLO header: 0x80 len, msg 1, version 3.1, cipher spec length 3, sid 0, challenge 16
  const v2 = new Uint8Array([
    0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x05,
  ]);
  assert.deepEqual(tlsClientHelloFromStream(v2), { status: 'error', anomaly: 'tls_sslv2_hello' });
});

test('another handshake message first (ServerHello) is tls_not_client_hello', () => {
  const sh = wrapRecords(new Uint8Array([2, 0, 0, 4, 3, 3, 0, 0]));
  assert.deepEqual(tlsClientHelloFromStream(sh), { status: 'error', anomaly: 'tls_not_client_hello' });
  // known already from the handshake type byte, before the body arrives
  assert.deepEqual(tlsClientHelloFromStream(sh.subarray(0, 6)), {
    status: 'error',
    anomaly: 'tls_not_client_hello',
  });
});

test('declared hello length above 64 KiB is tls_hello_too_large; garbage record after the first is tls_bad_record', () => {
  const big = new Uint8Array([22, 3, 1, 0, 4, 1, 0x02, 0x00, 0x00]);
  assert.deepEqual(tlsClientHelloFromStream(big), { status: 'error', anomaly: 'tls_hello_too_large' });
  const recs = wrapRecords(chromeLike, 100);
  const broken = concat(recs.subarray(0, 105), new Uint8Array([0x47, 0x45, 0x54, 0x20, 0x2f]));
  assert.deepEqual(tlsClientHelloFromStream(broken), { status: 'error', anomaly: 'tls_bad_record' });
});

test('malformed hello inside a complete record is an error, not a throw', () => {
  const hs = buildClientHello({ sni: 'x.example' });
  const bad = hs.slice();
  bad[4 + 2 + 32] = 40; // session id length 40 (> 32)
  assert.deepEqual(tlsClientHelloFromStream(wrapRecords(bad)), {
    status: 'error',
    anomaly: 'tls_malformed_hello',
  });
  const cut = hs.slice();
  cut[3] -= 10; // handshake length shorter than its content: inner lengths overrun
  assert.equal(tlsClientHelloFromStream(wrapRecords(cut.subarray(0, cut.length - 10))).status, 'error');
});

// ---- property tests ----------------------------------------------------------------------------

const optsArb = fc.record({
  sni: fc.option(fc.stringMatching(/^[a-zA-Z0-9.-]{1,80}$/), { nil: null }),
  alpn: fc.array(fc.stringMatching(/^[a-z0-9/.]{1,12}$/), { maxLength: 4 }),
  versions: fc.subarray([0x0304, 0x0303, 0x0302]),
  cipherSuites: fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 1, maxLength: 40 }),
  grease: fc.boolean(),
  pqKeyShare: fc.boolean(),
  ech: fc.boolean(),
  padTo: fc.option(fc.integer({ min: 0, max: 3000 }), { nil: undefined }),
});

test('property: builder -> records -> parser round-trips SNI, ALPN, versions, ciphers, ECH', () => {
  fc.assert(
    fc.property(optsArb, fc.integer({ min: 1, max: 2000 }), (o, frag) => {
      const hs = buildClientHello(o);
      if (o.padTo !== undefined) assert.ok(hs.length >= o.padTo);
      const r = done(tlsClientHelloFromStream(wrapRecords(hs, frag)));
      assert.equal(r.hello.sni, o.sni);
      assert.deepEqual(r.hello.alpn, o.alpn);
      assert.deepEqual(r.hello.supportedVersions, o.versions);
      assert.deepEqual(Array.from(r.hello.cipherSuites.subarray(o.grease ? 1 : 0)), o.cipherSuites);
      assert.equal(r.hello.ech, o.ech);
    }),
    { numRuns: 300 },
  );
});

test('property: random bytes never throw and always terminate', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000 }), (b) => {
      const r = tlsClientHelloFromStream(b);
      assert.ok(['done', 'need-more', 'not-mine', 'error'].includes(r.status));
    }),
    { numRuns: 2000 },
  );
  // random bytes behind a plausible record header, to get past 'not-mine'
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000 }), fc.integer({ min: 1, max: 3000 }), (b, len) => {
      const hdr = new Uint8Array([22, 3, 1, len >> 8, len & 0xff, 1, 0, len >> 8, len & 0xff]);
      tlsClientHelloFromStream(concat(hdr, b));
    }),
    { numRuns: 2000 },
  );
});

test('property: mutations and truncations of valid hellos never throw', () => {
  fc.assert(
    fc.property(
      optsArb,
      fc.integer({ min: 1, max: 700 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
      fc.nat(),
      (o, frag, muts, cut) => {
        const s = wrapRecords(buildClientHello(o), frag).slice();
        for (const [at, v] of muts) s[at % s.length] = v;
        const r = tlsClientHelloFromStream(s.subarray(0, cut % (s.length + 1)));
        assert.ok(['done', 'need-more', 'not-mine', 'error'].includes(r.status));
      },
    ),
    { numRuns: 1000 },
  );
});

// ---- linearity ---------------------------------------------------------------------------------

test('linearity: time for N, 4N, 16N extensions and 1-byte records grows at most ~linearly', () => {
  // Hellos with many extensions (padding ext repeated as distinct types) fragmented into 1-byte
  // records: the worst case for the record walk and for duplicate detection.
  function hello(n: number): Uint8Array {
    const exts: number[] = [];
    for (let i = 0; i < n; i++) exts.push((0x1000 + i) >> 8, (0x1000 + i) & 0xff, 0, 0);
    const body = [
      3,
      3,
      ...new Array(32).fill(0),
      0,
      0,
      2,
      0x13,
      0x01,
      1,
      0,
      (exts.length >> 8) & 0xff,
      exts.length & 0xff,
      ...exts,
    ];
    return wrapRecords(new Uint8Array([1, 0, body.length >> 8, body.length & 0xff, ...body]), 1);
  }
  const sizes = [150, 600, 2400];
  const inputs = sizes.map(hello);
  const times = inputs.map((b) =>
    bestTime(() => {
      for (let i = 0; i < 5; i++) assert.equal(tlsClientHelloFromStream(b).status, 'done');
    }),
  );
  const ratio = times[2] / Math.max(times[0], 0.05);
  if (process.env.CP_TIMING) console.log('tls linearity', times, ratio);
  assert.ok(
    ratio < 64,
    `t(16N)/t(N) = ${ratio.toFixed(1)} (${times.map((t) => t.toFixed(2)).join(', ')} ms)`,
  );
});

// ---- live real clients -------------------------------------------------------------------------

/** Start a listener, run `client(port)`, return the first connection's first bytes (≤ 16 KiB). */
async function captureFirstBytes(client: (port: number) => Promise<void>): Promise<Uint8Array> {
  let first: Buffer | null = null;
  let resolveGot: () => void = () => {};
  const got = new Promise<void>((resolve) => (resolveGot = resolve));
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    const chunks: Buffer[] = [];
    sock.on('error', () => {});
    sock.on('data', (d) => {
      chunks.push(d);
      const all = Buffer.concat(chunks);
      if (first === null && tlsClientHelloFromStream(all).status !== 'need-more') {
        first = all;
        resolveGot();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<void>((_, rej) => {
      timer = setTimeout(() => rej(new Error('no hello within 10 s')), 10000);
    });
    const run = client(port);
    await Promise.race([got, timeout]);
    for (const s of sockets) s.destroy();
    await run;
  } finally {
    clearTimeout(timer);
    for (const s of sockets) s.destroy();
    server.close();
  }
  return new Uint8Array(first!);
}

function runProc(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'ignore'] });
    const t = setTimeout(() => p.kill('SIGKILL'), 10000);
    p.on('exit', () => {
      clearTimeout(t);
      resolve();
    });
    p.on('error', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

test(
  'live: curl sends the SNI and ALPN given on its command line',
  { skip: need(haveTool('curl'), 'curl missing (Debian curl)'), timeout: 30000 },
  async () => {
    const name = `live-${process.pid}.curl.test`;
    const b = await captureFirstBytes((port) =>
      runProc('curl', [
        '-sk',
        '--http1.1',
        '-m',
        '5',
        '--resolve',
        `${name}:${port}:127.0.0.1`,
        `https://${name}:${port}/`,
      ]),
    );
    const r = done(tlsClientHelloFromStream(b));
    assert.equal(r.hello.sni, name);
    assert.deepEqual(r.hello.alpn, ['http/1.1']);
  },
);

test(
  'live: openssl s_client -servername with a trailing dot, -alpn',
  { skip: need(haveTool('openssl'), 'openssl missing (Debian openssl)'), timeout: 30000 },
  async () => {
    const name = `Live-${process.pid}.OpenSSL.Test.`;
    const b = await captureFirstBytes((port) =>
      runProc('openssl', [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-servername',
        name,
        '-alpn',
        'h2,http/1.1',
      ]),
    );
    const r = done(tlsClientHelloFromStream(b));
    assert.equal(r.hello.sni, name);
    assert.deepEqual(r.hello.alpn, ['h2', 'http/1.1']);
    assert.ok(r.hello.supportedVersions.includes(0x0304));
  },
);

test('live: Node tls.connect servername and ALPNProtocols', { timeout: 30000 }, async () => {
  const name = `live-${process.pid}.node.test`;
  const b = await captureFirstBytes(
    (port) =>
      new Promise<void>((resolve) => {
        const s = tls.connect({
          host: '127.0.0.1',
          port,
          servername: name,
          ALPNProtocols: ['h2', 'acme-tls/1'],
          rejectUnauthorized: false,
        });
        s.on('error', () => resolve());
        s.on('close', () => resolve());
      }),
  );
  const r = done(tlsClientHelloFromStream(b));
  assert.equal(r.hello.sni, name);
  assert.deepEqual(r.hello.alpn, ['h2', 'acme-tls/1']);
});

test('fixture streams also pass isTlsRecordStart', () => {
  for (const n of ['tls-curl', 'tls-openssl', 'tls-node', 'tls-chromium'])
    assert.ok(isTlsRecordStart(fixtureBytes(n)));
});
