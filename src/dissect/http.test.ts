/**
 * @module dissect/http.test
 * HTTP/1.x request heads: curl's real bytes (fixtures, cross-checked with tshark, and live against
 * a listener on 127.0.0.1), CONNECT, Host with port, absolute-form, malformed heads, fuzzing,
 * resumption over any split and linear work under hostile heads (work counters, not time).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn } from 'node:child_process';
import fc from 'fast-check';
import {
  parseHttpRequest,
  isHttpRequestStart,
  HttpHeadScanner,
  HTTP_MAX_HEAD,
  type HttpResult,
} from './http.js';
import { fixtureBytes, fixtureMeta } from './fixtures/index.js';
import { haveTool, need } from '../testutil/require.js';

const enc = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));

function done(r: HttpResult) {
  assert.equal(r.status, 'done', JSON.stringify(r));
  if (r.status !== 'done') throw new Error('unreachable');
  return r;
}

for (const name of ['http-curl', 'http-curl-connect', 'http-curl-proxy']) {
  test(`real client ${name}: method, target, Host agree with the command line and tshark`, () => {
    const meta = fixtureMeta(name) as { expect: Record<string, string>; tshark: Record<string, string[]> };
    const bytes = fixtureBytes(name);
    const r = done(parseHttpRequest(bytes));
    assert.equal(r.method, meta.expect.method);
    assert.equal(r.target, meta.expect.target);
    assert.equal(r.host, meta.expect.host);
    assert.equal(r.hostname, meta.expect.hostname);
    assert.equal(r.method, meta.tshark['http.request.method'][0]);
    assert.equal(r.target, meta.tshark['http.request.uri'][0]);
    assert.equal(r.host, meta.tshark['http.host'][0]);
    assert.deepEqual(r.anomalies, []);
    for (let i = 0; i < bytes.length; i++) {
      assert.equal(parseHttpRequest(bytes.subarray(0, i)).status, 'need-more', `prefix ${i}`);
    }
  });
}

test('Host with port, IPv6 literal, trailing dot, upper case', () => {
  const r = done(
    parseHttpRequest(enc('GET /x HTTP/1.1\r\nUser-Agent: t\r\nHOST:  Example.COM.:8080 \r\n\r\n')),
  );
  assert.equal(r.host, 'Example.COM.:8080');
  assert.equal(r.hostname, 'example.com');
  const v6 = done(parseHttpRequest(enc('GET / HTTP/1.1\r\nHost: [2001:DB8::1]:80\r\n\r\n')));
  assert.equal(v6.hostname, '2001:db8::1');
  const plain = done(parseHttpRequest(enc('HEAD / HTTP/1.0\r\nhost: a.example\r\n\r\n')));
  assert.equal(plain.hostname, 'a.example');
  assert.equal(plain.method, 'HEAD');
});

test('CONNECT: name from the authority-form target, with or without Host', () => {
  const r = done(parseHttpRequest(enc('CONNECT Twitter.com:443 HTTP/1.1\r\n\r\n')));
  assert.equal(r.method, 'CONNECT');
  assert.equal(r.target, 'Twitter.com:443');
  assert.equal(r.host, null);
  assert.equal(r.hostname, 'twitter.com');
  assert.deepEqual(r.anomalies, []);
  const mism = done(parseHttpRequest(enc('CONNECT a.example:443 HTTP/1.1\r\nHost: b.example:443\r\n\r\n')));
  assert.equal(mism.hostname, 'a.example');
  assert.deepEqual(mism.anomalies, ['http_host_mismatch']);
  const v6 = done(parseHttpRequest(enc('CONNECT [::1]:443 HTTP/1.1\r\n\r\n')));
  assert.equal(v6.hostname, '::1');
});

test('absolute-form target wins over Host (RFC 9112 §3.2.2); userinfo stripped', () => {
  const r = done(
    parseHttpRequest(enc('GET http://user:pw@Proxy.Example:81/p?q HTTP/1.1\r\nHost: other.example\r\n\r\n')),
  );
  assert.equal(r.hostname, 'proxy.example');
  assert.equal(r.host, 'other.example');
  assert.deepEqual(r.anomalies, ['http_host_mismatch']);
});

test('runs of spaces in the request line are tolerated and flagged', () => {
  const r = done(parseHttpRequest(enc('GET      /very_long_uri   HTTP/1.1  \r\nHost: www.lan:8080\r\n\r\n')));
  assert.equal(r.target, '/very_long_uri');
  assert.equal(r.hostname, 'www.lan');
  assert.deepEqual(r.anomalies, ['http_extra_whitespace']);
});

test('final: an incomplete head is parsed over its complete lines', () => {
  const cut = enc('GET /x HTTP/1.1\r\nHost: cut.example\r\nOpt: "htt\xaa\xaa\xaa');
  assert.equal(parseHttpRequest(cut).status, 'need-more');
  const r = done(parseHttpRequest(cut, true));
  assert.equal(r.hostname, 'cut.example');
  assert.deepEqual(r.anomalies, ['http_head_incomplete']);
  assert.deepEqual(parseHttpRequest(enc('GET /x HTT'), true), {
    status: 'error',
    anomaly: 'http_head_incomplete',
  });
  assert.deepEqual(parseHttpRequest(enc('GE'), true), { status: 'not-mine' });
  // complete heads are unaffected by the flag
  assert.deepEqual(
    parseHttpRequest(enc('GET / HTTP/1.0\r\n\r\n'), true),
    parseHttpRequest(enc('GET / HTTP/1.0\r\n\r\n')),
  );
});

test('RTSP and SIP request lines are not HTTP', () => {
  for (const s of [
    'OPTIONS rtsp://10.2.2.2:8554/ RTSP/1.0\r\nCSeq: 1\r\n\r\n',
    'OPTIONS sip:a@b SIP/2.0\r\n\r\n',
  ]) {
    assert.deepEqual(parseHttpRequest(enc(s)), { status: 'not-mine' });
  }
});

test('LF-only line endings are accepted with an anomaly', () => {
  const r = done(parseHttpRequest(enc('GET / HTTP/1.1\nHost: lf.example\n\n')));
  assert.equal(r.hostname, 'lf.example');
  assert.deepEqual(r.anomalies, ['http_bare_lf']);
});

test('anomalies: missing/multiple Host, space before colon, obs-fold, bad version, no version, junk line', () => {
  assert.deepEqual(done(parseHttpRequest(enc('GET / HTTP/1.1\r\n\r\n'))).anomalies, ['http_missing_host']);
  assert.equal(done(parseHttpRequest(enc('GET / HTTP/1.0\r\n\r\n'))).hostname, null);
  const two = done(parseHttpRequest(enc('GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n')));
  assert.equal(two.hostname, 'a.example');
  assert.deepEqual(two.anomalies, ['http_multiple_host']);
  const sp = done(
    parseHttpRequest(enc('GET / HTTP/1.1\r\nHost : evil.example\r\nHost: good.example\r\n\r\n')),
  );
  assert.equal(sp.hostname, 'good.example');
  assert.deepEqual(sp.anomalies, ['http_space_before_colon']);
  const fold = done(parseHttpRequest(enc('GET / HTTP/1.1\r\nHost: f.example\r\nX: a\r\n b\r\n\r\n')));
  assert.deepEqual(fold.anomalies, ['http_obs_fold']);
  assert.deepEqual(done(parseHttpRequest(enc('GET / HTTP/2.0\r\nHost: x\r\n\r\n'))).anomalies, [
    'http_bad_version',
  ]);
  assert.deepEqual(done(parseHttpRequest(enc('GET /\r\n\r\n'))).anomalies, ['http_no_version']);
  assert.deepEqual(done(parseHttpRequest(enc('GET / HTTP/1.1\r\nnocolon\r\nHost: x\r\n\r\n'))).anomalies, [
    'http_malformed_header',
  ]);
  const ctl = done(parseHttpRequest(enc('GET / HTTP/1.1\r\nHost: a\x01b.example\r\n\r\n')));
  assert.deepEqual(ctl.anomalies, ['http_host_invalid']);
  assert.deepEqual(done(parseHttpRequest(enc('GET / HTTP/1.1\r\nHost: a.example:80x\r\n\r\n'))).anomalies, [
    'http_host_invalid',
  ]);
});

test("'not-mine' from the first byte; need-more for method prefixes; errors", () => {
  for (const s of [
    '\x16\x03\x01',
    'get / HTTP/1.1',
    'GETX / HTTP/1.1',
    'SSH-2.0',
    'PRI * HTTP/2.0',
    '\r\nGET /',
    'X',
  ]) {
    assert.deepEqual(parseHttpRequest(enc(s)), { status: 'not-mine' }, JSON.stringify(s));
    assert.equal(isHttpRequestStart(enc(s)), false);
  }
  for (const s of ['', 'G', 'GE', 'GET', 'CONN', 'P', 'PROPF', 'GET / HTTP/1.1\r\nHost: x\r\n']) {
    assert.equal(parseHttpRequest(enc(s)).status, 'need-more', JSON.stringify(s));
  }
  assert.equal(isHttpRequestStart(enc('POST')), true);
  assert.deepEqual(parseHttpRequest(enc('GET \r\n\r\n')), {
    status: 'error',
    anomaly: 'http_malformed_request_line',
  });
  // Over the cap: parsed over its complete lines within the cap (Host comes early in practice).
  const big = enc('GET / HTTP/1.1\r\nHost: big.example\r\nCookie: ' + 'a'.repeat(HTTP_MAX_HEAD) + '\r\n\r\n');
  const rb = done(parseHttpRequest(big));
  assert.equal(rb.hostname, 'big.example');
  assert.deepEqual(rb.anomalies, ['http_head_too_large']);
  assert.equal(parseHttpRequest(big.subarray(0, HTTP_MAX_HEAD - 1)).status, 'need-more');
  const noLine = enc('GET /' + 'a'.repeat(HTTP_MAX_HEAD));
  assert.deepEqual(parseHttpRequest(noLine), { status: 'error', anomaly: 'http_head_too_large' });
});

test('property: random bytes and mutated/truncated requests never throw', () => {
  const base = enc(
    'POST http://h.example:8080/a HTTP/1.1\r\nHost: h.example:8080\r\nContent-Length: 3\r\n\r\nabc',
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), (b) => {
      parseHttpRequest(b);
      parseHttpRequest(b, true);
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 10 }),
      fc.nat(),
      (muts, cut) => {
        const s = base.slice();
        for (const [at, v] of muts) s[at % s.length] = v;
        const r = parseHttpRequest(s.subarray(0, cut % (s.length + 1)));
        parseHttpRequest(s.subarray(0, cut % (s.length + 1)), true);
        assert.ok(['done', 'need-more', 'not-mine', 'error'].includes(r.status));
      },
    ),
    { numRuns: 3000 },
  );
  // Structured random heads: Host header found wherever it is.
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.stringMatching(/^[A-Za-z-]{1,20}$/), fc.stringMatching(/^[ -~]{0,40}$/)), {
        maxLength: 20,
      }),
      fc.stringMatching(/^[a-z0-9]{1,20}(\.[a-z0-9]{1,10}){0,3}$/),
      fc.nat(),
      (hdrs, name, at) => {
        const clean = hdrs.filter(([k]) => k.toLowerCase() !== 'host');
        clean.splice(at % (clean.length + 1), 0, ['Host', name]);
        const head = 'GET / HTTP/1.1\r\n' + clean.map(([k, v]) => `${k}: ${v}`).join('\r\n') + '\r\n\r\n';
        assert.equal(done(parseHttpRequest(enc(head))).hostname, name);
      },
    ),
    { numRuns: 500 },
  );
});

/** Feed a head to one scanner as a growing prefix, in pieces of `step` bytes; the first final result. */
function feedInPieces(b: Uint8Array, step: number, final = false) {
  const sc = new HttpHeadScanner();
  let r: HttpResult;
  let feeds = 0;
  for (let n = Math.min(step, b.length); ; n = Math.min(n + step, b.length)) {
    feeds++;
    r = sc.feed(b.subarray(0, n), final && n === b.length);
    if (r.status !== 'need-more' || n === b.length) break;
  }
  return { r, sc, feeds };
}

