/**
 * @module engine/live.test
 * `chokepoint analyze --interface` on a real kernel: a namespace lab the test creates (sub — box —
 * net, src/lab), the lab's servers in `net`, the capture on the box's subscriber-side veth, and traffic
 * from `sub`: a real TLS ClientHello (`openssl s_client`), HTTP (`curl`), a QUIC Initial (crafted with
 * src/gen, sent over UDP to the lab's UDP echo), a DNS query (crafted, over UDP to the lab's DNS
 * server) and a long UDP exchange for the periodic records. SIGINT must end every flow with its final
 * record and print the kernel counters. A second test stops the capture process (SIGSTOP) while a
 * bounded burst floods a small ring, and expects the kernel's drop counter to show it.
 * Root, libpcap, openssl and curl are required; under CI=true their absence fails the test.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { createLab, type Lab } from '../lab/netns.js';
import { buildClientHello } from '../gen/clienthello.js';
import { buildQuicInitials } from '../gen/quic-initial.js';
import type { FlowRecord } from '../record/record.js';
import { readEveOutput } from '../testutil/schema.js';
import { tempDir } from '../testutil/pcap.js';
import { haveTools, isRoot, need } from '../testutil/require.js';
import { loadPcap } from '../capture/pcap-live.js';

const here = dirname(fileURLToPath(import.meta.url));
const fromDist = existsSync(join(here, 'live.js'));
const ext = fromDist ? 'js' : 'ts';
const nodeArgs = fromDist ? [] : ['--import', 'tsx'];
const MAIN = join(here, '..', 'cli', `main.${ext}`);
const SERVERS = join(here, '..', 'lab', `servers.${ext}`);

function havePcap(): boolean {
  try {
    loadPcap();
    return true;
  } catch {
    return false;
  }
}
const SKIP = need(
  isRoot() && haveTools('ip', 'openssl', 'curl', 'tshark') && havePcap(),
  'needs root, ip, openssl, curl, tshark and libpcap.so.0.8 (Debian libpcap0.8)',
);

const labs: Lab[] = [];
const tmp = tempDir('chokepoint-live-');
after(async () => {
  for (const l of labs) await l.destroy();
  tmp.cleanup();
});

/** Collect a child's output; resolve when `re` appears in it (or reject after `ms`). */
function watch(c: ChildProcess): {
  out: () => string;
  err: () => string;
  until: (re: RegExp, ms: number) => Promise<void>;
} {
  let out = '';
  let err = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      if (w.re.test(out) || w.re.test(err)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  c.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    check();
  });
  c.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    check();
  });
  return {
    out: () => out,
    err: () => err,
    until: (re, ms) =>
      new Promise<void>((resolve, reject) => {
        const t = setTimeout(
          () =>
            reject(
              new Error(
                `timed out waiting for ${re}\nstdout: ${out.slice(-2000)}\nstderr: ${err.slice(-2000)}`,
              ),
            ),
          ms,
        );
        waiters.push({ re, resolve: () => (clearTimeout(t), resolve()) });
        check();
        c.once('exit', (code) =>
          setTimeout(() => {
            check();
            clearTimeout(t);
            reject(
              new Error(
                `exited (${code}) before ${re}\nstdout: ${out.slice(-2000)}\nstderr: ${err.slice(-2000)}`,
              ),
            );
          }, 50),
        );
      }),
  };
}

function exited(c: ChildProcess): Promise<number | null> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve(c.exitCode);
  return new Promise((r) => c.once('exit', (code) => r(code)));
}

/** UDP client run inside `sub`: sends datagrams and waits for each reply (delivery is then certain). */
const UDP_CLIENT = `
const dgram = require('node:dgram');
const jobs = JSON.parse(process.argv[1]);
(async () => {
  for (const j of jobs) {
    const s = dgram.createSocket(j.host.includes(':') ? 'udp6' : 'udp4');
    for (let i = 0; i < j.count; i++) {
      const got = new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error('no reply from ' + j.host + ':' + j.port)), 3000);
        s.once('message', () => { clearTimeout(t); res(); });
      });
      s.send(Buffer.from(j.hex, 'hex'), j.port, j.host);
      await got;
      if (j.gapMs) await new Promise((r) => setTimeout(r, j.gapMs));
    }
    s.close();
  }
  console.log('sent');
})().catch((e) => { console.error(e.message); process.exit(1); });
`;

