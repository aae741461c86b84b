/**
 * @module enforce/rst.test
 * The crafted reset, checked by an independent decoder (tshark validates both checksums).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRst4 } from './rst.js';
import { haveTool, need } from '../testutil/require.js';

test(
  'RST|ACK with correct IPv4 and TCP checksums (tshark)',
  { skip: need(haveTool('tshark'), 'tshark missing (Debian package tshark)') },
  () => {
    const p = buildRst4(
      Uint8Array.of(10, 1, 2, 3),
      Uint8Array.of(192, 0, 2, 9),
      40000,
      443,
      0xdeadbeef,
      0x01020304,
    );
    assert.equal(p.length, 40);
    // pcap, LINKTYPE_RAW (101)
    const gh = Buffer.alloc(24);
    gh.writeUInt32LE(0xa1b2c3d4, 0);
    gh.writeUInt16LE(2, 4);
    gh.writeUInt16LE(4, 6);
    gh.writeUInt32LE(65535, 16);
    gh.writeUInt32LE(101, 20);
    const ph = Buffer.alloc(16);
    ph.writeUInt32LE(p.length, 8);
    ph.writeUInt32LE(p.length, 12);
    const dir = mkdtempSync(join(tmpdir(), 'cp-rst-'));
    const decode = (pkt: Uint8Array): string => {
      const f = join(dir, 'rst.pcap');
      writeFileSync(f, Buffer.concat([gh, ph, pkt]));
      return execFileSync('tshark', ['-r', f, '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE',
      '-o', 'tcp.relative_sequence_numbers:FALSE', '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'tcp.srcport',
      '-e', 'tcp.dstport', '-e', 'tcp.seq', '-e', 'tcp.ack', '-e', 'tcp.flags', '-e', 'ip.checksum.status',
      '-e', 'tcp.checksum.status'], { encoding: 'utf8' }).trim(); // prettier-ignore
    };
    try {
      // checksum status: 1 good, 0 bad (Wireshark's proto_checksum_e)
      assert.equal(
        decode(p),
        [
          '10.1.2.3',
          '192.0.2.9',
          '40000',
          '443',
          String(0xdeadbeef),
          String(0x01020304),
          '0x0014',
          '1',
          '1',
        ].join('\t'),
      );
      const bad = p.slice();
      bad[39] ^= 1; // urgent pointer: only the TCP checksum covers it
      assert.match(decode(bad), /\t1\t0$/, 'the oracle notices a wrong TCP checksum');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
