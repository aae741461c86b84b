/**
 * @module probe/triggers.test
 * The probe's ClientHellos, evasion triggers and QUIC Initials checked by independent parties:
 * tshark (Wireshark's TLS and QUIC dissectors, which decrypt Initials themselves) reads them from a
 * pcap written here. (The shared Initial builder, gen/quic-initial, carries the RFC 9001 vectors.)
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run } from '../util/run.js';
import { buildHello, toRecords } from './clienthello.js';
import { buildQuicInitials } from '../gen/quic-initial.js';
import { PLAIN, TECHNIQUES, scrambleName, techniqueById } from './triggers.js';
import { haveTools, need } from '../testutil/require.js';

const dir = mkdtempSync(join(tmpdir(), 'cp-trig-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const TSHARK = need(haveTools('tshark', 'text2pcap'), 'tshark/text2pcap missing (Debian tshark)');

/** Write a pcap (Ethernet/IPv4) of TCP segments (one stream, in order) or UDP datagrams to port 443. */
function pcap(file: string, proto: 'tcp' | 'udp', payloads: Uint8Array[]): void {
  const parts: Buffer[] = [];
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(65535, 16);
  gh.writeUInt32LE(1, 20);
  parts.push(gh);
  let seq = 1000;
  payloads.forEach((p, i) => {
    const l4 = proto === 'tcp' ? Buffer.alloc(20) : Buffer.alloc(8);
    l4.writeUInt16BE(40000, 0);
    l4.writeUInt16BE(443, 2);
    if (proto === 'tcp') {
      l4.writeUInt32BE(seq, 4);
      l4.writeUInt32BE(1, 8);
      l4[12] = 5 << 4;
      l4[13] = 0x18; // PSH ACK
      l4.writeUInt16BE(65535, 14);
      seq += p.length;
    } else l4.writeUInt16BE(8 + p.length, 4);
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + l4.length + p.length, 2);
    ip[8] = 64;
    ip[9] = proto === 'tcp' ? 6 : 17;
    Buffer.from([10, 0, 0, 1]).copy(ip, 12);
    Buffer.from([10, 0, 0, 2]).copy(ip, 16);
    let sum = 0;
    for (let k = 0; k < 20; k += 2) sum += ip.readUInt16BE(k);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    ip.writeUInt16BE(~sum & 0xffff, 10);
    const eth = Buffer.from([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 6, 0x08, 0x00]);
    const frame = Buffer.concat([eth, ip, l4, Buffer.from(p)]);
    const rh = Buffer.alloc(16);
    rh.writeUInt32LE(1700000000 + i, 0);
    rh.writeUInt32LE(frame.length, 8);
    rh.writeUInt32LE(frame.length, 12);
    parts.push(rh, frame);
  });
  writeFileSync(file, Buffer.concat(parts));
}

