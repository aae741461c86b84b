/**
 * @module dissect/dns.test
 * DNS: real query bytes (Node's c-ares resolver, fixtures cross-checked with tshark, and live
 * against a UDP listener on 127.0.0.1), a hand-built dig-like query, compression (legitimate and
 * looping), label/name limits, fuzzing and linear time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import dns from 'node:dns';
import fc from 'fast-check';
import { parseDnsMessage, dnsTypeName, dnsNameAt, type DnsResult } from './dns.js';
import { fixtureBytes, fixtureMeta, bestTime } from './fixtures/index.js';

function done(r: DnsResult) {
  assert.equal(r.status, 'done', JSON.stringify(r));
  if (r.status !== 'done') throw new Error('unreachable');
  return r;
}

/** Assemble a query for `labels` (byte strings) with type `qtype`. */
function query(
  labels: (string | number[])[],
  qtype: number,
  opts: { id?: number; flags?: number; qd?: number; an?: number } = {},
): Uint8Array {
  const b = [
    (opts.id ?? 0xabcd) >> 8,
    (opts.id ?? 0xabcd) & 0xff,
    (opts.flags ?? 0x0100) >> 8,
    (opts.flags ?? 0x0100) & 0xff,
    0,
    opts.qd ?? 1,
    0,
    opts.an ?? 0,
    0,
    0,
    0,
    0,
  ];
  for (const l of labels) {
    const bytes = typeof l === 'string' ? [...Buffer.from(l, 'latin1')] : l;
    b.push(bytes.length, ...bytes);
  }
  b.push(0, qtype >> 8, qtype & 0xff, 0, 1);
  return new Uint8Array(b);
}

for (const name of [
  'dns-node-a',
  'dns-node-aaaa',
  'dns-node-mx',
  'dns-node-txt',
  'dns-node-srv',
  'dns-handbuilt-https',
]) {
  test(`real query ${name}: name, type, id agree with what was asked and with tshark`, () => {
    const meta = fixtureMeta(name) as { qname: string; rrtype: string; tshark: Record<string, string[]> };
    const r = done(parseDnsMessage(fixtureBytes(name)));
    assert.equal(r.query, meta.qname.toLowerCase());
    assert.equal(r.query, meta.tshark['dns.qry.name'][0].toLowerCase());
    assert.equal(r.qtypeName, meta.rrtype);
    assert.equal(r.qtype, Number(meta.tshark['dns.qry.type'][0]));
    assert.equal(r.id, parseInt(meta.tshark['dns.id'][0], 16));
    assert.equal(r.isResponse, meta.tshark['dns.flags.response'][0] === '1');
    assert.deepEqual(r.anomalies, []);
  });
}

test('live: Node dns.Resolver queries sent to a UDP listener on 127.0.0.1', { timeout: 30000 }, async () => {
  const sock = dgram.createSocket('udp4');
  const got: Buffer[] = [];
  sock.on('message', (m) => got.push(m));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  try {
    const resolver = new dns.Resolver({ timeout: 200, tries: 1 });
    resolver.setServers([`127.0.0.1:${sock.address().port}`]);
    const asks: [string, string][] = [
      [`live-${process.pid}.example.test`, 'A'],
      ['Mixed.Case.Example.test', 'AAAA'],
      ['example.test', 'CAA'],
      ['example.test', 'NAPTR'],
    ];
    for (const [q, t] of asks) await new Promise<void>((r) => resolver.resolve(q, t, () => r()));
    const parsed = got.map((m) => done(parseDnsMessage(m)));
    for (const [q, t] of asks) {
      assert.ok(
        parsed.some((p) => p.query === q.toLowerCase() && p.qtypeName === t && !p.isResponse),
        `${q} ${t} not seen in ${JSON.stringify(parsed.map((p) => [p.query, p.qtypeName]))}`,
      );
    }
  } finally {
    sock.close();
  }
});

test('names: lowercased, root is empty, odd bytes escaped like dig', () => {
  assert.equal(done(parseDnsMessage(query(['WWW', 'Example', 'COM'], 1))).query, 'www.example.com');
  assert.equal(done(parseDnsMessage(query([], 2))).query, '');
  const odd = done(parseDnsMessage(query(['a.b', [0x00, 0x41, 0xff], 'x\\y'], 16)));
  assert.equal(odd.query, 'a\\.b.\\000a\\255.x\\\\y');
  assert.deepEqual(odd.anomalies, ['dns_name_odd_chars']);
});

