/**
 * @module engine/hostile.test
 * The engine against hostile input (src/gen/hostile.ts, the captures of `npm run bench:hostile`, scaled
 * down): every class that carries names is named completely (segmentation in 1-, 3-, 8-byte segments,
 * last byte first, a hello padded to 16 KB, 5,000 ciphers + 1,000 extensions, 1,000 HTTP header lines,
 * long DNS names, tiny QUIC CRYPTO frames, coalesced QUIC packets), and the floods stay within their
 * caps, counted (fragment table, flow table, global reassembly bytes). Memory is checked as counts of
 * held bytes and table sizes, not timings (the bench prints the cost ratios). Plus a property: any
 * segmentation of a ClientHello into 1–64-byte segments, in any order, is named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Engine, type EngineOptions } from './engine.js';
import { hostileClasses } from '../gen/hostile.js';
import { buildClientHello, wrapRecords } from '../gen/clienthello.js';
import { buildQuicInitials } from '../gen/quic-initial.js';
import { tcpFrame, udpFrame } from '../gen/frames.js';
import { MAX_ALPN_NAMES } from '../dissect/tls.js';
import type { FlowRecord } from '../record/record.js';
import { shuffled } from '../testutil/shuffle.js';

function run(
  write: (emit: (f: Uint8Array, ts: number) => void) => string[],
  opts: EngineOptions = {},
): { recs: FlowRecord[]; names: string[]; e: Engine; maxTable: number; maxFrags: number; maxReasm: number } {
  const recs: FlowRecord[] = [];
  const e = new Engine({ hashSeed: 1, ...opts, onFlowEnd: (f, why) => recs.push(e.record(f, why)) });
  let maxTable = 0;
  let maxFrags = 0;
  let maxReasm = 0;
  const names = write((f, ts) => {
    e.packet(f, 1, ts / 1000);
    if (e.table.size > maxTable) maxTable = e.table.size;
    if (e.decoder.frags.size > maxFrags) maxFrags = e.decoder.frags.size;
    if (e.stats.reassemblyBytes > maxReasm) maxReasm = e.stats.reassemblyBytes;
  });
  e.flush();
  return { recs, names, e, maxTable, maxFrags, maxReasm };
}

const classes = new Map(hostileClasses().map((c) => [c.name, c]));

for (const name of [
  'tls-seg-1',
  'tls-seg-3',
  'tls-seg-8',
  'tls-ooo-storm',
  'tls-padded-16k',
  'tls-5000-ciphers',
  'tls-5000-ciphers-varied',
  'http-many-headers',
  'tls-alpn-flood',
  'dns-long-names',
  'quic-tiny-crypto',
  'quic-coalesced',
]) {
  test(`hostile ${name}: every flow named, reassembly bounded`, { timeout: 120_000 }, () => {
    const c = classes.get(name)!;
    const scale = name.startsWith('dns') ? 0.005 : 0.02;
    const r = run((emit) => c.hostile(emit, scale));
    const got = new Set(r.recs.map((x) => x.host));
    const missing = r.names.filter((n) => !got.has(n));
    assert.deepEqual(missing, [], `${name}: ${missing.length} of ${r.names.length} not named`);
    assert.ok(r.names.length > 0);
    // no budget gave up on these: the message fits the byte budget
    for (const x of r.recs) {
      assert.ok(!x.anomalies.includes('inspect_packets_exhausted'), `${name}: ${x.anomalies.join()}`);
      assert.ok(!x.anomalies.includes('inspect_budget_exhausted'), `${name}: ${x.anomalies.join()}`);
    }
    assert.equal(r.e.stats.reassemblyBytes, 0, 'everything freed at the end');
    // the benign twin: same names, same packet count
    let hp = 0;
    let bp = 0;
    c.hostile(() => hp++, scale);
    const b = run((emit) => c.benign((f, ts) => (bp++, emit(f, ts)), scale));
    assert.equal(bp, hp, 'benign twin has the same packet count');
    const bgot = new Set(b.recs.map((x) => x.host));
    assert.deepEqual(
      b.names.filter((n) => !bgot.has(n)),
      [],
    );
  });
}

/**
 * `n` open HTTP connections (no FIN) whose request line carries a URL of `urlLen` bytes: what the
 * flows keep (the URL, whole) is the memory an opponent controls once ALPN lists are capped.
 */
