/**
 * Replay boxes (no root): a capture from the generator, with its ground truth (`gen --truth` rows),
 * replayed in a loop through the box's decision core by a fleet agent against a real in-process
 * controller. A published version reaches the box, and from then on its EVE log shows the new verdict
 * for the flows the ground truth names (flows are found by the truth's server address and port, never
 * by the engine's name), while other named flows stay allowed; loop iterations are new flows; the
 * port shift is a bijection that keeps server ports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PcapWriter } from '../gen/pcap-writer.js';
import { generate, type TruthRow } from '../gen/synth.js';
import { EnforceMetrics } from '../enforce/metrics.js';
import { pairId, readVersion } from '../enforce/policy-source.js';
import { FleetAgent } from './agent.js';
import { ReplayBox, shiftPort } from './replay.js';
import { agentOptions, nextEvent, startRig } from './testing/rig.js';

interface Eve {
  event_type: string;
  src_ip: string;
  src_port: number;
  dest_ip: string;
  dest_port: number;
  chokepoint: { policy?: { action?: string; version?: string } };
}

function capture(dir: string): { path: string; truth: TruthRow[] } {
  const path = join(dir, 'c.pcap');
  const fd = openSync(path, 'w');
  const truth = generate(new PcapWriter(fd), { seed: 11, flows: 40 });
  closeSync(fd);
  return { path, truth };
}

test('port shift: bijective on 1024..65535 per iteration, server ports kept, iteration 0 is the capture', () => {
  assert.equal(shiftPort(443, 5), 443);
  assert.equal(shiftPort(53, 9), 53);
  assert.equal(shiftPort(40000, 0), 40000);
  assert.equal(shiftPort(1024, 1), 1024 + 7919);
  const seen = new Set<number>();
  for (let p = 1024; p < 65536; p++) seen.add(shiftPort(p, 3));
  assert.equal(seen.size, 65536 - 1024);
  for (const p of seen) assert.ok(p >= 1024 && p < 65536);
});

test('replay box in a fleet: a published version is applied and the EVE log shows its verdicts for the truth flows', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cp-replay-'));
  const rig = await startRig();
  const { path, truth } = capture(dir);
  // two plain TLS flows named by the ground truth: one gets blocked, the other stays allowed
  const named = truth.filter((t) => t.scenario === 'tls' && t.host);
  assert.ok(named.length >= 2, 'the capture has plain TLS flows');
  const target = named[0]!;
  const other = named.find((t) => t.host !== target.host && !t.host!.endsWith('.' + target.host))!;
  const lines: Eve[] = [];
  const sink = {
    write(s: string) {
      for (const l of s.split('\n')) if (l) lines.push(JSON.parse(l) as Eve);
      return true;
    },
  };
  const metrics = new EnforceMetrics();
  const agent = new FleetAgent(
    agentOptions(rig, {
      node: 'replay-1',
      labels: { kind: 'replay' },
      stateDir: join(dir, 'state'),
      registry: metrics.registry,
      log: () => undefined,
    }),
  );
  let box: ReplayBox | null = null;
  let running: Promise<void> | null = null;
  try {
    const b1 = await rig.publish('unrelated.example');
    box = await ReplayBox.start(await agent.bootstrap(), {
      capture: path,
      pps: 4000,
      loops: Infinity,
      eve: sink as unknown as NodeJS.WriteStream,
      node: 'replay-1',
      metrics,
      log: () => undefined,
    });
    agent.run(box);
    running = box.run();
    const of = (e: Eve, t: TruthRow) =>
      e.dest_ip === t.dest_ip && e.dest_port === t.dest_port && e.src_ip === t.src_ip;
    // wait (bounded) until the first iteration has decided the target flow under b1: allowed
    const until = async (pred: () => boolean, what: string) => {
      for (let i = 0; i < 400 && !pred(); i++) await new Promise((r) => setTimeout(r, 25));
      assert.ok(pred(), what);
    };
    await until(() => lines.some((e) => of(e, target)), 'the target flow was decided under b1');
    assert.ok(lines.filter((e) => of(e, target)).every((e) => e.chokepoint.policy?.action === 'allow'));
    const activated = nextEvent(agent, 'activated', (v) => v === b1 + 1);
    const b2 = await rig.publish(target.host!);
    await activated;
    const vid = box.activeVersion;
    const after = () => lines.filter((e) => e.chokepoint.policy?.version === vid);
    await until(
      () => after().some((e) => of(e, target)) && after().some((e) => of(e, other)),
      'both truth flows decided again under b2',
    );
    const t2 = after().filter((e) => of(e, target));
    assert.ok(
      t2.every((e) => e.chokepoint.policy?.action === 'block' && e.event_type === 'drop'),
      JSON.stringify(t2[0]),
    );
    assert.ok(
      after()
        .filter((e) => of(e, other))
        .every((e) => e.chokepoint.policy?.action === 'allow'),
    );
    // loops are new flows: the target flow appears with different client ports
    const ports = new Set(lines.filter((e) => of(e, target)).map((e) => e.src_port));
    assert.ok(ports.size >= 2, `new flows per iteration (ports ${[...ports].join(',')})`);
    // the status report and /metrics say so
    const rep = nextEvent<{ active_version: number }>(agent, 'reported', (r) => r.active_version === b2);
    void agent.report();
    await rep;
    const text = await metrics.registry.metrics();
    assert.ok(text.includes(`chokepoint_fleet_bundle_version ${b2}`), text.slice(0, 400));
    assert.match(text, /chokepoint_verdicts_total\{action="block",rule="[^"]+"\} [1-9]/);
  } finally {
    box?.stop();
    await running;
    await agent.stop();
    metrics.close();
    await rig.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('replay box: a shadow version is evaluated, not enforced; traffic() reports both sides and restarts with the pair', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cp-replay-sh-'));
  const { path, truth } = capture(dir);
  // the ground truth's plain-TLS names: the shadow throttles the first one by substring
  const named = truth.filter((t) => t.scenario === 'tls' && t.host);
  const target = named[0]!.host!;
  const pattern = target.slice(1, 6);
  const allowAll = join(dir, 'a.yaml');
  const shadowFile = join(dir, 's.yaml');
  writeFileSync(allowAll, 'default: allow\nrules: []\n');
  writeFileSync(
    shadowFile,
    `rules:\n  - id: sub\n    action: throttle\n    rate: 128kbit\n    match: {host: {substring: ['${pattern}']}}\n`,
  );
  const expected = truth.filter((t) => t.host?.includes(pattern)).length;
  assert.ok(expected >= 1);
  const active = (await readVersion(allowAll)).version;
  const sh = (await readVersion(shadowFile)).version;
  const lines: Eve[] = [];
  const sink = {
    write(s: string) {
      for (const l of s.split('\n')) if (l) lines.push(JSON.parse(l) as Eve);
      return true;
    },
  };
  const box = await ReplayBox.start(active, {
    capture: path,
    pps: 100_000,
    loops: 1,
    eve: sink as unknown as NodeJS.WriteStream,
    log: () => undefined,
  });
  try {
    const before = box.traffic();
    assert.equal(before.shadow, null);
    assert.equal(before.shadow_id, null);
    const pair = { ...active, id: pairId(active.id, sh.id), shadow: sh };
    assert.equal(await box.apply(pair, 'test'), true);
    const t0 = box.traffic();
    assert.equal(t0.active.flows, 0, 'counters restart with the pair');
    assert.ok(Date.parse(t0.since) >= Date.parse(before.since));
    await box.run();
    const t = box.traffic();
    assert.equal(t.id, pair.id);
    assert.equal(t.active_id, active.id);
    assert.equal(t.shadow_id, sh.id);
    // every flow of the single iteration was decided by both sides
    assert.equal(t.active.flows, lines.length);
    assert.equal(t.active.by_action.throttle, 0, 'the shadow is not enforced');
    assert.ok(lines.every((e) => e.chokepoint.policy?.action === 'allow'));
    assert.equal(t.shadow!.flows, t.active.flows);
    // the truth's flows whose name contains the pattern are the shadow's throttles, through the pattern
    assert.equal(t.shadow!.by_action.throttle, expected);
    assert.equal(t.shadow!.pattern_flows, expected);
    const changed = t.shadow!.changed.find((c) => c.rule_id === 'sub' && c.to === 'throttle')!;
    assert.equal(changed.flows, expected);
    assert.ok(
      changed.top.some((n) => n.name === target),
      JSON.stringify(changed.top),
    );
  } finally {
    box.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
