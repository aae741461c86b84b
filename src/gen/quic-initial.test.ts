/**
 * @module gen/quic-initial.test
 * The Initial builder: byte-for-byte reproduction of the published protected packets (RFC 9001
 * A.2, RFC 9369 A.2, draft-ietf-quic-v2-07, draft-ietf-quic-tls-29), datagram sizes, packet
 * numbers and order, CRYPTO contents, and an independent decode of its output by tshark.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURE_DIR } from '../dissect/fixtures/index.js';
import { deriveInitialKeys, quicVersionInfo } from '../dissect/quic-keys.js';
import { openInitial, parseLongHeader, readVarint, type LongHeader } from '../dissect/quic-packet.js';
import { buildClientHello } from './clienthello.js';
import { buildQuicInitials } from './quic-initial.js';
import { haveTools, need } from '../testutil/require.js';

const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const VECTORS = JSON.parse(readFileSync(join(FIXTURE_DIR, 'quic-rfc-vectors.json'), 'utf8')) as Record<
  string,
  { version: string; dcid: string; client_crypto_frame: string; client_protected_packet: string }
>;

for (const name of ['v1', 'v2', 'v2-draft-07', 'draft-29', 'draft-27']) {
  test(`reproduces the ${name} protected client Initial byte for byte`, () => {
    const v = VECTORS[name];
    const frame = bytes(v.client_crypto_frame);
    // frame = 06 (CRYPTO), 00 (offset 0), 2-byte length, then the ClientHello message
    assert.equal(frame[0], 0x06);
    assert.equal(frame[1], 0x00);
    assert.equal(((frame[2] & 0x3f) << 8) | frame[3], frame.length - 4);
    const ds = buildQuicInitials({
      version: parseInt(v.version, 16),
      dcid: bytes(v.dcid),
      clientHello: frame.subarray(4),
      packetNumberStart: 2,
    });
    assert.equal(ds.length, 1);
    assert.equal(hex(ds[0]), v.client_protected_packet);
  });
}

/** Decrypt every datagram (one Initial each) and return packet numbers and the CRYPTO frames. */
function unpack(
  ds: Uint8Array[],
  version: number,
  keyDcid?: Uint8Array,
): { pns: number[]; frames: [number, Uint8Array][] } {
  const info = quicVersionInfo(version)!;
  const pns: number[] = [];
  const frames: [number, Uint8Array][] = [];
  for (const d of ds) {
    const h = parseLongHeader(d, 0, info) as LongHeader;
    assert.equal(typeof h, 'object');
    assert.equal(h.end, d.length, 'one packet fills the datagram');
    const o = openInitial(d, h, deriveInitialKeys(info, keyDcid ?? h.dcid), -1);
    assert.equal(typeof o, 'object', String(o));
    if (typeof o === 'string') continue;
    pns.push(o.pn);
    const p = o.payload;
    assert.equal(p[0], info.cryptoFrameType, 'CRYPTO first');
    const nx = [0];
    const off = readVarint(p, 1, p.length, nx);
    const len = readVarint(p, nx[0], p.length, nx);
    frames.push([off, p.subarray(nx[0], nx[0] + len)]);
    assert.equal(
      p.subarray(nx[0] + len).every((b) => b === 0),
      true,
      'PADDING after the CRYPTO frame',
    );
  }
  return { pns, frames };
}

test('splits the hello over N packets of the requested size, in order or reversed', () => {
  const ch = buildClientHello({ sni: 'split.example', alpn: ['h3'], pqKeyShare: true, grease: true });
  for (const [n, size] of [
    [2, 1200],
    [3, 1250],
    [7, 1200],
  ]) {
    const dcid = bytes('0102030405060708');
    const ds = buildQuicInitials({
      dcid,
      clientHello: ch,
      packets: n,
      datagramSize: size,
      packetNumberStart: 5,
    });
    assert.equal(ds.length, n);
    for (const d of ds) assert.equal(d.length, size);
    const { pns, frames } = unpack(ds, 1);
    assert.deepEqual(
      pns,
      Array.from({ length: n }, (_, i) => 5 + i),
    );
    const joined = Buffer.concat(frames.sort((a, b) => a[0] - b[0]).map((f) => f[1]));
    assert.equal(hex(joined), hex(ch));
    const rev = buildQuicInitials({
      dcid,
      clientHello: ch,
      packets: n,
      datagramSize: size,
      packetNumberStart: 5,
      reverse: true,
    });
    assert.deepEqual(unpack(rev, 1).pns, pns.slice().reverse());
  }
});

