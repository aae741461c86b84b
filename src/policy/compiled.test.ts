/**
 * @module policy/compiled.test
 * The compiled registry file: the same decisions as the text policy it was made from (expected values
 * from the text path, plus hand-written anchors of the policy semantics), rules expired since compile
 * are dead, a stale or foreign file is refused naming what changed, and a truncated, bit-flipped or
 * hostile (re-sealed) file is refused with ERR_COMPILED or, when its structure is still sound, answers
 * every lookup without throwing — never a crash or an out-of-bounds read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { compilePolicyToFile, decodeCompiled, loadCompiled, CompiledPolicyError } from './compiled.js';
import { compilePolicy } from './compile.js';
import { loadPolicyFile } from './load.js';
import { tempDir, flow } from './testutil.js';
import { nameGen, rng } from '../gen/synth.js';
import type { MatchInput } from './types.js';
import type { Matcher } from './compile.js';

const POLICY = `version: 1
default: allow
protected:
  suffix: [gov.example]
  cidr: [192.0.2.0/24]
rules:
  - id: names
    action: block
    match:
      host: {exact_file: lists/exact.txt, suffix_file: lists/suffix.txt, subdomains_file: lists/sub.txt}
  - id: ips
    action: block
    method: drop
    match: {dest_ip_file: lists/cidr.txt, except_dest_ip: [10.9.9.0/24]}
  - id: video
    action: throttle
    rate: 1mbit
    priority: 10
    match: {host: {suffix: [video.example]}}
  - id: tco
    action: log
    match: {host: {substring: [t.co]}}
  - id: old
    action: block
    expires: 2026-06-30
    match: {host: {exact: [old.example]}}
  - id: quic
    action: block
    match: {proto: udp, dest_port: 443, quic_version: v1}
  - id: override
    action: block
    protected_override: {reason: test}
    match: {host: {exact: [phish.gov.example]}}
`;

interface Fixture {
  dir: string;
  policy: string;
  out: string;
  exact: string[];
  suffix: string[];
  sub: string[];
  v4: string[];
  cleanup(): void;
}

function fixture(n = 3000): Fixture {
  const t = tempDir('chokepoint-compiled-test-');
  const r = rng(7);
  const { randomName } = nameGen(r);
  const seen = new Set<string>();
  const exact: string[] = [];
  const suffix: string[] = [];
  const sub: string[] = [];
  while (seen.size < n) {
    const x = randomName();
    if (seen.has(x)) continue;
    seen.add(x);
    (seen.size % 3 === 0 ? exact : seen.size % 3 === 1 ? suffix : sub).push(x);
  }
  // a long name (tail outside the slot) and one shared by two kinds
  exact.push('a-rather-long-registry-name-beyond-the-inline-bytes.example');
  suffix.push('shared.example');
  sub.push('shared.example');
  const v4: string[] = [];
  for (let i = 0; i < 400; i++) {
    const len = 16 + (i % 17);
    const a = Math.floor(r() * 2 ** 32) >>> 0;
    const m = a & (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);
    v4.push(`${m >>> 24}.${(m >>> 16) & 255}.${(m >>> 8) & 255}.${m & 255}/${len}`);
  }
  const cidr = [...v4, '10.0.0.0/8', '2001:db8:bad::/48', '::ffff:198.18.0.0/111', '0.0.0.0/3'];
  mkdirSync(join(t.dir, 'lists'));
  writeFileSync(join(t.dir, 'lists/exact.txt'), exact.join('\n') + '\n');
  writeFileSync(join(t.dir, 'lists/suffix.txt'), suffix.join('\n') + '\n');
  writeFileSync(join(t.dir, 'lists/sub.txt'), '# comment\n' + sub.join('\n') + '\n');
  writeFileSync(join(t.dir, 'lists/cidr.txt'), cidr.join('\n') + '\n');
  const policy = join(t.dir, 'policy.yaml');
  writeFileSync(policy, POLICY);
  return { ...t, policy, out: join(t.dir, 'policy.compiled'), exact, suffix, sub, v4 };
}

/** Inputs over every kind of hit and miss, case and dot variants, IPv4/IPv6/mapped addresses. */
function inputs(f: Fixture, count: number): MatchInput[] {
  const r = rng(99);
  const { randomName, label } = nameGen(r);
  const pick = (a: string[]): string => a[Math.floor(r() * a.length)];
  const ip4 = (): string => [0, 0, 0, 0].map(() => Math.floor(r() * 256)).join('.');
  const inCidr = (): string => {
    const [a, len] = pick(f.v4).split('/');
    const base = a.split('.').map(Number);
    const host = Math.floor(r() * 2 ** (32 - Number(len)));
    const v = ((base[0] << 24) | (base[1] << 16) | (base[2] << 8) | base[3]) + host;
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  };
  const out: MatchInput[] = [];
  for (let i = 0; i < count; i++) {
    const k = i % 16;
    let host: string | null;
    if (k === 0) host = pick(f.exact);
    else if (k === 1)
      host = `${label(2, 6)}.${pick(f.exact)}`; // exact does not cover subdomains
    else if (k === 2) host = pick(f.suffix);
    else if (k === 3) host = `${label(2, 6)}.${pick(f.suffix)}`;
    else if (k === 4)
      host = pick(f.sub); // subdomains does not cover the name itself
    else if (k === 5) host = `${label(2, 6)}.${pick(f.sub)}`;
    else if (k === 6) host = pick(f.exact).toUpperCase() + '.';
    else if (k === 7)
      host = `x${pick(f.suffix)}`; // no label boundary
    else if (k === 8) host = randomName();
    else if (k === 9)
      host = pick(['www.gov.example', 'phish.gov.example', 'cdn.video.example', 'old.example']);
    else if (k === 10) host = pick(['at.com', 'xt.co.uk', 'пример.рф', 'shared.example', 'a.shared.example']);
    else if (k === 11) host = `${label(2, 6)}.a-rather-long-registry-name-beyond-the-inline-bytes.example`;
    else host = null;
    const dest_ip =
      k === 12
        ? inCidr()
        : k === 13
          ? pick(['10.9.9.1', '10.1.2.3', '192.0.2.7', '::ffff:10.1.1.1', '2001:db8:bad::1', '198.19.0.1'])
          : k === 14
            ? `2001:db8:${Math.floor(r() * 65536).toString(16)}::1`
            : ip4();
    out.push(
      flow({
        host,
        raw_host: host,
        proto: k === 15 ? 'UDP' : 'TCP',
        src_ip: k === 13 ? '192.0.2.99' : ip4(),
        dest_ip,
        quic_version: k === 15 ? '0x00000001' : null,
      }),
    );
  }
  return out;
}

