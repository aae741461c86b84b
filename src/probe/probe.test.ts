/**
 * @module probe/probe.test
 * The probe and the probe-server end to end on loopback (no censor: every case must be `ok`), the
 * side channel's input checks, the report shapes (JSON fields, table, HTML with one chart per case)
 * and the CLI's usage errors. No root needed.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProbeServer, parseSsInfo, type ProbeServer } from './server.js';
import { runProbe, type ProbeReport } from './probe.js';
import { MAGIC, checkSessionRequest } from './protocol.js';
import { formatHtml, formatTable, throughputSeries } from './report.js';
import { run as probeCli, parseHostPort } from '../cli/cmd-probe.js';
import { UsageError } from '../util/errors.js';
import { run as runCmd } from '../util/run.js';
import { fileURLToPath } from 'node:url';

let srv: ProbeServer;
let report: ProbeReport;
const dir = mkdtempSync(join(tmpdir(), 'cp-probe-lo-'));

before(async () => {
  srv = await startProbeServer({ host: '127.0.0.1', port: 0 });
});
after(async () => {
  await srv.close();
  rmSync(dir, { recursive: true, force: true });
});

test(
  'loopback: name, control, scrambled and QUIC cases are ok; the report has the documented shape',
  { timeout: 120_000 },
  async () => {
    report = await runProbe({
      host: '127.0.0.1',
      port: srv.address.port,
      name: 'twitter.com',
      repeat: 2,
      windowMs: 2000,
      down: 500_000,
      up: 100_000,
    });
    assert.equal(report.schema, 'chokepoint.probe/1');
    assert.equal(report.verdict, 'ok', report.reason);
    assert.equal(report.quic?.verdict, 'ok', report.quic?.reason);
    assert.equal(report.rate_bps, undefined);
    assert.equal(report.blocking, undefined);
    assert.deepEqual(
      report.cases.map((c) => c.id),
      ['control', 'scrambled', 'name', 'quic:control', 'quic:name'],
    );
    for (const c of report.cases) {
      assert.equal(c.verdict, 'ok', `${c.id}: ${c.reason}`);
      assert.equal(c.runs.length, 2);
      for (const r of c.runs) {
        assert.equal(r.class, 'fast');
        assert.equal(r.server?.trigger_seen, true);
        if (c.proto === 'tcp') {
          assert.equal(r.down?.bytes, 500_000);
          assert.equal(r.up?.bytes, 100_000);
        } else {
          // QUIC: the server paces 1200-byte datagrams until it has sent ≥ 500,000 bytes (the UDP
          // target) or its 2 s window ends; on loopback the client receives every one of them. The
          // client's count and the server's are independent counters.
          const sent = r.server?.down_sent ?? -1;
          assert.equal(sent % 1200, 0, `server sent whole datagrams: ${sent}`);
          assert.ok(sent >= 400_000 && sent <= 500_400, `server sent ${sent} B of the 500,000 B target`);
          assert.equal(r.down?.bytes, sent, 'client received what the server sent');
          assert.equal(r.loss, 0);
          assert.equal(r.up, null);
        }
        assert.match(r.peer ?? '', /^127\.0\.0\.1:\d+$/);
      }
    }
    assert.equal(report.cases[2].sni, 'twitter.com');
    assert.equal(report.cases[1].sni!.length, 'twitter.com'.length);
    assert.notEqual(report.cases[1].sni, 'twitter.com');
    // the evasion matrix is skipped when there is nothing to evade
    assert.equal(srv.sessions(), 0, 'every session was closed');
  },
);

test(
  'evasions are skipped, with a reason, when the name is not interfered with',
  { timeout: 60_000 },
  async () => {
    const r = await runProbe({
      host: '127.0.0.1',
      port: srv.address.port,
      name: 'a.example',
      evasions: true,
      quic: false,
      windowMs: 1000,
      down: 100_000,
      up: 0,
    });
    assert.equal(r.evasions, undefined);
    assert.match(r.evasions_skipped ?? '', /not throttled or blocked/);
    await assert.rejects(
      runProbe({
        host: '127.0.0.1',
        port: srv.address.port,
        name: 'a.example',
        evasions: ['nope'],
        quic: false,
        windowMs: 500,
        down: 1000,
        up: 0,
      }),
      /unknown evasion technique 'nope'/,
    );
  },
);

test('unreachable probe-server: verdict error, not a throw', { timeout: 60_000 }, async () => {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  const r = await runProbe({ host: '127.0.0.1', port, name: 'a.example', quic: false, windowMs: 500 });
  assert.equal(r.verdict, 'error');
  assert.match(r.reason, /probe-server/);
});

test('side channel rejects bad session requests with a message', async () => {
  const ask = (line: string) =>
    new Promise<string>((resolve) => {
      const c = net.connect(srv.address.port, '127.0.0.1', () => c.write(MAGIC + line + '\n'));
      let buf = '';
      c.on('data', (d) => (buf += d));
      c.on('close', () => resolve(buf));
    });
  assert.match(await ask('not json'), /"op":"error","message":"bad JSON"/);
  assert.match(
    await ask('{"op":"session","token":"xyz","proto":"tcp","down":1,"up":0,"window_ms":1000}'),
    /token must be 32 hex digits/,
  );
  assert.equal(
    checkSessionRequest({
      op: 'session',
      token: 'a'.repeat(32),
      proto: 'sctp',
      down: 1,
      up: 0,
      window_ms: 1000,
    }),
    'proto must be tcp or udp',
  );
  assert.equal(
    checkSessionRequest({
      op: 'session',
      token: 'a'.repeat(32),
      proto: 'tcp',
      down: 1,
      up: 0,
      window_ms: 50,
    }),
    'window_ms must be 100..600000',
  );
  assert.equal(
    checkSessionRequest({
      op: 'session',
      token: 'a'.repeat(32),
      proto: 'udp',
      down: 1,
      up: 0,
      window_ms: 1000,
      udp_size: 9000,
    }),
    'bad udp_size',
  );
  assert.equal(
    checkSessionRequest({
      op: 'session',
      token: 'a'.repeat(32),
      proto: 'tcp',
      down: 1,
      up: 0,
      window_ms: 1000,
    }),
    null,
  );
  // a test connection without any known token is closed after 64 KiB, without an answer
  const got = await new Promise<number>((resolve) => {
    let n = 0;
    const c = net.connect(srv.address.port, '127.0.0.1', () => c.write(Buffer.alloc(70_000, 7)));
    c.on('data', (d) => (n += d.length));
    c.on('error', () => {});
    c.on('close', () => resolve(n));
  });
  assert.equal(got, 0);
});

test('ss -ti parsing (retransmissions as evidence of loss)', () => {
  const line =
    'ESTAB 0 0 10.0.0.2:443 10.0.0.1:5555 cubic wscale:7,7 rto:204 rtt:0.1/0.05 mss:1448 cwnd:10 segs_out:160 segs_in:40 retrans:0/70 lost:3';
  assert.deepEqual(parseSsInfo(line), { retrans: 70, segs_out: 160 });
  assert.deepEqual(parseSsInfo('ESTAB 0 0 a:1 b:2 cubic segs_out:12 segs_in:5'), {
    retrans: 0,
    segs_out: 12,
  });
  assert.deepEqual(parseSsInfo(''), { retrans: null, segs_out: null });
});

test('table and HTML reports: one chart per case, no scripts or external resources', () => {
  const t = formatTable(report);
  assert.match(t, /^probe twitter\.com via 127\.0\.0\.1:\d+/);
  assert.match(t, /verdict: ok/);
  for (const c of report.cases) assert.ok(t.includes(c.id));
  const h = formatHtml(report);
  assert.equal((h.match(/<svg /g) ?? []).length, report.cases.length);
  assert.ok(!/<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/.test(h), 'self-contained');
  // throughput series from a cumulative timeline, by hand: 1000 B in 100 ms = 80 kbit/s
  assert.deepEqual(
    throughputSeries({
      bytes: 3000,
      target: 0,
      duration_ms: 300,
      complete: true,
      goodput_bps: 0,
      rate_bps: 0,
      timeline: [
        [0, 0],
        [100, 1000],
        [300, 3000],
      ],
    }),
    [
      [100, 80_000],
      [300, 80_000],
    ],
  );
  // names with markup are escaped
  const evil = formatHtml({ ...report, name: '<img src=x>' });
  assert.ok(!evil.includes('<img src=x>'));
});

test('CLI: usage errors, JSON and HTML output', { timeout: 60_000 }, async () => {
  await assert.rejects(probeCli([]), UsageError);
  await assert.rejects(probeCli(['--server', 'nohost', '--name', 'x']), /HOST:PORT/);
  await assert.rejects(
    probeCli(['--server', '1.2.3.4:1', '--name', 'x', '--format', 'xml']),
    /table or json/,
  );
  await assert.rejects(
    probeCli(['--server', '1.2.3.4:1', '--name', 'x', '--techniques', 'bogus']),
    /unknown technique/,
  );
  await assert.rejects(probeCli(['--server', '1.2.3.4:1', '--name', 'x', '--repeat', '0']), /--repeat/);
  const html = join(dir, 'r.html');
  const isTs = import.meta.url.endsWith('.ts');
  const main = fileURLToPath(new URL(isTs ? '../cli/main.ts' : '../cli/main.js', import.meta.url));
  const res = await runCmd(
    [
      process.execPath,
      ...(isTs ? ['--import', 'tsx'] : []),
      main,
      'probe',
      '--server',
      `127.0.0.1:${srv.address.port}`,
      '--name',
      'b.example',
      '--no-quic',
      '--window',
      '500',
      '--down',
      '10000',
      '--up',
      '0',
      '--format',
      'json',
      '--html',
      html,
      '--quiet',
    ],
    { timeoutMs: 60_000 },
  );
  const code = res.code;
  const chunks = [res.stdout];
  assert.equal(code, 0);
  const j = JSON.parse(chunks.join('')) as ProbeReport;
  assert.equal(j.verdict, 'ok');
  assert.equal(j.name, 'b.example');
  assert.match(readFileSync(html, 'utf8'), /<h1>Probe of b\.example<\/h1>/);
});

test('IPv6: probe-server on ::1, TCP and QUIC cases ok; [v6]:port parsing', { timeout: 60_000 }, async () => {
  const s6 = await startProbeServer({ host: '::1', port: 0 });
  try {
    const r = await runProbe({
      host: '::1',
      port: s6.address.port,
      name: 'v6.example',
      windowMs: 1000,
      down: 200_000,
      up: 50_000,
    });
    assert.equal(r.verdict, 'ok', r.reason);
    assert.equal(r.quic?.verdict, 'ok', r.quic?.reason);
    assert.equal(r.server, `[::1]:${s6.address.port}`);
    assert.match(r.cases[0].runs[0].peer ?? '', /^::1:\d+$/);
  } finally {
    await s6.close();
  }
  assert.deepEqual(parseHostPort('[fd00:cafe:1:2::3]:443'), { host: 'fd00:cafe:1:2::3', port: 443 });
  assert.deepEqual(parseHostPort('10.0.0.1:8443'), { host: '10.0.0.1', port: 8443 });
  assert.throws(() => parseHostPort('10.0.0.1:70000'), /bad port/);
});
