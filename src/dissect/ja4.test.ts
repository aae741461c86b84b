/**
 * @module dissect/ja4.test
 * JA4 against the FoxIO specification's own worked example (technical_details/JA4.md) and its
 * stated edge-case rules (ALPN hex fallback, empty lists, missing signature algorithms).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ja4, ja4AlpnCode, ja4VersionCode, ja4MemoSize } from './ja4.js';
import type { ClientHello } from './types.js';

// The spec's example hello, values in wire order as listed in its JA4_ro line.
const SPEC_CIPHERS = [
  0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d,
  0x002f, 0x0035,
];
const SPEC_EXTS = [
  0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012, 0x002b, 0xff01,
  0x000b, 0x000a, 0x0015,
];
const SPEC_SIGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601];

type ListField = 'cipherSuites' | 'extensions' | 'signatureAlgorithms';
/** A hello to fingerprint, its lists written as plain arrays here (the parser gives typed arrays). */
type HelloIn = Omit<ClientHello, 'ja4' | ListField> & Record<ListField, number[]>;

function hello(over: Partial<HelloIn> = {}): Omit<ClientHello, 'ja4'> {
  const o: HelloIn = {
    legacyVersion: 0x0303,
    sni: 'example.com',
    alpn: ['h2', 'http/1.1'],
    supportedVersions: [0x0304, 0x0303],
    cipherSuites: SPEC_CIPHERS,
    extensions: SPEC_EXTS,
    signatureAlgorithms: SPEC_SIGS,
    ech: false,
    ...over,
  };
  return {
    ...o,
    cipherSuites: Uint16Array.from(o.cipherSuites),
    extensions: Uint16Array.from(o.extensions),
    signatureAlgorithms: Uint16Array.from(o.signatureAlgorithms),
  };
}

test('spec example: t13d1516h2_8daaf6152771_e5627efa2ab1', () => {
  assert.equal(ja4(hello(), 't'), 't13d1516h2_8daaf6152771_e5627efa2ab1');
});

test('GREASE is ignored in ciphers, extensions, versions and signature algorithms', () => {
  const h = hello({
    cipherSuites: [0x2a2a, ...SPEC_CIPHERS],
    extensions: [0x0a0a, ...SPEC_EXTS, 0xfafa],
    supportedVersions: [0x0304, 0x0303], // parser already drops GREASE here
    signatureAlgorithms: [0x1a1a, ...SPEC_SIGS],
  });
  assert.equal(ja4(h, 't'), 't13d1516h2_8daaf6152771_e5627efa2ab1');
});

test('QUIC prefix and no-SNI flag', () => {
  const noSni = hello({ sni: null, extensions: SPEC_EXTS.filter((e) => e !== 0) });
  // Removing SNI changes only the flag and the extension count; JA4_c omits SNI anyway.
  assert.equal(ja4(noSni, 'q'), 'q13i1515h2_8daaf6152771_e5627efa2ab1');
});

test('no signature algorithms: the string ends without underscore (spec: 6d807ffa2a79)', () => {
  assert.equal(ja4(hello({ signatureAlgorithms: [] }), 't'), 't13d1516h2_8daaf6152771_6d807ffa2a79');
});

test('empty cipher and extension lists hash to twelve zeros', () => {
  const h = hello({ cipherSuites: [], extensions: [], supportedVersions: [], alpn: [], sni: null });
  assert.equal(ja4(h, 't'), 't12i000000_000000000000_000000000000');
  // Only SNI and ALPN present: sorted list without them is empty.
  const h2 = hello({ extensions: [0x0000, 0x0010], supportedVersions: [] });
  assert.equal(ja4(h2, 't').split('_')[2], '000000000000');
});

test('version: highest supported_versions entry, else legacy version; unknown = 00', () => {
  assert.equal(ja4(hello({ supportedVersions: [0x0303, 0x0304, 0x0302] }), 't').slice(1, 3), '13');
  const noSv = hello({ extensions: SPEC_EXTS.filter((e) => e !== 0x002b), supportedVersions: [] });
  assert.equal(ja4(noSv, 't').slice(1, 3), '12');
  assert.equal(
    ja4(hello({ legacyVersion: 0x0301, extensions: [], supportedVersions: [] }), 't').slice(1, 3),
    '10',
  );
  assert.equal(ja4VersionCode(0x0300), 's3');
  assert.equal(ja4VersionCode(0x0002), 's2');
  assert.equal(ja4VersionCode(0xfefd), 'd2');
  assert.equal(ja4VersionCode(0x7f17), '00');
});