const JUNE = Date.parse('2026-06-01T00:00:00Z');
const JULY = Date.parse('2026-07-15T00:00:00Z');

function rid(m: Matcher, i: MatchInput): string | null {
  return m.match(i).rule_id;
}

test('compiled file decides exactly like the text policy it was made from', async () => {
  const f = fixture();
  try {
    const r = await compilePolicyToFile(f.policy, f.out, { now: JUNE });
    assert.equal(r.sources.length, 5, 'policy + 4 list files recorded');
    const text = compilePolicy(await loadPolicyFile(f.policy), { now: JUNE });
    const bin = await loadCompiled(f.out, { now: JUNE, policy: f.policy });
    // anchors of the semantics (docs/POLICY.md), independent of both matchers
    const at = (host: string | null, dest_ip = '203.0.113.1', extra: Partial<MatchInput> = {}): MatchInput =>
      flow({ host, raw_host: host, dest_ip, src_ip: '198.51.100.7', ...extra });
    const anchors: [MatchInput, string | null][] = [
      [at(f.exact[0]), 'names'],
      [at('zz.' + f.exact[0]), null],
      [at(f.suffix[0]), 'names'],
      [at('zz.' + f.suffix[0]), 'names'],
      [at('x' + f.suffix[0]), null],
      [at(f.sub[0]), null],
      [at('zz.' + f.sub[0]), 'names'],
      [at(f.exact[0].toUpperCase() + '.'), 'names'],
      [at('shared.example'), 'names'],
      [at('cdn.video.example'), 'video'],
      [at('www.gov.example', '10.1.1.1'), '$protected'],
      [at('phish.gov.example'), 'override'],
      [at('at.com'), 'tco'],
      [at('old.example'), 'old'],
      [at(null, '10.1.2.3'), 'ips'],
      [at(null, '10.9.9.1'), null],
      [at(null, '::ffff:10.1.1.1'), 'ips'],
      [at(null, '198.19.0.1'), 'ips'],
      [at(null, '2001:db8:bad::1'), 'ips'],
      [at(null, '10.1.2.3', { src_ip: '192.0.2.5' }), '$protected'],
      [at(null, '203.0.113.1', { proto: 'UDP', quic_version: '0x00000001' }), 'quic'],
    ];
    for (const [i, want] of anchors) {
      assert.equal(rid(text, i), want, `text path, ${i.host} → ${i.dest_ip}`);
      assert.equal(rid(bin, i), want, `compiled, ${i.host} → ${i.dest_ip}`);
    }
    const all = inputs(f, 20000);
    let decided = 0;
    for (const i of all) {
      const a = text.match(i);
      const b = bin.match(i);
      assert.deepEqual(b, a, `${i.host} ${i.dest_ip}`);
      if (a.rule_id !== null) decided++;
    }
    assert.ok(decided > 5000 && decided < 19000, `a mix of hits and misses (${decided})`);
    assert.equal(bin.ruleCount, text.ruleCount);
    assert.equal(bin.expiresAt, text.expiresAt);
    assert.deepEqual(
      bin.policy.rules[0].lists.map((l) => l.entries),
      text.policy.rules[0].lists.map((l) => l.entries),
    );
  } finally {
    f.cleanup();
  }
});

