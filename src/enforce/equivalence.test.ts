/**
 * @module enforce/equivalence.test
 * What-if = wire: the same capture (raw IP packets built with gen/, names with and without trailing
 * dots, case, HTTP Host and DNS names, flows without a name) goes through the offline path (Engine →
 * flow records → `Simulation`, as `chokepoint simulate` does) and through the box's decision core
 * (`Enforcer.handle`, as the queue worker does), under `names.trailing_dot: literal` and `ignore`,
 * with exact, suffix, raw `endswith` and `substring` rules. Every flow gets the same verdict from
 * both; a few verdicts are also checked against what docs/POLICY.md says they must be.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy, compilePolicy, Simulation } from '../policy/index.js';
import { Engine } from '../engine/engine.js';
import { Enforcer } from './enforcer.js';
import { newCounters } from './counters.js';
import { buildClientHello, wrapRecords } from '../gen/clienthello.js';
import { ipPacket, tcpHeader, udpHeader, type Endpoint } from '../gen/frames.js';
import { dnsQuery } from '../gen/synth.js';
import { buildQuicInitials } from '../gen/quic-initial.js';
import type { FlowRecord } from '../record/record.js';
import type { VerdictEvent } from './types.js';

const SYN = 0x02;
const ACK = 0x10;
const PSH = 0x08;

/** One TCP connection: handshake, the client's first bytes in one segment, the server's answer. */
function tcpFlow(cli: Endpoint, srv: Endpoint, first: Uint8Array): Uint8Array[] {
  const c = 1000;
  const s = 9000;
  return [
    ipPacket(cli, srv, 6, tcpHeader(cli, srv, { seq: c - 1, ack: 0, flags: SYN })),
    ipPacket(srv, cli, 6, tcpHeader(srv, cli, { seq: s - 1, ack: c, flags: SYN | ACK })),
    ipPacket(cli, srv, 6, tcpHeader(cli, srv, { seq: c, ack: s, flags: ACK })),
    ipPacket(cli, srv, 6, tcpHeader(cli, srv, { seq: c, ack: s, flags: ACK | PSH, payload: first })),
    ipPacket(srv, cli, 6, tcpHeader(srv, cli, { seq: s, ack: c + first.length, flags: ACK | PSH, payload: new Uint8Array(100) })),
  ]; // prettier-ignore
}

const te = new TextEncoder();
const tls = (sni: string | null): Uint8Array => wrapRecords(buildClientHello({ sni, alpn: ['h2'] }));
const http = (host: string): Uint8Array =>
  te.encode(`GET / HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: t\r\n\r\n`);

/** The capture: raw IPv4 packets, flows one after the other. */
function capture(): Uint8Array[] {
  const out: Uint8Array[] = [];
  let port = 40000;
  const cli = (): Endpoint => ({ ip: '10.0.0.1', port: port++ });
  const tlsNames = ['twitter.com', 'twitter.com.', 'Sub.Twitter.COM', 'nottwitter.com', 'example.org.',
    'evil-twitter.com', 'x.t.co', 'mobile.twitter.com.', null]; // prettier-ignore
  for (const n of tlsNames) out.push(...tcpFlow(cli(), { ip: '192.0.2.10', port: 443 }, tls(n)));
  for (const h of ['twitter.com.', 'twitter.com..', 'b.example:8080', 'NotTwitter.com', 'api.twitter.com'])
    out.push(...tcpFlow(cli(), { ip: '192.0.2.20', port: 80 }, http(h)));
  out.push(...tcpFlow(cli(), { ip: '192.0.2.30', port: 22 }, te.encode('SSH-2.0-OpenSSH_9.2\r\n')));
  let id = 1;
  for (const q of ['twitter.com', 'cdn.nottwitter.com', 'a.t.co', 'example.net']) {
    const c = cli();
    const s = { ip: '192.0.2.53', port: 53 };
    out.push(ipPacket(c, s, 17, udpHeader(c, s, dnsQuery(q, 1, id++))));
  }
  return out;
}

const RULES = `rules:
  - id: exact-tw
    action: block
    match:
      host:
        exact: [twitter.com]
  - id: ends-tw
    action: throttle
    rate: 1mbit
    match:
      host:
        endswith: [twitter.com]
  - id: tco
    action: log
    match:
      host:
        substring: [t.co]
  - id: example
    action: block
    method: drop
    match:
      host:
        suffix: [example.org, example.net]
`;

async function policyFor(trailingDot: 'literal' | 'ignore') {
  return compilePolicy(
    await parsePolicy(
      `version: 1\ndefault: allow\nnames:\n  trailing_dot: ${trailingDot}\n${RULES}`,
      `eq-${trailingDot}.yaml`,
    ),
  );
}

type Verdicts = Map<string, { host: string | null; rule_id: string | null; action: string }>;