test('counts are capped at 99', () => {
  const many = Array.from({ length: 150 }, (_, i) => 0x0100 + i);
  const s = ja4(hello({ cipherSuites: many, extensions: many }), 't');
  assert.equal(s.slice(4, 8), '9999');
});

test('ALPN code: spec examples', () => {
  assert.equal(ja4AlpnCode('h2'), 'h2');
  assert.equal(ja4AlpnCode('http/1.1'), 'h1');
  assert.equal(ja4AlpnCode(undefined), '00');
  assert.equal(ja4AlpnCode(''), '00');
  assert.equal(ja4AlpnCode('h'), 'hh'); // single char: both first and last
  // Non-alphanumeric first/last byte: first and last char of the hex representation.
  assert.equal(ja4AlpnCode('\xab'), 'ab');
  assert.equal(ja4AlpnCode('\xab\xcd'), 'ad');
  assert.equal(ja4AlpnCode('\x30\xab'), '3b');
  assert.equal(ja4AlpnCode('\x30\x31\xab\xcd'), '3d');
  assert.equal(ja4AlpnCode('\x30\xab\xcd\x31'), '01');
});

test('long lists (attacker-sized, any order): the hashes are those of the spec rule, computed independently', () => {
  // the spec rule written out here with Array.sort and node:crypto: sorted 4-digit hex, comma-joined
  const hex4 = (v: number) => v.toString(16).padStart(4, '0');
  const sha12 = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 12);
  const grease = (v: number) => (v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff);
  let x = 12345;
  const rnd = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8) & 0xffff;
  for (const n of [25, 300, 5000]) {
    const ciphers = Array.from({ length: n }, rnd);
    const exts = [...new Set(Array.from({ length: Math.min(n, 1000) }, rnd))].sort((a, b) => b - a);
    const j = ja4(hello({ cipherSuites: ciphers, extensions: exts }), 't').split('_');
    const sortedC = ciphers.filter((v) => !grease(v)).sort((a, b) => a - b);
    assert.equal(j[1], sha12(sortedC.map(hex4).join(',')), `ciphers n=${n}`);
    const sortedE = exts.filter((v) => !grease(v) && v !== 0 && v !== 0x10).sort((a, b) => a - b);
    assert.equal(
      j[2],
      sha12(sortedE.map(hex4).join(',') + '_' + SPEC_SIGS.map(hex4).join(',')),
      `exts n=${n}`,
    );
  }
});

test('long lists repeated (the wire-order memo): each order, each changed value, each new signature list gets its own right hash', () => {
  const hex4 = (v: number) => v.toString(16).padStart(4, '0');
  const sha12 = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 12);
  const grease = (v: number) => (v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff);
  const expectB = (l: number[]) =>
    sha12(
      l
        .filter((v) => !grease(v))
        .sort((a, b) => a - b)
        .map(hex4)
        .join(','),
    );
  const base = Array.from({ length: 3000 }, (_, i) => (0xfff0 - i * 3) & 0xffff);
  const shuffled = [...base].reverse();
  const changed = [...base];
  changed[1234] = 0x0001;
  // same list twice (second: a memo hit), then the same values in another order, then one value
  // changed, then the last one cut short or made longer
  for (const l of [base, base, shuffled, changed, base, changed, base, base.slice(0, 2999), [...base, 2]]) {
    assert.equal(ja4(hello({ cipherSuites: l }), 't').split('_')[1], expectB(l));
  }
  // extensions: the signature algorithms are part of the key
  const exts = Array.from({ length: 500 }, (_, i) => 0xfe00 - i * 7);
  const sortedE = exts
    .filter((v) => !grease(v))
    .sort((a, b) => a - b)
    .map(hex4)
    .join(',');
  for (const sigs of [SPEC_SIGS, SPEC_SIGS, [0x0403], SPEC_SIGS, []]) {
    const c = ja4(hello({ extensions: exts, signatureAlgorithms: sigs }), 't').split('_')[2];
    assert.equal(c, sha12(sigs.length ? sortedE + '_' + sigs.map(hex4).join(',') : sortedE), String(sigs));
  }
});