test('resumable: a head fed in pieces of any size gives the one-shot result', () => {
  const base = enc(
    'POST http://h.example:8080/a HTTP/1.1\r\nHost: h.example:8080\r\nX: a\r\n b\r\nHost : e\r\nbad\r\n\r\nabc',
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      fc.nat(),
      fc.integer({ min: 1, max: 40 }),
      fc.boolean(),
      (muts, cut, step, final) => {
        const s = base.slice();
        for (const [at, v] of muts) s[at % s.length] = v;
        const b = s.subarray(0, cut % (s.length + 1));
        assert.deepEqual(feedInPieces(b, step, final).r, parseHttpRequest(b, final));
      },
    ),
    { numRuns: 3000 },
  );
});

test('hostile: 3,000 header lines in 1-byte segments — each byte scanned once, each line parsed once', () => {
  const n = 3000;
  const text = 'GET / HTTP/1.1\r\n' + 'X:v\r\n'.repeat(n) + 'Host: last.example\r\n\r\n';
  assert.ok(text.length < HTTP_MAX_HEAD);
  const b = enc(text + 'body bytes after the head');
  const { r, sc, feeds } = feedInPieces(b, 1);
  assert.equal(done(r).hostname, 'last.example');
  assert.equal(feeds, text.length); // done on the head's last byte
  // linear: the line search looked at each head byte exactly once over all the calls, and each line
  // (request line, 3,000 pads, Host, the empty line) was parsed once
  assert.equal(sc.scanned, text.length);
  assert.equal(sc.lines, n + 3);
  // one header line of 8,000 bytes split into 1-byte segments: still each byte once
  const long = 'GET / HTTP/1.1\r\nCookie: ' + 'c'.repeat(8000) + '\r\nHost: x.example\r\n\r\n';
  const l = feedInPieces(enc(long), 1);
  assert.equal(done(l.r).hostname, 'x.example');
  assert.equal(l.sc.scanned, long.length);
  assert.equal(l.sc.lines, 4);
  // a head that never ends: the work stops at HTTP_MAX_HEAD bytes, whatever is sent after
  const endless = enc('GET / HTTP/1.1\r\nHost: e.example\r\n' + 'X: y\r\n'.repeat(10_000));
  const e = feedInPieces(endless, 7);
  assert.deepEqual(done(e.r).anomalies, ['http_head_too_large']);
  assert.equal(e.sc.scanned, HTTP_MAX_HEAD);
  assert.equal(e.feeds, Math.ceil(HTTP_MAX_HEAD / 7));
});

