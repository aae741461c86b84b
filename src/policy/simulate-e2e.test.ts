/**
 * @module policy/simulate-e2e.test
 * End to end on a capture made for the purpose with `chokepoint gen` (names drawn from the 2021
 * targets and collateral): `chokepoint simulate` with the tspu-2021 profiles, against a plain-string
 * expectation of each flow's verdict; the baseline diff; `chokepoint lint --reference CAPTURE`.
 * The expectation is computed from the generator's ground truth (`gen --truth`: protocol, name),
 * joined to each record by its 5-tuple — never from the names the tool itself put in its records.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, runCli } from './clitest.js';
import { tempDir } from './testutil.js';
import { readEveOutput } from '../testutil/schema.js';
import { ipBytes } from '../testutil/net.js';

const NAMES = [
  't.co',
  'twitter.com',
  'api.twitter.com',
  'throttletwitter.com',
  'pbs.twimg.com',
  'twimg.com',
  'microsoft.com',
  'reddit.com',
  'example.org',
  'rt.com',
];
const P1 = join(repoRoot(), 'profiles', 'tspu-2021-03-10.yaml');
const P2 = join(repoRoot(), 'profiles', 'tspu-2021-04.yaml');

interface Rec {
  event_type: string;
  proto: string;
  src_ip: string;
  src_port: number;
  dest_ip: string;
  dest_port: number;
  app_proto: string | null;
  host: string | null;
  policy: { rule_id: string | null; action: string };
}

/** One row of `chokepoint gen --truth`: what the generator put on the wire. */
interface Truth {
  proto: string;
  app_proto: string;
  host: string | null;
  scenario: string;
}

const flowKey = (proto: string, sip: string, sport: number | string, dip: string, dport: number | string) =>
  `${proto}|${Buffer.from(ipBytes(sip)).toString('hex')}|${sport}|${Buffer.from(ipBytes(dip)).toString('hex')}|${dport}`;

/** The ground-truth row of each flow, by 5-tuple. */
let truth = new Map<string, Truth>();

/** The ground truth of a record's flow (every record must have one). */
function truthOf(r: Rec): Truth {
  const t = truth.get(flowKey(r.proto, r.src_ip, r.src_port, r.dest_ip, r.dest_port));
  assert.ok(t, `no ground-truth flow for ${r.proto} ${r.src_ip}:${r.src_port} → ${r.dest_ip}:${r.dest_port}`);
  return t;
}

/** The documented 2021-03-10 rules, written as plain string tests on the generated flow. */
function expect0310(t: Truth): string | null {
  if (t.proto !== 'TCP' || t.app_proto !== 'tls' || !t.host) return null;
  const n = t.host.toLowerCase();
  if (n.endsWith('.twimg.com')) return 'twimg-subdomains';
  if (n.includes('t.co')) return 'tco-substring';
  if (n.endsWith('twitter.com')) return 'twitter-endswith';
  return null;
}

function expect04(t: Truth): string | null {
  if (t.proto !== 'TCP' || t.app_proto !== 'tls' || !t.host) return null;
  const n = t.host.toLowerCase();
  if (n === 't.co') return 'tco-exact';
  if (n.endsWith('.twimg.com')) return 'twimg-subdomains';
  if (
    [
      'twitter.com',
      'www.twitter.com',
      'mobile.twitter.com',
      'api.twitter.com',
      'upload.twitter.com',
    ].includes(n)
  )
    return 'twitter-hosts';
  return null;
}

let t: ReturnType<typeof tempDir>;
let cap = '';

before(async () => {
  t = tempDir();
  const names = join(t.dir, 'names.txt');
  writeFileSync(names, NAMES.join('\n') + '\n');
  cap = join(t.dir, 'cap.pcap');
  const tsv = join(t.dir, 'truth.tsv');
  const g = await runCli(
    ['gen', '--out', cap, '--flows', '400', '--seed', '2021', '--names', names, '--tls-share', '0.85'].concat(
      ['--truth', tsv],
    ),
    { timeoutMs: 300_000 },
  );
  assert.equal(g.code, 0, g.stderr);
  const [head, ...rows] = readFileSync(tsv, 'utf8').trim().split('\n');
  assert.equal(head, 'proto\tsrc_ip\tsrc_port\tdest_ip\tdest_port\tapp_proto\thost\tscenario');
  truth = new Map(
    rows.map((l) => {
      const [proto, sip, sport, dip, dport, app_proto, host, scenario] = l.split('\t');
      return [
        flowKey(proto, sip, sport, dip, dport),
        { proto, app_proto, host: host === '-' ? null : host, scenario },
      ];
    }),
  );
  assert.equal(truth.size, 400);
});

after(() => t?.cleanup());

