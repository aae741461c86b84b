/**
 * @module enforce/actions-lab.test
 * The block methods on the wire (root, namespaces, real curl through the box running `enforce`):
 * drop (SNI-IV: the ClientHello never reaches the server, counted by an iptables rule in the
 * server's namespace), stall (the transfer never completes, no RST), curtain (a download stops below `after_bytes` and
 * times out, no RST), residual blocking (after a reset trigger, another name to the same server is
 * refused until the window ends, then served again; the window is shortened to 3 s), redirect (plain
 * HTTP: curl gets the box's 307 and Location, the server gets a RST and never the request), rst-rewrite
 * (SNI-I: the ClientHello reaches the server, the client is reset by the server's rewritten reply, the
 * server gets no RST), ICMP under an address-only block rule (an echo request to the blocked address gets
 * no reply, the other server address answers), rst-rewrite, redirect and rst over IPv6, degrade (the share of the
 * server's packets that never reach the client, counted on both sides).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { SINK_PORT, chClient, curl, setupInlineLab, sleep, type InlineLab } from './testing/harness.js';
import { isRoot, need } from '../testutil/require.js';
import type { LabNs } from '../lab/lab.js';

const CURTAIN = 20_000;
const RESIDUAL_S = 3;
const BLOCK_PAGE = 'http://block.example/page?id=7';
const DEGRADE_P = 0.2;

const POLICY = `version: 1
default: allow
inspection: {mode: normal}
rules:
  - id: stall
    action: block
    method: stall
    after_packets: 6
    match: {host: {exact: [stall.example]}}
  - id: curtain
    action: block
    method: curtain
    after_bytes: ${CURTAIN}
    match: {host: {exact: [curtain.example]}}
  - id: sni4
    action: block
    method: drop
    match: {host: {exact: [drop.example]}}
  - id: resid
    action: block
    method: rst
    residual: {seconds: ${RESIDUAL_S}, key: address-pair}
    match: {host: {exact: [resid.example]}}
  - id: redir
    action: block
    method: redirect
    location: ${BLOCK_PAGE}
    match: {host: {exact: [redirect.example]}}
  - id: sni1
    action: block
    method: rst-rewrite
    match: {host: {exact: [rewrite.example]}}
  - id: rstboth
    action: block
    method: rst
    match: {host: {exact: [rst.example]}}
  - id: capacity
    action: block
    method: degrade
    probability: ${DEGRADE_P}
    match: {host: {exact: [degrade.example]}}
`;

const SKIP = need(isRoot(), 'needs root (network namespaces, iptables, NFQUEUE)');

describe('block methods on the wire (lab)', { skip: SKIP, timeout: 120_000 }, () => {
  let il: InlineLab;
  before(async () => {
    il = await setupInlineLab(`cpa${process.pid % 100000}`, POLICY);
    // the second server address is blocked by address only (ICMP test); the tests above use the first
    writeFileSync(
      il.policy,
      `${POLICY}  - id: addr\n    action: block\n    match: {dest_ip: [${il.lab.addr.net2}/32]}\n`,
    );
    await il.startEnforce();
  });
  after(async () => {
    await il?.close();
  });

  it('control: an unlisted name downloads 200 KB', async () => {
    const r = await curl(il, 'example.org', 200_000);
    assert.equal(r.code, 0);
    assert.equal(r.size, 200_000);
  });

  it('drop (SNI-IV): the ClientHello never reaches the server; the control name does', async () => {
    // count client segments of ClientHello size arriving at the server (IP length ≥ 200)
    const rule = ['INPUT', '-p', 'tcp', '--dport', '443', '-m', 'length', '--length', '200:65535'];
    await il.lab.exec('net', ['iptables', '-I', ...rule], { check: true });
    const count = async (): Promise<number> => {
      const o = await il.lab.exec('net', ['iptables', '-L', 'INPUT', '-v', '-x', '-n'], { check: true });
      const m = /^\s*(\d+)\s+\d+\s+(?:all|tcp|6)\s.*length 200:65535/m.exec(o.stdout);
      assert.ok(m, o.stdout);
      return Number(m[1]);
    };
    try {
      const r = await curl(il, 'drop.example', 1000, { maxTime: 3 });
      assert.equal(r.code, 28, `curl exit ${r.code}: the handshake times out`);
      assert.equal(await count(), 0, 'no ClientHello reached the server');
      const c = await curl(il, 'example.org', 1000, { maxTime: 5 });
      assert.equal(c.code, 0);
      assert.ok((await count()) >= 1, 'the control ClientHello reached the server (the counter works)');
    } finally {
      await il.lab.exec('net', ['iptables', '-D', ...rule]);
    }
  });

  it('stall: the TLS handshake never completes, the client sees no RST (curl times out, code 28)', async () => {
    const r = await curl(il, 'stall.example', 200_000, { maxTime: 3 });
    assert.equal(r.code, 28, `curl exit ${r.code} (28 = timeout; 35/56 would be a reset)`);
    assert.equal(r.size, 0);
  });

  it(`curtain: the download stops silently below ${CURTAIN} bytes of server payload`, async (t) => {
    const r = await curl(il, 'curtain.example', 200_000, { maxTime: 4 });
    t.diagnostic(`curtain ${CURTAIN}: body bytes received ${r.size}, curl exit ${r.code}`);
    assert.equal(r.code, 28, `curl exit ${r.code}: a timeout, not a reset`);
    // server→client payload = TLS handshake (certificate ≈ 1–2 KB) + records of the body
    assert.ok(r.size > 0 && r.size < CURTAIN, `body bytes received ${r.size}`);
    assert.ok(r.size > CURTAIN - 8000, `body bytes received ${r.size}: the cut is near after_bytes`);
  });

  it(`residual (address pair, ${RESIDUAL_S} s): after a trigger another name to the same server is refused, then served`, async () => {
    const t0 = Date.now();
    const trig = await curl(il, 'resid.example', 1000, { maxTime: 5 });
    assert.notEqual(trig.code, 0, 'the trigger is reset');
    const inside = await curl(il, 'example.org', 1000, { maxTime: 5 });
    assert.ok(Date.now() - t0 < RESIDUAL_S * 1000, 'still inside the window');
    assert.equal(inside.code, 7, `curl exit ${inside.code} (7: connection refused by the SYN's RST)`);
    // wait out the window (bounded), then the same request is served
    while (Date.now() - t0 < RESIDUAL_S * 1000 + 200) await sleep(100);
    const later = await curl(il, 'example.org', 1000, { maxTime: 5 });
    assert.equal(later.code, 0, `after the window: curl exit ${later.code}`);
  });

  it('redirect: a plain HTTP request gets a 307 to the block page; the server side is reset', async () => {
    // the lab's TCP echo server (SINK_PORT + 1): had the request reached it, curl would read its own
    // request back instead of a 307
    const port = SINK_PORT + 1;
    const cnt = (flags: string) => [
      'INPUT',
      '-p',
      'tcp',
      '--dport',
      String(port),
      '--tcp-flags',
      flags,
      flags,
    ];
    const rst = cnt('RST');
    const data = ['INPUT', '-p', 'tcp', '--dport', String(port), '-m', 'length', '--length', '80:65535'];
    await il.lab.exec('net', ['iptables', '-I', ...rst], { check: true });
    await il.lab.exec('net', ['iptables', '-I', ...data], { check: true });
    const counts = async (): Promise<{ rst: number; data: number }> => {
      const o = await il.lab.exec('net', ['iptables', '-L', 'INPUT', '-v', '-x', '-n'], { check: true });
      const r = /^\s*(\d+)\s.*flags:0x04\/0x04/m.exec(o.stdout);
      const d = /^\s*(\d+)\s.*length 80:65535/m.exec(o.stdout);
      assert.ok(r && d, o.stdout);
      return { rst: Number(r[1]), data: Number(d[1]) };
    };
    try {
      const url = (host: string): string[] => ['curl', '-s', '-o', '/dev/null', '--max-time', '5',
        '--resolve', `${host}:${port}:${il.server}`, '-w', '%{http_code} %{redirect_url}',
        `http://${host}:${port}/index.html`]; // prettier-ignore
      const r = await il.lab.exec('sub', url('redirect.example'), { timeoutMs: 15_000 });
      assert.equal(r.code, 0, `curl exit ${r.code} ${r.stderr}`);
      assert.equal(r.stdout.trim(), `307 ${BLOCK_PAGE}`);
      const n = await counts();
      assert.equal(n.data, 0, 'the request never reached the server');
      assert.ok(n.rst >= 1, `the server got a RST (${n.rst})`);
      // control: another name reaches the echo server (curl reads its own request back: not HTTP)
      const c = await il.lab.exec('sub', url('example.org'), { timeoutMs: 15_000 });
      assert.notEqual(c.stdout.trim().split(' ')[0], '307', `control: ${c.stdout}`);
      assert.ok((await counts()).data >= 1, 'the control request reached the server (the counter works)');
    } finally {
      await il.lab.exec('net', ['iptables', '-D', ...rst]);
      await il.lab.exec('net', ['iptables', '-D', ...data]);
    }
  });

  it('rst-rewrite (SNI-I): the ClientHello reaches the server, the client is reset by its rewritten reply, the server gets no RST', async () => {
    const srvRst = ['INPUT', '-p', 'tcp', '--dport', '443', '--tcp-flags', 'RST', 'RST'];
    const srvCh = ['INPUT', '-p', 'tcp', '--dport', '443', '-m', 'length', '--length', '200:65535'];
    const cliRst = ['INPUT', '-p', 'tcp', '--sport', '443', '--tcp-flags', 'RST', 'RST'];
    const rules: [LabNs, string[]][] = [
      ['net', srvRst],
      ['net', srvCh],
      ['sub', cliRst],
    ];
    for (const [ns, r] of rules) await il.lab.exec(ns, ['iptables', '-I', ...r], { check: true });
    const count = async (ns: LabNs, re: RegExp): Promise<number> => {
      const o = await il.lab.exec(ns, ['iptables', '-L', 'INPUT', '-v', '-x', '-n'], { check: true });
      const m = re.exec(o.stdout);
      assert.ok(m, o.stdout);
      return Number(m[1]);
    };
    try {
      const r = await chClient(il, 'rewrite.example', 'whole');
      // a Linux client takes a RST only when its seq is exactly the next byte it expects from the
      // server (RFC 5961; any other seq draws a challenge ACK): 'reset' shows the seq is the server's
      assert.equal(r.result, 'reset', JSON.stringify(r));
      assert.equal(r.bytes, 0, 'no server byte reached the client');
      assert.ok((await count('sub', /^\s*(\d+)\s.*spt:443 flags:0x04\/0x04/m)) >= 1, 'the client got a RST');
      assert.ok(
        (await count('net', /^\s*(\d+)\s.*length 200:65535/m)) >= 1,
        'the ClientHello reached the server',
      );
      assert.equal(await count('net', /^\s*(\d+)\s.*dpt:443 flags:0x04\/0x04/m), 0, 'the server got no RST');
      // control: another name is answered
      const c = await chClient(il, 'example.org', 'whole');
      assert.equal(c.result, 'data', JSON.stringify(c));
    } finally {
      for (const [ns, r] of rules) await il.lab.exec(ns, ['iptables', '-D', ...r]);
    }
  });

  it('rst-rewrite over IPv6: the client is reset by the rewritten reply, the server gets no RST', async () => {
    const srvRst = ['INPUT', '-p', 'tcp', '--dport', '443', '--tcp-flags', 'RST', 'RST'];
    const cliRst = ['INPUT', '-p', 'tcp', '--sport', '443', '--tcp-flags', 'RST', 'RST'];
    const rules: [LabNs, string[]][] = [
      ['net', srvRst],
      ['sub', cliRst],
    ];
    for (const [ns, r] of rules) await il.lab.exec(ns, ['ip6tables', '-I', ...r], { check: true });
    const count = async (ns: LabNs, re: RegExp): Promise<number> => {
      const o = await il.lab.exec(ns, ['ip6tables', '-L', 'INPUT', '-v', '-x', '-n'], { check: true });
      const m = re.exec(o.stdout);
      assert.ok(m, o.stdout);
      return Number(m[1]);
    };
    try {
      const r = await curl(il, 'rewrite.example', 1000, { ipv6: true, maxTime: 5 });
      // 35 (TLS connect error) or 56 (receive failure): a reset, not 28 (a timeout)
      assert.ok(r.code === 35 || r.code === 56, `curl exit ${r.code}`);
      assert.ok((await count('sub', /^\s*(\d+)\s.*spt:443 flags:0x04\/0x04/m)) >= 1, 'the client got a RST');
      assert.equal(await count('net', /^\s*(\d+)\s.*dpt:443 flags:0x04\/0x04/m), 0, 'the server got no RST');
      const c = await curl(il, 'example.org', 1000, { ipv6: true, maxTime: 5 });
      assert.equal(c.code, 0, 'control over IPv6');
    } finally {
      for (const [ns, r] of rules) await il.lab.exec(ns, ['ip6tables', '-D', ...r]);
    }
  });

  it('over IPv6: redirect answers with the 307 and resets the server; rst resets both ends (the server by a crafted RST)', async () => {
    const port = SINK_PORT + 1;
    const srvRst = (p: number) => ['INPUT', '-p', 'tcp', '--dport', String(p), '--tcp-flags', 'RST', 'RST'];
    const data = ['INPUT', '-p', 'tcp', '--dport', String(port), '-m', 'length', '--length', '100:65535'];
    const rules = [srvRst(port), srvRst(443), data];
    for (const r of rules) await il.lab.exec('net', ['ip6tables', '-I', ...r], { check: true });
    const count = async (re: RegExp): Promise<number> => {
      const o = await il.lab.exec('net', ['ip6tables', '-L', 'INPUT', '-v', '-x', '-n'], { check: true });
      const m = re.exec(o.stdout);
      assert.ok(m, o.stdout);
      return Number(m[1]);
    };
    try {
      const url = (host: string): string[] => ['curl', '-s', '-o', '/dev/null', '--max-time', '5',
        '--resolve', `${host}:${port}:[${il.lab.addr.net6}]`, '-w', '%{http_code} %{redirect_url}',
        `http://${host}:${port}/index.html`]; // prettier-ignore
      const r = await il.lab.exec('sub', url('redirect.example'), { timeoutMs: 15_000 });
      assert.equal(r.code, 0, `curl exit ${r.code} ${r.stderr}`);
      assert.equal(r.stdout.trim(), `307 ${BLOCK_PAGE}`);
      assert.equal(await count(/^\s*(\d+)\s.*length 100:65535/m), 0, 'the request never reached the server');
      assert.ok(
        (await count(new RegExp(`^\\s*(\\d+)\\s.*dpt:${port} flags:0x04/0x04`, 'm'))) >= 1,
        'the server got a RST',
      );
      // method rst: the client is reset by the kernel rule, the server by the box's crafted RST
      const t = await curl(il, 'rst.example', 1000, { ipv6: true, maxTime: 5 });
      assert.ok(t.code === 35 || t.code === 56 || t.code === 7, `curl exit ${t.code}: reset`);
      assert.ok(
        (await count(/^\s*(\d+)\s.*dpt:443 flags:0x04\/0x04/m)) >= 1,
        'the server got the crafted RST',
      );
    } finally {
      for (const r of rules) await il.lab.exec('net', ['ip6tables', '-D', ...r]);
    }
  });

  it(`degrade (capacity, p = ${DEGRADE_P}): the download completes, and about that share of the server's packets never reaches the client`, async (t) => {
    // server packets as they reach the box (mangle PREROUTING, before any verdict; offloads are off on
    // the lab's veths, so one count a wire packet — the server's own OUTPUT would count GSO
    // super-packets) and as they arrive in sub
    const sent = ['PREROUTING', '-s', il.server, '-p', 'tcp', '--sport', '443'];
    const got = ['INPUT', '-p', 'tcp', '--sport', '443'];
    await il.lab.exec('box', ['iptables', '-t', 'mangle', '-I', ...sent], { check: true });
    await il.lab.exec('sub', ['iptables', '-I', ...got], { check: true });
    const count = async (ns: LabNs, table: string, chain: string): Promise<number> => {
      const o = await il.lab.exec(ns, ['iptables', '-t', table, '-L', chain, '-v', '-x', '-n'], {
        check: true,
      });
      const m = /^\s*(\d+)\s+\d+\s+(?:all|tcp|6)\s.*spt:443\s*$/m.exec(o.stdout);
      assert.ok(m, o.stdout);
      return Number(m[1]);
    };
    try {
      const r = await curl(il, 'degrade.example', 300_000, { maxTime: 60 });
      assert.equal(r.code, 0, `curl exit ${r.code}: TCP recovers from the losses`);
      assert.equal(r.size, 300_000);
      const s = await count('box', 'mangle', 'PREROUTING');
      const g = await count('sub', 'filter', 'INPUT');
      const lost = (s - g) / s;
      t.diagnostic(
        `degrade p=${DEGRADE_P}: server sent ${s} packets, client got ${g} (lost ${(100 * lost).toFixed(1)} %)`,
      );
      // binomial: with n ≥ 200 packets, σ of the share ≤ 0.029, so 0.2 ± 0.1 is beyond 3.4 σ (the
      // handshake's few packets before the trigger are not degraded: a small bias down)
      assert.ok(s >= 200, `${s} packets`);
      assert.ok(lost > DEGRADE_P - 0.1 && lost < DEGRADE_P + 0.1, `lost ${lost}`);
    } finally {
      await il.lab.exec('box', ['iptables', '-t', 'mangle', '-D', ...sent]);
      await il.lab.exec('sub', ['iptables', '-D', ...got]);
    }
  });

  it('address block covers ICMP: an echo request to the blocked address gets no reply; the other address answers', async () => {
    // a real kernel ICMP echo from the subscriber's namespace (raw socket; no ping binary needed)
    const PING = [
      'import socket,struct,select,sys,time',
      'def ck(b):',
      ' s=sum((b[i]<<8)+b[i+1] for i in range(0,len(b),2))',
      ' s=(s>>16)+(s&0xffff); s+=s>>16; return ~s&0xffff',
      'dst=sys.argv[1]; k=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP)',
      'h=struct.pack("!BBHHH",8,0,0,0x4321,1)+b"chokepoint"',
      'h=h[:2]+struct.pack("!H",ck(h))+h[4:]',
      'k.sendto(h,(dst,0)); end=time.time()+2',
      'while time.time()<end:',
      ' r,_,_=select.select([k],[],[],max(0,end-time.time()))',
      ' if not r: break',
      ' d,a=k.recvfrom(2048)',
      ' if a[0]==dst and d[(d[0]&15)*4]==0: print("reply"); sys.exit(0)',
      'print("timeout")',
    ].join('\n');
    const ping = async (dst: string): Promise<string> =>
      (
        await il.lab.exec('sub', ['python3', '-c', PING, dst], { timeoutMs: 10_000, check: true })
      ).stdout.trim();
    assert.equal(await ping(il.lab.addr.net2), 'timeout', 'the blocked address does not answer');
    assert.equal(await ping(il.server), 'reply', 'control: the other server address answers through the box');
  });
});
