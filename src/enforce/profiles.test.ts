/**
 * @module enforce/profiles.test
 * Every shipped profile loads, and its signature behaviour through the real Enforcer with real
 * ClientHellos (verdict and mark per packet, as the kernel receives them). The shipped residual
 * timers and method parameters are checked against the documented values (docs/PROFILES.md,
 * tspu-later.md), written here by hand.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compilePolicy, loadPolicyFile } from '../policy/index.js';
import { NF_ACCEPT } from './nfq.js';
import { MARK_ALLOW, MARK_DROP, MARK_POLICE, markValue } from './rules.js';
import { captureClientHello } from './testing/ch-client.js';
import { Conv } from './testing/packets.js';
import { MASK, Rig } from './testing/verdict-rig.js';
import type { CompiledPolicy, Rule } from '../policy/types.js';
import { buildClientHello } from '../gen/clienthello.js';
import { ipPacket, udpHeader } from '../gen/frames.js';
import { buildQuicInitials } from '../gen/quic-initial.js';

// from src/enforce (tsx) or dist/src/enforce (built)
const dir = [new URL('../../profiles/', import.meta.url), new URL('../../../profiles/', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((d) => existsSync(`${d}tspu-2022.yaml`))!;
const mk = (v: number): number => markValue(MASK, v);
const load = async (name: string): Promise<CompiledPolicy> =>
  compilePolicy(await loadPolicyFile(`${dir}${name}.yaml`));
const rule = (p: CompiledPolicy, id: string): Rule => {
  const r = p.policy.rules.find((x) => x.id === id);
  assert.ok(r, id);
  return r;
};

describe('profiles', () => {
  const ch: Record<string, Buffer> = {};
  before(async () => {
    for (const n of ['twitter.com', 'dns.google', 'example.org', 'rr1.googlevideo.com', 'x.hosting'])
      ch[n] = await captureClientHello(n);
  });

  it('every profile in profiles/ loads and compiles', async () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length >= 7, files.join(' '));
    for (const f of files) await load(f.replace(/\.yaml$/, ''));
  });

  it('tspu-2021-05: mobile throttles twitter.com, fixed lets it through', async () => {
    const mob = new Rig(await load('tspu-2021-05-mobile'));
    const c = new Conv();
    mob.handshake(c);
    assert.deepEqual(mob.feed(c.c(ch['twitter.com'])), [NF_ACCEPT, mk(MARK_POLICE)]);
    assert.equal(mob.events[0].verdict.action, 'throttle');
    // subscriber side: an outside host (198.51.100.7) connecting in to a subscriber with a Twitter
    // ClientHello does not trigger
    const inb = new Conv(443, [198, 51, 100, 7], [10, 0, 0, 5]);
    mob.handshake(inb);
    assert.deepEqual(mob.feed(inb.c(ch['twitter.com'])), [NF_ACCEPT, 0]);
    assert.deepEqual(mob.feed(inb.s(new Uint8Array(1000))), [NF_ACCEPT, 0]);
    assert.equal(mob.events.length, 1, 'only the subscriber-initiated connection triggered');
    const fix = new Rig(await load('tspu-2021-05-fixed'));
    const c2 = new Conv();
    fix.handshake(c2);
    // passes unmarked: the 2021 box keeps looking for the packet window, nothing triggers
    assert.deepEqual(fix.feed(c2.c(ch['twitter.com'])), [NF_ACCEPT, 0]);
    assert.deepEqual(fix.feed(c2.s(new Uint8Array(1000))), [NF_ACCEPT, 0]);
    assert.equal(fix.events.length, 0, 'no trigger');
  });

  it('tspu-2022: Twitter stalls after 6 packets, DoH names are reset by the rewritten reply (SNI-I), both leave a residual window', async () => {
    const p = await load('tspu-2022');
    // documented values (IMC22): SNI-II 420 s, SNI-I 75 s, 5–8 packets; keyed on the 5-tuple
    assert.deepEqual(rule(p, 'twitter-sni2').block, {
      after_packets: 6,
      residual_s: 420,
      residual_key: '5-tuple',
    });
    assert.deepEqual(rule(p, 'doh-names').block, { residual_s: 75, residual_key: '5-tuple' });
    const r = new Rig(p);
    const c = new Conv(40000);
    r.handshake(c);
    assert.deepEqual(r.feed(c.c(ch['twitter.com'])), [NF_ACCEPT, mk(MARK_POLICE)]);
    for (let i = 0; i < 6; i++)
      assert.deepEqual(r.feed(c.s(new Uint8Array(1000))), [NF_ACCEPT, mk(MARK_POLICE)]);
    assert.deepEqual(r.feed(c.s(new Uint8Array(1000))), [NF_ACCEPT, mk(MARK_DROP)], '7th packet: cut');
    const d = new Conv(40001, [10, 0, 0, 1], [10, 0, 0, 3]);
    r.handshake(d, 10);
    // SNI-I: the ClientHello passes, the server's reply leaves as a RST/ACK (flags byte 0x14)
    assert.deepEqual(r.feed(d.c(ch['dns.google']), 10), [NF_ACCEPT, mk(MARK_POLICE)]);
    assert.deepEqual(r.feed(d.s(new Uint8Array(1000)), 10), [NF_ACCEPT, mk(MARK_POLICE)]);
    assert.equal(r.rewritten.get(r.id)?.[33], 0x14, 'rewritten into RST/ACK');
    assert.deepEqual(r.feed(d.s(new Uint8Array(1000)), 10), [NF_ACCEPT, mk(MARK_DROP)]);
    // same server address, another name: no RST
    const o = new Conv(40002, [10, 0, 0, 1], [10, 0, 0, 3]);
    r.handshake(o, 20);
    assert.deepEqual(r.feed(o.c(ch['example.org']), 20), [NF_ACCEPT, mk(MARK_ALLOW)]);
  });

  it('tspu-2022: a QUIC v1 Initial to udp/443 is dropped; QUIC v2 and another port pass', async () => {
    const p = await load('tspu-2022');
    assert.deepEqual(rule(p, 'quic-v1').block, { residual_s: 420, residual_key: '5-tuple' });
    const r = new Rig(p);
    const hello = buildClientHello({ sni: 'www.example.com', alpn: ['h3'] });
    const dcid = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    // the first datagram of a QUIC connection (1200 bytes, RFC 9000 §14.1); bytes 1..4 are the version
    const first = (version: number, sport: number, dport: number, now: number): [number, number] => {
      const c = { ip: '10.0.0.1', port: sport };
      const s = { ip: '10.0.0.2', port: dport };
      const [d] = buildQuicInitials({ version, dcid, clientHello: hello, datagramSize: 1200 });
      assert.equal(d.length, 1200);
      return r.feed(ipPacket(c, s, 17, udpHeader(c, s, d)), now);
    };
    // written by hand: v1 = 00000001, v2 = 6b3343cf (RFC 9369)
    assert.deepEqual(first(1, 41000, 443, 0), [NF_ACCEPT, mk(MARK_DROP)], 'QUIC v1: dropped');
    assert.equal(r.events.at(-1)?.policy.rule_id, 'quic-v1');
    const n = r.events.length;
    assert.notDeepEqual(first(0x6b3343cf, 41001, 443, 10)[1], mk(MARK_DROP), 'QUIC v2: not dropped');
    assert.notDeepEqual(first(1, 41002, 8443, 20)[1], mk(MARK_DROP), 'udp/8443: not dropped');
    assert.ok(
      r.events.slice(n).every((e) => e.policy.rule_id !== 'quic-v1'),
      'the rule did not fire again',
    );
  });

  it('tspu-2024: a googlevideo.com ClientHello split over two segments is reassembled and throttled', async () => {
    const r = new Rig(await load('tspu-2024'));
    const c = new Conv();
    r.handshake(c);
    const h = ch['rr1.googlevideo.com'];
    r.feed(c.c(h.subarray(0, 40)));
    assert.deepEqual(r.feed(c.c(h.subarray(40))), [NF_ACCEPT, mk(MARK_POLICE)]);
    assert.equal(r.events[0].policy.rule_id, 'googlevideo-tls');
  });

  it('tspu-2025: to a listed range the transfer stops after byte 16384; elsewhere it does not', async () => {
    const p = await load('tspu-2025');
    assert.equal(rule(p, 'hosting-curtain').block?.after_bytes, 16384);
    const r = new Rig(p);
    const c = new Conv(40000, [10, 0, 0, 1], [192, 0, 2, 10]);
    r.handshake(c);
    r.feed(c.c(ch['x.hosting']));
    let passed = 0;
    for (let i = 0; i < 40; i++) {
      const [, m] = r.feed(c.s(new Uint8Array(1000)));
      if (m === mk(MARK_DROP)) break;
      passed += 1000;
    }
    assert.equal(passed, 16000, '16 whole 1000-byte segments fit under 16384 bytes; the 17th is dropped');
    const r2 = new Rig(p);
    const c2 = new Conv(40000, [10, 0, 0, 1], [10, 0, 0, 2]);
    r2.handshake(c2);
    assert.deepEqual(r2.feed(c2.c(ch['x.hosting'])), [NF_ACCEPT, mk(MARK_ALLOW)]);
  });
});