test(
  'simulate: every flow gets the verdict the documented rules give; summary counts agree',
  { timeout: 300_000 },
  async () => {
    const r = await runCli(['simulate', '--policy', P1, cap], { timeoutMs: 300_000 });
    assert.equal(r.code, 0, r.stderr);
    // every line passes Suricata's EVE schema and ours, and reads back as a flow record
    const out = readEveOutput(r.stdout);
    const summary = out.others.get('simulate_summary') as unknown as {
      flows: number;
      by_rule: { rule_id: string | null; action: string; flows: number; names: { name: string }[] }[];
      throttle: { rule_id: string; flows: number; estimated_s: number }[];
    };
    assert.equal(out.others.size, 1);
    const recs = out.records as Rec[];
    assert.equal(summary.flows, recs.length);
    assert.equal(recs.length, truth.size, 'one record per generated flow');
    const want = new Map<string | null, number>();
    let collateral = 0;
    for (const rec of recs) {
      const tr = truthOf(rec);
      const e = expect0310(tr);
      assert.equal(rec.policy.rule_id, e, `${tr.scenario} ${tr.host}`);
      assert.equal(rec.policy.action, e ? 'throttle' : 'allow');
      want.set(e, (want.get(e) ?? 0) + 1);
      if (e === 'tco-substring' && tr.host !== 't.co') collateral++;
    }
    assert.ok(collateral > 0, 'the capture has collateral flows (microsoft.com, reddit.com, rt.com)');
    for (const [rule, n] of want)
      assert.equal(summary.by_rule.find((b) => b.rule_id === rule)!.flows, n, String(rule));
    const sub = summary.by_rule.find((b) => b.rule_id === 'tco-substring')!;
    assert.ok(
      sub.names.some((n) => n.name === 'microsoft.com') && sub.names.some((n) => n.name === 'reddit.com'),
    );
    assert.ok(summary.throttle.find((x) => x.rule_id === 'tco-substring')!.estimated_s > 0);
  },
);

test(
  'simulate --baseline: the diff lists exactly the flows whose verdict changes, with names',
  { timeout: 300_000 },
  async () => {
    const r = await runCli(['simulate', '--policy', P2, '--baseline', P1, cap], { timeoutMs: 300_000 });
    assert.equal(r.code, 0, r.stderr);
    const out = readEveOutput(r.stdout);
    const lines = out.records as Rec[];
    const summary = out.others.get('simulate_summary') as unknown as {
      diff: {
        changed: number;
        groups: {
          from: { rule_id: string | null };
          to: { rule_id: string | null };
          flows: number;
          names: { name: string; flows: number }[];
        }[];
      };
    };
    const changes = new Map<string, Map<string, number>>();
    let changed = 0;
    assert.equal(lines.length, truth.size, 'one record per generated flow');
    for (const rec of lines) {
      const tr = truthOf(rec);
      const a = expect0310(tr);
      const b = expect04(tr);
      assert.equal(rec.policy.rule_id, b, `${tr.scenario} ${tr.host}`);
      if (a === b) continue;
      changed++;
      const k = `${a}>${b}`;
      const m = changes.get(k) ?? new Map<string, number>();
      m.set(tr.host ?? '', (m.get(tr.host ?? '') ?? 0) + 1);
      changes.set(k, m);
    }
    assert.equal(summary.diff.changed, changed);
    assert.equal(summary.diff.groups.length, changes.size);
    for (const g of summary.diff.groups) {
      const m = changes.get(`${g.from.rule_id}>${g.to.rule_id}`)!;
      assert.ok(m, `${g.from.rule_id}>${g.to.rule_id}`);
      assert.equal(
        g.flows,
        [...m.values()].reduce((x, y) => x + y, 0),
      );
      assert.deepEqual(new Set(g.names.map((n) => n.name)), new Set(m.keys()));
    }
    // the fix releases the collateral
    const released = summary.diff.groups.find(
      (g) => g.from.rule_id === 'tco-substring' && g.to.rule_id === null,
    )!;
    assert.ok(released.names.some((n) => n.name === 'microsoft.com'));

    const tbl = await runCli(['simulate', '--policy', P2, '--baseline', P1, '--format', 'table', cap], {
      timeoutMs: 300_000,
    });
    assert.equal(tbl.code, 0);
    assert.match(tbl.stdout, /tco-substring throttle → \(default\) allow: \d+ flow\(s\)/);
  },
);

test(
  'lint --reference CAPTURE: blast radius from the names seen in flows',
  { timeout: 300_000 },
  async () => {
    const r = await runCli(['lint', P1, '--reference', cap, '--format', 'json'], { timeoutMs: 300_000 });
    assert.equal(r.code, 1, r.stderr);
    const j = JSON.parse(r.stdout) as { findings: { code: string; examples: string[] }[] };
    const sub = j.findings.find((f) => f.code === 'emulation-substring')!;
    assert.ok(
      sub.examples.includes('microsoft.com') &&
        sub.examples.includes('reddit.com') &&
        sub.examples.includes('rt.com'),
      sub.examples.join(','),
    );
    assert.ok(!sub.examples.includes('example.org'));
  },
);

