/**
 * @module dissect/tls.test
 * ClientHello parsing against real clients' bytes (fixtures captured from curl, openssl, Node and
 * Chromium; expected values are what was passed on their command lines and what tshark decoded
 * from the same bytes), a published JA4 test vector, and hand-assembled edge cases.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { parseClientHelloBody, isGrease, MAX_ALPN_NAMES, TlsMalformedError } from './tls.js';
import { tlsClientHelloFromStream } from './tls-stream.js';
import { fixtureBytes, fixtureChunks, fixtureMeta } from './fixtures/index.js';
import { TruncatedError } from '../util/errors.js';

/** JA4 computed directly from tshark's field strings, following the spec text step by step. */
function ja4FromTshark(ts: Record<string, string[]>, transport: string): string {
  const grease = (h: string) => /^0x([0-9a-f])a\1a$/i.test(h);
  const toHex4 = (s: string) => (s.startsWith('0x') ? s.slice(2) : Number(s).toString(16)).padStart(4, '0');
  const ciphers = ts['tls.handshake.ciphersuite'].map(toHex4).filter((h) => !grease('0x' + h));
  const exts = ts['tls.handshake.extension.type'].map(toHex4).filter((h) => !grease('0x' + h));
  const sigs = (ts['tls.handshake.sig_hash_alg'] ?? []).map(toHex4).filter((h) => !grease('0x' + h));
  const versions = (ts['tls.handshake.extensions.supported_version'] ?? [])
    .map(toHex4)
    .filter((h) => !grease('0x' + h))
    .sort();
  const vmap: Record<string, string> = { '0304': '13', '0303': '12', '0302': '11', '0301': '10' };
  const ver =
    vmap[versions.length ? versions[versions.length - 1] : toHex4(ts['tls.handshake.version'][0])] ?? '00';
  const alpn0 = (ts['tls.handshake.extensions_alpn_str'] ?? [])[0];
  const alpn = alpn0 ? alpn0[0] + alpn0[alpn0.length - 1] : '00';
  const sni = exts.includes('0000') ? 'd' : 'i';
  const n2 = (n: number) => String(Math.min(n, 99)).padStart(2, '0');
  const h12 = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 12);
  const b = h12([...ciphers].sort().join(','));
  const extSorted = exts.filter((e) => e !== '0000' && e !== '0010').sort();
  const c = h12(extSorted.join(',') + (sigs.length ? '_' + sigs.join(',') : ''));
  return `${transport}${ver}${sni}${n2(ciphers.length)}${n2(exts.length)}${alpn}_${b}_${c}`;
}

const num = (s: string) => (s.startsWith('0x') ? parseInt(s, 16) : Number(s));

for (const name of ['tls-curl', 'tls-openssl', 'tls-node', 'tls-chromium']) {
  test(`real client ${name}: SNI, ALPN, versions, lists and JA4 agree with the command line and tshark`, () => {
    const meta = fixtureMeta(name);
    const ts = meta.tshark;
    const r = tlsClientHelloFromStream(fixtureBytes(name));
    assert.equal(r.status, 'done', JSON.stringify(r));
    if (r.status !== 'done') return;
    const h = r.hello;
    assert.equal(h.sni, meta.sni); // raw, exactly as given to the client (case, trailing dot)
    assert.deepEqual(h.alpn, meta.alpn);
    assert.deepEqual(h.sni, ts['tls.handshake.extensions_server_name'][0]);
    assert.deepEqual(h.alpn, ts['tls.handshake.extensions_alpn_str']);
    assert.deepEqual(Array.from(h.cipherSuites), ts['tls.handshake.ciphersuite'].map(num));
    assert.deepEqual(Array.from(h.extensions), ts['tls.handshake.extension.type'].map(num));
    assert.deepEqual(Array.from(h.signatureAlgorithms), ts['tls.handshake.sig_hash_alg'].map(num));
    assert.deepEqual(
      h.supportedVersions,
      ts['tls.handshake.extensions.supported_version'].map(num).filter((v) => !isGrease(v)),
    );
    assert.ok(h.supportedVersions.includes(0x0304));
    assert.equal(h.ja4, ja4FromTshark(ts, 't'));
    assert.equal(h.ech, ts['tls.handshake.extension.type'].map(num).includes(0xfe0d)); // tshark's list, not ours
    assert.deepEqual(r.anomalies, []);
  });
}

