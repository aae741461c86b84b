/**
 * @module dissect/quic.test
 * QUIC Initial assembler: the published protected packets (RFC 9001, RFC 9369, v2 draft-07,
 * draft-29), real clients' datagrams (gtlsclient v1/draft-29/v2-draft/VN/Retry, Chromium's
 * two-packet post-quantum ClientHello) checked against the names given to the clients and
 * tshark's decode, synthetic multi-packet hellos in every order, coalesced packets, Retry and
 * DCID changes, failure codes, fast-check robustness, and linearity.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { FIXTURE_DIR, bestTime, fixtureChunks } from './fixtures/index.js';
import {
  MAX_DATAGRAMS,
  MAX_PACKETS_PER_DATAGRAM,
  QuicInitialAssembler,
  looksLikeQuicInitial,
  type QuicResult,
} from './quic.js';
import { deriveInitialKeys, PT_HANDSHAKE, PT_INITIAL, PT_0RTT, quicVersionInfo } from './quic-keys.js';
import { openInitial, parseLongHeader, type LongHeader } from './quic-packet.js';
import { buildQuicInitials } from '../gen/quic-initial.js';
import { shuffled } from '../testutil/shuffle.js';
import { genQuicVersion, hpMask, initialKeys, nonce, varint, varintSize } from '../gen/quic-protect.js';
import { createCipheriv } from 'node:crypto';
import { buildClientHello } from '../gen/clienthello.js';

/** assert.ok with a fixed message (without one, node's assert re-parses the source file). */
function ok(c: unknown, m = 'expected a truthy value'): asserts c {
  assert.ok(c, m);
}
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
const VECTORS = JSON.parse(readFileSync(join(FIXTURE_DIR, 'quic-rfc-vectors.json'), 'utf8')) as Record<
  string,
  { version: string; dcid: string; client_crypto_frame: string; client_protected_packet: string }
>;

interface Meta {
  sni: string;
  version: string;
  flows: number[];
  server_replies: { after_datagram: number; hex: string }[];
  tshark: Record<string, string[]>;
}
const meta = (name: string): Meta => JSON.parse(readFileSync(join(FIXTURE_DIR, name + '.json'), 'utf8'));

function feedAll(ds: Uint8Array[], a = new QuicInitialAssembler()): QuicResult[] {
  return ds.map((d) => a.feed(d));
}
function done(r: QuicResult): Extract<QuicResult, { status: 'done' }> {
  assert.equal(r.status, 'done', JSON.stringify(r));
  return r as Extract<QuicResult, { status: 'done' }>;
}
const V1 = 1;
const V2 = 0x6b3343cf;
const V2D = 0x709a50c4;
const D29 = 0xff00001d;
const DCID = bytes('0011223344556677');
const SCID = bytes('a1a2a3a4');

function hello(sni: string, extra: { pq?: boolean; padTo?: number } = {}): Uint8Array {
  return buildClientHello({ sni, alpn: ['h3'], grease: true, pqKeyShare: extra.pq, padTo: extra.padTo });
}

// ---------------------------------------------------------------------------------------------
// Published vectors

const EXPECT: Record<string, { sni: string; alpn: string[] }> = {
  // Read by hand from the CRYPTO frames in the documents: server_name "example.com", ALPN "alpn"
  // (RFC 9001/9369/v2-07), server_name "server" and no ALPN (draft-29).
  v1: { sni: 'example.com', alpn: ['alpn'] },
  v2: { sni: 'example.com', alpn: ['alpn'] },
  'v2-draft-07': { sni: 'example.com', alpn: ['alpn'] },
  'draft-29': { sni: 'server', alpn: [] },
  'draft-27': { sni: 'server', alpn: [] },
};

