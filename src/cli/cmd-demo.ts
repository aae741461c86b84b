/**
 * @module cli/cmd-demo
 * `chokepoint demo` (what `npm start` runs): generates a small synthetic capture with ground truth in a
 * temporary folder, analyzes it, prints the human summary and how many names match the ground truth,
 * then (when the policy engine is present) shows what the 2021 emulation profile would have done.
 */
import { mkdtempSync, openSync, closeSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PcapWriter } from '../gen/pcap-writer.js';
import { generate } from '../gen/synth.js';
import { analyzeFiles } from '../engine/analyze.js';
import { Summary } from '../output/summary.js';
import type { FlowRecord } from '../record/record.js';

const DEMO_NAMES = [
  'twitter.com',
  't.co',
  'abs.twimg.com',
  'microsoft.com',
  'reddit.com',
  'www.gosuslugi.ru',
  'example.org',
];

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { flows: { type: 'string', default: '400' }, keep: { type: 'boolean' } },
  });
  const dir = mkdtempSync(join(tmpdir(), 'chokepoint-demo-'));
  const file = join(dir, 'demo.pcap');
  const fd = openSync(file, 'w');
  const w = new PcapWriter(fd);
  const truth = generate(w, { seed: 2021, flows: Number(values.flows), names: DEMO_NAMES, sizeScale: 3000 });
  closeSync(fd);
  process.stdout.write(
    `Chokepoint demo: generated ${file}\n  ${w.packets} packets, ${truth.length} flows (TLS incl. split, out-of-order, record-fragmented and post-quantum ClientHellos; QUIC over 1-2 Initial packets; DNS; HTTP; IPv4/IPv6; VLAN)\n\n`,
  );
  const records: FlowRecord[] = [];
  const summary = new Summary();
  const t0 = performance.now();
  const res = await analyzeFiles([file], { onRecord: (r) => (records.push(r), summary.add(r)) });
  const ms = performance.now() - t0;
  process.stdout.write(summary.render(12));
  const key = (p: string, a: string, pa: number, b: string, pb: number) => `${p} ${a} ${pa} ${b} ${pb}`;
  const got = new Map(records.map((r) => [key(r.proto, r.src_ip, r.src_port, r.dest_ip, r.dest_port), r]));
  let right = 0;
  const byScenario = new Map<string, [number, number]>();
  for (const t of truth) {
    const r = got.get(key(t.proto, t.src_ip, t.src_port, t.dest_ip, t.dest_port));
    const ok = !!r && r.host === t.host && r.app_proto === t.app_proto;
    if (ok) right++;
    const s = byScenario.get(t.scenario) ?? [0, 0];
    s[0] += ok ? 1 : 0;
    s[1]++;
    byScenario.set(t.scenario, s);
  }
  process.stdout.write(
    `\nground truth: ${right}/${truth.length} flows named right (${((100 * right) / truth.length).toFixed(1)}%), analysed in ${ms.toFixed(0)} ms\n`,
  );
  for (const [s, [a, b]] of [...byScenario].sort()) process.stdout.write(`  ${s.padEnd(14)} ${a}/${b}\n`);
  await policyDemo(records);
  if (!values.keep) rmSync(dir, { recursive: true, force: true });
  for (const e of res.errors) process.stderr.write(`${e.file}: ${e.message}\n`);
  return res.errors.length || right !== truth.length ? 1 : 0;
}

/** Show the 2021 profiles' verdicts on the demo traffic (first deployed, then after the fix). */
async function policyDemo(records: FlowRecord[]): Promise<void> {
  const here = dirname(fileURLToPath(import.meta.url));
  const profiles = resolve(here, '..', '..', '..', 'profiles');
  let policy: {
    loadPolicyFile(p: string): Promise<unknown>;
    compilePolicy(p: unknown): { match(i: unknown): { rule_id: string | null; action: string } };
  };
  try {
    policy = (await import('../policy/index.js')) as typeof policy;
  } catch {
    return;
  }
  const runs: [string, string][] = [
    ['tspu-2021-03-10.yaml', 'the rules of 10 March 2021, as first deployed'],
    ['tspu-2021-04.yaml', 'the same rules after the April 2021 fixes'],
  ];
  for (const [file, label] of runs) {
    const path = join(profiles, file);
    if (!existsSync(path)) continue;
    const compiled = policy.compilePolicy(await policy.loadPolicyFile(path));
    const hits = new Map<string, Set<string>>();
    for (const r of records) {
      const d = compiled.match({
        ...r,
        raw_host: r.tls?.sni ?? r.host,
        alpn: r.tls?.alpn,
        ja4: r.tls?.ja4,
        quic_version: r.quic?.version ?? null,
        ech: r.tls?.ech,
      });
      if (d.action === 'allow') continue;
      const k = `${d.action} by ${d.rule_id}`;
      if (!hits.has(k)) hits.set(k, new Set());
      if (r.host) hits.get(k)!.add(r.host);
    }
    process.stdout.write(`\nprofiles/${file} (${label}) on this traffic:\n`);
    for (const [k, names] of hits) process.stdout.write(`  ${k}: ${[...names].sort().join(', ')}\n`);
  }
  process.stdout.write(
    `\n→ 'npx chokepoint lint profiles/tspu-2021-03-10.yaml --reference ../shared/corpus/reference/top10k.txt' shows the collateral before it ships.\n`,
  );
}