test('Chromium: GREASE, ECH, post-quantum key share (hello larger than one 1500-byte segment)', () => {
  const r = tlsClientHelloFromStream(fixtureBytes('tls-chromium'));
  assert.equal(r.status, 'done');
  if (r.status !== 'done') return;
  assert.ok(r.hello.extensions.some(isGrease));
  assert.ok(r.hello.cipherSuites.some(isGrease));
  assert.equal(r.hello.ech, true);
  const bytes = fixtureBytes('tls-chromium');
  assert.ok(bytes.length > 1460, `hello is ${bytes.length} bytes`);
  // X25519MLKEM768 (0x11ec) key share of 1216 bytes: group id followed by length 0x04c0.
  const hexs = Buffer.from(bytes).toString('hex');
  assert.ok(hexs.includes('11ec04c0'));
  // Split as on a 1500-MTU path (1448-byte segments): need-more, then done.
  assert.equal(tlsClientHelloFromStream(bytes.subarray(0, 1448)).status, 'need-more');
});

test('every prefix of each real hello is need-more; the full stream is done', () => {
  for (const name of ['tls-curl', 'tls-openssl', 'tls-node', 'tls-chromium']) {
    const all = fixtureBytes(name);
    for (let i = 0; i < all.length; i++) {
      const r = tlsClientHelloFromStream(all.subarray(0, i));
      assert.equal(r.status, 'need-more', `${name} prefix ${i}`);
    }
    // chunks as received, accumulated
    const chunks = fixtureChunks(name);
    let acc = new Uint8Array(0);
    for (const c of chunks) {
      const n = new Uint8Array(acc.length + c.length);
      n.set(acc);
      n.set(c, acc.length);
      acc = n;
    }
    assert.equal(tlsClientHelloFromStream(acc).status, 'done');
  }
});

// A Chrome ClientHello record published as a JA4 test vector, with its stated fingerprint
// t13d1516h2_8daaf6152771_e5627efa2ab1 (the FoxIO spec's example hello).
const JA4_VECTOR =
  '1603010200010001fc0303b2c03e7ba990ef540c316a665d4d925f8e9079ac4b15687e587dc99016e75a6c20d0b0099243c9296a0c84153ea4ada7d87ad017f4211c2ea1350b0b3cc5514d5f00205a5a130113021303c02bc02fc02cc030cca9cca8c013c014009c009d002f003501000193fafa000000000024002200001f636f6e74656e742d6175746f66696c6c2e676f6f676c65617069732e636f6d0033002b00293a3a000100001d0020fb2cd8ef3d605b96ab03119ec4f30a6e2088cb1af86c41a81feace8706068c50000d001200100403080404010503080505010806060100230000000b00020100ff01000100000a000a00083a3a001d00170018001b000302000244690005000302683200120000002d000201010010000e000c02683208687474702f312e31000500050100000000002b0007060a0a03040303001700001a1a000100001500b8' +
  '00'.repeat(0xb8);

test('published JA4 vector (Chrome hello): t13d1516h2_8daaf6152771_e5627efa2ab1', () => {
  const r = tlsClientHelloFromStream(Buffer.from(JA4_VECTOR, 'hex'));
  assert.equal(r.status, 'done');
  if (r.status !== 'done') return;
  assert.equal(r.hello.sni, 'content-autofill.googleapis.com');
  assert.deepEqual(r.hello.alpn, ['h2', 'http/1.1']);
  assert.equal(r.hello.ja4, 't13d1516h2_8daaf6152771_e5627efa2ab1');
});

// ---- hand-assembled bodies -------------------------------------------------------------------

