/**
 * @module gen/clienthello.test
 * The ClientHello builder: its bytes are decoded by tshark (independent dissector) with the
 * options given; record wrapping is checked byte by byte; sizes of the PQ / padded variants.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildClientHello, wrapRecords, DEFAULT_CIPHER_SUITES } from './clienthello.js';
import { haveTools, need } from '../testutil/require.js';

const TSHARK = need(haveTools('tshark', 'text2pcap'), 'tshark/text2pcap missing (Debian tshark)');

/** tshark's decoding of `stream` sent as one TCP packet to port 443. */
function tsharkHello(stream: Uint8Array): Record<string, string[]> {
  const dir = mkdtempSync(join(tmpdir(), `cp-ch-${process.pid}-`));
  try {
    const lines: string[] = [];
    for (let i = 0; i < stream.length; i += 16) {
      lines.push(
        i.toString(16).padStart(6, '0') +
          ' ' +
          Buffer.from(stream.subarray(i, i + 16))
            .toString('hex')
            .replace(/(..)/g, '$1 '),
      );
    }
    writeFileSync(join(dir, 'in.txt'), lines.join('\n') + '\n');
    execFileSync('text2pcap', ['-q', '-T', '40000,443', join(dir, 'in.txt'), join(dir, 'out.pcap')], {
      stdio: 'ignore',
    });
    const fields = [
      'tls.handshake.extensions_server_name',
      'tls.handshake.extensions_alpn_str',
      'tls.handshake.extensions.supported_version',
      'tls.handshake.ciphersuite',
      'tls.handshake.extension.type',
      'tls.handshake.extensions_key_share_group',
      'tls.handshake.extensions_key_share_key_exchange_length',
      'tls.handshake.length',
      '_ws.malformed',
      '_ws.expert',
    ];
    const out = execFileSync(
      'tshark',
      [
        '-r',
        join(dir, 'out.pcap'),
        '-T',
        'json',
        '-Y',
        'tls.handshake.type == 1',
        ...fields.flatMap((f) => ['-e', f]),
      ],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const parsed = JSON.parse(out) as { _source: { layers: Record<string, string[]> } }[];
    assert.equal(parsed.length, 1, 'tshark found one ClientHello');
    return parsed[0]._source.layers;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('tshark decodes a Chrome-like hello with the options given', { skip: TSHARK, timeout: 60000 }, () => {
  const hs = buildClientHello({
    sni: 'Built.Example.ORG',
    alpn: ['h2', 'http/1.1'],
    grease: true,
    pqKeyShare: true,
    ech: true,
  });
  const ts = tsharkHello(wrapRecords(hs));
  assert.deepEqual(ts['tls.handshake.extensions_server_name'], ['Built.Example.ORG']);
  assert.deepEqual(ts['tls.handshake.extensions_alpn_str'], ['h2', 'http/1.1']);
  assert.deepEqual(ts['tls.handshake.extensions.supported_version'], ['0xdada', '0x0304', '0x0303']);
  assert.deepEqual(ts['tls.handshake.ciphersuite'], [
    '0x1a1a',
    ...DEFAULT_CIPHER_SUITES.map((c) => '0x' + c.toString(16).padStart(4, '0')),
  ]);
  assert.ok(ts['tls.handshake.extension.type'].includes(String(0xfe0d)));
  // key shares: GREASE (1 byte), X25519MLKEM768 (1216 bytes), X25519 (32 bytes)
  assert.deepEqual(ts['tls.handshake.extensions_key_share_group'], [
    String(0x4a4a),
    String(0x11ec),
    String(0x1d),
  ]);
  assert.deepEqual(ts['tls.handshake.extensions_key_share_key_exchange_length'], ['1', '1216', '32']);
  assert.equal(Number(ts['tls.handshake.length'][0]), hs.length - 4);
  assert.equal(ts['_ws.malformed'], undefined);
  assert.ok(hs.length > 1700 && hs.length < 2000, `PQ hello is ${hs.length} bytes`);
});

test(
  'tshark decodes record-fragmented hellos (7-byte records) and a no-SNI, no-ALPN hello',
  { skip: TSHARK, timeout: 60000 },
  () => {
    const ts = tsharkHello(wrapRecords(buildClientHello({ sni: 'frag.example', alpn: ['h2'] }), 7));
    assert.deepEqual(ts['tls.handshake.extensions_server_name'], ['frag.example']);
    const bare = tsharkHello(wrapRecords(buildClientHello({ versions: [0x0303] })));
    assert.equal(bare['tls.handshake.extensions_server_name'], undefined);
    assert.equal(bare['tls.handshake.extensions_alpn_str'], undefined);
    assert.deepEqual(bare['tls.handshake.extensions.supported_version'], ['0x0303']);
    assert.ok(!bare['tls.handshake.extension.type'].includes('51')); // no key_share without TLS 1.3
  },
);

test('padTo: the handshake message reaches exactly padTo bytes (or +4 when too close)', () => {
  const base = buildClientHello({ sni: 'p.example' }).length;
  assert.equal(buildClientHello({ sni: 'p.example', padTo: 1024 }).length, 1024);
  assert.equal(buildClientHello({ sni: 'p.example', padTo: 4000 }).length, 4000);
  assert.equal(buildClientHello({ sni: 'p.example', padTo: base }).length, base); // already there
  assert.equal(buildClientHello({ sni: 'p.example', padTo: base + 2 }).length, base + 4); // ext header needs 4
});

test('handshake header and determinism; random option changes the bytes', () => {
  const a = buildClientHello({ sni: 'd.example' });
  assert.equal(a[0], 1);
  assert.equal((a[1] << 16) | (a[2] << 8) | a[3], a.length - 4);
  assert.deepEqual(buildClientHello({ sni: 'd.example' }), a);
  const r = new Uint8Array(32).fill(9);
  const b = buildClientHello({ sni: 'd.example', random: r });
  assert.equal(b.length, a.length);
  assert.notDeepEqual(b, a);
  assert.deepEqual(b.subarray(6, 38), r);
  assert.throws(() => buildClientHello({ random: new Uint8Array(5) }), RangeError);
});

test('wrapRecords: headers, fragment sizes, bounds', () => {
  const hs = Uint8Array.from({ length: 10 }, (_, i) => i);
  assert.deepEqual(wrapRecords(hs), Uint8Array.from([22, 3, 1, 0, 10, ...hs]));
  assert.deepEqual(
    wrapRecords(hs, 4),
    Uint8Array.from([22, 3, 1, 0, 4, 0, 1, 2, 3, 22, 3, 1, 0, 4, 4, 5, 6, 7, 22, 3, 1, 0, 2, 8, 9]),
  );
  assert.equal(wrapRecords(hs, 1).length, 60);
  assert.throws(() => wrapRecords(hs, 0), RangeError);
  assert.throws(() => wrapRecords(hs, 16385), RangeError);
  const big = new Uint8Array(40000);
  const recs = wrapRecords(big);
  assert.equal(recs.length, 40000 + 15);
  assert.deepEqual([...recs.subarray(0, 5)], [22, 3, 1, 0x40, 0x00]);
});