test('a long list repeated byte for byte (the native-compare path) keeps counts and flags; GREASE changes only the bytes', () => {
  // expected values from the spec rule, written out here (Array.sort, node:crypto)
  const hex4 = (v: number) => v.toString(16).padStart(4, '0');
  const sha12 = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 12);
  const grease = (v: number) => (v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff);
  const sorted = (l: number[], drop: number[]) =>
    l
      .filter((v) => !grease(v) && !drop.includes(v))
      .sort((a, b) => a - b)
      .map(hex4)
      .join(',');
  const ciphers = Array.from({ length: 400 }, (_, i) => (0xfff0 - i * 5) & 0xffff);
  // 300 extensions with SNI, ALPN and supported_versions among them: JA4_a's count and 'd' flag come
  // from the filtering pass, which a repeat skips
  const exts = [0x0000, ...Array.from({ length: 297 }, (_, i) => 0xfe00 - i * 7), 0x0010, 0x002b];
  const expectA = (sni: boolean) => `t13${sni ? 'd' : 'i'}9999h2`;
  const cases: Array<[number[], number[], number[]]> = [
    [ciphers, exts, SPEC_SIGS],
    [ciphers, exts, SPEC_SIGS], // byte-for-byte repeat
    [[0x2a2a, ...ciphers], [0x3a3a, ...exts], SPEC_SIGS], // other bytes (GREASE), same values
    [[0x2a2a, ...ciphers], [0x3a3a, ...exts], SPEC_SIGS], // that repeated
    [ciphers, exts, [0x0403]], // same lists, other signature algorithms
    [ciphers, exts, [0x0403]],
    [ciphers, exts, SPEC_SIGS],
    [ciphers, exts.filter((v) => v !== 0), SPEC_SIGS], // no SNI now
    [ciphers, exts.filter((v) => v !== 0), SPEC_SIGS],
    [ciphers, exts, SPEC_SIGS],
    // a new cipher list (its pass counts bytes for the sort), then the same extensions as before with
    // signature algorithms never seen with them: that sort must count its own bytes
    [ciphers.map((v) => v ^ 0x0101), exts, [0x0804, 0x0403]],
    // the cipher list again, not right after itself (so it is stored in the memo), then with other
    // bytes (GREASE) and the same values: a memo hit, no sort; then the extensions, byte for byte as
    // before, with new signature algorithms: their sort must not use the ciphers' byte counts
    [ciphers, exts, SPEC_SIGS],
    [[0x4a4a, ...ciphers], exts, [0x0805]],
  ];
  for (const [k, [c, e, sigs]] of cases.entries()) {
    const noSni = !e.includes(0);
    const [a, b, cc] = ja4(
      hello({ cipherSuites: c, extensions: e, signatureAlgorithms: sigs, sni: noSni ? null : 'x.example' }),
      't',
    ).split('_');
    assert.equal(a, expectA(!noSni), `case ${k}: a`);
    assert.equal(b, sha12(sorted(c, [])), `case ${k}: b`);
    assert.equal(cc, sha12(sorted(e, [0x0000, 0x0010]) + '_' + sigs.map(hex4).join(',')), `case ${k}: c`);
  }
});

test('the memos stay bounded by stored values: 200 distinct 20,000-value lists fill none of them', () => {
  const before = ja4MemoSize().values; // what earlier tests left
  for (let k = 0; k < 200; k++) {
    const l = Array.from({ length: 20_000 }, (_, i) => (i * 3 + k) & 0xffff);
    ja4(hello({ cipherSuites: l }), 't');
    const m = ja4MemoSize(); // two memos, each ≤ 2^20 values
    assert.ok(m.values <= 2 << 20, `after ${k + 1} lists: ${m.values} values held`);
  }
  // 4,000,000 values went through, each list once: a long list is stored from its second sighting,
  // so only the short lists of the template hello are held
  assert.ok(ja4MemoSize().values <= before + 100, `${before} -> ${ja4MemoSize().values} values held`);
  // a long list seen again (not right after itself: that is the byte-compare path) is stored
  const a = Array.from({ length: 20_000 }, (_, i) => (i * 5) & 0xffff);
  const b = Array.from({ length: 20_000 }, (_, i) => (i * 7) & 0xffff);
  for (const l of [a, b, a]) ja4(hello({ cipherSuites: l }), 't');
  assert.ok(ja4MemoSize().values >= before + 19_000, `${before} -> ${ja4MemoSize().values} values held`);
});