function u16(v: number): number[] {
  return [(v >> 8) & 0xff, v & 0xff];
}
function vec16(b: number[]): number[] {
  return [...u16(b.length), ...b];
}
function bytesOf(s: string): number[] {
  return [...s].map((c) => c.charCodeAt(0) & 0xff);
}
function sniExt(...names: string[]): [number, number[]] {
  const list: number[] = [];
  for (const n of names) list.push(0, ...vec16(bytesOf(n)));
  return [0, vec16(list)];
}
function body(exts: [number, number[]][] | null, ciphers = [0x1301], sid = 0): Uint8Array {
  const b: number[] = [...u16(0x0303), ...new Array(32).fill(7), sid, ...new Array(sid).fill(1)];
  b.push(...vec16(ciphers.flatMap(u16)), 1, 0);
  if (exts) b.push(...vec16(exts.flatMap(([t, d]) => [...u16(t), ...vec16(d)])));
  return new Uint8Array(b);
}
function record(hsBody: Uint8Array, type = 1): Uint8Array {
  const hs = [type, 0, (hsBody.length >> 8) & 0xff, hsBody.length & 0xff, ...hsBody];
  return new Uint8Array([22, 3, 1, ...u16(hs.length), ...hs]);
}

test('SNI raw value: case and trailing dot kept; no SNI -> null', () => {
  assert.equal(parseClientHelloBody(body([sniExt('Twitter.COM.')]), 't').sni, 'Twitter.COM.');
  assert.equal(parseClientHelloBody(body([]), 't').sni, null);
  assert.equal(parseClientHelloBody(body(null), 't').sni, null); // no extensions block at all
});

test('SNI anomalies: control/non-ASCII bytes, empty, multiple, no host_name', () => {
  const bad = parseClientHelloBody(body([sniExt('evil\x00.twitter.com')]), 't');
  assert.equal(bad.sni, 'evil\x00.twitter.com');
  assert.deepEqual(bad.anomalies, ['tls_sni_bad_chars']);
  const hi = parseClientHelloBody(body([sniExt('xn--\xd0\xbf.example')]), 't');
  assert.deepEqual(hi.anomalies, ['tls_sni_bad_chars']);
  assert.deepEqual(parseClientHelloBody(body([sniExt('')]), 't').anomalies, ['tls_sni_empty']);
  const two = parseClientHelloBody(body([sniExt('a.example', 'b.example')]), 't');
  assert.equal(two.sni, 'a.example');
  assert.deepEqual(two.anomalies, ['tls_sni_multiple']);
  const none = parseClientHelloBody(body([[0, vec16([])]]), 't');
  assert.equal(none.sni, null);
  assert.deepEqual(none.anomalies, ['tls_sni_no_hostname']);
});

test('SNI structure errors are tls_sni_invalid', () => {
  for (const ext of [
    [0, [0, 9, 0, 0, 3, 0x61]], // list length beyond extension
    [0, [0, 4, 0, 0, 9, 0x61]], // name length beyond list
    [0, [0, 1, 0, 0x61]], // bytes after list
  ] as [number, number[]][]) {
    assert.throws(
      () => parseClientHelloBody(body([ext]), 't'),
      (e: unknown) => e instanceof TlsMalformedError && e.anomaly === 'tls_sni_invalid',
    );
    const r = tlsClientHelloFromStream(record(body([ext])));
    assert.deepEqual(r, { status: 'error', anomaly: 'tls_sni_invalid' });
  }
});

test('duplicate extension: first wins, anomaly; trailing bytes anomaly', () => {
  const h = parseClientHelloBody(body([sniExt('first.example'), sniExt('second.example')]), 't');
  assert.equal(h.sni, 'first.example');
  assert.deepEqual(h.anomalies, ['tls_duplicate_extension']);
  const b = body([sniExt('x.example')]);
  const withTail = new Uint8Array([...b, 0xde, 0xad]);
  assert.deepEqual(parseClientHelloBody(withTail, 't').anomalies, ['tls_trailing_bytes']);
});