function dnsQuery(name: string, id: number): string {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.of(l.length), Buffer.from(l)]));
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(0x0100, 2); // RD
  h.writeUInt16BE(1, 4);
  return Buffer.concat([h, ...labels, Buffer.of(0, 0, 1, 0, 1)]).toString('hex');
}

async function startLab(): Promise<Lab> {
  const lab = await createLab();
  labs.push(lab);
  mkdirSync(tmp.path(`ca-${lab.name}`));
  const srv = lab.spawn('net', [
    process.execPath,
    ...nodeArgs,
    SERVERS,
    tmp.path(`ca-${lab.name}`),
    lab.addr.net,
    lab.addr.net6,
    lab.addr.net2,
  ]);
  await watch(srv).until(/^ready$/m, 60_000);
  return lab;
}

/** Every line passes Suricata's EVE schema and ours; read back to FlowRecords (testutil/schema.ts). */
function records(stdout: string): FlowRecord[] {
  return readEveOutput(stdout).records;
}

test(
  'analyze --interface names TLS, QUIC, HTTP and DNS flows the test generates in a namespace lab',
  { skip: SKIP, timeout: 180_000 },
  async () => {
    const lab = await startLab();
    const a = lab.addr;
    const policyFile = tmp.path('block-tls.yaml');
    writeFileSync(
      policyFile,
      'version: 1\nname: live-test\ndefault: allow\nrules:\n  - id: block-tls-live\n    action: block\n    match: {host: {exact: [tls.live.test]}}\n',
    );
    const evDir = tmp.path(`evidence-${lab.name}`);
    const an = lab.spawn('box', [
      process.execPath,
      ...nodeArgs,
      MAIN,
      'analyze',
      '--interface',
      lab.ifaces.boxSub,
      '--filter',
      'tcp or udp',
      '--flow-interval',
      '1s',
      '--policy',
      policyFile,
      '--evidence',
      evDir,
    ]);
    const w = watch(an);
    await w.until(/capturing on veth-sub/, 30_000);

    // TLS: a real ClientHello from openssl, to the lab's HTTPS server (any name, test CA)
    const tls = await lab.exec(
      'sub',
      ['openssl', 's_client', '-connect', `${a.net}:443`, '-servername', 'tls.live.test'],
      {
        input: '',
        timeoutMs: 20_000,
      },
    );
    assert.match(tls.stdout + tls.stderr, /CONNECTED/, tls.stderr);
    // HTTP: curl with a Host header
    const http = await lab.exec(
      'sub',
      [
        'curl',
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-m',
        '10',
        '-H',
        'Host: http.live.test',
        `http://${a.net}/`,
      ],
      {
        timeoutMs: 20_000,
      },
    );
    assert.equal(http.code, 0, http.stderr);
    // QUIC: a crafted v1 Initial to the UDP echo on 443; DNS: a crafted A query to the lab's resolver;
    // a long UDP exchange (12 datagrams 300 ms apart, echoed: 3.3 s) for the periodic records
    const quic = buildQuicInitials({
      dcid: Uint8Array.from([0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08]),
      clientHello: buildClientHello({ sni: 'quic.live.test', alpn: ['h3'] }),
    })[0];
    const jobs = [
      { host: a.net, port: 443, hex: Buffer.from(quic).toString('hex'), count: 1 },
      { host: a.net, port: 53, hex: dnsQuery('dns.live.test', 0x4242), count: 1 },
      { host: a.net, port: 443, hex: Buffer.from('long-flow').toString('hex'), count: 12, gapMs: 300 },
    ];
    const udp = await lab.exec('sub', [process.execPath, '-e', UDP_CLIENT, JSON.stringify(jobs)], {
      timeoutMs: 30_000,
    });
    assert.equal(udp.code, 0, udp.stderr);

    an.kill('SIGINT');
    assert.equal(await exited(an), 0, w.err());
    const recs = records(w.out());
    // (records() checked every line against Suricata's EVE schema and ours)
    const final = recs.filter((r) => !r.partial);
    const named = (host: string) => final.find((r) => r.host === host);

    const t = named('tls.live.test');
    assert.ok(t, `no TLS record in ${JSON.stringify(final.map((r) => r.host))}`);
    assert.equal(t.app_proto, 'tls');
    assert.equal(t.proto, 'TCP');
    assert.equal(t.tls?.sni, 'tls.live.test');
    assert.deepEqual([t.src_ip, t.dest_ip, t.dest_port], [a.sub, a.net, 443]);
    assert.deepEqual(t.policy, { rule_id: 'block-tls-live', action: 'block' });

    const h = named('http.live.test');
    assert.ok(h, 'no HTTP record');
    assert.equal(h.app_proto, 'http');
    assert.equal(h.http?.hostname, 'http.live.test');
    assert.deepEqual([h.dest_ip, h.dest_port], [a.net, 80]);
    assert.deepEqual(h.policy, { rule_id: null, action: 'allow' });

    const q = named('quic.live.test');
    assert.ok(q, 'no QUIC record');
    assert.equal(q.app_proto, 'quic');
    assert.equal(q.proto, 'UDP');
    assert.equal(q.quic?.sni, 'quic.live.test');
    assert.equal(q.quic?.version, '0x00000001');

    const d = named('dns.live.test');
    assert.ok(d, 'no DNS record');
    assert.equal(d.app_proto, 'dns');
    assert.deepEqual(d.dns, { query: 'dns.live.test', qtype: 'A' });
    assert.equal(d.pkts_toclient, 1, 'the answer crossed the box too');

    // the long flow: periodic records (partial) while it runs — at least one while datagrams were still
    // coming (scans are ≤ 1.2 s apart) — then one final record with all 24 packets
    const longId = final.find((r) => r.proto === 'UDP' && r.dest_port === 443 && r.pkts_toserver === 12);
    assert.ok(
      longId,
      `no final record with the 12 datagrams: ${JSON.stringify(final.filter((r) => r.proto === 'UDP'))}`,
    );
    assert.equal(longId.pkts_toclient, 12);
    const parts = recs.filter((r) => r.partial && r.community_id === longId.community_id);
    assert.ok(parts.length >= 1, 'a periodic record for the 3.3 s flow with --flow-interval 1s');
    for (const p of parts) {
      assert.equal(p.flow_id, longId.flow_id);
      assert.ok(p.pkts_toserver >= 1 && p.pkts_toserver <= 12, JSON.stringify(p));
      assert.ok(p.duration <= longId.duration);
    }
    assert.ok(
      parts.some((p) => p.pkts_toserver < 12),
      `a snapshot taken while the flow ran: ${JSON.stringify(parts)}`,
    );
    const tot = (r: FlowRecord) => r.pkts_toserver + r.pkts_toclient;
    for (let i = 1; i < parts.length; i++)
      assert.ok(tot(parts[i]) > tot(parts[i - 1]), 'snapshots only when the flow moved');
    assert.equal(recs.filter((r) => !r.partial && r.community_id === longId.community_id).length, 1);

    // counters on stop
    const m =
      /(\d+) packets captured, (\d+) dropped by the kernel, (\d+) dropped by the interface; (\d+) flows, (\d+) records \((\d+) partial\)/.exec(
        w.err(),
      );
    assert.ok(m, w.err());
    assert.equal(Number(m[5]), recs.length);
    assert.equal(Number(m[6]), recs.length - final.length);
    const pk = final.reduce((s, r) => s + r.pkts_toserver + r.pkts_toclient, 0);
    assert.equal(Number(m[1]), pk, 'every captured packet belongs to a record (filter: tcp or udp)');

    // evidence of the blocked TLS flow, read back by tshark
    const pcaps = readdirSync(evDir).filter((f) => f.endsWith('.pcap'));
    assert.equal(pcaps.length, 1);
    const idx = readFileSync(join(evDir, pcaps[0].replace(/\.pcap$/, '.jsonl')), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(idx.length, 1);
    assert.equal(idx[0].community_id, t.community_id);
    assert.equal(idx[0].packets, Math.min(32, t.pkts_toserver + t.pkts_toclient));
    const { execFileSync } = await import('node:child_process');
    const sn = execFileSync(
      'tshark',
      [
        '-r',
        join(evDir, pcaps[0]),
        '-Y',
        'tls.handshake.type == 1',
        '-T',
        'fields',
        '-e',
        'tls.handshake.extensions_server_name',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(sn.trim(), 'tls.live.test');
  },
);

test(
  'analyze --interface reports the packets the kernel dropped while the reader was stopped',
  { skip: SKIP, timeout: 120_000 },
  async () => {
    const lab = await startLab();
    const an = lab.spawn('box', [
      process.execPath,
      ...nodeArgs,
      MAIN,
      'analyze',
      '--interface',
      lab.ifaces.boxSub,
      '--filter',
      'udp port 443',
      '--buffer',
      '1MiB',
    ]);
    const w = watch(an);
    await w.until(/capturing on veth-sub/, 30_000);
    an.kill('SIGSTOP');
    // 3000 datagrams of 1200 bytes (3.6 MB) into a 1 MiB ring that nobody reads; each is echoed
    const jobs = [
      { host: lab.addr.net, port: 443, hex: Buffer.alloc(1200, 0x41).toString('hex'), count: 3000 },
    ];
    const udp = await lab.exec('sub', [process.execPath, '-e', UDP_CLIENT, JSON.stringify(jobs)], {
      timeoutMs: 60_000,
    });
    an.kill('SIGCONT');
    assert.equal(udp.code, 0, udp.stderr);
    an.kill('SIGINT');
    assert.equal(await exited(an), 0, w.err());
    const m = /(\d+) packets captured, (\d+) dropped by the kernel/.exec(w.err());
    assert.ok(m, w.err());
    const captured = Number(m[1]);
    const dropped = Number(m[2]);
    assert.ok(dropped > 0, `kernel drops expected: ${w.err()}`);
    assert.ok(
      captured + dropped <= 6000 + 10,
      `${captured} + ${dropped} ≤ the 6000 datagrams sent and echoed`,
    );
    assert.ok(captured < 6000);
    const final = records(w.out());
    assert.equal(final.length, 1);
    assert.equal(final[0].pkts_toserver + final[0].pkts_toclient, captured);
  },
);

test('a missing interface, a bad filter and misused options are clear errors', { skip: SKIP }, async () => {
  const { spawnSync } = await import('node:child_process');
  const cli = (args: string[]) =>
    spawnSync(process.execPath, [...nodeArgs, MAIN, 'analyze', ...args], {
      encoding: 'utf8',
      timeout: 30_000,
    });
  const a = cli(['--interface', 'cp-no-such-if0']);
  assert.equal(a.status, 1, a.stderr);
  assert.match(a.stderr, /cp-no-such-if0: .*(No such device|doesn't exist)/i);
  const b = cli(['--interface', 'lo', '--filter', 'tcp port ((']);
  assert.equal(b.status, 1, b.stderr);
  assert.match(b.stderr, /--filter 'tcp port \(\(': .*syntax error/);
  const c = cli(['--filter', 'tcp', 'x.pcap']);
  assert.equal(c.status, 2);
  assert.match(c.stderr, /--filter needs --interface/);
  const d = cli(['--interface', 'lo', 'x.pcap']);
  assert.equal(d.status, 2);
  const e = cli(['--interface', 'lo', '--flow-interval', 'soon']);
  assert.equal(e.status, 2);
  assert.match(e.stderr, /invalid duration 'soon'/);
});