test(
  'live: curl request head to a listener on 127.0.0.1',
  { skip: need(haveTool('curl'), 'curl missing (Debian curl)'), timeout: 30000 },
  async () => {
    const name = `Live-${process.pid}.HTTP.Test`;
    let result: HttpResult | null = null;
    const server = net.createServer((sock) => {
      let buf = Buffer.alloc(0);
      sock.on('error', () => {});
      sock.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        const r = parseHttpRequest(buf);
        if (r.status !== 'need-more') {
          result = r;
          sock.end('HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n');
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      await new Promise<void>((resolve) => {
        const p = spawn(
          'curl',
          ['-s', '-m', '5', '--resolve', `${name}:${port}:127.0.0.1`, `http://${name}:${port}/live?x=1`],
          { stdio: 'ignore' },
        );
        p.on('exit', () => resolve());
        p.on('error', () => resolve());
      });
    } finally {
      server.close();
    }
    const r = done(result ?? { status: 'need-more' });
    assert.equal(r.method, 'GET');
    assert.equal(r.target, '/live?x=1');
    assert.equal(r.host, `${name}:${port}`);
    assert.equal(r.hostname, name.toLowerCase());
  },
);

test('a target with spaces before a final HTTP version (attack tools) is parsed, flagged', () => {
  const head =
    'GET /cgi-bin/handler/netsonar;cat /etc/passwd|?data=Download HTTP/1.1\r\nConnection: Keep-Alive\r\nHost: 127.0.0.1\r\n\r\n';
  const r = parseHttpRequest(new TextEncoder().encode(head));
  assert.equal(r.status, 'done');
  if (r.status === 'done') {
    assert.equal(r.method, 'GET');
    assert.equal(r.target, '/cgi-bin/handler/netsonar;cat /etc/passwd|?data=Download');
    assert.equal(r.hostname, '127.0.0.1');
    assert.ok(r.anomalies.includes('http_space_in_target'));
  }
  // an RTSP line with spaces in it stays not-mine
  const rtsp = parseHttpRequest(new TextEncoder().encode('OPTIONS rtsp://x/a b RTSP/1.0\r\nCSeq: 1\r\n\r\n'));
  assert.equal(rtsp.status, 'not-mine');
});