function longUrlFlows(
  emit: (f: Uint8Array, ts: number) => void,
  n: number,
  urlLen: number,
  first = 0,
  t0 = 1_700_000_000_000_000,
): string[] {
  const names: string[] = [];
  for (let i = first; i < first + n; i++) {
    const name = `u${i}.example.org`;
    const head = `GET /${'x'.repeat(urlLen)}${i} HTTP/1.1\r\nHost: ${name}\r\n\r\n`;
    const msg = Uint8Array.from(head, (ch) => ch.charCodeAt(0));
    const cl = { ip: `10.201.${(i >> 8) & 255}.${(i & 255) | 1}`, port: 20000 + i };
    const sv = { ip: '192.168.202.1', port: 80 };
    const t = t0 + i * 1000;
    emit(tcpFrame(cl, sv, { seq: 100, ack: 0, flags: 0x02 }, true), t);
    for (let a = 0; a < msg.length; a += 1448)
      emit(
        tcpFrame(cl, sv, { seq: 101 + a, ack: 1, flags: 0x18, payload: msg.subarray(a, a + 1448) }, true),
        t + 1 + a / 1448,
      );
    names.push(name);
  }
  return names;
}

test('kept-bytes budget: open connections with 12 KB URLs are reported early, the biggest first; ordinary flows stay', () => {
  const BUDGET = 1 << 20;
  const ordinary: string[] = [];
  const r = run(
    (emit) => {
      // 100 ordinary connections first (the least recently active when the flood comes), left open
      for (let i = 0; i < 100; i++) {
        const name = `ok${i}.example.net`;
        const cl = { ip: `10.200.0.${i + 1}`, port: 30000 + i };
        const sv = { ip: '192.168.201.1', port: 443 };
        const h = wrapRecords(buildClientHello({ sni: name, alpn: ['h2', 'http/1.1'] }));
        emit(tcpFrame(cl, sv, { seq: 100, ack: 0, flags: 0x02 }, true), 1_699_999_999_900_000 + i * 100);
        emit(
          tcpFrame(cl, sv, { seq: 101, ack: 1, flags: 0x18, payload: h }, true),
          1_699_999_999_900_000 + i * 100 + 5,
        );
        ordinary.push(name);
      }
      return [...ordinary, ...longUrlFlows(emit, 300, 12_000)];
    },
    { maxKeptBytes: BUDGET },
  );
  const e = r.e;
  // every flow has its record and its name, the URLs whole (nothing cut)
  assert.deepEqual(r.recs.map((x) => x.host).sort(), r.names.slice().sort());
  const flood = r.recs.filter((x) => !x.host!.startsWith('ok'));
  assert.equal(flood.length, 300);
  for (const x of flood) assert.ok(x.http!.url.length > 12_000, `${x.http!.url.length}`);
  const evicted = r.recs.filter((x) => x.anomalies.includes('flow_evicted'));
  assert.ok(evicted.length >= 200, `evicted ${evicted.length}`);
  assert.equal(e.caps.get('kept_bytes_exhausted'), evicted.length);
  // the big ones went first: no ordinary flow was evicted
  assert.deepEqual(
    evicted.filter((x) => x.host!.startsWith('ok')),
    [],
  );
  // ... and they end at the flush, not before (no idle timeout took them out of the way)
  const ok = r.recs.filter((x) => x.host!.startsWith('ok'));
  assert.equal(ok.length, 100);
  for (const x of ok) assert.equal(x.reason, 'shutdown', `${x.host}: ${x.reason}`);
  assert.equal(e.stats.keptBytes, 0, 'all released at the end');
});

test('kept-bytes budget: never over it by more than the flow just inspected', () => {
  const BUDGET = 512 << 10;
  const recs: FlowRecord[] = [];
  const e = new Engine({
    hashSeed: 1,
    maxKeptBytes: BUDGET,
    onFlowEnd: (f, why) => recs.push(e.record(f, why)),
  });
  let over = 0;
  let biggest = 0;
  longUrlFlows(
    (f, ts) => {
      const flow = e.packet(f, 1, ts / 1000);
      if (flow !== null && flow.kept > biggest) biggest = flow.kept;
      if (e.stats.keptBytes > BUDGET + biggest) over++;
    },
    150,
    16_000,
  );
  e.flush();
  assert.ok(biggest > 16_000, `a flood flow keeps ${biggest} B`);
  assert.equal(over, 0);
  assert.equal(recs.length, 150);
});