test('truncated bodies throw TruncatedError; malformed ones TlsMalformedError', () => {
  const b = body([sniExt('x.example')]);
  const noExtensions = 2 + 32 + 1 + 4 + 2; // a body may legally end after compression methods
  for (let i = 0; i < b.length; i++) {
    if (i === noExtensions) continue;
    assert.throws(
      () => parseClientHelloBody(b.subarray(0, i), 't'),
      (e: unknown) => e instanceof TruncatedError || e instanceof TlsMalformedError,
      `length ${i}`,
    );
  }
  assert.throws(() => parseClientHelloBody(body([], [0x1301], 33), 't'), TlsMalformedError); // session id > 32
  const odd = body([]);
  odd[2 + 32 + 1 + 1] = 3; // cipher_suites length 3 (odd)
  assert.throws(() => parseClientHelloBody(odd, 't'));
});

test('ALPN values kept byte for byte; GREASE removed from supported_versions only', () => {
  const alpn: [number, number[]] = [0x10, vec16([2, ...bytesOf('h2'), 0, 3, 0xab, 0x00, 0xcd])];
  const sv: [number, number[]] = [0x2b, [6, ...u16(0x3a3a), ...u16(0x0304), ...u16(0x0303)]];
  const sig: [number, number[]] = [0x0d, vec16([...u16(0x1a1a), ...u16(0x0403)])];
  const h = parseClientHelloBody(body([alpn, sv, sig, [0x2a2a, []]], [0x0a0a, 0x1301]), 't');
  assert.deepEqual(h.alpn, ['h2', '', '\xab\x00\xcd']);
  assert.deepEqual(h.anomalies, ['tls_alpn_empty']);
  assert.deepEqual(h.supportedVersions, [0x0304, 0x0303]);
  assert.deepEqual(Array.from(h.signatureAlgorithms), [0x1a1a, 0x0403]);
  assert.deepEqual(Array.from(h.cipherSuites), [0x0a0a, 0x1301]);
  assert.deepEqual(Array.from(h.extensions), [0x10, 0x2b, 0x0d, 0x2a2a]);
  assert.match(h.ja4, /^t13i0103h2_/);
});

test('ALPN: the first MAX_ALPN_NAMES names are kept, the rest framed and flagged; a broken name past them still fails', () => {
  const names = Array.from({ length: 3900 }, (_, i) => `p${i.toString(36)}`);
  const wire = (ns: string[]): number[] => ns.flatMap((n) => [n.length, ...bytesOf(n)]);
  for (const n of [1, MAX_ALPN_NAMES - 1, MAX_ALPN_NAMES, MAX_ALPN_NAMES + 1, 3900]) {
    const h = parseClientHelloBody(body([[0x10, vec16(wire(names.slice(0, n)))]], [0x1301]), 't');
    assert.deepEqual(h.alpn, names.slice(0, Math.min(n, MAX_ALPN_NAMES)), `n=${n}`);
    assert.deepEqual(h.anomalies ?? [], n > MAX_ALPN_NAMES ? ['tls_alpn_truncated'] : [], `n=${n}`);
    assert.match(h.ja4, /^t12i0101p0_/, 'JA4 reads the first name');
  }
  // an empty name before the cap and one after: flagged once, in order of first occurrence
  const mixed = [...names.slice(0, 3), '', ...names.slice(3, 100), ''];
  const m = parseClientHelloBody(body([[0x10, vec16(wire(mixed))]], [0x1301]), 't');
  assert.deepEqual(m.anomalies ?? [], ['tls_alpn_empty', 'tls_alpn_truncated']);
  // the framing past the kept names is still checked: a name running past the list is an error
  const bad = wire(names.slice(0, 200));
  bad.push(9, 0x61); // declares 9 bytes, has 1
  const r = parseClientHelloBody(body([[0x10, vec16(bad)]], [0x1301]), 't');
  assert.ok((r.anomalies ?? []).includes('tls_bad_extension'), String(r.anomalies));
  assert.deepEqual(r.alpn, []);
});