test('type names', () => {
  assert.equal(dnsTypeName(1), 'A');
  assert.equal(dnsTypeName(28), 'AAAA');
  assert.equal(dnsTypeName(65), 'HTTPS');
  assert.equal(dnsTypeName(64), 'SVCB');
  assert.equal(dnsTypeName(255), 'ANY');
  assert.equal(dnsTypeName(12345), 'TYPE12345');
});

test('responses, multiple questions, query with answers', () => {
  const resp = done(parseDnsMessage(query(['r', 'example'], 1, { flags: 0x8180 })));
  assert.equal(resp.isResponse, true);
  assert.deepEqual(done(parseDnsMessage(query(['m'], 1, { qd: 2 }))).anomalies, ['dns_multiple_questions']);
  assert.deepEqual(done(parseDnsMessage(query(['m'], 1, { an: 1 }))).anomalies, ['dns_query_has_answers']);
});

test('unusual opcodes (IQUERY, STATUS, NOTIFY, UPDATE, DSO, unassigned): the name is reported, flagged', () => {
  for (const op of [1, 2, 3, 4, 5, 6, 7, 15]) {
    const r = done(parseDnsMessage(query(['odd', 'example'], 1, { flags: (op << 11) | 0x0100 })));
    assert.equal(r.query, 'odd.example', `opcode ${op}`);
    assert.ok(r.anomalies.includes('dns_unusual_opcode'), `opcode ${op}`);
  }
  assert.deepEqual(done(parseDnsMessage(query(['std', 'example'], 1))).anomalies, []);
});

test("'not-mine', need-more and errors", () => {
  assert.equal(parseDnsMessage(new Uint8Array(11)).status, 'need-more');
  assert.equal(parseDnsMessage(query(['x'], 1, { qd: 0 })).status, 'not-mine');
  const q = query(['www', 'example', 'com'], 1);
  for (let i = 12; i < q.length - 2; i++)
    assert.equal(parseDnsMessage(q.subarray(0, i)).status, 'need-more', `len ${i}`);
  // label type 01 (0x40) and 10 (0x80)
  const ext = query(['x'], 1);
  ext[12] = 0x41;
  assert.deepEqual(parseDnsMessage(ext), { status: 'error', anomaly: 'dns_bad_label' });
  ext[12] = 0x81;
  assert.deepEqual(parseDnsMessage(ext), { status: 'error', anomaly: 'dns_bad_label' });
  // name longer than 255 bytes: 5 labels of 63
  const long = query(
    Array.from({ length: 5 }, () => 'a'.repeat(63)),
    1,
  );
  assert.deepEqual(parseDnsMessage(long), { status: 'error', anomaly: 'dns_name_too_long' });
  const max = query([...Array.from({ length: 3 }, () => 'a'.repeat(63)), 'b'.repeat(61)], 1); // 255 bytes exactly
  assert.equal(done(parseDnsMessage(max)).query.length, 253);
});

test('compression: legitimate pointers resolve; self, forward and looping pointers are errors', () => {
  // Response: question www.example.com at 12; answer owner = pointer to 12; a second name
  // "mail" + pointer to "example.com" (offset 16).
  const q = query(['www', 'example', 'com'], 1, { flags: 0x8180, an: 1 });
  const msg = new Uint8Array([...q, 0xc0, 0x0c, 4, ...Buffer.from('mail'), 0xc0, 16]);
  const ans = dnsNameAt(msg, q.length);
  assert.deepEqual(ans, { name: 'www.example.com', end: q.length + 2, odd: false });
  assert.deepEqual(dnsNameAt(msg, q.length + 2), { name: 'mail.example.com', end: msg.length, odd: false });
  // Self pointer at the question.
  const self = new Uint8Array([...q.subarray(0, 12), 0xc0, 0x0c, 0, 1, 0, 1]);
  assert.deepEqual(parseDnsMessage(self), { status: 'error', anomaly: 'dns_bad_pointer' });
  // Two names pointing at each other.
  const loop = new Uint8Array([...msg, 1, 0x61, 0xc0, msg.length + 4, 1, 0x62, 0xc0, msg.length]);
  assert.deepEqual(dnsNameAt(loop, msg.length), { error: 'dns_bad_pointer' });
  assert.deepEqual(dnsNameAt(loop, msg.length + 4), { error: 'dns_bad_pointer' });
  // Pointer into its own earlier label (a -> ptr back to a): loop.
  const own = new Uint8Array([...msg, 1, 0x61, 0xc0, msg.length]);
  assert.deepEqual(dnsNameAt(own, msg.length), { error: 'dns_bad_pointer' });
  // Pointer past the end.
  assert.equal(dnsNameAt(new Uint8Array([...msg, 0xc0]), msg.length), null);
});

