/**
 * @module dissect/quic-keys.test
 * Initial key derivation against the published vectors (RFC 9001 A.1, RFC 9369 A.1,
 * draft-ietf-quic-v2-07, draft-ietf-quic-tls-29), HKDF-Expand-Label against RFC 8448, header
 * protection masks, nonces, and packet-number decoding (RFC 9000 A.3); the allocation-free key schedule
 * (quic-sha256) and AES block (quic-aes-block) against node:crypto on random input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { FIXTURE_DIR } from './fixtures/index.js';
import {
  deriveInitialKeys,
  headerProtectionMask,
  headerProtectionMaskAt,
  hkdfExpandLabel,
  hkdfExtract,
  initialTypeBits,
  packetNonce,
  quicVersionInfo,
  supportedQuicVersions,
} from './quic-keys.js';
import { decodePacketNumber } from './quic-packet.js';
import { HMAC_MAX_MSG, hmac, hmacPads } from './quic-sha256.js';
import { aes128EncryptBlock } from './quic-aes-block.js';

interface Vector {
  source: string;
  version: string;
  dcid: string;
  initial_secret: string;
  client_initial_secret: string;
  client_key: string;
  client_iv: string;
  client_hp: string;
  server_initial_secret: string;
  server_key: string;
  server_iv: string;
  server_hp: string;
  client_sample: string;
  client_mask: string;
}

const VECTORS = JSON.parse(readFileSync(join(FIXTURE_DIR, 'quic-rfc-vectors.json'), 'utf8')) as Record<
  string,
  Vector
>;
const NAMES = ['v1', 'v2', 'v2-draft-07', 'draft-29', 'draft-27'];
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));

for (const name of NAMES) {
  const v = VECTORS[name];
  test(`initial keys match ${v.source.split(' (')[0]}`, () => {
    const info = quicVersionInfo(parseInt(v.version, 16));
    assert.ok(info, 'version supported');
    assert.equal(hex(hkdfExtract(info.salt, bytes(v.dcid))), v.initial_secret);
    const c = deriveInitialKeys(info, bytes(v.dcid), 'client');
    assert.equal(hex(c.secret), v.client_initial_secret);
    assert.equal(hex(c.key), v.client_key);
    assert.equal(hex(c.iv), v.client_iv);
    assert.equal(hex(c.hp), v.client_hp);
    const s = deriveInitialKeys(info, bytes(v.dcid), 'server');
    assert.equal(hex(s.secret), v.server_initial_secret);
    assert.equal(hex(s.key), v.server_key);
    assert.equal(hex(s.iv), v.server_iv);
    assert.equal(hex(s.hp), v.server_hp);
    assert.equal(hex(headerProtectionMask(c.hp, bytes(v.client_sample))), v.client_mask);
  });
}

test('HKDF-Expand-Label matches RFC 8448 §3 (client handshake key/iv from its traffic secret)', () => {
  // RFC 8448 "Simple 1-RTT Handshake": client_handshake_traffic_secret and the derived write key/iv.
  const secret = bytes('b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21');
  assert.equal(
    hex(hkdfExpandLabel(secret, 'key', new Uint8Array(0), 16)),
    'dbfaa693d1762c5b666af5d950258d01',
  );
  assert.equal(hex(hkdfExpandLabel(secret, 'iv', new Uint8Array(0), 12)), '5bd3c71b836e0b76bb73265f');
});

test('packet nonce: IV XOR left-padded packet number (RFC 9001 §5.3)', () => {
  const iv = bytes('fa044b2f42a3fd3b46fb255c');
  assert.equal(hex(packetNonce(iv, 2)), 'fa044b2f42a3fd3b46fb255e');
  assert.equal(hex(packetNonce(iv, 0)), 'fa044b2f42a3fd3b46fb255c');
  // 0x0102030405 spans five bytes (hand-computed): 3b^01, 46^02, fb^03, 25^04, 5c^05
  assert.equal(hex(packetNonce(iv, 0x0102030405)), 'fa044b2f42a3fd3a44f82159');
});

test('packet number decoding: RFC 9000 Appendix A.3 example and first packets', () => {
  assert.equal(decodePacketNumber(0xa82f30ea, 0x9b32, 16), 0xa82f9b32);
  assert.equal(decodePacketNumber(-1, 0, 32), 0);
  assert.equal(decodePacketNumber(-1, 2, 32), 2);
  assert.equal(decodePacketNumber(-1, 0xff, 8), 0xff);
  assert.equal(decodePacketNumber(300, 0x05, 8), 261);
});

test('version table: Initial type bits, salts, labels', () => {
  assert.equal(initialTypeBits(0x00000001), 0);
  assert.equal(initialTypeBits(0x6b3343cf), 1);
  assert.equal(initialTypeBits(0x709a50c4), 1);
  assert.equal(initialTypeBits(0xff00001d), 0);
  assert.equal(initialTypeBits(0), -1);
  assert.equal(initialTypeBits(0x1a2a3a4a), -1);
  for (const v of supportedQuicVersions()) {
    assert.equal(initialTypeBits(v.version), v.initialBits, v.name);
    assert.equal(v.bitsOf[v.typeOf[v.initialBits]], v.initialBits);
    assert.equal(v.salt.length, 20);
  }
  // every other version: not supported (sampled, plus the neighbours of supported ones)
  const known = new Set(supportedQuicVersions().map((v) => v.version));
  const probes = [
    0, 0xffffffff, 0x1a2a3a4a, 0x51303433, 0x51303530, 0xff000015, 0xff000023, 0xfaceb000, 0xfaceb003,
  ];
  for (const v of supportedQuicVersions()) probes.push((v.version + 1) >>> 0, (v.version - 1) >>> 0);
  for (let i = 0; i < 2000; i++) probes.push((i * 2654435761) >>> 0);
  for (const p of probes) assert.equal(initialTypeBits(p) >= 0, known.has(p), `0x${p.toString(16)}`);
  assert.equal(quicVersionInfo(0x6b3343cf)?.labelPrefix, 'quicv2');
  assert.equal(quicVersionInfo(1)?.labelPrefix, 'quic');
});

test('fast key schedule equals the node:crypto HKDF for random connection IDs, both sides, all versions', () => {
  for (const info of supportedQuicVersions()) {
    for (let len = 0; len <= 20; len++) {
      const dcid = randomBytes(len);
      for (const side of ['client', 'server'] as const) {
        const k = deriveInitialKeys(info, dcid, side);
        const secret = hkdfExpandLabel(hkdfExtract(info.salt, dcid), `${side} in`, new Uint8Array(0), 32);
        assert.equal(hex(k.secret), hex(secret), `${info.name} ${len} ${side}`);
        assert.equal(
          hex(k.key),
          hex(hkdfExpandLabel(secret, info.labelPrefix + ' key', new Uint8Array(0), 16)),
        );
        assert.equal(
          hex(k.iv),
          hex(hkdfExpandLabel(secret, info.labelPrefix + ' iv', new Uint8Array(0), 12)),
        );
        assert.equal(
          hex(k.hp),
          hex(hkdfExpandLabel(secret, info.labelPrefix + ' hp', new Uint8Array(0), 16)),
        );
      }
    }
  }
  // a connection ID longer than one HMAC block takes the general path, same result
  const info = quicVersionInfo(1)!;
  const long = randomBytes(80);
  assert.equal(
    hex(deriveInitialKeys(info, long).secret),
    hex(hkdfExpandLabel(hkdfExtract(info.salt, long), 'client in', new Uint8Array(0), 32)),
  );
});

test('HMAC-SHA256 (quic-sha256) equals node:crypto for keys of 0–64 bytes and messages of 0–55', () => {
  const out = new Uint8Array(32);
  for (let i = 0; i < 400; i++) {
    const key = randomBytes(i % 65);
    const msg = randomBytes((i * 7) % (HMAC_MAX_MSG + 1));
    hmac(hmacPads(key), msg, 0, msg.length, out, 0, 32);
    assert.equal(hex(out), createHmac('sha256', key).update(msg).digest('hex'));
  }
  assert.throws(() => hmacPads(new Uint8Array(65)), RangeError);
});

test('AES-128 block (quic-aes-block) equals node:crypto aes-128-ecb; header masks at an offset', () => {
  const out = new Uint8Array(16);
  for (let i = 0; i < 500; i++) {
    const key = randomBytes(16);
    const block = randomBytes(16);
    aes128EncryptBlock(key, 0, block, 0, out, 0);
    const c = createCipheriv('aes-128-ecb', key, null);
    c.setAutoPadding(false);
    assert.equal(hex(out), c.update(block).toString('hex'));
  }
  // FIPS-197 Appendix C.1 (AES-128)
  aes128EncryptBlock(
    bytes('000102030405060708090a0b0c0d0e0f'),
    0,
    bytes('00112233445566778899aabbccddeeff'),
    0,
    out,
    0,
  );
  assert.equal(hex(out), '69c4e0d86a7b0430d8cd b780 70b4c55a'.replace(/ /g, ''));
  const hp = randomBytes(16);
  const d = randomBytes(40);
  const c = createCipheriv('aes-128-ecb', hp, null);
  assert.equal(
    hex(headerProtectionMaskAt(hp, d, 7).subarray(0, 5)),
    c.update(d.subarray(7, 23)).toString('hex').slice(0, 10),
  );
});