test('long lists (the native copy and byte swap path) come out value for value, in wire order', () => {
  // lists written here byte by byte (big-endian pairs), around the path's threshold and far past it
  for (const n of [1, 255, 256, 257, 5000, 32_000]) {
    const ciphers = Array.from({ length: n }, (_, i) => (0xfff0 - i * 3 + (i & 1) * 0x1234) & 0xffff);
    const sigs = Array.from({ length: Math.min(n, 3000) }, (_, i) => (i * 0x0101 + 7) & 0xffff);
    const sig: [number, number[]] = [0x0d, vec16(sigs.flatMap(u16))];
    const h = parseClientHelloBody(body([sniExt('x.example'), sig], ciphers), 't');
    assert.deepEqual(Array.from(h.cipherSuites), ciphers, `ciphers n=${n}`);
    assert.deepEqual(Array.from(h.signatureAlgorithms), sigs, `sigs n=${sigs.length}`);
  }
});

test('short lists stay right in hellos kept long after (views into a shared slab that fills up)', () => {
  // 5,000 hellos of 3-cipher lists are far more than one slab holds: a slab refilled in place would
  // change the lists of the hellos parsed before
  const kept: { h: ReturnType<typeof parseClientHelloBody>; ciphers: number[] }[] = [];
  for (let i = 0; i < 5000; i++) {
    const ciphers = [0x1301 + (i % 3), (i * 7) & 0xffff, (i * 13 + 5) & 0xffff];
    kept.push({ h: parseClientHelloBody(body([sniExt(`h${i}.example`)], ciphers), 't'), ciphers });
  }
  for (const [i, k] of kept.entries()) {
    assert.deepEqual(Array.from(k.h.cipherSuites), k.ciphers, `hello ${i}`);
    assert.deepEqual(Array.from(k.h.extensions), [0x0000], `hello ${i}`);
  }
});

test('ECH extension sets ech', () => {
  assert.equal(parseClientHelloBody(body([[0xfe0d, [0, 0, 1, 0, 1]]]), 'q').ech, true);
  assert.equal(parseClientHelloBody(body([]), 'q').ech, false);
  assert.match(parseClientHelloBody(body([]), 'q').ja4, /^q12i0100/);
});

test('broken ALPN / supported_versions / signature_algorithms content: SNI still reported', () => {
  // Extension framing intact, inner vector length too large (seen in the wild in fuzzed captures).
  const alpnBad: [number, number[]] = [0x10, [0xb8, 0x89, 0xa5, 0x2f, 0x56]];
  const svBad: [number, number[]] = [0x2b, [9, 3, 4]];
  const sigBad: [number, number[]] = [0x0d, [0, 3, 4, 3, 1]]; // odd list length
  for (const ext of [alpnBad, svBad, sigBad]) {
    const h = parseClientHelloBody(body([sniExt('still.example'), ext]), 't');
    assert.equal(h.sni, 'still.example');
    assert.deepEqual(h.anomalies, ['tls_bad_extension']);
    const r = tlsClientHelloFromStream(record(body([sniExt('still.example'), ext])));
    assert.equal(r.status, 'done');
  }
  // The extension framing itself broken (an extension's length past the block, as in the corpus's
  // tls_invalid_reads.pcap): the extensions before it still count, flagged tls_extensions_overrun.
  const b = body([sniExt('x.example'), [0x10, [0, 2, 1, 0x61]]]);
  b[b.length - 5] = 0x40; // ALPN extension length 4 -> 64, past the extensions block
  const h = parseClientHelloBody(b, 't');
  assert.equal(h.sni, 'x.example');
  assert.deepEqual(h.alpn, []);
  assert.deepEqual(h.anomalies, ['tls_extensions_overrun']);
});

test('Chromium JA4 equals FoxIO ja4 (Rust) output for a Chrome hello with GREASE signature algorithms', () => {
  // FoxIO-LLC/ja4 rust/ja4/src/snapshots/ja4__insta@sigalg-grease.pcapng.snap states
  // ja4: t13d1517h2_8daaf6152771_cb7bf5808d99 for a Chrome hello whose signature_algorithms start
  // with a GREASE value and include ML-DSA (0x0904-0x0906) — the same layout as our fixture.
  const r = tlsClientHelloFromStream(fixtureBytes('tls-chromium'));
  assert.equal(r.status, 'done');
  if (r.status !== 'done') return;
  assert.ok(isGrease(r.hello.signatureAlgorithms[0]));
  assert.equal(r.hello.ja4, 't13d1517h2_8daaf6152771_cb7bf5808d99');
});