test('raises the packet count when the hello does not fit; token, SCID and key DCID options', () => {
  const ch = buildClientHello({ sni: 'big.example', pqKeyShare: true });
  assert.equal(ch.length > 1200, true, 'post-quantum hello is larger than one datagram');
  const ds = buildQuicInitials({ dcid: bytes('aabbccddeeff0011'), clientHello: ch, packets: 1 });
  assert.equal(ds.length, 2);
  const info = quicVersionInfo(1)!;
  const withToken = buildQuicInitials({
    dcid: bytes('c0c0'),
    scid: bytes('5c5c5c'),
    keyDcid: bytes('aabbccddeeff0011'),
    token: bytes('7777'),
    clientHello: ch,
    packets: 2,
    packetNumberLength: 1,
  });
  const h = parseLongHeader(withToken[0], 0, info) as LongHeader;
  assert.equal(hex(h.dcid), 'c0c0');
  assert.equal(hex(h.scid), '5c5c5c');
  assert.equal(hex(h.token), '7777');
  assert.equal(unpack(withToken, 1, bytes('aabbccddeeff0011')).pns.length, 2);
  assert.equal(openInitial(withToken[0], h, deriveInitialKeys(info, h.dcid), -1), 'quic_decrypt_failed');
  assert.throws(
    () => buildQuicInitials({ version: 0x1a2a3a4a, dcid: bytes('00'), clientHello: ch }),
    RangeError,
  );
  assert.throws(() => buildQuicInitials({ dcid: new Uint8Array(21), clientHello: ch }), RangeError);
});

/** tshark's SNI/ALPN/version for the datagrams sent from 10.0.0.1:50000 to 10.0.0.2:443. */
function tsharkDecode(ds: Uint8Array[]): { sni: string[]; alpn: string[]; version: string[] } {
  const tmp = mkdtempSync(join(tmpdir(), 'quic-gen-test-'));
  try {
    // text2pcap: each packet's offsets restart at 0
    const txt = ds
      .map((d) =>
        Array.from(
          { length: Math.ceil(d.length / 16) },
          (_, i) =>
            (i * 16).toString(16).padStart(6, '0') +
            ' ' +
            hex(d.subarray(i * 16, i * 16 + 16)).replace(/(..)/g, '$1 '),
        ).join('\n'),
      )
      .join('\n');
    writeFileSync(join(tmp, 'in.txt'), txt + '\n');
    execFileSync('text2pcap', [
      '-q',
      '-4',
      '10.0.0.1,10.0.0.2',
      '-u',
      '50000,443',
      join(tmp, 'in.txt'),
      join(tmp, 'out.pcap'),
    ]);
    const out = execFileSync(
      'tshark',
      [
        '-r',
        join(tmp, 'out.pcap'),
        '-T',
        'fields',
        '-E',
        'separator=\t',
        '-e',
        'quic.version',
        '-e',
        'tls.handshake.extensions_server_name',
        '-e',
        'tls.handshake.extensions_alpn_str',
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60000 },
    );
    const res = { sni: [] as string[], alpn: [] as string[], version: [] as string[] };
    for (const line of out.split('\n')) {
      if (!line) continue;
      const [v, s, a] = line.split('\t');
      res.version.push(v);
      if (s) res.sni.push(s);
      if (a) res.alpn.push(a);
    }
    return res;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

test(
  'tshark (independent dissector) decrypts the builder output and finds the SNI',
  {
    skip: need(haveTools('tshark', 'text2pcap'), 'tshark/text2pcap missing (Debian tshark)'),
    timeout: 60_000,
  },
  () => {
    for (const [version, packets] of [
      [1, 1],
      [1, 2],
      [0xff00001d, 2],
      [0x6b3343cf, 1],
      [0xff00001b, 2],
      [0xfaceb002, 1],
      [0x54303531, 2],
    ]) {
      const sni = `tshark-${packets}.v${version.toString(16)}.example`;
      const ch = buildClientHello({ sni, alpn: ['h3'], pqKeyShare: packets > 1, grease: true });
      const ds = buildQuicInitials({
        version,
        dcid: bytes('8394c8f03e515708'),
        scid: bytes('0102'),
        clientHello: ch,
        packets,
      });
      assert.equal(ds.length, packets);
      const r = tsharkDecode(ds);
      assert.deepEqual(
        r.version,
        ds.map(() => '0x' + version.toString(16).padStart(8, '0')),
      );
      assert.deepEqual(
        r.sni,
        [sni],
        `tshark SNI for version 0x${version.toString(16)}, ${packets} packet(s)`,
      );
      assert.deepEqual(r.alpn, ['h3']);
    }
  },
);
