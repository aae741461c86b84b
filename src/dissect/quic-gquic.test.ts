/**
 * @module dissect/quic-gquic.test
 * gQUIC CHLO extraction on hand-assembled Q043 (public header) and Q046 (long header) client
 * packets, cross-checked with tshark's gQUIC dissector when it is installed; rejection of IETF
 * QUIC and other traffic; bad tag tables; fast-check robustness; linearity.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { bestTime } from './fixtures/index.js';
import { gquicVersion, parseGquicChlo, type GquicResult } from './quic-gquic.js';
import { buildQuicInitials } from '../gen/quic-initial.js';
import { buildClientHello } from '../gen/clienthello.js';
import { haveTools, need } from '../testutil/require.js';

const ascii = (s: string): number[] => [...Buffer.from(s, 'latin1')];

/** A CHLO message: tags in ascending order with little-endian end offsets, then the values. */
function chlo(tags: [string, string][]): Uint8Array {
  const sorted = tags
    .slice()
    .sort(
      (a, b) => Buffer.from(a[0], 'latin1').readUInt32BE(0) - Buffer.from(b[0], 'latin1').readUInt32BE(0),
    );
  const out: number[] = [...ascii('CHLO'), sorted.length & 0xff, sorted.length >> 8, 0, 0];
  let end = 0;
  for (const [t, v] of sorted) {
    end += v.length;
    out.push(...ascii(t), end & 0xff, (end >> 8) & 0xff, (end >> 16) & 0xff, end >>> 24);
  }
  for (const [, v] of sorted) out.push(...ascii(v));
  return Uint8Array.from(out);
}

/** STREAM frame on stream 1 at offset 0 with a 2-byte (big-endian) data length, then PADDING. */
function streamFrame(data: Uint8Array): number[] {
  return [0xa0, 0x01, data.length >> 8, data.length & 0xff, ...data];
}

const HASH = Array.from({ length: 12 }, (_, i) => 0x11 * (i + 1)); // not verified by readers here
const CID = [0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04];

function q043(data: Uint8Array, size = 1350): Uint8Array {
  // flags 0x09: version present, 8-byte CID, 1-byte packet number
  const p = [0x09, ...CID, ...ascii('Q043'), 0x01, ...HASH, ...streamFrame(data)];
  while (p.length < size) p.push(0);
  return Uint8Array.from(p);
}
function q046(data: Uint8Array, size = 1350): Uint8Array {
  // long header, Initial, 4-byte packet number; DCIL nibble 5 (8 bytes), SCIL 0
  const p = [0xc3, ...ascii('Q046'), 0x50, ...CID, 0, 0, 0, 1, ...HASH, ...streamFrame(data)];
  while (p.length < size) p.push(0);
  return Uint8Array.from(p);
}

const TAGS: [string, string][] = [
  ['PAD\0', '-'.repeat(300)],
  ['SNI\0', 'www.example.org'],
  ['VER\0', 'Q043'],
  ['UAID', 'Chrome/70.0.3538.77 Linux x86_64'],
  ['PDMD', 'X509'],
];

function done(r: GquicResult): Extract<GquicResult, { status: 'done' }> {
  assert.equal(r.status, 'done', JSON.stringify(r));
  return r as Extract<GquicResult, { status: 'done' }>;
}

test('Q043 public-header and Q046 long-header CHLOs: SNI and UAID', () => {
  for (const [make, v] of [
    [q043, 'Q043'],
    [q046, 'Q046'],
  ] as const) {
    const d = make(chlo(TAGS));
    assert.equal(gquicVersion(d), Buffer.from(v).readUInt32BE(0));
    const r = done(parseGquicChlo(d));
    assert.equal(r.sni, 'www.example.org');
    assert.equal(r.uaid, 'Chrome/70.0.3538.77 Linux x86_64');
    assert.deepEqual(r.anomalies, []);
  }
  const noSni = done(parseGquicChlo(q043(chlo([['VER\0', 'Q043']]))));
  assert.equal(noSni.sni, null);
});

test(
  'tshark reads the same SNI from these packets',
  { skip: need(haveTools('tshark', 'text2pcap'), 'tshark/text2pcap missing (Debian tshark)') },
  () => {
    const tmp = mkdtempSync(join(tmpdir(), 'gquic-test-'));
    try {
      for (const make of [q043, q046]) {
        const d = make(chlo(TAGS));
        const hex = Buffer.from(d).toString('hex');
        const lines = [];
        for (let i = 0; i < d.length; i += 16)
          lines.push(
            i.toString(16).padStart(6, '0') + ' ' + hex.slice(i * 2, i * 2 + 32).replace(/(..)/g, '$1 '),
          );
        writeFileSync(join(tmp, 'in.txt'), lines.join('\n') + '\n');
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
            '-d',
            'udp.port==443,gquic',
            '-T',
            'fields',
            '-e',
            'gquic.tag.sni',
            '-e',
            'gquic.tag.uaid',
          ],
          {
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'ignore'],
            timeout: 60000,
          },
        );
        const [sni, uaid] = out.trim().split('\t');
        const r = done(parseGquicChlo(d));
        assert.equal(r.sni, sni);
        assert.equal(r.uaid, uaid);
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  },
);

