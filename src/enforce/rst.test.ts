/**
 * @module enforce/rst.test
 * The crafted reset and the IPv6 rst-rewrite, checked by an independent decoder (tshark validates the checksums).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRst4, buildTcp6, rewriteToRst } from './rst.js';
import { haveTool, need } from '../testutil/require.js';
import { pcapFile } from '../testutil/pcap.js';

/** A one-packet pcap, LINKTYPE_RAW (101): the IP packet as is. */
const rawPcap = (pkt: Uint8Array): Buffer =>
  pcapFile({ le: true, nano: false, linktype: 101 }, [{ data: pkt, sec: 0, frac: 0 }]);

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
    const dir = mkdtempSync(join(tmpdir(), 'cp-rst-'));
    const decode = (pkt: Uint8Array): string => {
      const f = join(dir, 'rst.pcap');
      writeFileSync(f, rawPcap(pkt));
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

test(
  'rst-rewrite of an IPv6 server packet: RST|ACK with its own seq and a correct TCP checksum (tshark)',
  { skip: need(haveTool('tshark'), 'tshark missing (Debian package tshark)') },
  () => {
    // IPv6 (RFC 8200 fixed header) + TCP with a 100-byte payload, written by hand
    const src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const p = new Uint8Array(40 + 20 + 100);
    const dv = new DataView(p.buffer);
    p[0] = 0x60;
    dv.setUint16(4, 120);
    p[6] = 6;
    p[7] = 64;
    p.set(src, 8);
    p.set(dst, 24);
    dv.setUint16(40, 443);
    dv.setUint16(42, 40000);
    dv.setUint32(44, 0xcafe0001);
    dv.setUint32(48, 0x00c0ffee);
    p[52] = 5 << 4;
    p[53] = 0x18; // PSH|ACK
    dv.setUint16(54, 65535);
    p.fill(0x41, 60);
    const n = rewriteToRst(p);
    assert.equal(n, 60);
    const out = p.subarray(0, n);
    const dir = mkdtempSync(join(tmpdir(), 'cp-rst6-'));
    try {
      const f = join(dir, 'rst6.pcap');
      writeFileSync(f, rawPcap(out));
      const got = execFileSync('tshark', ['-r', f, '-o', 'tcp.check_checksum:TRUE', '-o', 'tcp.relative_sequence_numbers:FALSE',
        '-T', 'fields', '-e', 'ipv6.src', '-e', 'ipv6.dst', '-e', 'ipv6.plen', '-e', 'tcp.srcport', '-e', 'tcp.dstport',
        '-e', 'tcp.seq', '-e', 'tcp.ack', '-e', 'tcp.flags', '-e', 'tcp.len', '-e', 'tcp.checksum.status'], { encoding: 'utf8' }).trim(); // prettier-ignore
      assert.equal(
        got,
        [
          '2001:db8::2',
          '2001:db8::1',
          '20',
          '443',
          '40000',
          String(0xcafe0001),
          String(0x00c0ffee),
          '0x0014',
          '0',
          '1',
        ].join('\t'),
      );
      // an IPv6 packet with an extension header (hop-by-hop, next header 0) is not rewritten
      const ext = new Uint8Array(80);
      ext[0] = 0x60;
      ext[6] = 0;
      assert.equal(rewriteToRst(ext), 0);
      // IPv4 goes to the IPv4 rewrite
      const v4 = buildRst4(Uint8Array.of(10, 0, 0, 2), Uint8Array.of(10, 0, 0, 1), 443, 40000, 1, 2);
      assert.equal(rewriteToRst(v4), 40);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'crafted IPv6 segments (the redirect reply, the RST toward the server): headers and TCP checksum (tshark)',
  { skip: need(haveTool('tshark'), 'tshark missing (Debian package tshark)') },
  () => {
    const a = Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a]);
    const z = Uint8Array.from([0xfd, 0, 0xca, 0xfe, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02]);
    const body = new TextEncoder().encode('HTTP/1.1 307 Temporary Redirect\r\nLocation: http://x/\r\n\r\n');
    const dir = mkdtempSync(join(tmpdir(), 'cp-tcp6-'));
    const decode = (pkt: Uint8Array): string => {
      const f = join(dir, 'p.pcap');
      writeFileSync(f, rawPcap(pkt));
      return execFileSync('tshark', ['-r', f, '-o', 'tcp.check_checksum:TRUE', '-o', 'tcp.relative_sequence_numbers:FALSE',
        '-T', 'fields', '-e', 'ipv6.src', '-e', 'ipv6.dst', '-e', 'ipv6.plen', '-e', 'ipv6.hlim', '-e', 'tcp.srcport',
        '-e', 'tcp.dstport', '-e', 'tcp.seq', '-e', 'tcp.ack', '-e', 'tcp.flags', '-e', 'tcp.len', '-e', 'tcp.checksum.status'],
        { encoding: 'utf8' }).trim(); // prettier-ignore
    };
    try {
      const reply = buildTcp6(z, a, 80, 51000, 7000, 9000, 0x19, body); // FIN|PSH|ACK
      assert.equal(
        decode(reply),
        [
          'fd00:cafe:1::2',
          '2001:db8::a',
          String(20 + body.length),
          '64',
          '80',
          '51000',
          '7000',
          '9000',
          '0x0019',
          String(body.length),
          '1',
        ].join('\t'),
      );
      const rst = buildTcp6(a, z, 51000, 80, 9000, 7000, 0x14);
      assert.match(decode(rst), /\t0x0014\t0\t1$/);
      const bad = rst.slice();
      bad[59] ^= 1; // urgent pointer: only the checksum covers it
      assert.match(decode(bad), /\t0$/, 'the oracle notices a wrong checksum');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