test('kept-bytes budget: a big flow that went over the budget on its own is still first in line for the next one', () => {
  const recs: FlowRecord[] = [];
  const e = new Engine({
    hashSeed: 1,
    maxKeptBytes: 20_000,
    onFlowEnd: (f, why) => recs.push(e.record(f, why)),
  });
  const t0 = 1_700_000_000_000;
  // 40 ordinary connections (~350 B kept each), then A and B: open connections with 12 KB URLs
  for (let i = 0; i < 40; i++) {
    const cl = { ip: `10.200.1.${i + 1}`, port: 31000 + i };
    const sv = { ip: '192.168.201.1', port: 443 };
    const h = wrapRecords(buildClientHello({ sni: `ok${i}.example.net`, alpn: ['h2', 'http/1.1'] }));
    e.packet(tcpFrame(cl, sv, { seq: 100, ack: 0, flags: 0x02 }, true), 1, t0 + i);
    e.packet(tcpFrame(cl, sv, { seq: 101, ack: 1, flags: 0x18, payload: h }, true), 1, t0 + i);
  }
  const small = e.stats.keptBytes / 40;
  assert.ok(small > 100 && small < 1000, `an ordinary flow keeps ${small} B`);
  const ordinaryEnded = () => recs.filter((x) => x.host!.startsWith('ok')).length;
  const emit = (f: Uint8Array, ts: number): void => void e.packet(f, 1, ts / 1000);
  longUrlFlows(emit, 1, 12_000, 0, (t0 + 100) * 1000); // A: over the budget on its own arrival
  const afterA = ordinaryEnded();
  assert.ok(afterA > 0, 'A, the only big flow then, made room among the least recently active');
  assert.ok(afterA < 40);
  // B: A is first in line now, not the ordinary flows that are left
  longUrlFlows(emit, 1, 12_000, 1, (t0 + 200) * 1000);
  const a = recs.filter((x) => x.host === 'u0.example.org');
  assert.equal(a.length, 1, 'A was reported early');
  assert.ok(a[0].anomalies.includes('flow_evicted'));
  assert.equal(ordinaryEnded(), afterA, 'no ordinary flow went for B');
  assert.ok(e.stats.keptBytes <= 20_000 + 13_000);
});

test('kept bytes count what an opponent sizes: 120 unknown offered versions are 120 strings', () => {
  const e = new Engine({ hashSeed: 1 });
  const cl = { ip: '10.202.0.1', port: 1234 };
  const sv = { ip: '10.202.0.2', port: 443 };
  const flowKept = (versions: number[]): number => {
    const h = wrapRecords(buildClientHello({ sni: 'v.example', versions }));
    cl.port++;
    e.packet(tcpFrame(cl, sv, { seq: 1, ack: 0, flags: 0x02 }, true), 1, cl.port);
    const f = e.packet(tcpFrame(cl, sv, { seq: 2, ack: 1, flags: 0x18, payload: h }, true), 1, cl.port);
    assert.equal(f!.tls!.versions.length, versions.length);
    return f!.kept;
  };
  const plain = flowKept([0x0304, 0x0303]);
  const odd = flowKept(Array.from({ length: 120 }, (_, i) => 0x1000 + i));
  // 118 more list slots (8 B) and 120 '0x1000'-like strings (16-byte header + 6 characters, aligned: 24 B)
  assert.ok(odd - plain >= 118 * 8 + 120 * 24, `plain ${plain} B, 120 unknown versions ${odd} B`);
});

test('a flood of hellos with 3,900 ALPN names: each flow keeps the first MAX_ALPN_NAMES, flagged', () => {
  const r = run((emit) => classes.get('tls-alpn-flood')!.hostile(emit, 0.02));
  assert.equal(r.recs.length, 60);
  for (const x of r.recs) {
    assert.equal(x.tls!.alpn.length, MAX_ALPN_NAMES);
    assert.ok(x.anomalies.includes('tls_alpn_truncated'), x.anomalies.join());
  }
  assert.ok(r.e.stats.keptBytes === 0);
});