test('a rule that expired after compile is dead in the compiled file, as in a fresh text compile', async () => {
  const f = fixture(300);
  try {
    await compilePolicyToFile(f.policy, f.out, { now: JUNE });
    const bin = await loadCompiled(f.out, { now: JULY });
    const text = compilePolicy(await loadPolicyFile(f.policy), { now: JULY });
    const i = flow({ host: 'old.example', raw_host: 'old.example', dest_ip: '203.0.113.1' });
    assert.equal(rid(text, i), null);
    assert.equal(rid(bin, i), null);
    assert.equal(bin.ruleCount, text.ruleCount);
    assert.equal(bin.decisionOf('old'), undefined);
    for (const x of inputs(f, 4000)) assert.deepEqual(bin.match(x), text.match(x));
  } finally {
    f.cleanup();
  }
});

test('a stale or foreign compiled file is refused, naming what changed', async () => {
  const f = fixture(300);
  try {
    await compilePolicyToFile(f.policy, f.out);
    await loadCompiled(f.out, { policy: f.policy });
    writeFileSync(join(f.dir, 'lists/suffix.txt'), 'new.example\n', { flag: 'a' });
    await assert.rejects(loadCompiled(f.out, { policy: f.policy }), (e: Error) => {
      assert.ok(e instanceof CompiledPolicyError);
      assert.match(e.message, /stale: list file .*lists\/suffix\.txt changed since it was compiled/);
      return true;
    });
    // without the text policy to compare with, the file itself is still sound
    await loadCompiled(f.out);
    const other = join(f.dir, 'other.yaml');
    writeFileSync(other, POLICY.replace('default: allow', 'default: log'));
    await assert.rejects(loadCompiled(f.out, { policy: other }), /compiled from a different policy text/);
    writeFileSync(join(f.dir, 'plain.txt'), 'rules: []\n');
    await assert.rejects(loadCompiled(join(f.dir, 'plain.txt')), /not a compiled policy/);
    const b = readFileSync(f.out);
    b.writeUInt32LE(2, 8);
    writeFileSync(f.out, b);
    await assert.rejects(loadCompiled(f.out), /compiled format version 2, this build reads version 1/);
  } finally {
    f.cleanup();
  }
});

