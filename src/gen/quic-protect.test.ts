/**
 * @module gen/quic-protect.test
 * The generator's own Initial protection against the published vectors (RFC 9001 Appendix A,
 * RFC 9369 Appendix A, draft-ietf-quic-v2-07, draft-ietf-quic-tls-29/-27: every intermediate secret,
 * key, IV, HP key and mask, copied from the documents into `quic-rfc-vectors.json`), RFC 9000
 * Appendix A.1's varint examples, and a capture written by `gen/synth` decoded by tshark (an
 * independent dissector): every QUIC flow of the ground truth has tshark's SNI equal to its name.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, closeSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURE_DIR } from '../dissect/fixtures/index.js';
import { genQuicVersion, hpMask, initialKeys, varint, varintSize } from './quic-protect.js';
import { PcapWriter } from './pcap-writer.js';
import { generate } from './synth.js';
import { haveTool, need } from '../testutil/require.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const VECTORS = JSON.parse(readFileSync(join(FIXTURE_DIR, 'quic-rfc-vectors.json'), 'utf8')) as Record<
  string,
  Record<string, string>
>;

for (const name of ['v1', 'v2', 'v2-draft-07', 'draft-29', 'draft-27']) {
  test(`${name}: initial secret, client and server secrets, key, IV, HP key and mask equal the document's`, () => {
    const v = VECTORS[name];
    const info = genQuicVersion(parseInt(v.version, 16));
    assert.ok(info, `version ${v.version} known to the generator`);
    const dcid = Buffer.from(v.dcid, 'hex');
    const c = initialKeys(info, dcid, 'client');
    const s = initialKeys(info, dcid, 'server');
    assert.equal(hex(c.initialSecret), v.initial_secret);
    assert.equal(hex(c.secret), v.client_initial_secret);
    assert.equal(hex(c.key), v.client_key);
    assert.equal(hex(c.iv), v.client_iv);
    assert.equal(hex(c.hp), v.client_hp);
    assert.equal(hex(s.secret), v.server_initial_secret);
    assert.equal(hex(s.key), v.server_key);
    assert.equal(hex(s.iv), v.server_iv);
    assert.equal(hex(s.hp), v.server_hp);
    assert.equal(hex(hpMask(c.hp, Buffer.from(v.client_sample, 'hex'))), v.client_mask);
  });
}

test('varints: the RFC 9000 Appendix A.1 examples, minimal sizes and range errors', () => {
  assert.equal(hex(varint(151288809941952652n, 8)), 'c2197c5eff14e88c');
  assert.equal(hex(varint(494878333, 4)), '9d7f3e7d');
  assert.equal(hex(varint(15293, 2)), '7bbd');
  assert.equal(hex(varint(37, 1)), '25');
  assert.equal(hex(varint(37, 2)), '4025'); // the RFC's two-byte encoding of 37
  assert.deepEqual([0, 63, 64, 16383, 16384, 2 ** 30 - 1, 2 ** 30].map(varintSize), [1, 1, 2, 2, 4, 4, 8]);
  assert.throws(() => varint(64, 1), RangeError);
  assert.throws(() => varint(-1, 4), RangeError);
});

test('versions the generator does not know are refused', () => {
  assert.equal(genQuicVersion(0x1a2a3a4a), undefined);
  assert.equal(genQuicVersion(0), undefined);
});

const tmp = mkdtempSync(join(tmpdir(), 'cp-gen-quic-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test(
  'tshark decrypts every QUIC Initial of a generated capture and finds the ground-truth name',
  { skip: need(haveTool('tshark'), 'tshark missing (Debian tshark)'), timeout: 120_000 },
  () => {
    const path = join(tmp, 'gen.pcap');
    const fd = openSync(path, 'w');
    let truth;
    try {
      truth = generate(new PcapWriter(fd), { seed: 9001, flows: 120, tlsShare: 0.2 });
    } finally {
      closeSync(fd);
    }
    const quic = truth.filter((t) => t.scenario.startsWith('quic'));
    assert.ok(quic.length >= 20, `QUIC flows in the capture: ${quic.length}`);
    const out = execFileSync(
      'tshark',
      [
        '-n',
        '-r',
        path,
        '-Y',
        'quic && tls.handshake.type == 1',
        '-T',
        'fields',
        '-E',
        'separator=|',
        '-e',
        'ip.src',
        '-e',
        'ipv6.src',
        '-e',
        'udp.srcport',
        '-e',
        'tls.handshake.extensions_server_name',
      ],
      { encoding: 'utf8', maxBuffer: 1 << 26, timeout: 100_000 },
    );
    const seen = new Map<string, string>();
    for (const line of out.split('\n')) {
      if (!line) continue;
      const [s4, s6, sport, sni] = line.split('|');
      seen.set(`${s4 || s6}|${sport}`, sni);
    }
    const wrong = quic
      .filter((t) => seen.get(`${t.src_ip}|${t.src_port}`) !== t.host)
      .map(
        (t) =>
          `${t.scenario} ${t.src_ip}:${t.src_port} truth ${t.host} tshark ${seen.get(`${t.src_ip}|${t.src_port}`)}`,
      );
    assert.deepEqual(wrong, []);
  },
);
