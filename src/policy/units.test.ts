/**
 * @module policy/units.test
 * Small parsers: rates and sizes, names, CIDRs (canonical text per RFC 5952 examples, IPv4-mapped),
 * the allocation-free address parsers against the strict ones, QUIC versions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseRate, parseSize } from './units.js';
import { normalizeName, normalizePattern } from './names.js';
import { formatCidr, parseCidr, parseV4Fast, parseV4Strict, parseV6Fast, parseV6Strict } from './ip.js';
import { parseQuicVersion } from './load.js';

test('rates in bit/s and sizes in bytes', () => {
  assert.equal(parseRate('128kbit'), 128_000);
  assert.equal(parseRate('150 kbit/s'), 150_000);
  assert.equal(parseRate('1.5mbit'), 1_500_000);
  assert.equal(parseRate('1Gbit'), 1e9);
  assert.equal(parseRate(64000), 64000);
  assert.match(String(parseRate('128kbps')), /^!ambiguous/);
  assert.match(String(parseRate('fast')), /^!/);
  assert.match(String(parseRate(0)), /^!/);
  assert.equal(parseSize('16KB'), 16_000);
  assert.equal(parseSize('16KiB'), 16_384);
  assert.equal(parseSize('1.5MiB'), 1_572_864);
  assert.equal(parseSize(1500), 1500);
  assert.match(String(parseSize('16 bits')), /^!/);
});

test('names: lowercase, one trailing dot dropped, punycode, strict characters', () => {
  assert.equal(normalizeName('WWW.Example.COM.'), 'www.example.com');
  assert.equal(normalizeName('Bücher.example'), 'xn--bcher-kva.example');
  assert.equal(normalizeName('_dmarc.example.com'), '_dmarc.example.com');
  for (const bad of [
    '',
    '.',
    'a..b',
    '.a',
    '*.a',
    'a b',
    'a/b',
    'x'.repeat(64) + '.com',
    'a.' + 'b.'.repeat(130) + 'c',
  ])
    assert.match(normalizeName(bad), /^!/, bad);
  assert.equal(normalizePattern('T.CO'), 't.co');
  assert.equal(normalizePattern('.twimg.com'), '.twimg.com');
  assert.match(normalizePattern('t*co'), /^!/);
});

test('CIDRs: canonical text (RFC 5952), IPv4-mapped prefixes become IPv4, host bits refused', () => {
  const canon = (s: string) => {
    const c = parseCidr(s);
    return typeof c === 'string' ? c : formatCidr(c);
  };
  assert.equal(canon('192.0.2.1'), '192.0.2.1/32');
  assert.equal(canon('10.0.0.0/8'), '10.0.0.0/8');
  assert.equal(canon('2001:DB8:0:0:1:0:0:1/128'), '2001:db8::1:0:0:1/128');
  assert.equal(canon('2001:0:0:1:0:0:0:1'), '2001:0:0:1::1/128');
  assert.equal(canon('2001:db8::/32'), '2001:db8::/32');
  assert.equal(canon('::/0'), '::/0');
  assert.equal(canon('::ffff:10.0.0.0/104'), '10.0.0.0/8');
  assert.equal(canon('::ffff:c000:0201'), '192.0.2.1/32');
  assert.match(canon('10.0.0.1/8'), /host bits/);
  assert.match(canon('10.0.0.0/33'), /> 32/);
  assert.match(canon('01.2.3.4'), /invalid IPv4/);
  assert.match(canon('1:2:3:4:5:6:7:8:9'), /invalid IPv6/);
  assert.equal(typeof parseCidr('10.0.0.1/8', true), 'object'); // import mode masks
});

test('fast address parsers agree with the strict ones on random and odd inputs', () => {
  const w = new Uint32Array(4);
  const g = new Uint16Array(8);
  const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((x) => x.join('.'));
  fc.assert(
    fc.property(v4, (s) => {
      assert.equal(parseV4Fast(s), parseV4Strict(s));
    }),
  );
  const group = fc.nat(0xffff).map((x) => x.toString(16));
  const v6 = fc
    .tuple(fc.array(group, { minLength: 8, maxLength: 8 }), fc.nat(8), fc.nat(8))
    .map(([gs, a, b]) => {
      const [i, j] = a <= b ? [a, b] : [b, a];
      return j - i >= 2 ? `${gs.slice(0, i).join(':')}::${gs.slice(j).join(':')}` : gs.join(':');
    });
  fc.assert(
    fc.property(v6, (s) => {
      const strict = parseV6Strict(s);
      const ok = parseV6Fast(s, w, g);
      assert.equal(ok, strict !== null, s);
      if (strict)
        assert.deepEqual(
          [w[0], w[1], w[2], w[3]],
          [0, 2, 4, 6].map((k) => strict[k] * 65536 + strict[k + 1]),
          s,
        );
    }),
    { numRuns: 500 },
  );
  for (const s of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1..2.3', 'a.b.c.d', ' 1.2.3.4', '1.2.3.4 '])
    assert.equal(parseV4Fast(s), -1, s);
  for (const s of [
    '',
    ':',
    ':::',
    '1:2:3:4:5:6:7',
    '1::2::3',
    '12345::',
    'g::1',
    '::ffff:1.2.3',
    '1:2:3:4:5:6:7:8:9',
  ])
    assert.equal(parseV6Fast(s, w, g), false, s);
  assert.ok(parseV6Fast('fe80::1%eth0', w, g));
  assert.deepEqual(Array.from(w), [0xfe800000, 0, 0, 1]);
  assert.ok(parseV6Fast('::ffff:192.0.2.1', w, g));
  assert.deepEqual(Array.from(w), [0, 0, 0xffff, 0xc0000201]);
});

test('QUIC versions', () => {
  assert.deepEqual(
    ['v1', 1, '0x00000001', 'v2', 'draft-29', '0xff00001d'].map(parseQuicVersion),
    [1, 1, 1, 0x6b3343cf, 0xff00001d, 0xff00001d],
  );
  assert.equal(parseQuicVersion('v9'), -1);
  assert.equal(parseQuicVersion(-1), -1);
});
