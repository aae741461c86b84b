/**
 * @module dissect/quic-q050.test
 * Google Q050: IETF-style protected Initials (Q050 salt, CRYPTO frame type 0x08) whose CRYPTO stream
 * carries a QUIC-crypto CHLO tag/value map rather than a TLS ClientHello. The CHLO here is built by
 * hand from the gQUIC message layout; the expected name is the one written into it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QuicInitialAssembler, looksLikeQuicInitial } from './quic.js';
import { buildQuicInitials } from '../gen/quic-initial.js';

const Q050 = 0x51303530;

/** CHLO with tags in ascending order: PAD, SNI, VER. */
function chlo(sni: string): Uint8Array {
  const tags: [string, Uint8Array][] = [
    ['PAD\0', new Uint8Array(40)],
    ['SNI\0', new TextEncoder().encode(sni)],
    ['VER\0', new TextEncoder().encode('Q050')],
  ];
  const head = 8 + tags.length * 8;
  const total = head + tags.reduce((a, [, v]) => a + v.length, 0);
  const out = new Uint8Array(total);
  out.set(new TextEncoder().encode('CHLO'), 0);
  out[4] = tags.length;
  let end = 0;
  let vo = head;
  tags.forEach(([tag, v], i) => {
    out.set(new TextEncoder().encode(tag), 8 + i * 8);
    end += v.length;
    const o = 8 + i * 8 + 4;
    out[o] = end & 255;
    out[o + 1] = (end >> 8) & 255;
    out.set(v, vo);
    vo += v.length;
  });
  return out;
}

test('Q050 Initial with a CHLO in CRYPTO frames is named (one and two packets, either order)', () => {
  for (const [packets, reverse] of [
    [1, false],
    [2, false],
    [2, true],
  ] as const) {
    const dgs = buildQuicInitials({
      version: Q050,
      dcid: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]),
      clientHello: chlo('www.gstatic.com'),
      packets,
      reverse,
    });
    assert.ok(looksLikeQuicInitial(dgs[0]));
    const a = new QuicInitialAssembler();
    let r = a.feed(dgs[0]);
    for (const d of dgs.slice(1)) r = a.feed(d);
    assert.equal(r.status, 'done', `${packets} ${reverse}`);
    if (r.status === 'done') {
      assert.equal(r.version, Q050);
      assert.equal(r.hello.sni, 'www.gstatic.com');
      assert.equal(r.hello.cipherSuites.length, 0);
    }
  }
});

test('Q050 CHLO without an SNI tag is done with no name', () => {
  const m = chlo('x');
  m[8 + 8] = 0x58; // rename the SNI tag to XNI
  const [d] = buildQuicInitials({
    version: Q050,
    dcid: Uint8Array.from([9, 9, 9, 9, 9, 9, 9, 9]),
    clientHello: m,
  });
  const r = new QuicInitialAssembler().feed(d);
  assert.equal(r.status, 'done');
  if (r.status === 'done') assert.equal(r.hello.sni, null);
});