for (const name of Object.keys(EXPECT)) {
  test(`opens the ${name} client Initial of the published vectors`, () => {
    const v = VECTORS[name];
    const pkt = bytes(v.client_protected_packet);
    assert.equal(looksLikeQuicInitial(pkt), true);
    const info = quicVersionInfo(parseInt(v.version, 16))!;
    const h = parseLongHeader(pkt, 0, info) as LongHeader;
    assert.equal(typeof h, 'object');
    assert.equal(Buffer.from(h.dcid).toString('hex'), v.dcid);
    const opened = openInitial(pkt, h, deriveInitialKeys(info, h.dcid), -1);
    ok(typeof opened === 'object', String(opened));
    assert.equal(opened.pn, 2);
    const frame = bytes(v.client_crypto_frame);
    assert.equal(opened.payload.length, 1162);
    assert.deepEqual(new Uint8Array(opened.payload.subarray(0, frame.length)), frame);
    ok(
      opened.payload.subarray(frame.length).every((b) => b === 0),
      'rest is PADDING',
    );

    const r = done(new QuicInitialAssembler().feed(pkt));
    assert.equal(r.version, parseInt(v.version, 16));
    assert.equal(r.hello.sni, EXPECT[name].sni);
    assert.deepEqual(r.hello.alpn, EXPECT[name].alpn);
  });
}

// ---------------------------------------------------------------------------------------------
// Real clients

function tsharkFirst(m: Meta, field: string): string {
  return (m.tshark[field] ?? []).find((x) => x !== '') ?? '';
}

for (const name of ['quic-gtls-v1', 'quic-gtls-draft29', 'quic-gtls-v2draft', 'quic-chromium']) {
  test(`real client: ${name} names the SNI given to the client`, () => {
    const m = meta(name);
    const ds = fixtureChunks(name);
    assert.equal(looksLikeQuicInitial(ds[0]), true);
    const rs = feedAll(ds);
    const r = done(rs.find((x) => x.status !== 'need-more')!);
    assert.equal(r.hello.sni, m.sni);
    assert.equal('0x' + r.version.toString(16).padStart(8, '0'), m.version);
    assert.deepEqual(
      r.anomalies.filter((a) => a.startsWith('quic_')),
      [],
    );
    const tsni = tsharkFirst(m, 'tls.handshake.extensions_server_name');
    if (name !== 'quic-gtls-v2draft') {
      // tshark 4.0 decrypts v1/draft-29 Initials itself (it does not know the v2 draft).
      assert.equal(r.hello.sni, tsni);
      assert.deepEqual(r.hello.alpn, tsharkFirst(m, 'tls.handshake.extensions_alpn_str').split(','));
    }
  });
}