async function tsharkFields(file: string, fields: string[], filter?: string): Promise<string> {
  const args = [
    'tshark',
    '-n',
    '-r',
    file,
    '-T',
    'fields',
    '-E',
    'separator=|',
    ...fields.flatMap((f) => ['-e', f]),
  ];
  if (filter) args.push('-Y', filter);
  const r = await run(args, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

const ctx = { control: 'control.example', serverHost: '10.0.0.2', serverPort: 443 };
const token = randomBytes(16);

test('the token sits four times in the hello; padding reaches the asked size', () => {
  const hs = buildHello({ sni: 'a.example', token });
  let n = 0;
  for (let i = Buffer.from(hs).indexOf(token); i >= 0; i = Buffer.from(hs).indexOf(token, i + 1)) n++;
  assert.equal(n, 4);
  assert.equal(buildHello({ sni: 'a.example', token, padTo: 2000 }).length, 2000);
  assert.throws(() => buildHello({ sni: 'x', token: new Uint8Array(3) }), RangeError);
});

test(
  'tshark reads the SNI of the plain hello and of every evasion variant that keeps one',
  { skip: TSHARK, timeout: 120_000 },
  async () => {
    const name = 'throttled.example';
    const expectSni: Record<string, string> = {
      plain: name,
      'split-1': name,
      'split-5': name,
      'split-name': name,
      'split-out-of-order': name,
      'tls-record-frag': name,
      padding: name,
      'ccs-first': name,
      'trailing-dot': `${name}.`,
      'case-change': 'ThRoTtLeD.eXaMpLe', // letters alternate upper/lower across the whole name
    };
    for (const [id, want] of Object.entries(expectSni)) {
      const t = techniqueById(id)!.build(name, token, ctx);
      const f = join(dir, `${id}.pcap`);
      pcap(f, 'tcp', t.writes); // in order: tshark reassembles the stream
      const out = await tsharkFields(f, ['tls.handshake.extensions_server_name'], 'tls.handshake.type == 1');
      assert.equal(out, want, `${id}: tshark saw '${out}'`);
      assert.equal(t.sni, want);
    }
    // no SNI: tshark sees a ClientHello without server_name
    const none = TECHNIQUES.find((t) => t.id === 'no-sni')!.build(name, token, ctx);
    const f = join(dir, 'nosni.pcap');
    pcap(f, 'tcp', none.writes);
    assert.equal(
      await tsharkFields(
        f,
        ['tls.handshake.type', 'tls.handshake.extensions_server_name'],
        'tls.handshake.type == 1',
      ),
      '1|',
    );
    // record fragmentation really uses two records; the split cuts inside the name
    const frag = techniqueById('tls-record-frag')!.build(name, token, ctx).writes[0];
    const f2 = join(dir, 'frag.pcap');
    pcap(f2, 'tcp', [frag]);
    assert.equal((await tsharkFields(f2, ['tls.record.length'])).split(',').length, 2);
    const split = techniqueById('split-name')!.build(name, token, ctx).writes;
    assert.ok(
      !Buffer.from(split[0]).includes(Buffer.from(name)) &&
        !Buffer.from(split[1]).includes(Buffer.from(name)),
    );
  },
);

test(
  'tshark decrypts the QUIC v1 Initials (one and two packets) and reads the SNI',
  { skip: TSHARK, timeout: 60_000 },
  async () => {
    for (const packets of [1, 2]) {
      const dcid = randomBytes(16);
      const scid = randomBytes(8);
      const hello = buildHello({
        sni: 'quic.example',
        token: dcid,
        quic: { scid },
        padTo: packets === 2 ? 1500 : undefined,
      });
      const dgs = buildQuicInitials({ version: 1, dcid, scid, clientHello: hello, packets });
      assert.equal(dgs.length, packets);
      for (const d of dgs) assert.equal(d.length, 1200);
      const f = join(dir, `quic${packets}.pcap`);
      pcap(f, 'udp', dgs);
      const out = await tsharkFields(
        f,
        ['quic.version', 'quic.dcid', 'tls.handshake.extensions_server_name'],
        'tls.handshake.type == 1',
      );
      const [ver, dc, sni] = out.split('|');
      assert.equal(Number(ver), 1);
      assert.equal(dc.replace(/:/g, ''), dcid.toString('hex'));
      assert.equal(sni, 'quic.example');
    }
  },
);

test('scrambled names keep the shape and differ', () => {
  for (const n of ['twitter.com', 'abs.twimg.com', 'a-b.example']) {
    const s = scrambleName(n);
    assert.equal(s.length, n.length);
    assert.notEqual(s, n);
    for (let i = 0; i < n.length; i++) if (n[i] === '.' || n[i] === '-') assert.equal(s[i], n[i]);
  }
  assert.equal(PLAIN.build('x.example', token, ctx).writes.length, 1);
  assert.deepEqual(
    Buffer.from(toRecords(new Uint8Array([1, 0, 0, 0]))),
    Buffer.from([0x16, 3, 1, 0, 4, 1, 0, 0, 0]),
  );
});