test('QUIC cap hits are counted once per flow in caps (more than 8 coalesced packets in a datagram)', () => {
  const cat = (parts: Uint8Array[]): Uint8Array => {
    let len = 0;
    for (const p of parts) len += p.length;
    const d = new Uint8Array(Math.max(1200, len));
    let o = 0;
    for (const p of parts) {
      d.set(p, o);
      o += p.length;
    }
    return d;
  };
  const flows =
    (capped: boolean) =>
    (emit: (f: Uint8Array, ts: number) => void): string[] => {
      const names: string[] = [];
      for (let i = 0; i < 5; i++) {
        const name = `cap${i}.example.com`;
        const ch = buildClientHello({ sni: name, alpn: ['h3'] });
        const dcid = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, i]);
        const pk = buildQuicInitials({ dcid, clientHello: ch, datagramSize: 150 });
        // Initials whose AEAD tag is broken: they never open
        const bogus = buildQuicInitials({
          dcid: Uint8Array.from([9, 9, 9, 9, 9, 9, 9, i]),
          clientHello: ch,
          datagramSize: 150,
        });
        for (const b of bogus) b[b.length - 1] ^= 0xff;
        while (bogus.length < 8) bogus.push(bogus[0]);
        const c = { ip: `10.1.0.${i + 1}`, port: 40000 + i };
        const s = { ip: '10.2.0.1', port: 443 };
        // first datagram: one packet that opens, then 8 (capped: 9th+ skipped) or 7 that do not
        emit(udpFrame(c, s, cat([pk[0], ...bogus.slice(0, capped ? 8 : 7)]), true), i * 10);
        for (let a = 1; a < pk.length; a += 8)
          emit(udpFrame(c, s, cat(pk.slice(a, a + 8)), true), i * 10 + a);
        names.push(name);
      }
      return names;
    };
  const r = run(flows(true));
  assert.deepEqual(r.recs.map((x) => x.host).sort(), r.names.slice().sort(), 'every flow still named');
  for (const x of r.recs) assert.ok(x.anomalies.includes('quic_too_many_packets'), x.anomalies.join());
  assert.equal(r.e.caps.get('quic_too_many_packets'), 5);
  const b = run(flows(false));
  assert.deepEqual(b.recs.map((x) => x.host).sort(), b.names.slice().sort());
  assert.equal(b.e.caps.get('quic_too_many_packets'), undefined);
});

test('hostile frag-flood: the fragment table stays at its cap, evictions counted, storage small', () => {
  const c = classes.get('frag-flood')!;
  const r = run((emit) => c.hostile(emit, 0.05)); // 10,000 first fragments
  assert.ok(r.maxFrags <= 256, `fragments in progress ${r.maxFrags}`);
  assert.equal(r.e.decoder.anomalies.get('ipfrag_evicted'), 10_000 - 256);
  assert.ok(r.e.decoder.frags.heldBytes <= 256 * 300, `held ${r.e.decoder.frags.heldBytes}`);
  assert.equal(r.recs.length, 0);
});

test('hostile syn-flood: the flow table stays at its cap, each eviction counted on the flow and in caps', () => {
  const c = classes.get('syn-flood')!;
  const r = run((emit) => c.hostile(emit, 0.01), { maxFlows: 1000 }); // 5,000 SYNs
  assert.ok(r.maxTable <= 1000, `table ${r.maxTable}`);
  assert.equal(r.recs.length, 5000);
  assert.equal(r.e.caps.get('flow_evicted'), 4000);
  assert.equal(r.e.stats.evicted, 4000);
  assert.equal(r.recs.filter((x) => x.anomalies.includes('flow_evicted')).length, 4000);
  // SYN-only flows hold no reassembly state
  assert.equal(r.maxReasm, 0);
});

test('recycled flows (offline) give the same records as fresh ones', () => {
  const c = classes.get('tls-seg-8')!;
  const strip = (x: FlowRecord) => JSON.stringify(x);
  const a = run((emit) => c.hostile(emit, 0.02), { maxFlows: 5 });
  const b = run((emit) => c.hostile(emit, 0.02), { maxFlows: 5, recycleFlows: true });
  assert.ok(a.e.stats.evicted > 0);
  assert.deepEqual(b.recs.map(strip), a.recs.map(strip));
});

const CLI = { ip: '10.1.2.3', port: 40000 };
const SRV = { ip: '192.168.5.5', port: 443 };