test('real client: Chromium post-quantum ClientHello spans two Initials; any order works', () => {
  const m = meta('quic-chromium');
  const ds = fixtureChunks('quic-chromium');
  ok(ds.length >= 2);
  // Neither of the first two datagrams alone holds the hello...
  assert.equal(new QuicInitialAssembler().feed(ds[0]).status, 'need-more');
  assert.equal(new QuicInitialAssembler().feed(ds[1]).status, 'need-more');
  // ...both together do, in either order; tshark (which reassembles too) shows the hello in the 2nd.
  assert.equal(m.tshark['tls.handshake.type'][1], '1');
  for (const order of [
    [0, 1],
    [1, 0],
  ]) {
    const rs = feedAll(order.map((i) => ds[i]));
    assert.equal(rs[0].status, 'need-more');
    const r = done(rs[1]);
    assert.equal(r.hello.sni, 'chromium.chokepoint.test');
    ok(r.hello.supportedVersions.includes(0x0304));
    assert.match(r.hello.ja4, /^q13d/);
  }
  // every permutation of all captured datagrams (retransmissions included)
  const perms = (xs: number[]): number[][] =>
    xs.length <= 1
      ? [xs]
      : xs.flatMap((x, i) => perms([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
  for (const p of perms(ds.map((_, i) => i))) {
    const rs = feedAll(p.map((i) => ds[i]));
    assert.equal(rs[rs.length - 1].status, 'done', p.join(','));
  }
});

test('real client: Version Negotiation, then a v1 Initial from a new socket', () => {
  const m = meta('quic-gtls-vn');
  const ds = fixtureChunks('quic-gtls-vn');
  assert.deepEqual(m.flows, [0, 1, 1]);
  assert.equal(looksLikeQuicInitial(ds[0]), false, 'unknown version 0x1a2a3a4a');
  assert.equal(looksLikeQuicInitial(ds[1]), true);
  const vn = bytes(m.server_replies[0].hex);
  assert.equal(looksLikeQuicInitial(vn), false);
  // one assembler per flow, as the engine does
  assert.equal(new QuicInitialAssembler().feed(ds[0]).status, 'not-mine');
  assert.equal(done(new QuicInitialAssembler().feed(ds[1])).hello.sni, m.sni);
  // and one assembler fed everything, the VN packet included: VN changes nothing
  const a = new QuicInitialAssembler();
  assert.equal(a.feed(ds[0]).status, 'not-mine');
  assert.equal(a.feed(vn).status, 'not-mine');
  const r = done(a.feed(ds[1]));
  assert.equal(r.hello.sni, 'vn.chokepoint.test');
  assert.equal(r.version, 1);
  assert.equal(tsharkFirst(m, 'tls.handshake.extensions_server_name'), 'vn.chokepoint.test');
});

test('real client: after a Retry, Initials use the new DCID, the token and new keys', () => {
  const m = meta('quic-gtls-retry');
  const ds = fixtureChunks('quic-gtls-retry');
  const info = quicVersionInfo(1)!;
  const h0 = parseLongHeader(ds[0], 0, info) as LongHeader;
  const h1 = parseLongHeader(ds[1], 0, info) as LongHeader;
  assert.equal(Buffer.from(h1.dcid).toString('hex'), '5e7e7c1d0e0f1a2b', 'DCID = SCID of our Retry');
  assert.equal(Buffer.from(h1.token).toString(), 'chokepoint-retry-token');
  assert.equal(h0.token.length, 0);
  // the old keys do not open the post-Retry packet; keys from its own DCID do
  assert.equal(openInitial(ds[1], h1, deriveInitialKeys(info, h0.dcid), -1), 'quic_decrypt_failed');
  assert.equal(done(new QuicInitialAssembler().feed(ds[1])).hello.sni, m.sni);
  assert.equal(done(new QuicInitialAssembler().feed(ds[2])).hello.sni, m.sni);
  assert.equal(done(new QuicInitialAssembler().feed(ds[0])).hello.sni, 'retry.chokepoint.test');
});

// ---------------------------------------------------------------------------------------------
// Synthetic multi-packet hellos

for (const version of [V1, V2, V2D, D29]) {
  for (const n of [2, 3, 5, 8]) {
    test(`v0x${version.toString(16)}: ${n}-packet ClientHello forward, reverse and shuffled`, () => {
      const sni = `n${n}.v${version.toString(16)}.example`;
      const ch = hello(sni, { pq: true, padTo: n * 700 });
      const ds = buildQuicInitials({ version, dcid: DCID, scid: SCID, clientHello: ch, packets: n });
      assert.equal(ds.length, n);
      const orders = [ds, ds.slice().reverse(), shuffled(ds, n * 7 + 1), shuffled(ds, n * 13 + 5)];
      for (const o of orders) {
        const rs = feedAll(o);
        for (let i = 0; i < n - 1; i++) assert.equal(rs[i].status, 'need-more');
        const r = done(rs[n - 1]);
        assert.equal(r.hello.sni, sni);
        assert.equal(r.version, version);
        assert.deepEqual(r.hello.alpn, ['h3']);
        assert.deepEqual(r.anomalies, []);
      }
    });
  }
}

test('older and vendor versions: drafts 22-28, mvfst, Google T050/T051 (CRYPTO type 0x08)', () => {
  for (const version of [
    0xff000016, 0xff000017, 0xff00001b, 0xff00001c, 0xfaceb001, 0xfaceb002, 0xfaceb00e, 0x54303530,
    0x54303531,
  ]) {
    const sni = `v${version.toString(16)}.example`;
    const ds = buildQuicInitials({
      version,
      dcid: DCID,
      clientHello: hello(sni, { pq: true }),
      packets: 2,
      reverse: true,
    });
    assert.equal(looksLikeQuicInitial(ds[0]), true);
    const r = done(feedAll(ds)[1]);
    assert.equal(r.hello.sni, sni);
    assert.equal(r.version, version);
  }
  // T051 carries CRYPTO as frame type 0x08 (STREAM in RFC 9000 numbering)
  const t = buildQuicInitials({ version: 0x54303531, dcid: DCID, clientHello: hello('t.example') })[0];
  const info = quicVersionInfo(0x54303531)!;
  const h = parseLongHeader(t, 0, info) as LongHeader;
  const o = openInitial(t, h, deriveInitialKeys(info, h.dcid), -1);
  ok(typeof o === 'object');
  assert.equal(o.payload[0], 0x08);
});

test('2-packet hello with duplicates interleaved (retransmissions) in any order', () => {
  const ch = hello('dup.example', { pq: true });
  const ds = buildQuicInitials({ dcid: DCID, clientHello: ch, packets: 2 });
  const again = buildQuicInitials({ dcid: DCID, clientHello: ch, packets: 2, packetNumberStart: 2 });
  const r = feedAll([ds[1], again[1], ds[1], again[0]]);
  assert.deepEqual(
    r.map((x) => x.status),
    ['need-more', 'need-more', 'need-more', 'done'],
  );
});

// ---------------------------------------------------------------------------------------------
// Coalesced packets

function frameCrypto(off: number, data: Uint8Array): Uint8Array {
  const v = (x: number): Buffer => varint(x, varintSize(x));
  return Uint8Array.from([0x06, ...v(off), ...v(data.length), ...data]);
}
/**
 * One protected long-header packet of any type with a Length field, sealed with the generator's own
 * key schedule, AEAD nonce and header protection (gen/quic-protect), not the parser's: a 2-byte packet
 * number and a 2-byte Length, keys from `keyDcid`.
 */
function seal(
  version: number,
  packetType: number,
  payload: Uint8Array,
  pn: number,
  dcid = DCID,
  keyDcid = DCID,
  token?: Uint8Array,
): Uint8Array {
  const typeBits = quicVersionInfo(version)!.bitsOf[packetType];
  const keys = initialKeys(genQuicVersion(version)!, keyDcid);
  const tok = token ?? new Uint8Array(0);
  const header = Buffer.concat([
    Buffer.from([
      0xc0 | (typeBits << 4) | 1,
      version >>> 24,
      (version >>> 16) & 0xff,
      (version >>> 8) & 0xff,
      version & 0xff,
    ]),
    Buffer.from([dcid.length]),
    dcid,
    Buffer.from([SCID.length]),
    SCID,
    packetType === PT_INITIAL
      ? Buffer.concat([varint(tok.length, varintSize(tok.length)), tok])
      : Buffer.alloc(0),
    varint(2 + payload.length + 16, 2),
    Buffer.from([(pn >> 8) & 0xff, pn & 0xff]),
  ]);
  const gcm = createCipheriv('aes-128-gcm', keys.key, nonce(keys.iv, pn));
  gcm.setAAD(header);
  const out = Buffer.concat([header, gcm.update(payload), gcm.final(), gcm.getAuthTag()]);
  const pnAt = header.length - 2;
  const mask = hpMask(keys.hp, out.subarray(pnAt + 4, pnAt + 20));
  out[0] ^= mask[0] & 0x0f;
  for (let i = 0; i < 2; i++) out[pnAt + i] ^= mask[1 + i];
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}
function cat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}
const junk = (n: number, first: number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (i === 0 ? first : (i * 31) & 0xff));

for (const version of [V1, V2]) {
  test(`coalesced (v0x${version.toString(16)}): Initial + Initial + Handshake + 0-RTT + short header in one datagram`, () => {
    const ch = hello('coalesced.example');
    const cut = 100;
    const p1 = seal(version, PT_INITIAL, frameCrypto(0, ch.subarray(0, cut)), 0);
    const p2 = seal(version, PT_INITIAL, frameCrypto(cut, ch.subarray(cut)), 1);
    const hs = seal(version, PT_HANDSHAKE, junk(60, 0x42), 0); // keys do not matter: skipped by type
    const zr = seal(version, PT_0RTT, junk(60, 0x42), 0);
    const shortHdr = junk(Math.max(0, 1200 - p1.length - p2.length - hs.length - zr.length), 0x41);
    const dgram = cat(p1, hs, zr, p2, shortHdr);
    ok(dgram.length >= 1200);
    assert.equal(looksLikeQuicInitial(dgram), true);
    const a = new QuicInitialAssembler();
    const r = done(a.feed(dgram));
    assert.equal(r.hello.sni, 'coalesced.example');
    assert.deepEqual(r.anomalies, []);
    // Handshake packet first, then the Initials
    const r2 = done(new QuicInitialAssembler().feed(cat(hs, p2, p1, shortHdr)));
    assert.equal(r2.hello.sni, 'coalesced.example');
  });
}

test('coalesced: a trailing packet of an unknown version is skipped with an anomaly', () => {
  const ch = hello('tail.example');
  const cut = 120;
  const p = seal(V1, PT_INITIAL, cat(frameCrypto(0, ch.subarray(0, cut)), new Uint8Array(1100)), 0);
  const tail = cat(Uint8Array.of(0xc0, 0x1a, 0x2a, 0x3a, 0x4a), junk(30, 8));
  const a = new QuicInitialAssembler();
  assert.equal(a.feed(cat(p, tail)).status, 'need-more');
  assert.deepEqual(a.anomalies, ['quic_unknown_version']);
  const r = done(
    a.feed(seal(V1, PT_INITIAL, cat(frameCrypto(cut, ch.subarray(cut)), new Uint8Array(1100)), 1)),
  );
  assert.equal(r.hello.sni, 'tail.example');
  assert.deepEqual(r.anomalies, ['quic_unknown_version']);
});

test(`coalesced: at most ${MAX_PACKETS_PER_DATAGRAM} long-header packets per datagram are examined`, () => {
  const ch = hello('many.example');
  const hs = seal(V1, PT_HANDSHAKE, junk(30, 0x42), 0);
  const init = seal(V1, PT_INITIAL, cat(frameCrypto(0, ch), new Uint8Array(900)), 0);
  const few = cat(...Array.from({ length: MAX_PACKETS_PER_DATAGRAM - 1 }, () => hs), init);
  assert.equal(new QuicInitialAssembler().feed(few).status, 'done');
  const a = new QuicInitialAssembler();
  const many = cat(...Array.from({ length: MAX_PACKETS_PER_DATAGRAM }, () => hs), init);
  assert.equal(a.feed(many).status, 'need-more');
  assert.deepEqual(a.anomalies, ['quic_too_many_packets']);
});

// ---------------------------------------------------------------------------------------------
// Retry and DCID changes (synthetic)

test('Retry: first half under the original DCID, then the whole hello under the new DCID and keys', () => {
  const ch = hello('retry.example', { pq: true });
  const A = bytes('0a0a0a0a0a0a0a0a');
  const B = bytes('0b0b0b0b0b0b0b0b');
  const before = buildQuicInitials({ dcid: A, clientHello: ch, packets: 2 });
  const after = buildQuicInitials({
    dcid: B,
    clientHello: ch,
    packets: 2,
    packetNumberStart: 2,
    token: bytes('7070'),
  });
  // first half before the Retry, second half after it
  let rs = feedAll([before[0], after[1]]);
  assert.equal(done(rs[1]).hello.sni, 'retry.example');
  // the client resends everything after the Retry
  rs = feedAll([before[0], after[0], after[1]]);
  assert.deepEqual(
    rs.map((r) => r.status),
    ['need-more', 'need-more', 'done'],
  );
  // a late pre-Retry packet still opens with the cached original keys
  rs = feedAll([after[0], before[1]]);
  assert.equal(done(rs[1]).hello.sni, 'retry.example');
});

test('DCID switched to the server-chosen ID: cached keys from the first DCID open it', () => {
  const ch = hello('switch.example', { pq: true });
  const A = bytes('1111111111111111');
  const C = bytes('c0c0c0c0');
  const first = buildQuicInitials({ dcid: A, clientHello: ch, packets: 2 });
  const later = buildQuicInitials({ dcid: C, keyDcid: A, clientHello: ch, packets: 2, packetNumberStart: 2 });
  const rs = feedAll([first[0], later[1]]);
  assert.equal(done(rs[1]).hello.sni, 'switch.example');
  // without the cached keys the switched packet cannot be opened
  const r = new QuicInitialAssembler().feed(later[1]);
  assert.deepEqual(r, { status: 'error', anomaly: 'quic_decrypt_failed' });
});

// ---------------------------------------------------------------------------------------------
// Frames, anomalies, failures

test('PING, ACK, ACK_ECN and PADDING around CRYPTO are skipped', () => {
  const ch = hello('frames.example');
  const ack = Uint8Array.of(0x02, 0x05, 0x00, 0x01, 0x01, 0x01, 0x00); // largest 5, delay 0, 1 range
  const ackEcn = Uint8Array.of(0x03, 0x05, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03);
  const payload = cat(Uint8Array.of(0x01, 0x00, 0x00), ack, ackEcn, frameCrypto(0, ch), new Uint8Array(900));
  const r = done(new QuicInitialAssembler().feed(seal(V1, PT_INITIAL, payload, 0)));
  assert.equal(r.hello.sni, 'frames.example');
  assert.deepEqual(r.anomalies, []);
});

test('CONNECTION_CLOSE is noted; an unknown frame stops the packet with an anomaly', () => {
  const ch = hello('cc.example');
  const cc = cat(Uint8Array.of(0x1c, 0x0a, 0x06, 0x03), Buffer.from('bye'));
  let r = done(
    new QuicInitialAssembler().feed(
      seal(V1, PT_INITIAL, cat(frameCrypto(0, ch), cc, new Uint8Array(900)), 0),
    ),
  );
  ok(r.anomalies.includes('quic_connection_close'));
  // STREAM (0x08) is not allowed in Initial packets: frames after it are not read
  const a = new QuicInitialAssembler();
  const half = 50;
  const p = seal(
    V1,
    PT_INITIAL,
    cat(
      frameCrypto(0, ch.subarray(0, half)),
      Uint8Array.of(0x08, 0x00, 0x00),
      frameCrypto(half, ch.subarray(half)),
      new Uint8Array(900),
    ),
    0,
  );
  assert.equal(a.feed(p).status, 'need-more');
  assert.deepEqual(a.anomalies, ['quic_unknown_frame']);
  r = done(a.feed(seal(V1, PT_INITIAL, cat(frameCrypto(half, ch.subarray(half)), new Uint8Array(900)), 1)));
  ok(r.anomalies.includes('quic_unknown_frame'));
});

test('overlapping CRYPTO with different bytes: first copy wins, anomaly noted', () => {
  const ch = hello('first.example');
  const other = hello('other.example');
  assert.equal(ch.length, other.length);
  const a = new QuicInitialAssembler();
  const cut = ch.length - 10;
  assert.equal(
    a.feed(seal(V1, PT_INITIAL, cat(frameCrypto(0, ch.subarray(0, cut)), new Uint8Array(1000)), 0)).status,
    'need-more',
  );
  const r = done(a.feed(seal(V1, PT_INITIAL, cat(frameCrypto(0, other), new Uint8Array(1000)), 1)));
  assert.equal(r.hello.sni, 'first.example');
  ok(r.anomalies.includes('quic_crypto_mismatch'));
});

test('failures are codes: bad tag, truncation, not a ClientHello, too large, small datagram', () => {
  const ch = hello('fail.example', { pq: true });
  const ds = buildQuicInitials({ dcid: DCID, clientHello: ch, packets: 2 });
  const bad = ds[0].slice();
  bad[500] ^= 1;
  assert.deepEqual(new QuicInitialAssembler().feed(bad), { status: 'error', anomaly: 'quic_decrypt_failed' });
  assert.deepEqual(new QuicInitialAssembler().feed(ds[0].subarray(0, 600)), {
    status: 'error',
    anomaly: 'quic_truncated',
  });
  // the cheap check does not look at the size: the assembler says what is wrong with it
  assert.equal(looksLikeQuicInitial(ds[0].subarray(0, 600)), true);

  // a corrupted second packet after the first opened: need-more, noted; a good copy completes it
  const a = new QuicInitialAssembler();
  assert.equal(a.feed(ds[0]).status, 'need-more');
  const bad1 = ds[1].slice();
  bad1[bad1.length - 1] ^= 0x80;
  assert.equal(a.feed(bad1).status, 'need-more');
  assert.deepEqual(a.anomalies, ['quic_decrypt_failed']);
  ok(done(a.feed(ds[1])).anomalies.includes('quic_decrypt_failed'));

  // CRYPTO stream starting with another handshake type (2 = ServerHello)
  const sh = ch.slice();
  sh[0] = 2;
  assert.deepEqual(new QuicInitialAssembler().feed(buildQuicInitials({ dcid: DCID, clientHello: sh })[0]), {
    status: 'error',
    anomaly: 'quic_not_client_hello',
  });
  // hello larger than the bound
  assert.deepEqual(new QuicInitialAssembler(1000).feed(ds[0]), {
    status: 'error',
    anomaly: 'quic_crypto_too_large',
  });
  // Initial in a datagram below 1200 bytes: taken, named, noted
  const small = hello('small.example');
  const p = seal(V1, PT_INITIAL, frameCrypto(0, small), 0);
  ok(p.length < 1200);
  assert.equal(looksLikeQuicInitial(p), true);
  const r = done(new QuicInitialAssembler().feed(p));
  assert.deepEqual(r.anomalies, ['quic_small_datagram']);
  // a ClientHello whose body is broken
  const broken = Uint8Array.from([1, 0, 0, 4, 3, 3, 0, 0]);
  assert.deepEqual(
    new QuicInitialAssembler().feed(buildQuicInitials({ dcid: DCID, clientHello: broken })[0]),
    {
      status: 'error',
      anomaly: 'tls_malformed_hello',
    },
  );
});

test('not-mine: empty, short header, DNS, Version Negotiation; results are final once done/error', () => {
  const a = new QuicInitialAssembler();
  assert.equal(a.feed(new Uint8Array(0)).status, 'not-mine');
  assert.equal(a.feed(junk(1200, 0x41)).status, 'not-mine');
  assert.equal(
    a.feed(bytes('12340100000100000000000003777777076578616d706c6503636f6d0000010001')).status,
    'not-mine',
  );
  assert.equal(a.feed(bytes('80000000000401020304040506070800000001')).status, 'not-mine');
  const ds = buildQuicInitials({ dcid: DCID, clientHello: hello('final.example') });
  const r = a.feed(ds[0]);
  assert.equal(done(r).hello.sni, 'final.example');
  assert.equal(a.feed(junk(50, 0x41)), r);
  const e = new QuicInitialAssembler();
  const err = e.feed(ds[0].subarray(0, 700));
  assert.equal(err.status, 'error');
  assert.equal(e.feed(ds[0]), err);
});

test(`gives up after ${MAX_DATAGRAMS} datagrams without a complete hello`, () => {
  const ds = buildQuicInitials({ dcid: DCID, clientHello: hello('never.example', { pq: true }), packets: 2 });
  const a = new QuicInitialAssembler();
  let r = a.feed(ds[0]);
  for (let i = 1; i < MAX_DATAGRAMS - 1; i++) r = a.feed(junk(100, 0x40));
  assert.equal(r.status, 'need-more');
  assert.deepEqual(a.feed(junk(100, 0x40)), { status: 'error', anomaly: 'quic_no_client_hello' });
});

test('looksLikeQuicInitial: fixed bit, version, per-version Initial type, DCID length; not the size', () => {
  const v1 = bytes(VECTORS.v1.client_protected_packet);
  const v2 = bytes(VECTORS.v2.client_protected_packet);
  assert.equal(looksLikeQuicInitial(v1), true);
  assert.equal(looksLikeQuicInitial(v2), true);
  const mod = (p: Uint8Array, i: number, v: number): Uint8Array => {
    const c = p.slice();
    c[i] = v;
    return c;
  };
  assert.equal(looksLikeQuicInitial(mod(v1, 0, v1[0] & ~0x40)), false, 'fixed bit clear');
  assert.equal(looksLikeQuicInitial(mod(v1, 0, v1[0] & 0x7f)), false, 'short header');
  // v1 type bits (00) under the v2 version number are a v2 Retry, not an Initial
  const v1asv2 = v1.slice();
  v1asv2.set([0x6b, 0x33, 0x43, 0xcf], 1);
  assert.equal(looksLikeQuicInitial(v1asv2), false);
  assert.equal(looksLikeQuicInitial(mod(v1, 4, 0)), false, 'version 0 (VN)');
  assert.equal(looksLikeQuicInitial(mod(v1, 5, 21)), false, 'DCID > 20');
  // the size is not checked: an Initial under 1200 bytes is taken (the assembler notes it)
  assert.equal(looksLikeQuicInitial(v1.subarray(0, 1100)), true);
  assert.equal(looksLikeQuicInitial(v1.subarray(0, 5)), false, 'too short for the header');
});

// ---------------------------------------------------------------------------------------------
// Robustness

const valid = [
  ...buildQuicInitials({ dcid: DCID, clientHello: hello('fuzz.example', { pq: true }), packets: 2 }),
  ...buildQuicInitials({ version: V2, dcid: DCID, clientHello: hello('fuzz2.example'), packets: 1 }),
  ...fixtureChunks('quic-chromium').slice(0, 2),
];

const isResult = (r: QuicResult): boolean => ['done', 'need-more', 'not-mine', 'error'].includes(r.status);

test('fast-check: random datagrams never throw', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 1400 }), { maxLength: 5 }), (ds) => {
      const a = new QuicInitialAssembler();
      for (const d of ds) {
        looksLikeQuicInitial(d);
        ok(isResult(a.feed(d)));
      }
    }),
    { numRuns: 300 },
  );
});

