/**
 * @module policy/property.test
 * Property test: the compiled matcher (hash table, automaton, tries, stamps) agrees with a naive
 * reference written plainly here from the documented semantics, on random policies and flows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compilePolicy } from './compile.js';
import { INSPECTION_DEFAULTS } from './load.js';
import type { Action, MatchInput, Policy, PortRange, Rule, RuleMatch } from './types.js';

// ---------------------------------------------------------------- naive reference

function labels(n: string): number {
  return n.split('.').length;
}

function v4(ip: string): number | null {
  let s = ip.toLowerCase();
  if (s.startsWith('::ffff:')) s = s.slice(7);
  const p = s.split('.');
  if (p.length !== 4) return null;
  return p.reduce((a, x) => a * 256 + Number(x), 0);
}

function inCidr(ip: string, cidr: string): number {
  const [net, lenText] = cidr.split('/');
  const len = Number(lenText);
  const a = v4(ip);
  const b = v4(net);
  if (a === null || b === null) return -1;
  const bitsA = a.toString(2).padStart(32, '0');
  const bitsB = b.toString(2).padStart(32, '0');
  return bitsA.slice(0, len) === bitsB.slice(0, len) ? len : -1;
}

function naive(p: Policy, input: MatchInput): string | null {
  const literal = p.names.trailing_dot === 'literal';
  const raw = (input.raw_host ?? input.host ?? '').toLowerCase();
  let name: string | null = null;
  if (input.host !== null) {
    name = literal ? raw : input.host.toLowerCase();
    if (!literal && name.endsWith('.')) name = name.slice(0, -1);
  }
  const within = (n: string, parent: string) => n === parent || n.endsWith('.' + parent);
  const prot =
    (name !== null &&
      (p.protected.exact.includes(name) || p.protected.suffix.some((s) => within(name!, s)))) ||
    p.protected.cidr.some((c) => inCidr(input.dest_ip, c) >= 0 || inCidr(input.src_ip, c) >= 0);
  let best: { rule: Rule; key: number[] } | null = null;
  let skipped = false;
  for (const r of p.rules) {
    const m = r.match;
    let hostSpec = 0;
    if (m.host) {
      if (name === null) continue;
      const specs: number[] = [];
      for (const n of m.host.exact) if (name === n) specs.push(labels(n) * 4 + 3);
      for (const n of m.host.suffix) if (within(name, n)) specs.push(labels(n) * 4 + 1);
      for (const n of m.host.subdomains) if (name.endsWith('.' + n)) specs.push(labels(n) * 4 + 2);
      for (const s of m.host.substring) if (raw.includes(s)) specs.push(1);
      for (const s of m.host.endswith) if (raw.endsWith(s)) specs.push(1);
      if (specs.length === 0) continue;
      hostSpec = Math.max(...specs);
    }
    let dst = 0;
    if (m.dest_ip) {
      const lens = m.dest_ip.map((c) => inCidr(input.dest_ip, c)).filter((x) => x >= 0);
      if (lens.length === 0) continue;
      dst = Math.max(...lens) + 1;
    }
    let src = 0;
    if (m.src_ip) {
      const lens = m.src_ip.map((c) => inCidr(input.src_ip, c)).filter((x) => x >= 0);
      if (lens.length === 0) continue;
      src = Math.max(...lens) + 1;
    }
    let other = 0;
    if (m.proto) {
      if (m.proto !== input.proto) continue;
      other++;
    }
    if (m.dest_port) {
      if (!m.dest_port.some((x) => input.dest_port >= x.from && input.dest_port <= x.to)) continue;
      other++;
    }
    if ((r.action === 'block' || r.action === 'throttle') && !r.protected_override && prot) {
      skipped = true;
      continue;
    }
    const key = [r.priority, hostSpec, dst, src, other, -r.order];
    const better = (a: number[], b: number[]) => {
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] > b[i];
      return false;
    };
    if (!best || better(key, best.key)) best = { rule: r, key };
  }
  if (best) return best.rule.id;
  if (skipped || ((p.default.action === 'block' || p.default.action === 'throttle') && prot))
    return '$protected';
  return null;
}

// ---------------------------------------------------------------- generators

const LABELS = ['a', 'b', 'ab', 'ba', 'c', 'co', 't'];
const label = fc.constantFrom(...LABELS);
const nameArb = fc.array(label, { minLength: 1, maxLength: 3 }).map((l) => l.join('.'));
const patternArb = fc
  .array(fc.constantFrom('a', 'b', '.', 'c', 'o', 't'), { minLength: 1, maxLength: 4 })
  .map((l) => l.join(''));
const hostArb = fc
  .tuple(
    fc.array(label, { minLength: 1, maxLength: 4 }),
    fc.boolean(),
    fc.boolean(),
    fc.constantFrom('', '', 'x', 'q.'),
  )
  .map(([l, upper, dot, pre]) => {
    let h = pre + l.join('.');
    if (upper) h = h.replace(/a/g, 'A');
    return dot ? h + '.' : h;
  });
const ipArb = fc
  .tuple(
    fc.constantFrom(10, 11),
    fc.integer({ min: 0, max: 3 }),
    fc.integer({ min: 0, max: 3 }),
    fc.integer({ min: 0, max: 255 }),
  )
  .map((x) => x.join('.'));
const cidrArb = fc.tuple(ipArb, fc.integer({ min: 0, max: 32 })).map(([ip, len]) => {
  const a = v4(ip)!;
  const m = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  const n = (a & m) >>> 0;
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${len}`;
});
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { freq: 2, nil: null });

const matchArb: fc.Arbitrary<RuleMatch> = fc
  .record({
    host: opt(
      fc.record({
        exact: fc.array(nameArb, { maxLength: 3 }),
        suffix: fc.array(nameArb, { maxLength: 3 }),
        subdomains: fc.array(nameArb, { maxLength: 2 }),
        substring: fc.array(patternArb, { maxLength: 1 }),
        endswith: fc.array(patternArb, { maxLength: 1 }),
      }),
    ),
    dest_ip: opt(fc.array(cidrArb, { minLength: 1, maxLength: 3 })),
    src_ip: fc.option(fc.array(cidrArb, { minLength: 1, maxLength: 2 }), { freq: 5, nil: null }),
    dest_port: fc.option(
      fc.constantFrom<PortRange[]>(
        [{ from: 443, to: 443 }],
        [
          { from: 80, to: 90 },
          { from: 8443, to: 8443 },
        ],
      ),
      { freq: 4, nil: null },
    ),
    proto: fc.option(fc.constantFrom('TCP' as const, 'UDP' as const), { freq: 4, nil: null }),
  })
  .map((m) => ({
    ...m,
    app_proto: null,
    alpn: null,
    ja4: null,
    quic_version: null,
    ech: null,
    payload_len: null,
    payload: null,
    except_dest_ip: null,
  }));

const ruleArb = fc.record({
  action: fc.constantFrom<Action>('allow', 'log', 'block', 'throttle'),
  priority: fc.constantFrom(0, 0, 0, 1, -1),
  match: matchArb,
  override: fc.boolean(),
});

const policyArb = fc
  .record({
    rules: fc.array(ruleArb, { minLength: 0, maxLength: 8 }),
    literal: fc.boolean(),
    def: fc.constantFrom<Action>('allow', 'log', 'block'),
    pexact: fc.array(nameArb, { maxLength: 2 }),
    psuffix: fc.array(nameArb, { maxLength: 1 }),
    pcidr: fc.array(cidrArb, { maxLength: 1 }),
  })
  .map(({ rules, literal, def, pexact, psuffix, pcidr }) => {
    const p: Policy = {
      file: null,
      version: 1,
      name: null,
      description: null,
      default: def === 'block' ? { action: 'block', method: 'rst' } : { action: def },
      names: { trailing_dot: literal ? 'literal' : 'ignore' },
      inspection: INSPECTION_DEFAULTS.normal,
      protected: { exact: pexact, suffix: psuffix, cidr: pcidr },
      provenance: null,
      rules: rules.map((r, i): Rule => ({
        id: `r${i}`,
        order: i,
        action: r.action,
        ...(r.action === 'throttle' ? { rate_bps: 128000, burst_bytes: 16000 } : {}),
        ...(r.action === 'block' ? { method: 'rst' as const } : {}),
        priority: r.priority,
        enabled: true,
        expires: null,
        tags: [],
        description: null,
        match: r.match,
        provenance: null,
        protected_override:
          r.override && (r.action === 'block' || r.action === 'throttle') ? { reason: 'test' } : null,
        pos: null,
        lists: [],
      })),
    };
    return p;
  });

const inputArb = fc.record({
  host: fc.option(hostArb, { freq: 6, nil: null }),
  dest_ip: fc.oneof(
    ipArb,
    ipArb.map((x) => `::ffff:${x}`),
  ),
  src_ip: ipArb,
  dest_port: fc.constantFrom(443, 80, 85, 8443, 53),
  proto: fc.constantFrom('TCP' as const, 'UDP' as const),
});

test('compiled matcher agrees with the naive reference (random policies and flows)', () => {
  fc.assert(
    fc.property(policyArb, fc.array(inputArb, { minLength: 1, maxLength: 30 }), (p, inputs) => {
      const c = compilePolicy(p);
      for (const i of inputs) {
        const input: MatchInput = { ...i, app_proto: 'tls' };
        const got = c.match(input).rule_id;
        const want = naive(p, input);
        assert.equal(
          got,
          want,
          `host=${String(i.host)} dst=${i.dest_ip} src=${i.src_ip} port=${i.dest_port} ${i.proto}`,
        );
      }
    }),
    { numRuns: 600 },
  );
});

test('the automaton agrees with includes/endsWith on random patterns and names', () => {
  fc.assert(
    fc.property(
      fc.array(patternArb, { minLength: 1, maxLength: 6 }),
      fc.array(fc.stringMatching(/^[a-cot.]{0,12}$/), { maxLength: 20 }),
      (pats, names) => {
        const rules: Rule[] = pats.map((pt, i) => ({
          id: `p${i}`,
          order: i,
          action: 'log',
          priority: i,
          enabled: true,
          expires: null,
          tags: [],
          description: null,
          match: {
            host: {
              exact: [],
              suffix: [],
              subdomains: [],
              substring: i % 2 ? [pt] : [],
              endswith: i % 2 ? [] : [pt],
            },
            dest_ip: null,
            src_ip: null,
            dest_port: null,
            proto: null,
            app_proto: null,
            alpn: null,
            ja4: null,
            quic_version: null,
            ech: null,
            payload_len: null,
            payload: null,
            except_dest_ip: null,
          },
          provenance: null,
          protected_override: null,
          pos: null,
          lists: [],
        }));
        const p: Policy = {
          file: null,
          version: 1,
          name: null,
          description: null,
          default: { action: 'allow' },
          names: { trailing_dot: 'ignore' },
          inspection: INSPECTION_DEFAULTS.normal,
          protected: { exact: [], suffix: [], cidr: [] },
          provenance: null,
          rules,
        };
        const c = compilePolicy(p);
        for (const n of names) {
          // highest priority = highest index among matching patterns
          let want: string | null = null;
          pats.forEach((pt, i) => {
            if (i % 2 ? n.includes(pt) : n.endsWith(pt)) want = `p${i}`;
          });
          assert.equal(
            c.match({
              host: n,
              proto: 'TCP',
              src_ip: '1.1.1.1',
              dest_ip: '2.2.2.2',
              dest_port: 1,
              app_proto: null,
            }).rule_id,
            want,
            n,
          );
        }
      },
    ),
    { numRuns: 400 },
  );
});
