/**
 * @module enforce/tspu2021.test
 * The 2021 inspection mode, packet by packet through the Engine as the box runs it, against the
 * behaviour documented in brief §5, with a real ClientHello (Node/OpenSSL's, captured from
 * tls.connect) and hand-built TCP/IPv4 packets.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseClientHelloBody } from '../dissect/tls.js';
import { firstRecordSni, isProxyPreamble, isTlsRecord } from './tspu2021.js';
import { TspuRig } from './testing/tspu-rig.js';
import { captureClientHello, twoRecords } from './testing/ch-client.js';
import { Conv, RST, ACK, FIN } from './testing/packets.js';

const parse = (b: Uint8Array): string | null | undefined => {
  try {
    return parseClientHelloBody(b, 't').sni;
  } catch {
    return undefined;
  }
};

function inspector(window = 15) {
  return new TspuRig<string>(parse, (sni) => (sni === 'twitter.com' ? 'throttle' : null), {
    windowPackets: window,
  });
}

describe('tspu-2021 inspector', () => {
  let ch: Buffer;
  let fake: Buffer;
  before(async () => {
    ch = await captureClientHello('twitter.com');
    fake = await captureClientHello('example.org');
  });

  function open(t: TspuRig<string>, c = new Conv()): Conv {
    assert.ok(t.packet(c.syn(), 0));
    assert.ok(t.packet(c.synAck(), 1));
    assert.ok(t.packet(c.ack(), 2));
    return c;
  }

  it('parses only a ClientHello that fits in the first record', () => {
    assert.equal(firstRecordSni(ch, parse), 'twitter.com');
    assert.equal(firstRecordSni(ch.subarray(0, ch.length - 1), parse), null, 'record does not fit');
    assert.equal(firstRecordSni(twoRecords(ch, 60), parse), null, 'message cut across records');
    const ccs = Buffer.concat([Buffer.from([0x14, 3, 3, 0, 1, 1]), ch]);
    assert.equal(firstRecordSni(ccs, parse), null, 'a ChangeCipherSpec record first');
    assert.ok(isTlsRecord(ccs));
    assert.ok(isProxyPreamble(Buffer.from('CONNECT twitter.com:443 HTTP/1.1\r\n')));
    assert.ok(isProxyPreamble(Buffer.from([5, 1, 0])));
    assert.ok(!isProxyPreamble(Buffer.from('hello world')));
  });

  it('tracks only connections whose SYN it saw', () => {
    const t = inspector();
    const c = new Conv();
    assert.equal(t.packet(c.c(ch), 0), null);
  });

  it('triggers on the ClientHello in the first data packet', () => {
    const t = inspector();
    const c = open(t);
    const f = t.packet(c.c(ch), 3)!;
    assert.equal(f.decision, 'throttle');
    assert.equal(f.sni, 'twitter.com');
    assert.equal(f.lastToServer, true);
  });

  it('triggers on a ClientHello sent by the server side too', () => {
    const t = inspector();
    const c = open(t);
    assert.equal(t.packet(c.s(ch), 3)!.decision, 'throttle');
  });

  it('split across segments: no trigger', () => {
    const t = inspector();
    const c = open(t);
    assert.equal(t.packet(c.c(ch.subarray(0, 40)), 3)!.decision, null);
    assert.equal(t.packet(c.c(ch.subarray(40)), 4)!.decision, null);
  });

  it('out of order (second part first): no trigger', () => {
    const t = inspector();
    const c = open(t);
    assert.ok(ch.length - 200 >= 101);
    const f = t.packet(c.c(ch.subarray(200), undefined, 200), 3)!;
    assert.equal(f.inspecting, false, 'a ≥101-byte non-TLS first packet ends inspection');
    assert.equal(t.packet(c.c(ch.subarray(0, 200), undefined, 0), 4)!.decision, null);
  });

  it('record-fragmented, or a CCS record first: no trigger', () => {
    const t = inspector();
    const c = open(t);
    assert.equal(t.packet(c.c(twoRecords(ch, 60)), 3)!.decision, null);
    const t2 = inspector();
    const c2 = open(t2);
    assert.equal(t2.packet(c2.c(Buffer.concat([Buffer.from([0x14, 3, 3, 0, 1, 1]), ch])), 3)!.decision, null);
  });

  it('junk first: ≥ 101 bytes ends inspection, < 101 bytes does not', () => {
    const t = inspector();
    const c = open(t);
    t.packet(c.c(Buffer.alloc(101, 0x42)), 3);
    assert.equal(t.packet(c.c(ch), 4)!.decision, null);
    const t2 = inspector();
    const c2 = open(t2);
    t2.packet(c2.c(Buffer.alloc(100, 0x42)), 3);
    assert.equal(t2.packet(c2.c(ch), 4)!.decision, 'throttle');
  });

  it('a fake ClientHello first opens a window: the real one inside it triggers, after it does not', () => {
    const t = inspector(15);
    const c = open(t);
    t.packet(c.c(fake), 3);
    for (let i = 0; i < 14; i++) t.packet(c.s(Buffer.alloc(200, 0x17)), 4);
    assert.equal(t.packet(c.c(ch), 5)!.decision, 'throttle', '15th packet of the window');
    const t2 = inspector(15);
    const c2 = open(t2);
    t2.packet(c2.c(fake), 3);
    for (let i = 0; i < 15; i++) t2.packet(c2.s(Buffer.alloc(200, 0x17)), 4);
    const f = t2.packet(c2.c(ch), 5)!;
    assert.equal(f.decision, null, 'window over');
    assert.equal(f.inspecting, false);
  });

  it('a proxy preamble opens the window too', () => {
    const t = inspector();
    const c = open(t);
    t.packet(
      c.c(Buffer.from('CONNECT twitter.com:443 HTTP/1.1\r\nHost: twitter.com\r\n\r\n'.padEnd(120, ' '))),
      3,
    );
    assert.equal(t.packet(c.c(ch), 4)!.decision, 'throttle');
  });

  it('RST and FIN do not clear the state; 10 minutes idle does', () => {
    const t = inspector();
    const c = open(t);
    t.packet(c.c(ch), 3);
    t.packet(c.c(new Uint8Array(0), RST), 4);
    t.packet(c.s(new Uint8Array(0), FIN | ACK), 5);
    assert.equal(
      t.packet(c.s(Buffer.alloc(100)), 600_000)!.decision,
      'throttle',
      'still throttled after RST/FIN',
    );
    assert.equal(t.packet(c.s(Buffer.alloc(100)), 600_000 + 600_001), null, 'forgotten after 10 min idle');
    assert.equal(t.size, 0);
  });
});