test('global reassembly cap: flows that never fill their gap are given up, counted, and the total stays bounded', () => {
  const recs: FlowRecord[] = [];
  const cap = 64 * 1024;
  const e = new Engine({
    hashSeed: 1,
    maxReassemblyBytes: cap,
    onFlowEnd: (f, why) => recs.push(e.record(f, why)),
  });
  const h = wrapRecords(buildClientHello({ sni: 'gap.example', padTo: 8000 }));
  let max = 0;
  for (let i = 0; i < 200; i++) {
    const c = { ip: CLI.ip, port: 20000 + i };
    e.packet(tcpFrame(c, SRV, { seq: 0, ack: 0, flags: 0x02 }, true), 1, i);
    // everything but the first byte: the protocol is unknown, the bytes wait for the gap
    for (let o = 1; o < h.length; o += 1400)
      e.packet(
        tcpFrame(c, SRV, { seq: 1 + o, ack: 1, flags: 0x18, payload: h.subarray(o, o + 1400) }, true),
        1,
        i,
      );
    max = Math.max(max, e.stats.reassemblyBytes);
  }
  assert.ok(max <= cap + 2 * 20480 + 4096, `reassembly bytes peaked at ${max}`);
  assert.ok((e.caps.get('reassembly_memory_exhausted') ?? 0) > 0);
  e.flush();
  assert.equal(e.stats.reassemblyBytes, 0);
  assert.ok(recs.some((r) => r.anomalies.includes('reassembly_memory_exhausted')));
});

test('inspectingKnown: true from the first TLS byte until the hello is complete', () => {
  const e = new Engine({ hashSeed: 1 });
  const h = wrapRecords(buildClientHello({ sni: 'known.example' }));
  e.packet(tcpFrame(CLI, SRV, { seq: 0, ack: 0, flags: 0x02 }, true), 1, 0);
  let f = e.packet(
    tcpFrame(CLI, SRV, { seq: 1, ack: 1, flags: 0x18, payload: h.subarray(0, 1) }, true),
    1,
    1,
  )!;
  assert.equal(f.inspectingKnown, true);
  assert.equal(e.inspectingKnown(f), true);
  for (let o = 1; o < h.length - 1; o += 3)
    f = e.packet(
      tcpFrame(
        CLI,
        SRV,
        { seq: 1 + o, ack: 1, flags: 0x18, payload: h.subarray(o, Math.min(o + 3, h.length - 1)) },
        true,
      ),
      1,
      2,
    )!;
  assert.equal(f.inspectingKnown, true, 'still one byte short');
  f = e.packet(
    tcpFrame(CLI, SRV, { seq: h.length, ack: 1, flags: 0x18, payload: h.subarray(h.length - 1) }, true),
    1,
    3,
  )!;
  assert.equal(f.inspectingKnown, false);
  assert.equal(f.host, 'known.example');
  // an unknown protocol is never "known"
  const g = e.packet(
    tcpFrame(
      { ip: CLI.ip, port: 40001 },
      SRV,
      { seq: 9, ack: 1, flags: 0x18, payload: new Uint8Array(3) },
      true,
    ),
    1,
    4,
  )!;
  assert.equal(g.inspectingKnown, false);
});

test('flow hash: seeded per engine; a fixed seed is reproducible', () => {
  const a = new Engine({ hashSeed: 1 });
  const b = new Engine({ hashSeed: 2 });
  const c = new Engine({ hashSeed: 1 });
  const fr = tcpFrame(CLI, SRV, { seq: 0, ack: 0, flags: 0x02 }, true);
  const ha = a.packet(fr, 1, 0)!.hash;
  assert.notEqual(b.packet(fr, 1, 0)!.hash, ha);
  assert.equal(c.packet(fr, 1, 0)!.hash, ha);
  assert.notEqual(new Engine().hashSeed, undefined);
});