test('fast-check: random long headers of known versions never throw', () => {
  const head = fc.tuple(
    fc.constantFrom(0xc0, 0xc3, 0xd0, 0xd3, 0xe0, 0xf0, 0xff),
    fc.constantFrom(V1, V2, V2D, D29),
    fc.uint8Array({ maxLength: 1300 }),
  );
  fc.assert(
    fc.property(head, ([b0, v, rest]) => {
      const d = cat(Uint8Array.of(b0, v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff), rest);
      ok(isResult(new QuicInitialAssembler().feed(d)));
    }),
    { numRuns: 300 },
  );
});

test('fast-check: mutated, truncated and spliced real datagrams never throw', () => {
  const mutation = fc.record({
    which: fc.nat(valid.length - 1),
    flips: fc.array(fc.tuple(fc.nat(1400), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }),
    cut: fc.option(fc.nat(1400)),
    splice: fc.option(fc.tuple(fc.nat(valid.length - 1), fc.nat(1400))),
  });
  fc.assert(
    fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (ms) => {
      const a = new QuicInitialAssembler();
      for (const m of ms) {
        let d: Uint8Array = valid[m.which].slice();
        for (const [i, x] of m.flips) if (i < d.length) d[i] ^= x;
        if (m.cut !== null) d = d.subarray(0, m.cut);
        if (m.splice !== null) d = cat(d, valid[m.splice[0]].subarray(m.splice[1]));
        looksLikeQuicInitial(d);
        ok(isResult(a.feed(d)));
      }
    }),
    { numRuns: 200 },
  );
});

test('linearity: time for N, 4N, 16N packets grows about linearly', () => {
  const N = 2;
  const inputs = [N, 4 * N, 16 * N].map((n) => {
    const ch = hello('linear.example', { padTo: n * 1100 });
    const ds = buildQuicInitials({ dcid: DCID, clientHello: ch, packets: n }).reverse();
    ok(ds.length >= n);
    return ds;
  });
  const run = (ds: Uint8Array[]) => () => {
    const a = new QuicInitialAssembler();
    let r: QuicResult = { status: 'need-more' };
    for (const d of ds) r = a.feed(d);
    assert.equal(r.status, 'done');
  };
  const t = inputs.map((ds) => bestTime(run(ds), 7));
  const ratio = t[2] / Math.max(t[0], 0.01);
  // 16x the input: ~16x the time if linear; 256x if quadratic. Generous bound against noise.
  ok(
    ratio < 64,
    `t(N)=${t[0].toFixed(2)}ms t(4N)=${t[1].toFixed(2)}ms t(16N)=${t[2].toFixed(2)}ms ratio ${ratio.toFixed(1)}`,
  );
});