/** The offline path: engine → records → Simulation. */
function simulate(policy: Awaited<ReturnType<typeof policyFor>>, pkts: Uint8Array[]): Verdicts {
  const recs: FlowRecord[] = [];
  const engine = new Engine({ onFlowEnd: (f, why) => recs.push(engine.record(f, why)) });
  pkts.forEach((p, i) => engine.packet(p, 101, 1000 + i));
  engine.flush();
  const sim = new Simulation(policy);
  const out: Verdicts = new Map();
  for (const r of recs) {
    const { decision } = sim.add(r);
    out.set(r.community_id, { host: r.host, rule_id: decision.rule_id, action: decision.action });
  }
  return out;
}

/** The box's decision core, fed the same packets as NFQUEUE would. */
function wire(policy: Awaited<ReturnType<typeof policyFor>>, pkts: Uint8Array[]): Verdicts {
  const events: VerdictEvent[] = [];
  const enf = new Enforcer({
    queue: 0,
    sink: { verdict: () => {} },
    policy,
    markMask: 0x00ff0000,
    throttle: 'userspace',
    counters: newCounters(),
    onVerdict: (e) => events.push(e),
    rstToServer: false,
  });
  pkts.forEach((p, i) =>
    enf.handle({ id: i + 1, mark: 0, hwProtocol: 0x0800, hook: 2, payload: p }, 1000 + i),
  );
  const out: Verdicts = new Map();
  for (const e of events)
    out.set(e.community_id, { host: e.host, rule_id: e.policy.rule_id, action: e.policy.action });
  return out;
}

describe('simulate and the box decide every flow the same way', () => {
  for (const td of ['literal', 'ignore'] as const) {
    it(`names.trailing_dot: ${td}`, async () => {
      const policy = await policyFor(td);
      const pkts = capture();
      const offline = simulate(policy, pkts);
      const inline = wire(policy, pkts);
      assert.equal(offline.size, 19, 'one record per flow');
      assert.deepEqual([...inline.keys()].sort(), [...offline.keys()].sort(), 'a verdict for every flow');
      for (const [k, v] of offline) assert.deepEqual(inline.get(k), v, `flow ${v.host}`);
      // hand-checked against docs/POLICY.md
      const byHost = (h: string) => [...offline.values()].filter((v) => v.host === h).map((v) => v.rule_id);
      assert.ok(byHost('twitter.com').includes('exact-tw'));
      assert.ok(byHost('nottwitter.com').includes('ends-tw'), 'raw endswith has no label boundary');
      assert.ok(byHost('x.t.co').includes('tco'));
      if (td === 'literal') {
        // the SNI `twitter.com.` is not the name `twitter.com`, and does not end with it either
        assert.ok(byHost('twitter.com').includes(null));
      } else assert.ok(!byHost('twitter.com').includes(null));
    });
  }
});

/**
 * The 2022 QUIC rule (docs/POLICY.md "Payload rules"): `udp dport 443, len >= 1001, payload[1..4] =
 * 00000001`, with an exempt server. Which flow it must catch is worked out by hand: bytes 1..4 of a
 * QUIC long-header packet are its version (not header-protected), the datagram size is set by us.
 */
const QUIC_RULES = `version: 1
default: allow
rules:
  - id: quic-v1
    action: block
    method: drop
    match:
      proto: udp
      dest_port: 443
      payload_len: ">=1001"
      payload: [{offset: 1, hex: "00000001"}]
      except_dest_ip: [203.0.113.0/24]
  - id: ssh-banner
    action: log
    match:
      proto: tcp
      payload_len: 10-100
      payload: [{offset: 0, hex: "5353482D"}]
`;

function quicCapture(): { pkts: Uint8Array[]; expect: Map<string, string | null> } {
  const pkts: Uint8Array[] = [];
  const expect = new Map<string, string | null>(); // "srcport" → rule id the docs say must win
  let port = 41000;
  const hello = buildClientHello({ sni: 'www.example.com', alpn: ['h3'] });
  const quic = (dst: string, dport: number, version: number, size: number, want: string | null) => {
    const c = { ip: '10.0.0.2', port: port++ };
    const s = { ip: dst, port: dport };
    const dgs = buildQuicInitials({ version, dcid: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), clientHello: hello, datagramSize: size });
    for (const d of dgs) pkts.push(ipPacket(c, s, 17, udpHeader(c, s, d)));
    expect.set(String(c.port), want);
  }; // prettier-ignore
  quic('192.0.2.40', 443, 1, 1200, 'quic-v1'); // the QUIC v1 Initial: caught
  // under 1200 bytes (RFC 9000 §14.1) the Initial is still taken and named, so the box decides it at
  // once as simulate does: 1100 ≥ 1001 is caught, 1000 is not (the harness does not run the clock)
  quic('192.0.2.40', 443, 1, 1100, 'quic-v1');
  quic('192.0.2.40', 443, 1, 1000, null);
  quic('192.0.2.40', 443, 0x6b3343cf, 1200, null); // QUIC v2: other version bytes
  quic('192.0.2.40', 8443, 1, 1200, null); // other port
  quic('203.0.113.7', 443, 1, 1200, null); // exempt server
  const tcp = (first: Uint8Array, want: string | null) => {
    const c = { ip: '10.0.0.2', port: port++ };
    pkts.push(...tcpFlow(c, { ip: '192.0.2.30', port: 22 }, first));
    expect.set(String(c.port), want);
  };
  tcp(te.encode('SSH-2.0-OpenSSH_9.2\r\n'), 'ssh-banner'); // 21 bytes, starts "SSH-"
  tcp(te.encode('ssh-2.0-x\r\n'), null); // hex compare is of bytes: lowercase "ssh-" differs
  tcp(te.encode('SSH-2.0-' + 'x'.repeat(200)), null); // 208 bytes: too long
  return { pkts, expect };
}

