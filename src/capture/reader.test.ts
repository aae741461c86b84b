/**
 * @module capture/reader.test
 * The capture reader against hand-written files (classic pcap in both byte orders, micro/nanosecond;
 * pcapng with several interfaces of different link types and if_tsresol values, EPB/SPB/PB, big-endian
 * and multi-section files; truncation; bad magic) and against files written by Wireshark's own tools
 * (editcap, mergecap, text2pcap) from a capture made here: every packet, timestamp and link type must
 * come through unchanged.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, openSync, closeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { readCaptureFile, readCaptureFd, type ReadStats } from './reader.js';
import { InputError } from '../util/errors.js';
import { PcapngBuilder, bytes, pcapFile, tempDir, type TestPacket } from '../testutil/pcap.js';
import { haveTool, need } from '../testutil/require.js';

const tmp = tempDir('chokepoint-reader-');
after(() => tmp.cleanup());

interface Got {
  data: Buffer;
  linktype: number;
  tsMs: number;
  origLen: number;
}

function read(path: string): { pkts: Got[]; stats: ReadStats } {
  const pkts: Got[] = [];
  const stats = readCaptureFile(path, {
    packet(buf, off, end, linktype, tsMs, origLen) {
      // copy: the range is only valid during the call
      pkts.push({ data: Buffer.from(buf.subarray(off, end)), linktype, tsMs, origLen });
    },
  });
  return { pkts, stats };
}

function write(name: string, data: Uint8Array): string {
  const p = tmp.path(name);
  writeFileSync(p, data);
  return p;
}

function samplePackets(nano: boolean): TestPacket[] {
  const sizes = [60, 1, 0, 1514, 333, 9000];
  return sizes.map((n, i) => ({
    data: bytes(n, i + 7),
    sec: 1_700_000_000 + i,
    frac: nano ? 123_456_789 - i * 1000 : 654_321 - i,
    origLen: i === 3 ? 1600 : undefined,
  }));
}

for (const le of [true, false]) {
  for (const nano of [false, true]) {
    test(`classic pcap, ${le ? 'little' : 'big'}-endian, ${nano ? 'nano' : 'micro'}seconds`, () => {
      const pk = samplePackets(nano);
      const path = write(`c-${le}-${nano}.pcap`, pcapFile({ le, nano, linktype: 113 }, pk));
      const { pkts, stats } = read(path);
      assert.equal(stats.format, 'pcap');
      assert.equal(stats.truncated, null);
      assert.equal(stats.packets, pk.length);
      assert.equal(
        stats.bytes,
        pk.reduce((a, p) => a + p.data.length, 0),
      );
      assert.equal(pkts.length, pk.length);
      pk.forEach((p, i) => {
        assert.deepEqual(pkts[i].data, Buffer.from(p.data), `packet ${i}`);
        assert.equal(pkts[i].linktype, 113);
        assert.equal(pkts[i].origLen, p.origLen ?? p.data.length);
        const want = p.sec * 1000 + (nano ? p.frac / 1e6 : p.frac / 1e3);
        assert.ok(Math.abs(pkts[i].tsMs - want) < 1e-6, `ts ${pkts[i].tsMs} vs ${want}`);
      });
    });
  }
}

test('classic pcap: FCS bits in the link-type field are masked off', () => {
  const path = write(
    'fcs.pcap',
    pcapFile(
      { le: true, nano: false, linktype: 1 | 0x10000000 | (4 << 28) },
      samplePackets(false).slice(0, 1),
    ),
  );
  assert.equal(read(path).pkts[0].linktype, 1);
});

test('classic pcap: truncated last record keeps the packets before it', () => {
  const pk = samplePackets(false);
  const full = pcapFile({ le: true, nano: false, linktype: 1 }, pk);
  // cut inside the data of the last record
  const path = write('trunc-data.pcap', full.subarray(0, full.length - 100));
  const { pkts, stats } = read(path);
  assert.equal(pkts.length, pk.length - 1);
  assert.match(stats.truncated ?? '', /record/);
  pkts.forEach((p, i) => assert.deepEqual(p.data, Buffer.from(pk[i].data)));
  // cut inside a record header
  const lastLen = pk[pk.length - 1].data.length;
  const path2 = write('trunc-hdr.pcap', full.subarray(0, full.length - lastLen - 8));
  const r2 = read(path2);
  assert.equal(r2.pkts.length, pk.length - 1);
  assert.match(r2.stats.truncated ?? '', /header/);
  // header only: zero packets, not an error
  const r3 = read(write('hdr-only.pcap', full.subarray(0, 24)));
  assert.equal(r3.pkts.length, 0);
  assert.equal(r3.stats.truncated, null);
});

test('bad magic, empty file, short header, missing file → InputError', () => {
  const cases: [string, Uint8Array][] = [
    ['bad-magic', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['empty', new Uint8Array(0)],
    ['three-bytes', Uint8Array.of(0xd4, 0xc3, 0xb2)],
    ['short-pcap-header', pcapFile({ le: true, nano: false, linktype: 1 }, []).subarray(0, 20)],
  ];
  for (const [name, data] of cases) {
    const path = write(name, data);
    assert.throws(
      () => read(path),
      (e: unknown) => e instanceof InputError && e.code === 'ERR_INPUT' && e.message.includes(path),
      name,
    );
  }
  assert.throws(
    () => read(tmp.path('does-not-exist.pcap')),
    (e: unknown) => e instanceof InputError,
  );
});

test('pcapng: two interfaces with different link types and if_tsresol (µs default, ns, 2^-10)', () => {
  const a = bytes(74, 1);
  const b = bytes(40, 2);
  const c = bytes(1501, 3);
  const d = bytes(3, 4);
  const f = new PcapngBuilder(true)
    .shb()
    .idb(1) // Ethernet, default µs
    .idb(101, 9) // raw IP, nanoseconds
    .other(4, new Uint8Array(8)) // Name Resolution Block: ignored
    .epb(0, 1_700_000_000_123_456n, a)
    .epb(1, 1_700_000_000_123_456_789n, b, 1000)
    .epb(0, 1_700_000_001_000_001n, c)
    .idb(228, 0x80 | 10) // IPv4, 2^-10 s units
    .epb(2, 1024n * 5n + 512n, d) // 5.5 s
    .build();
  const { pkts, stats } = read(write('two-if.pcapng', f));
  assert.equal(stats.format, 'pcapng');
  assert.equal(stats.truncated, null);
  assert.equal(pkts.length, 4);
  assert.deepEqual(
    pkts.map((p) => p.linktype),
    [1, 101, 1, 228],
  );
  assert.deepEqual(pkts[0].data, Buffer.from(a));
  assert.deepEqual(pkts[1].data, Buffer.from(b));
  assert.deepEqual(pkts[2].data, Buffer.from(c));
  assert.deepEqual(pkts[3].data, Buffer.from(d));
  assert.equal(pkts[1].origLen, 1000);
  assert.ok(Math.abs(pkts[0].tsMs - 1_700_000_000_123.456) < 1e-6);
  // nanosecond timestamps lose sub-µs precision in a double of milliseconds; within 1 µs
  assert.ok(Math.abs(pkts[1].tsMs - (1_700_000_000_123 + 0.456789)) < 1e-3, String(pkts[1].tsMs));
  assert.ok(Math.abs(pkts[2].tsMs - 1_700_000_001_000.001) < 1e-6);
  assert.equal(pkts[3].tsMs, 5500);
});

test('pcapng: Simple Packet Blocks use interface 0 and its snaplen', () => {
  const f = new PcapngBuilder(true)
    .shb()
    .idb(101, undefined, 100)
    .spb(bytes(60, 9))
    .spb(bytes(150, 10), 150)
    .spb(bytes(7, 11))
    .build();
  const { pkts } = read(write('spb.pcapng', f));
  assert.equal(pkts.length, 3);
  assert.deepEqual(pkts[0].data, Buffer.from(bytes(60, 9)));
  // the SPB holds 150 bytes but the interface snaplen is 100
  assert.deepEqual(pkts[1].data, Buffer.from(bytes(150, 10).subarray(0, 100)));
  assert.equal(pkts[1].origLen, 150);
  // 7 bytes padded to 8 in the block: the padding is not packet data
  assert.deepEqual(pkts[2].data, Buffer.from(bytes(7, 11)));
  assert.ok(pkts.every((p) => p.linktype === 101));
});

test('pcapng: big-endian section, then a little-endian section with its own interfaces', () => {
  const be = new PcapngBuilder(false).shb(false).idb(113, 3).epb(0, 1_700_000_000_500n, bytes(33, 5)).build(); // ms units
  const le = new PcapngBuilder(true).shb(true).idb(276).epb(0, 2_000_000n, bytes(44, 6)).build();
  const { pkts, stats } = read(write('be-le.pcapng', Buffer.concat([be, le])));
  assert.equal(stats.truncated, null);
  assert.equal(pkts.length, 2);
  assert.equal(pkts[0].linktype, 113);
  assert.equal(pkts[0].tsMs, 1_700_000_000_500);
  assert.deepEqual(pkts[0].data, Buffer.from(bytes(33, 5)));
  assert.equal(pkts[1].linktype, 276);
  assert.equal(pkts[1].tsMs, 2000);
  assert.deepEqual(pkts[1].data, Buffer.from(bytes(44, 6)));
});

test('pcapng: truncated last block keeps earlier packets; a packet for a missing interface is reported', () => {
  const f = new PcapngBuilder(true).shb().idb(1).epb(0, 1n, bytes(100, 1)).epb(0, 2n, bytes(100, 2)).build();
  const { pkts, stats } = read(write('ng-trunc.pcapng', f.subarray(0, f.length - 30)));
  assert.equal(pkts.length, 1);
  assert.deepEqual(pkts[0].data, Buffer.from(bytes(100, 1)));
  assert.ok(stats.truncated);
  const g = new PcapngBuilder(true).shb().idb(1).epb(3, 1n, bytes(10, 1)).epb(0, 2n, bytes(10, 2)).build();
  const r2 = read(write('ng-noif.pcapng', g));
  assert.equal(r2.pkts.length, 1);
  assert.ok(r2.stats.truncated);
});

test('stdin-like fd reading: readCaptureFd on an open descriptor', () => {
  const pk = samplePackets(false);
  const path = write('fd.pcap', pcapFile({ le: true, nano: false, linktype: 1 }, pk));
  const fd = openSync(path, 'r');
  try {
    let n = 0;
    const st = readCaptureFd(fd, 'fd', { packet: () => void n++ });
    assert.equal(n, pk.length);
    assert.equal(st.packets, pk.length);
  } finally {
    closeSync(fd);
  }
});

test('large capture is streamed through the chunk window (records straddle chunk borders)', () => {
  // ~3 MiB of 1514-byte records plus odd sizes: crosses the 1 MiB chunk boundary many times
  const pk: TestPacket[] = [];
  for (let i = 0; i < 2200; i++)
    pk.push({ data: bytes(i % 7 === 0 ? 1514 : 1 + ((i * 37) % 1500), i + 1), sec: i, frac: i });
  pk.push({ data: bytes(3 << 20, 99), sec: 9999, frac: 0 }); // one record bigger than a chunk
  const path = write('big.pcap', pcapFile({ le: false, nano: false, linktype: 1, snaplen: 1 << 24 }, pk));
  const { pkts, stats } = read(path);
  assert.equal(stats.truncated, null);
  assert.equal(pkts.length, pk.length);
  for (let i = 0; i < pk.length; i++) {
    assert.equal(pkts[i].data.length, pk[i].data.length, `len ${i}`);
    assert.ok(pkts[i].data.equals(Buffer.from(pk[i].data)), `data ${i}`);
    assert.equal(pkts[i].tsMs, pk[i].sec * 1000 + pk[i].frac / 1000);
  }
});

// --- Files written by Wireshark's tools ---------------------------------------------------------------

function basePcap(name: string, linktype: number, seed: number, n = 40): { path: string; pk: TestPacket[] } {
  const pk: TestPacket[] = [];
  for (let i = 0; i < n; i++)
    pk.push({
      data: bytes(20 + ((i * 131 + seed) % 1400), seed * 1000 + i),
      sec: 1_700_000_000 + i * 2 + seed,
      frac: (i * 7919 + seed) % 1_000_000,
    });
  return { path: write(name, pcapFile({ le: true, nano: false, linktype }, pk)), pk };
}

function assertSame(got: Got[], pk: TestPacket[], linktype: number, label: string): void {
  assert.equal(got.length, pk.length, label);
  pk.forEach((p, i) => {
    assert.ok(got[i].data.equals(Buffer.from(p.data)), `${label}: data ${i}`);
    assert.equal(got[i].linktype, linktype, `${label}: linktype ${i}`);
    const want = p.sec * 1000 + p.frac / 1000;
    assert.ok(Math.abs(got[i].tsMs - want) < 1e-3, `${label}: ts ${i}: ${got[i].tsMs} vs ${want}`);
  });
}

test(
  'editcap -F pcapng / nsecpcap / pcapng from nsecpcap: same packets and timestamps',
  { skip: need(haveTool('editcap'), 'editcap missing (Debian tshark)') },
  () => {
    const { path, pk } = basePcap('ed-base.pcap', 1, 1);
    const ng = tmp.path('ed.pcapng');
    execFileSync('editcap', ['-F', 'pcapng', path, ng]);
    const r1 = read(ng);
    assert.equal(r1.stats.format, 'pcapng');
    assertSame(r1.pkts, pk, 1, 'pcapng');
    const ns = tmp.path('ed-ns.pcap');
    execFileSync('editcap', ['-F', 'nsecpcap', path, ns]);
    const r2 = read(ns);
    assert.equal(r2.stats.format, 'pcap');
    assertSame(r2.pkts, pk, 1, 'nsecpcap');
    const nsng = tmp.path('ed-ns.pcapng');
    execFileSync('editcap', ['-F', 'pcapng', ns, nsng]);
    assertSame(read(nsng).pkts, pk, 1, 'pcapng from nsecpcap');
    // snap to 64 bytes: captured length shrinks, wire length stays
    const snap = tmp.path('ed-snap.pcapng');
    execFileSync('editcap', ['-F', 'pcapng', '-s', '64', path, snap]);
    const r3 = read(snap);
    assert.equal(r3.pkts.length, pk.length);
    r3.pkts.forEach((g, i) => {
      assert.ok(g.data.equals(Buffer.from(pk[i].data.subarray(0, 64))), `snap ${i}`);
      assert.equal(g.origLen, pk[i].data.length);
    });
  },
);

test(
  'mergecap: pcapng with two interfaces of different link types, merged in time order',
  { skip: need(haveTool('mergecap'), 'mergecap missing (Debian tshark)') },
  () => {
    const a = basePcap('m-eth.pcap', 1, 1, 25);
    const b = basePcap('m-raw.pcap', 101, 2, 25);
    const out = tmp.path('merged.pcapng');
    execFileSync('mergecap', ['-F', 'pcapng', '-w', out, a.path, b.path]);
    const { pkts, stats } = read(out);
    assert.equal(stats.truncated, null);
    const want = [...a.pk.map((p) => ({ ...p, lt: 1 })), ...b.pk.map((p) => ({ ...p, lt: 101 }))].sort(
      (x, y) => x.sec - y.sec || x.frac - y.frac,
    );
    assert.equal(pkts.length, want.length);
    want.forEach((w, i) => {
      assert.equal(pkts[i].linktype, w.lt, `linktype ${i}`);
      assert.ok(pkts[i].data.equals(Buffer.from(w.data)), `data ${i}`);
      assert.ok(Math.abs(pkts[i].tsMs - (w.sec * 1000 + w.frac / 1000)) < 1e-3);
    });
  },
);

test(
  'text2pcap: pcap and pcapng from a hex dump',
  { skip: need(haveTool('text2pcap'), 'text2pcap missing (Debian tshark)') },
  () => {
    const frames = [bytes(60, 3), bytes(100, 4), bytes(17, 5)];
    const dump = frames
      .map((f) => {
        const lines: string[] = [];
        for (let o = 0; o < f.length; o += 16) {
          const hexs = [...f.subarray(o, o + 16)].map((x) => x.toString(16).padStart(2, '0')).join(' ');
          lines.push(`${o.toString(16).padStart(6, '0')} ${hexs}`);
        }
        return lines.join('\n') + '\n';
      })
      .join('\n');
    const txt = write('dump.txt', Buffer.from(dump));
    for (const ng of [false, true]) {
      const out = tmp.path(ng ? 't2p.pcapng' : 't2p.pcap');
      execFileSync('text2pcap', ['-q', '-F', ng ? 'pcapng' : 'pcap', '-l', '105', txt, out], {
        stdio: 'ignore',
      });
      const { pkts, stats } = read(out);
      assert.equal(stats.format, ng ? 'pcapng' : 'pcap');
      assert.equal(pkts.length, 3);
      frames.forEach((f, i) => {
        assert.ok(pkts[i].data.equals(Buffer.from(f)), `frame ${i}`);
        assert.equal(pkts[i].linktype, 105);
      });
    }
  },
);

test('fast-check: mutated and cut pcap/pcapng files either read or fail with InputError', () => {
  const pk = samplePackets(false).slice(0, 4);
  const seeds = [
    pcapFile({ le: true, nano: false, linktype: 1 }, pk),
    pcapFile({ le: false, nano: true, linktype: 113 }, pk),
    new PcapngBuilder(true)
      .shb()
      .idb(1)
      .idb(101, 9)
      .epb(0, 5n, bytes(60, 1))
      .epb(1, 6n, bytes(70, 2))
      .spb(bytes(20, 3))
      .build(),
    new PcapngBuilder(false).shb(false).idb(276).epb(0, 7n, bytes(90, 4)).build(),
  ];
  const path = tmp.path('fuzz.bin');
  fc.assert(
    fc.property(
      fc.constantFrom(...seeds),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
      fc.nat(),
      (seed, muts, cut) => {
        const b = Buffer.from(seed);
        for (const [i, v] of muts) b[i % b.length] = v;
        writeFileSync(path, b.subarray(0, cut % (b.length + 1)));
        try {
          let n = 0;
          const st = readCaptureFile(path, {
            packet(buf, off, end) {
              assert.ok(off >= 0 && off <= end && end <= buf.length);
              n++;
            },
          });
          assert.equal(st.packets, n);
        } catch (e) {
          if (!(e instanceof InputError)) throw e;
        }
      },
    ),
    { numRuns: 400 },
  );
});

test('pcapng: if_tsoffset (signed seconds) is added to the timestamps, in either byte order', () => {
  for (const le of [true, false]) {
    const f = new PcapngBuilder(le)
      .shb(le)
      .idb(1, undefined, 0, 1_700_000_000n)
      .idb(101, 9, 0, -5n)
      .epb(0, 1_500_000n, bytes(20, 1)) // 1.5 s after the offset
      .epb(1, 7_250_000_000n, bytes(20, 2)) // 7.25 s - 5 s
      .build();
    const { pkts } = read(write(`tsoffset-${le}.pcapng`, f));
    assert.equal(pkts.length, 2);
    assert.equal(pkts[0].tsMs, 1_700_000_001_500);
    assert.ok(Math.abs(pkts[1].tsMs - 2250) < 1e-6, String(pkts[1].tsMs));
  }
});
