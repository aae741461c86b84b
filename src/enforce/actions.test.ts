/**
 * @module enforce/actions.test
 * The block methods stall / curtain / degrade / drop and residual blocking through the real Enforcer
 * (real engine, real compiled policy, a real ClientHello); the sink records verdicts and marks as the
 * kernel would receive them. Also the loader's errors for misplaced parameters, and a trigger flood
 * against the residual table's cap.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy, compilePolicy } from '../policy/index.js';
import { NF_ACCEPT, NF_DROP } from './nfq.js';
import { C } from './counters.js';
import { redirectResponse } from './redirect.js';
import { MASK, Rig } from './testing/verdict-rig.js';
import { MARK_DROP, MARK_POLICE, MARK_RST, markValue } from './rules.js';
import { ResidualTable } from './residual.js';
import { captureClientHello } from './testing/ch-client.js';
import { Conv } from './testing/packets.js';
import type { CompiledPolicy } from '../policy/types.js';
const mk = (v: number): number => markValue(MASK, v);

async function policy(rule: string): Promise<CompiledPolicy> {
  const text = `version: 1
default: allow
inspection: {mode: normal, hold_ms: 500}
rules:
  - id: r
    match: {host: {exact: [blocked.example]}}
${rule
  .split('\n')
  .map((l) => '    ' + l)
  .join('\n')}
`;
  return compilePolicy(await parsePolicy(text, 'test.yaml'));
}

const ACC_POLICE: [number, number] = [NF_ACCEPT, mk(MARK_POLICE)];
const ACC_DROP: [number, number] = [NF_ACCEPT, mk(MARK_DROP)];

describe('block methods and residual blocking', () => {
  let ch: Buffer;
  before(async () => {
    ch = await captureClientHello('blocked.example');
  });

  it('stall (SNI-II): the trigger and after_packets more pass (either direction), then the drop mark', async () => {
    const r = new Rig(await policy('action: block\nmethod: stall\nafter_packets: 3'));
    const c = new Conv();
    r.handshake(c);
    assert.deepEqual(r.feed(c.c(ch)), ACC_POLICE, 'the ClientHello passes');
    assert.equal(r.events[0].verdict.enforcement, 'stall');
    assert.deepEqual(r.feed(c.s(new Uint8Array(1200))), ACC_POLICE, '1st after');
    assert.deepEqual(r.feed(c.ack()), ACC_POLICE, '2nd after');
    assert.deepEqual(r.feed(c.s(new Uint8Array(1200))), ACC_POLICE, '3rd after');
    assert.deepEqual(r.feed(c.s(new Uint8Array(1200))), ACC_DROP, '4th: cut, the kernel drops from now on');
    assert.equal(r.counters[C.cutDrop], 1);
  });

  it('curtain: client data passes; server→client payload passes up to after_bytes, the packet crossing it is dropped', async () => {
    const r = new Rig(await policy('action: block\nmethod: curtain\nafter_bytes: 1000'));
    const c = new Conv();
    r.handshake(c);
    assert.deepEqual(r.feed(c.c(ch)), ACC_POLICE);
    assert.deepEqual(r.feed(c.s(new Uint8Array(400))), ACC_POLICE, 'bytes 1..400');
    assert.deepEqual(r.feed(c.c(new Uint8Array(2000))), ACC_POLICE, 'client bytes do not count');
    assert.deepEqual(r.feed(c.s(new Uint8Array(600))), ACC_POLICE, 'bytes 401..1000: exactly at the curtain');
    assert.deepEqual(r.feed(c.s(new Uint8Array(1))), ACC_DROP, 'byte 1001: frozen');
    assert.equal(r.events[0].verdict.enforcement, 'curtain');
  });

  it('degrade: p = 1 drops every packet after the trigger; p = 0.5 drops about half (binomial bound)', async () => {
    const r = new Rig(await policy('action: block\nmethod: degrade\nprobability: 1'));
    const c = new Conv();
    r.handshake(c);
    r.feed(c.c(ch));
    for (let i = 0; i < 20; i++) assert.deepEqual(r.feed(c.s(new Uint8Array(100))), [NF_DROP, 0]);
    const r2 = new Rig(await policy('action: block\nmethod: degrade\nprobability: 0.5'));
    const c2 = new Conv();
    r2.handshake(c2);
    // the trigger is a packet like the others: it may be dropped too
    let dropped = r2.feed(c2.c(ch))[0] === NF_DROP ? 1 : 0;
    const n = 2000;
    for (let i = 0; i < n; i++) if (r2.feed(c2.s(new Uint8Array(100)))[0] === NF_DROP) dropped++;
    // mean ≈ 1000, sd ≈ 22.4: ±6 sd
    assert.ok(dropped > 866 && dropped < 1135, `dropped ${dropped} of ${n + 1}`);
    assert.equal(r2.counters[C.degradeDrop], dropped);
  });

  it('drop (SNI-IV): the ClientHello itself gets the drop mark (never reaches the server)', async () => {
    const r = new Rig(await policy('action: block\nmethod: drop'));
    const c = new Conv();
    r.handshake(c);
    assert.deepEqual(r.feed(c.c(ch)), ACC_DROP);
  });

  it('redirect: the HTTP request gets the drop mark (the box answers it; see actions-lab.test)', async () => {
    const r = new Rig(await policy('action: block\nmethod: redirect\nlocation: http://b.example/'));
    const c = new Conv();
    r.handshake(c);
    assert.deepEqual(r.feed(c.c(Buffer.from('GET / HTTP/1.1\r\nHost: blocked.example\r\n\r\n'))), ACC_DROP);
    assert.equal(r.events[0].verdict.enforcement, 'redirect');
    assert.deepEqual(
      Buffer.from(redirectResponse('http://b.example/')).toString(),
      'HTTP/1.1 307 Temporary Redirect\r\nLocation: http://b.example/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
    );
  });

  it('rst-rewrite (SNI-I): the trigger passes; the first server packet becomes a RST/ACK with its own seq, checksums valid', async () => {
    const r = new Rig(await policy('action: block\nmethod: rst-rewrite'));
    const c = new Conv();
    r.handshake(c);
    assert.deepEqual(r.feed(c.c(ch)), ACC_POLICE, 'the ClientHello reaches the server');
    const [v, m] = r.feed(c.s(new Uint8Array(1200)));
    assert.deepEqual([v, m], ACC_POLICE, 'the rewritten packet is accepted (not under the drop mark)');
    const b = r.rewritten.get(r.id);
    assert.ok(b, 'the packet was replaced');
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    assert.equal(b.length, 40);
    assert.equal(dv.getUint16(2), 40, 'IP total length');
    assert.deepEqual([...b.subarray(12, 20)], [10, 0, 0, 2, 10, 0, 0, 1], 'server → client');
    assert.deepEqual([dv.getUint16(20), dv.getUint16(22)], [443, 40000]);
    assert.equal(dv.getUint32(24), 5000, "the server's seq (Conv: ISN 4999 + 1)");
    assert.equal(dv.getUint32(28), 1000 + ch.length, 'acknowledges the ClientHello');
    assert.equal(b[32] >> 4, 5, 'no options');
    assert.equal(b[33], 0x14, 'RST|ACK');
    // one's-complement sums over the header (IP) and pseudo-header + segment (TCP) fold to 0xffff
    const sum = (parts: number[][]): number => {
      let x = 0;
      for (const p of parts) for (let i = 0; i < p.length; i += 2) x += (p[i] << 8) | (p[i + 1] ?? 0);
      while (x > 0xffff) x = (x & 0xffff) + (x >>> 16);
      return x;
    };
    assert.equal(sum([[...b.subarray(0, 20)]]), 0xffff, 'IPv4 header checksum');
    assert.equal(
      sum([[...b.subarray(12, 20)], [0, 6, 0, 20], [...b.subarray(20, 40)]]),
      0xffff,
      'TCP checksum',
    );
    assert.deepEqual(r.feed(c.s(new Uint8Array(1200))), ACC_DROP, 'later server packets: dropped');
    assert.deepEqual(r.feed(c.c(new Uint8Array(10))), ACC_DROP, 'client packets: dropped');
    assert.equal(r.rewritten.size, 1);
    assert.equal(r.counters[C.rstRewritten], 1);
    assert.equal(r.events[0].verdict.enforcement, 'rst-rewrite');
  });

  it('rst-rewrite in emulation mode (tspu-2021): the server packet after the trigger is rewritten too', async () => {
    const text = `version: 1
default: allow
inspection: {mode: tspu-2021, hold_ms: 0, max_packets: 20}
rules:
  - id: r
    action: block
    method: rst-rewrite
    match: {proto: tcp, app_proto: [tls], host: {exact: [blocked.example]}}
`;
    const r = new Rig(compilePolicy(await parsePolicy(text, 'emu.yaml')));
    const c = new Conv();
    r.handshake(c);
    r.feed(c.c(ch));
    assert.equal(r.events.length, 1, 'the ClientHello triggered');
    r.feed(c.s(new Uint8Array(1200)));
    assert.equal(r.rewritten.get(r.id)?.[33], 0x14, 'rewritten into RST/ACK');
    assert.deepEqual(r.feed(c.s(new Uint8Array(1200))), ACC_DROP);
  });

  it('address blocking covers ICMP: an address-only block rule drops ICMP both ways; a rule with proto does not', async () => {
    const pol = async (extra: string): Promise<CompiledPolicy> =>
      compilePolicy(
        await parsePolicy(
          `version: 1\ndefault: allow\nrules:\n  - id: addr\n    action: block\n    match: {dest_ip: [10.0.0.2/32]${extra}}\n`,
          'icmp.yaml',
        ),
      );
    // IPv4 + ICMP echo request (type 8), written by hand: 28 bytes
    const icmp = (src: number[], dst: number[]): Uint8Array =>
      Uint8Array.from([
        0x45,
        0,
        0,
        28,
        0,
        1,
        0,
        0,
        64,
        1,
        0,
        0,
        ...src,
        ...dst,
        8,
        0,
        0xf7,
        0xfe,
        0,
        1,
        0,
        0,
      ]);
    const r = new Rig(await pol(''));
    assert.deepEqual(
      r.feed(icmp([10, 0, 0, 1], [10, 0, 0, 2])),
      ACC_DROP,
      'echo request to the blocked address',
    );
    assert.deepEqual(
      r.feed(icmp([10, 0, 0, 2], [10, 0, 0, 1])),
      ACC_DROP,
      'ICMP from it toward the subscriber',
    );
    assert.deepEqual(r.feed(icmp([10, 0, 0, 1], [10, 0, 0, 3])), [NF_ACCEPT, 0], 'another address');
    assert.equal(r.counters[C.icmpDrop], 2);
    const r2 = new Rig(await pol(', proto: tcp'));
    assert.deepEqual(
      r2.feed(icmp([10, 0, 0, 1], [10, 0, 0, 2])),
      [NF_ACCEPT, 0],
      'a TCP-only rule leaves ICMP alone',
    );
    assert.equal(r2.counters[C.icmpDrop], 0);
  });

  it('address blocking covers ICMPv6 too, but never neighbour discovery', async () => {
    const p6 = compilePolicy(
      await parsePolicy(
        'version: 1\ndefault: allow\nrules:\n  - id: addr6\n    action: block\n    match: {dest_ip: [2001:db8::2/128]}\n',
        'icmp6.yaml',
      ),
    );
    // IPv6 fixed header (RFC 8200) + an 8-byte ICMPv6 message (RFC 4443), written by hand
    const a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const b = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const c = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3];
    const icmp6 = (src: number[], dst: number[], type: number): Uint8Array =>
      Uint8Array.from([0x60, 0, 0, 0, 0, 8, 58, 64, ...src, ...dst, type, 0, 0, 0, 0, 0, 0, 1]);
    const r = new Rig(p6);
    assert.deepEqual(r.feed(icmp6(a, b, 128)), ACC_DROP, 'echo request to the blocked address');
    assert.deepEqual(r.feed(icmp6(b, a, 129)), ACC_DROP, 'echo reply from it');
    assert.deepEqual(r.feed(icmp6(a, c, 128)), [NF_ACCEPT, 0], 'another address');
    for (const t of [133, 134, 135, 136, 137])
      assert.deepEqual(r.feed(icmp6(a, b, t)), [NF_ACCEPT, 0], `neighbour discovery type ${t} passes`);
    assert.equal(r.counters[C.icmpDrop], 2);
  });

  it('residual 5-tuple: a new SYN on the same 5-tuple is reset until the window ends; another source port is not', async () => {
    const r = new Rig(await policy('action: block\nresidual: {seconds: 75}'));
    const c = new Conv(40000);
    r.handshake(c, 0);
    assert.deepEqual(r.feed(c.c(ch), 0), [NF_ACCEPT, mk(MARK_RST)]);
    r.enf.engine.endFlow(r.enf.engine.packet(c.c(new Uint8Array(0)), 101, 1)!);
    const again = new Conv(40000);
    assert.deepEqual(r.feed(again.syn(), 74_999), [NF_ACCEPT, mk(MARK_RST)], 'inside 75 s: SYN reset');
    assert.equal(r.events.at(-1)!.verdict.reason, 'residual');
    const other = new Conv(40001);
    assert.deepEqual(r.feed(other.syn(), 74_999), [NF_ACCEPT, 0], 'other 5-tuple: inspected as usual');
    r.enf.engine.endFlow(r.enf.engine.packet(again.ack(), 101, 75_000)!);
    const late = new Conv(40000);
    assert.deepEqual(r.feed(late.syn(), 75_000), [NF_ACCEPT, 0], 'at 75 s: free again');
    assert.equal(r.counters[C.residualHits], 1);
  });

  it('residual address-pair: any new connection between the two addresses is dropped (stall becomes drop)', async () => {
    const r = new Rig(
      await policy(
        'action: block\nmethod: stall\nafter_packets: 1\nresidual: {seconds: 420, key: address-pair}',
      ),
    );
    const c = new Conv(40000);
    r.handshake(c);
    r.feed(c.c(ch));
    assert.deepEqual(r.feed(new Conv(50000).syn(), 419_000), ACC_DROP);
    assert.deepEqual(r.feed(new Conv(50001, [10, 0, 0, 9]).syn(), 419_000), [NF_ACCEPT, 0], 'other client');
  });

  it('hostile: a flood of 5000 triggers on distinct 5-tuples keeps the residual table at its cap', async () => {
    const r = new Rig(await policy('action: block\nmethod: drop\nresidual: {seconds: 420}'), 64);
    for (let i = 0; i < 5000; i++) {
      const c = new Conv(1024 + i);
      r.handshake(c, i);
      assert.deepEqual(r.feed(c.c(ch), i), ACC_DROP);
    }
    const t = (r.enf as unknown as { residual: ResidualTable }).residual;
    assert.equal(t.size, 64);
    assert.equal(r.counters[C.residualEvicted], 5000 - 64);
    // the newest are still blocked, the evicted oldest not
    assert.deepEqual(r.feed(new Conv(1024 + 4999).syn(), 6000), ACC_DROP);
    assert.deepEqual(r.feed(new Conv(1024).syn(), 6000), [NF_ACCEPT, 0]);
  });

  it('loader: misplaced or missing parameters are rejected naming the field; defaults are the documented values', async () => {
    const bad = async (rule: string, re: RegExp): Promise<void> => {
      await assert.rejects(policy(rule), (e: Error) => re.test(e.message), rule);
    };
    await bad('action: block\nafter_packets: 3', /after_packets.*only to block method 'stall'.*method 'rst'/);
    await bad(
      'action: throttle\nrate: 1mbit\nafter_bytes: 10',
      /after_bytes.*only to block method 'curtain'/,
    );
    await bad('action: block\nmethod: degrade', /needs 'probability'/);
    await bad('action: block\nmethod: degrade\nprobability: 1.5', /probability/);
    await bad(
      'action: throttle\nrate: 1mbit\nresidual: {seconds: 5}',
      /'residual' applies only to action 'block'/,
    );
    await bad('action: block\nresidual: {seconds: 5, key: ip}', /key/);
    await bad('action: block\nmethod: curtain\nafter_bytes: lots', /after_bytes/);
    await bad('action: block\nmethod: redirect', /needs 'location'/);
    await bad('action: block\nlocation: http://b.example/', /location.*only to block method 'redirect'/);
    // hostile: a location that would inject a header, or is not a URL
    await bad(
      'action: block\nmethod: redirect\nlocation: "http://b.example/\\r\\nSet-Cookie: x=1"',
      /location/,
    );
    await bad('action: block\nmethod: redirect\nlocation: /relative', /location/);
    const stall = (await policy('action: block\nmethod: stall')).policy.rules[0];
    assert.equal(stall.block?.after_packets, 6, 'SNI-II: 5–8 packets (IMC22), default 6');
    const cur = (await policy('action: block\nmethod: curtain')).policy.rules[0];
    assert.equal(cur.block?.after_bytes, 16384, '2025 curtain ~16 KB');
    const res = (await policy('action: block\nresidual: {seconds: 75}')).policy.rules[0];
    assert.equal(res.block?.residual_key, '5-tuple');
  });
});

describe('ResidualTable', () => {
  it('expires entries at their time and evicts the oldest when full', () => {
    const t = new ResidualTable(2);
    const d = { rule_id: 'x', action: 'block' as const, method: 'drop' as const };
    t.add('a', 100, d);
    t.add('b', 100, d);
    t.add('c', 100, d);
    assert.equal(t.size, 2);
    assert.equal(t.get('a', 0), null);
    assert.equal(t.get('b', 99), d);
    assert.equal(t.get('b', 100), null);
    assert.equal(t.size, 1);
    assert.throws(() => new ResidualTable(0), RangeError);
  });
});