describe('payload-length / payload-byte / exempt-server rules: simulate and the box agree', () => {
  it('the 2022 QUIC rule and a TCP first-bytes rule', async () => {
    const policy = compilePolicy(await parsePolicy(QUIC_RULES, 'eq-quic.yaml'));
    const { pkts, expect } = quicCapture();
    const recs: FlowRecord[] = [];
    const engine = new Engine({ onFlowEnd: (f, why) => recs.push(engine.record(f, why)) });
    pkts.forEach((p, i) => engine.packet(p, 101, 1000 + i));
    engine.flush();
    assert.equal(recs.length, expect.size, 'one record per flow');
    // the records carry what the rule matches on
    const v1 = recs.find((r) => r.src_port === 41000)!;
    assert.equal(v1.first_payload?.len, 1200);
    assert.equal(v1.first_payload?.head.slice(2, 10), '00000001');
    assert.equal(v1.first_payload?.head.length, 32, '16 bytes kept');
    const offline = simulate(policy, pkts);
    const inline = wire(policy, pkts);
    assert.deepEqual([...inline.keys()].sort(), [...offline.keys()].sort(), 'a verdict for every flow');
    for (const [k, v] of offline) assert.deepEqual(inline.get(k), v, `flow ${k}`);
    for (const r of recs)
      assert.equal(
        offline.get(r.community_id)?.rule_id,
        expect.get(String(r.src_port)),
        `port ${r.src_port}`,
      );
  });
});

describe('a QUIC Initial in a datagram under 1200 bytes', () => {
  it('padded to 1100 bytes: simulate and the box both name it and decide it by its name, at once', async () => {
    // a name rule first, the 2022 length rule after it: a named flow gets the name rule
    const policy = compilePolicy(
      await parsePolicy(
        `version: 1
default: allow
rules:
  - id: block-example
    action: block
    match: {host: {suffix: [example.com]}}
  - id: quic-v1
    action: block
    method: drop
    match: {proto: udp, dest_port: 443, payload_len: ">=1001", payload: [{offset: 1, hex: "00000001"}]}
`,
        'eq-small-quic.yaml',
      ),
    );
    const c = { ip: '10.0.0.2', port: 42000 };
    const srv = { ip: '192.0.2.40', port: 443 };
    const dgs = buildQuicInitials({
      dcid: Uint8Array.from([8, 7, 6, 5, 4, 3, 2, 1]),
      clientHello: buildClientHello({ sni: 'www.example.com', alpn: ['h3'] }),
      datagramSize: 1100,
    });
    assert.equal(dgs.length, 1);
    assert.equal(dgs[0].length, 1100);
    const pkts = [ipPacket(c, srv, 17, udpHeader(c, srv, dgs[0]))];
    const recs: FlowRecord[] = [];
    const engine = new Engine({ onFlowEnd: (f, why) => recs.push(engine.record(f, why)) });
    engine.packet(pkts[0], 101, 1000);
    engine.flush();
    assert.equal(recs.length, 1);
    assert.equal(recs[0].host, 'www.example.com', 'named offline');
    assert.equal(recs[0].app_proto, 'quic');
    assert.ok(recs[0].anomalies.includes('quic_small_datagram'), JSON.stringify(recs[0].anomalies));
    const offline = simulate(policy, pkts);
    const inline = wire(policy, pkts); // one datagram, no clock: a verdict only if the box named it
    assert.equal(inline.size, 1, 'the box decided at the first datagram');
    assert.deepEqual([...inline.values()], [...offline.values()]);
    assert.deepEqual([...offline.values()][0], {
      host: 'www.example.com',
      rule_id: 'block-example',
      action: 'block',
    });
  });
});