/** A fresh 8-aligned copy (what loadCompiled reads into). */
function copy(b: Uint8Array, len = b.length): Uint8Array {
  const u = new Uint8Array(new ArrayBuffer(len));
  u.set(b.subarray(0, len));
  return u;
}

/** Recompute the body hash, as a hostile writer would. */
function reseal(u: Uint8Array): void {
  createHash('sha256').update(u.subarray(128)).digest().copy(u, 64);
}

/** Every lookup of `ins` returns a decision (no throw); the matcher came from a damaged file. */
function survives(m: Matcher, ins: MatchInput[]): void {
  for (const i of ins) {
    const d = m.match(i);
    assert.equal(typeof d.action, 'string');
  }
}

async function refusedOrSound(u: Uint8Array, ins: MatchInput[]): Promise<void> {
  let m: Matcher;
  try {
    m = await decodeCompiled(u, 'x.compiled');
  } catch (e) {
    assert.ok(e instanceof CompiledPolicyError, `expected CompiledPolicyError, got ${String(e)}`);
    assert.equal(e.code, 'ERR_COMPILED');
    return;
  }
  survives(m, ins);
}

test('truncated and bit-flipped files are refused with ERR_COMPILED', async () => {
  const f = fixture(200);
  try {
    await compilePolicyToFile(f.policy, f.out);
    const good = new Uint8Array(readFileSync(f.out));
    const cuts = [0, 1, 7, 8, 127, 128, 129, 500, good.length >> 1, good.length - 1];
    for (const len of cuts)
      await assert.rejects(decodeCompiled(copy(good, len), 'x'), CompiledPolicyError, `cut at ${len}`);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: good.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        async (at, x) => {
          const u = copy(good);
          u[at] ^= x;
          await assert.rejects(decodeCompiled(u, 'x'), CompiledPolicyError);
        },
      ),
      { numRuns: 300 },
    );
  } finally {
    f.cleanup();
  }
});

test('hostile files (damaged, then re-sealed with a valid hash) are refused or answer safely', async () => {
  const f = fixture(200);
  try {
    await compilePolicyToFile(f.policy, f.out);
    const good = new Uint8Array(readFileSync(f.out));
    const ins = inputs(f, 400);
    const metaEnd = 128 + Buffer.from(good.buffer, good.byteOffset, 128).readUInt32LE(16);
    // the data area: overwrite aligned int32 words with hostile values (offsets, links, sizes)
    const hostile = fc.constantFrom(
      -1,
      -2,
      -3,
      0,
      1,
      2,
      3,
      7,
      8,
      255,
      256,
      0x7fffffff,
      -0x80000000,
      1 << 20,
      -9,
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: metaEnd, max: good.length - 4 }), hostile), {
          minLength: 1,
          maxLength: 8,
        }),
        async (edits) => {
          const u = copy(good);
          const dv = new DataView(u.buffer);
          for (const [at, v] of edits) dv.setInt32(at & ~3, v, true);
          reseal(u);
          await refusedOrSound(u, ins);
        },
      ),
      { numRuns: 400 },
    );
    // any byte anywhere (meta included), re-sealed
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 128, max: good.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        async (at, x) => {
          const u = copy(good);
          u[at] ^= x;
          reseal(u);
          await refusedOrSound(u, ins);
        },
      ),
      { numRuns: 300 },
    );
    // hand-made: a slot table with no empty slot would make probing loop forever
    const m = await decodeCompiled(copy(good), 'x');
    const slots = m.indexes.domains.parts().slots;
    const u = copy(good);
    const off = slots.byteOffset; // offset inside the decoded buffer = offset in the file
    const dv = new DataView(u.buffer);
    for (let q = 0; q < slots.length; q += 8)
      if (slots[q + 1] === 0) {
        dv.setInt32(off + (q + 1) * 4, (3 << 8) | 5, true);
        dv.setInt32(off + (q + 2) * 4, -1, true);
      }
    reseal(u);
    await assert.rejects(decodeCompiled(u, 'x'), /no empty slot/);
  } finally {
    f.cleanup();
  }
});