test('property: random bytes and mutated queries never throw and terminate', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), (b) => {
      const r = parseDnsMessage(b);
      assert.ok(['done', 'need-more', 'not-mine', 'error'].includes(r.status));
    }),
    { numRuns: 3000 },
  );
  // pointer-heavy random messages: every byte pair a pointer candidate
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 300 }), (tail) => {
      const b = new Uint8Array([
        0,
        1,
        0,
        0,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        0,
        ...tail.map((v, i) => (i % 2 === 0 ? v | 0xc0 : v)),
      ]);
      for (let off = 12; off < b.length; off++) dnsNameAt(b, off);
      parseDnsMessage(b);
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(
      fc.array(fc.stringMatching(/^[a-zA-Z0-9-]{1,20}$/), { minLength: 1, maxLength: 8 }),
      fc.integer({ min: 0, max: 0xffff }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      (labels, qtype, muts) => {
        const q = query(labels, qtype);
        const r = done(parseDnsMessage(q));
        assert.equal(r.query, labels.join('.').toLowerCase());
        assert.equal(r.qtype, qtype);
        const m = q.slice();
        for (const [at, v] of muts) m[at % m.length] = v;
        parseDnsMessage(m);
      },
    ),
    { numRuns: 1000 },
  );
});

test('linearity: names of N, 4N, 16N bytes and pointer chains of N, 4N, 16N... jumps', () => {
  const make = (n: number) =>
    query(
      Array.from({ length: n }, () => 'abc'),
      1,
    ); // 4n bytes of name
  const inputs = [3, 12, 48].map(make);
  const times = inputs.map((b) =>
    bestTime(() => {
      for (let i = 0; i < 2000; i++) parseDnsMessage(b);
    }),
  );
  const ratio = times[2] / Math.max(times[0], 0.05);
  if (process.env.CP_TIMING) console.log('dns linearity', times, ratio);
  assert.ok(ratio < 64, `t(16N)/t(N) = ${ratio.toFixed(1)}`);
  // A chain of k single-char labels each followed by a pointer to the previous: k jumps.
  const chain = (k: number) => {
    const b: number[] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
    let prev = 12;
    for (let i = 0; i < k; i++) {
      const at = b.length;
      b.push(1, 0x61, 0xc0 | (prev >> 8), prev & 0xff);
      prev = at;
    }
    return { b: new Uint8Array(b), at: prev };
  };
  const chains = [6, 24, 96].map(chain);
  const ct = chains.map(({ b, at }) =>
    bestTime(() => {
      for (let i = 0; i < 2000; i++) dnsNameAt(b, at);
    }),
  );
  const r2 = ct[2] / Math.max(ct[0], 0.05);
  if (process.env.CP_TIMING) console.log('dns chain linearity', ct, r2);
  assert.ok(r2 < 64, `chain t(16N)/t(N) = ${r2.toFixed(1)}`);
  // 128-jump cap: a chain of 200 pointers to pointers (no labels) is an error, not a hang.
  const ptrs: number[] = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < 200; i++) {
    const t = i === 0 ? 12 : 13 + 2 * (i - 1);
    ptrs.push(0xc0 | (t >> 8), t & 0xff);
  }
  assert.deepEqual(dnsNameAt(new Uint8Array(ptrs), ptrs.length - 2), { error: 'dns_bad_pointer' });
  assert.deepEqual(dnsNameAt(new Uint8Array(ptrs), 13 + 2 * 100), {
    name: '',
    end: 13 + 2 * 101,
    odd: false,
  });
});