test('property: a ClientHello in 1–64-byte segments, in any order, with duplicates, is named', () => {
  const h = wrapRecords(buildClientHello({ sni: 'prop.example', alpn: ['h2'], grease: true }));
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 400 }),
      fc.integer(),
      fc.boolean(),
      (sizes, seed, syn) => {
        const inOrder: [number, number][] = [];
        let o = 0;
        for (let i = 0; o < h.length; i++) {
          const n = sizes[i % sizes.length];
          inOrder.push([o, Math.min(o + n, h.length)]);
          o += n;
        }
        // shuffle (deterministic per seed) and duplicate a few
        const pieces = shuffled(inOrder, seed);
        pieces.push(...pieces.slice(0, 3));
        const recs: FlowRecord[] = [];
        const e = new Engine({ hashSeed: 1, onFlowEnd: (f, why) => recs.push(e.record(f, why)) });
        if (syn) e.packet(tcpFrame(CLI, SRV, { seq: 99, ack: 0, flags: 0x02 }, true), 1, 0);
        else {
          // no SYN: the lowest sequence must come first for a mid-stream pickup to know the start
          const first = pieces.findIndex((p) => p[0] === 0);
          pieces.unshift(pieces.splice(first, 1)[0]);
        }
        for (const [a, b] of pieces)
          e.packet(
            tcpFrame(CLI, SRV, { seq: 100 + a, ack: 1, flags: 0x18, payload: h.subarray(a, b) }, true),
            1,
            1,
          );
        e.flush();
        return recs.length === 1 && recs[0].host === 'prop.example';
      },
    ),
    { numRuns: 150 },
  );
});

test('HTTP over UDP: SSDP M-SEARCH and NOTIFY are named from their Host header', () => {
  const recs: FlowRecord[] = [];
  const e = new Engine({ hashSeed: 1, onFlowEnd: (f, why) => recs.push(e.record(f, why)) });
  const b = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
  e.packet(
    udpFrame(
      { ip: '10.0.0.7', port: 50000 },
      { ip: '239.255.255.250', port: 1900 },
      b(
        'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n',
      ),
      true,
    ),
    1,
    0,
  );
  e.packet(
    udpFrame(
      { ip: '10.0.0.8', port: 1900 },
      { ip: '239.255.255.250', port: 1900 },
      b('NOTIFY * HTTP/1.1\r\nHost: upnp.example.lan:1900\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\n\r\n'),
      true,
    ),
    1,
    1,
  );
  e.flush();
  const byHost = new Map(recs.map((r) => [r.host, r]));
  assert.equal(byHost.get('239.255.255.250')?.http?.method, 'M-SEARCH');
  assert.equal(byHost.get('239.255.255.250')?.app_proto, 'http');
  assert.equal(byHost.get('upnp.example.lan')?.http?.method, 'NOTIFY');
});

test('a QUIC flow that ends while still inspecting keeps its QUIC cap hits (anomaly and Engine.caps)', () => {
  const flows =
    (capped: boolean) =>
    (emit: (f: Uint8Array, ts: number) => void): string[] => {
      for (let i = 0; i < 3; i++) {
        const ch = buildClientHello({ sni: `cut${i}.example.com`, alpn: ['h3'] });
        const pk = buildQuicInitials({
          dcid: Uint8Array.from([3, 1, 4, 1, 5, 9, 2, i]),
          clientHello: ch,
          datagramSize: 150,
        });
        const bogus = buildQuicInitials({
          dcid: Uint8Array.from([8, 8, 8, 8, 8, 8, 8, i]),
          clientHello: ch,
          datagramSize: 150,
        });
        for (const b of bogus) b[b.length - 1] ^= 0xff;
        while (bogus.length < 8) bogus.push(bogus[0]);
        // only the first datagram (one Initial that opens + 8 or 7 that do not): the hello never completes
        emit(
          udpFrame(
            { ip: `10.3.0.${i + 1}`, port: 41000 + i },
            { ip: '10.2.0.1', port: 443 },
            Buffer.concat([pk[0], ...bogus.slice(0, capped ? 8 : 7)]),
            true,
          ),
          i,
        );
      }
      return [];
    };
  const r = run(flows(true));
  assert.equal(r.recs.length, 3);
  for (const x of r.recs) {
    assert.equal(x.host, null);
    assert.ok(x.anomalies.includes('quic_too_many_packets'), x.anomalies.join());
  }
  assert.equal(r.e.caps.get('quic_too_many_packets'), 3);
  const b = run(flows(false));
  for (const x of b.recs) assert.ok(!x.anomalies.includes('quic_too_many_packets'), x.anomalies.join());
  assert.equal(b.e.caps.get('quic_too_many_packets'), undefined);
});