test('not gQUIC: IETF QUIC Initials, short/odd headers, other versions', () => {
  const ietf = buildQuicInitials({
    dcid: Uint8Array.from(CID),
    clientHello: buildClientHello({ sni: 'x.example' }),
  })[0];
  assert.equal(gquicVersion(ietf), 0);
  assert.equal(parseGquicChlo(ietf).status, 'not-mine');
  const d = q043(chlo(TAGS));
  const mod = (i: number, v: number): Uint8Array => {
    const c = d.slice();
    c[i] = v;
    return c;
  };
  assert.equal(gquicVersion(mod(0, 0x08)), 0, 'no version flag');
  assert.equal(gquicVersion(mod(0, 0x01)), 0, 'no 8-byte CID');
  assert.equal(gquicVersion(mod(9, 0x54)), 0, 'T043 is not gQUIC');
  assert.equal(gquicVersion(mod(12, 0x41)), 0, 'non-digit');
  assert.equal(gquicVersion(mod(11, 0x35)), 0, 'Q053 in a public header');
  assert.equal(gquicVersion(d.subarray(0, 12)), 0);
  assert.equal(parseGquicChlo(new Uint8Array(0)).status, 'not-mine');
});

test('bad tag tables are skipped; missing CHLO is an error; SNI beyond the datagram is need-more', () => {
  // a decoy "CHLO" with an impossible table (end offsets decreasing) before the real one
  const decoy = Uint8Array.from([
    ...ascii('CHLO'),
    2,
    0,
    0,
    0,
    ...ascii('SNI\0'),
    9,
    0,
    0,
    0,
    ...ascii('VER\0'),
    1,
    0,
    0,
    0,
  ]);
  const real = chlo(TAGS);
  const both = new Uint8Array(decoy.length + real.length);
  both.set(decoy);
  both.set(real, decoy.length);
  const r = done(parseGquicChlo(q043(both)));
  assert.equal(r.sni, 'www.example.org');
  assert.deepEqual(r.anomalies, ['gquic_bad_chlo']);
  assert.deepEqual(parseGquicChlo(q043(Uint8Array.from(ascii('REJ\0')))), {
    status: 'error',
    anomaly: 'gquic_no_chlo',
  });
  const full = q043(chlo(TAGS));
  const at = Buffer.from(full).indexOf('www.example.org');
  assert.ok(at > 0, 'SNI value present');
  const cut = full.subarray(0, at + 3);
  assert.equal(parseGquicChlo(cut).status, 'need-more');
});

test('fast-check: random and mutated packets never throw', () => {
  const base = [q043(chlo(TAGS)), q046(chlo(TAGS))];
  fc.assert(
    fc.property(
      fc.nat(1),
      fc.array(fc.tuple(fc.nat(1400), fc.nat(255)), { maxLength: 8 }),
      fc.option(fc.nat(1400)),
      (w, flips, cut) => {
        let d: Uint8Array = base[w].slice();
        for (const [i, v] of flips) if (i < d.length) d[i] = v;
        if (cut !== null) d = d.subarray(0, cut);
        const r = parseGquicChlo(d);
        assert.ok(['done', 'need-more', 'not-mine', 'error'].includes(r.status), r.status);
      },
    ),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 1500 }), (d) => {
      const r = parseGquicChlo(d);
      assert.ok(['done', 'need-more', 'not-mine', 'error'].includes(r.status), r.status);
    }),
    { numRuns: 300 },
  );
});

test('linearity: worst case (a packet full of decoy CHLO tables) grows linearly with size', () => {
  const make = (n: number): Uint8Array => {
    const decoy = [...ascii('CHLO'), 128, 0, 0, 0];
    const body: number[] = [];
    while (body.length < n) body.push(...decoy);
    const d = q043(new Uint8Array(0), 0);
    const out = new Uint8Array(d.length + body.length);
    out.set(d);
    out.set(body, d.length);
    return out;
  };
  const sizes = [2000, 8000, 32000].map(make);
  const t = sizes.map((d) => bestTime(() => void parseGquicChlo(d), 7));
  const ratio = t[2] / Math.max(t[0], 0.005);
  assert.ok(ratio < 64, `t=${t.map((x) => x.toFixed(3)).join('/')}ms ratio ${ratio.toFixed(1)}`);
});