test('simulate: usage errors and unreadable inputs', async () => {
  assert.equal((await runCli(['simulate', cap])).code, 2);
  assert.equal((await runCli(['simulate', '--policy', P1])).code, 2);
  const bad = await runCli(['simulate', '--policy', join(t.dir, 'missing.yaml'), cap]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /missing\.yaml/);
  const nocap = await runCli(['simulate', '--policy', P1, join(t.dir, 'missing.pcap')]);
  assert.equal(nocap.code, 1);
});

test(
  'flow logs as input: simulate and lint read analyze output (EVE, and the version-1 shape) as they read the capture',
  { timeout: 300_000 },
  async () => {
    const a = await runCli(['analyze', cap], { timeoutMs: 300_000 });
    assert.equal(a.code, 0, a.stderr);
    const log = join(t.dir, 'flows.eve.json');
    writeFileSync(log, a.stdout);
    const old = await runCli(['analyze', '--eve-compat', cap], { timeoutMs: 300_000 });
    const logV1 = join(t.dir, 'flows.v1.json');
    writeFileSync(logV1, old.stdout);
    const fromCap = await runCli(['simulate', '--policy', P1, cap], { timeoutMs: 300_000 });
    // the summary's timestamp is the time it was written; everything else is the same
    const strip = (s: string) => s.replace(/"timestamp":"[^"]*","event_type":"simulate_summary"/, '');
    const fromLog = await runCli(['simulate', '--policy', P1, log], { timeoutMs: 300_000 });
    assert.equal(fromLog.code, 0, fromLog.stderr);
    assert.equal(strip(fromLog.stdout), strip(fromCap.stdout));
    // version 1 has no flow end, state, end reason or first payload: the rest, verdicts and summary
    // included, agree
    const fromV1 = await runCli(['simulate', '--policy', P1, logV1], { timeoutMs: 300_000 });
    assert.equal(fromV1.code, 0, fromV1.stderr);
    const [x, y] = [readEveOutput(fromV1.stdout), readEveOutput(fromCap.stdout)];
    const core = (r: object) => ({
      ...r,
      end: undefined,
      state: undefined,
      reason: undefined,
      first_payload: undefined,
    });
    assert.deepEqual(x.records.map(core), y.records.map(core));
    assert.deepEqual(x.others, y.others);
    const lintCap = await runCli(['lint', P1, '--reference', cap, '--format', 'json', '--now', '2026-01-01']);
    const lintLog = await runCli(['lint', P1, '--reference', log, '--format', 'json', '--now', '2026-01-01']);
    assert.equal(lintLog.code, lintCap.code, lintLog.stderr);
    // the same findings; only the reference's source name differs
    const findings = (s: string, src: string) =>
      (JSON.parse(s.split(src).join('REF')) as { findings: unknown[] }).findings;
    assert.deepEqual(findings(lintLog.stdout, log), findings(lintCap.stdout, cap));
    // a bad line rejects the log whole, naming file:line and the field; nothing of it is used
    const lines = a.stdout.split('\n');
    lines[2] = lines[2].replace('"pkts_toserver":', '"pkts_toserver":-');
    const badLog = join(t.dir, 'bad.eve.json');
    writeFileSync(badLog, lines.join('\n'));
    const b = await runCli(['simulate', '--policy', P1, badLog], { timeoutMs: 300_000 });
    assert.equal(b.code, 1);
    assert.match(b.stderr, /bad\.eve\.json:3: flow\.pkts_toserver: expected a non-negative integer/);
    const out = readEveOutput(b.stdout);
    assert.equal(out.records.length, 0);
    assert.equal((out.others.get('simulate_summary') as { flows: number }).flows, 0);
  },
);

test(
  'simulate with a compiled registry file (registry compile): the same verdicts; a stale one is refused',
  { timeout: 300_000 },
  async () => {
    const pol = join(t.dir, 'p1.yaml');
    writeFileSync(pol, readFileSync(P1));
    const bin = join(t.dir, 'p1.compiled');
    const c = await runCli(['registry', 'compile', pol, '--out', bin]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stderr, /compiled .*p1\.yaml \(3 rule\(s\).* into .*p1\.compiled/);
    for (const args of [
      ['--policy', bin],
      ['--policy', pol, '--compiled', bin],
    ]) {
      const r = await runCli(['simulate', ...args, cap], { timeoutMs: 300_000 });
      assert.equal(r.code, 0, r.stderr);
      const recs = readEveOutput(r.stdout).records as Rec[];
      assert.equal(recs.length, truth.size);
      for (const rec of recs) assert.equal(rec.policy.rule_id, expect0310(truthOf(rec)), args.join(' '));
    }
    writeFileSync(pol, readFileSync(P1, 'utf8').replace('128kbit', '64kbit'));
    const r = await runCli(['simulate', '--policy', pol, '--compiled', bin, cap]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /p1\.compiled: compiled from a different policy text than .*p1\.yaml/);
    assert.equal(r.stdout, '');
  },
);