test('the file keeps the parsed policy: loading it never loads the yaml package, and gives the same policy', async () => {
  const f = fixture(300);
  try {
    await compilePolicyToFile(f.policy, f.out, { now: Date.parse('2026-01-01T00:00:00Z') });
    const u = new Uint8Array(readFileSync(f.out));
    const metaLen = Buffer.from(u.buffer, u.byteOffset, 128).readUInt32LE(16);
    const metaText = Buffer.from(u.buffer, u.byteOffset + 128, metaLen).toString('utf8');
    const meta = JSON.parse(metaText) as { policyParsed?: { rules: [number, number][] } };
    // rule positions as the text gives them (POLICY above: the first rule's "- id" is on line 7, its "id" at column 5)
    assert.equal(meta.policyParsed?.rules.length, 7);
    assert.deepEqual(meta.policyParsed?.rules[0], [7, 5]);

    // a child process loads the file and reports whether any module of the yaml package was loaded;
    // the control loads a text policy afterwards, which must load it (else the probe sees nothing)
    const mod = fileURLToPath(new URL('./compiled.js', import.meta.url));
    const load = fileURLToPath(new URL('./load.js', import.meta.url));
    const probe = (thenText: boolean): number => {
      const code = `
        import { createRequire } from 'node:module';
        const { loadCompiled } = await import(${JSON.stringify(mod)});
        await loadCompiled(${JSON.stringify(f.out)});
        if (${thenText}) await (await import(${JSON.stringify(load)})).parsePolicy('rules: []', 'x.yaml');
        const cache = createRequire(import.meta.url).cache;
        console.log(Object.keys(cache).filter((k) => k.includes('/node_modules/yaml/')).length);`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return Number(r.stdout.trim());
    };
    assert.equal(probe(false), 0, 'loading the compiled file loaded the yaml package');
    assert.ok(probe(true) > 0, 'the probe does not see the yaml package even when it is loaded');

    // the same file with the parsed value hidden (its key renamed, same length, hash re-sealed) is
    // loaded from the policy text through yaml, as older files are: the policies must be equal
    const old = copy(u);
    const at = metaText.indexOf('"policyParsed":');
    assert.ok(at > 0);
    Buffer.from(old.buffer, old.byteOffset + 128 + at, 15).write('"policyParsex":', 'utf8');
    reseal(old);
    const viaParsed = await decodeCompiled(copy(u), f.out, { now: Date.parse('2026-01-01T00:00:00Z') });
    const viaYaml = await decodeCompiled(old, f.out, { now: Date.parse('2026-01-01T00:00:00Z') });
    assert.deepEqual(viaParsed.policy, viaYaml.policy);
    assert.equal(viaParsed.policy.rules[2].pos?.line, viaYaml.policy.rules[2].pos?.line);
    assert.ok((viaYaml.policy.rules[2].pos?.line ?? 0) > 8);
  } finally {
    f.cleanup();
  }
});

test('a policy value JSON cannot carry unchanged is not stored: the file keeps only the text, and loads from it', async () => {
  const t = tempDir('chokepoint-compiled-inf-');
  try {
    const policy = join(t.dir, 'policy.yaml');
    // free-form provenance takes any scalar: .inf and -0 become null and 0 in JSON
    writeFileSync(
      policy,
      'rules:\n  - id: r1\n    action: block\n    provenance: {weight: .inf, zero: -0}\n    match: {host: {exact: [a.example]}}\n',
    );
    const out = join(t.dir, 'policy.compiled');
    await compilePolicyToFile(policy, out);
    const u = new Uint8Array(readFileSync(out));
    const metaLen = Buffer.from(u.buffer, u.byteOffset, 128).readUInt32LE(16);
    const meta = JSON.parse(Buffer.from(u.buffer, u.byteOffset + 128, metaLen).toString('utf8')) as object;
    assert.equal('policyParsed' in meta, false);
    const m = await loadCompiled(out);
    assert.equal(m.policy.rules[0].provenance?.weight, Infinity);
    assert.ok(Object.is(m.policy.rules[0].provenance?.zero, -0));
    assert.equal(m.match(flow({ host: 'a.example' })).rule_id, 'r1');
  } finally {
    t.cleanup();
  }
});
