/**
 * @module fleet/shadow.test
 * Shadow bundles end to end with a real in-process controller (fleet/testing/rig): the controller
 * signs a bundle carrying a shadow version (controller/bundles signBundle); a shadow file changed in
 * the controller's storage is refused like an active one; a good one is applied as one version pair
 * and decided on real ClientHellos by the real decision core (Enforcer with both compiled policies);
 * the box's status report carries `traffic` with the shadow's changed verdicts, and the controller's
 * node record (GET /v1/nodes) holds it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import client from 'prom-client';
import { signBundle } from '../controller/bundles.js';
import { compilePair, versionId, type PolicyVersion } from '../enforce/policy-source.js';
import { Enforcer } from '../enforce/enforcer.js';
import { newCounters } from '../enforce/counters.js';
import { captureClientHello } from '../enforce/testing/ch-client.js';
import { Conv } from '../enforce/testing/packets.js';
import { mergeTraffic, type DaemonTraffic } from '../enforce/traffic.js';
import { FleetAgent, type PolicyTarget } from './agent.js';
import { agentOptions, expectRefusal, startRig, tamperNewFile, TestAgents } from './testing/rig.js';

/** A reload target running the real decision core on the applied (active, shadow) pair. */
class EnforcerTarget implements PolicyTarget {
  enf: Enforcer | null = null;
  version!: PolicyVersion;
  since = 0;
  readonly applied: string[] = [];
  private id = 0;
  private port = 30000;
  async apply(v: PolicyVersion, why: string): Promise<boolean> {
    const { policy, shadow } = await compilePair(v);
    if (!this.enf)
      this.enf = new Enforcer({
        queue: 0,
        sink: { verdict: () => undefined },
        policy,
        shadow,
        version: v.id,
        markMask: 0x00ff0000,
        throttle: 'userspace',
        counters: newCounters(),
        rstToServer: false,
      });
    else this.enf.setPolicy(policy, v.id, shadow);
    this.version = v;
    this.since = Date.now();
    this.applied.push(why);
    return true;
  }
  traffic(): DaemonTraffic {
    const v = this.version;
    return {
      since: new Date(this.since).toISOString(),
      id: v.id,
      active_id: versionId(v.files),
      shadow_id: v.shadow?.id ?? null,
      ...mergeTraffic([this.enf!.traffic.snapshot()], 10, Boolean(v.shadow)),
      fail_open: 0,
      worker_restarts: 0,
    };
  }
  flow(hello: Buffer): void {
    const c = new Conv(this.port++);
    for (const b of [c.syn(), c.synAck(), c.ack(), c.c(hello)])
      this.enf!.handle({ id: ++this.id, mark: 0, hwProtocol: 0x0800, hook: 2, payload: b }, Date.now());
  }
}

test('a shadow bundle: tampered shadow file refused; good one evaluated beside the active version; traffic in the node record', async () => {
  const rig = await startRig();
  const live = new TestAgents();
  const state = mkdtempSync(join(tmpdir(), 'cp-fleet-shadow-'));
  const logs: string[] = [];
  const agent = live.add(
    new FleetAgent(
      agentOptions(rig, {
        node: 'box-s',
        stateDir: state,
        registry: new client.Registry(),
        log: (m) => logs.push(m),
      }),
    ),
  );
  try {
    const b1 = await rig.publish('blocked.example');
    const vA = Number((await rig.db.get<{ policy_version: number }>('SELECT policy_version FROM bundles WHERE version = $1', [b1]))!.policy_version); // prettier-ignore
    const vB = await rig.approve('reddit.com'); // blocks blocked.example and reddit.com
    const target = new EnforcerTarget();
    await target.apply(await agent.bootstrap(), 'start');
    agent.run(target);
    await live.next(agent, 'reported');

    // a shadow file changed in the controller's storage: refused whole, the box stays on b1
    const restore = await tamperNewFile(rig, vA, vB);
    let b2 = 0;
    // kind 'publish': a 'shadow' bundle is a rollout's per-node assignment (not the fleet bundle); here the fleet bundle itself carries the shadow
    const r = await expectRefusal(live, agent, target, 'file', b1, async () => {
      b2 = (await signBundle(rig.run.ctx, vA, 'publish', 'test', { shadow: vB })).version;
    });
    assert.equal(r.bundle, b2);
    assert.match(r.message, /shadow .*content hash does not match/);
    await restore();

    // the good shadow bundle: applied as one version pair
    const activated = live.next<number>(agent, 'activated');
    const sb = await signBundle(rig.run.ctx, vA, 'publish', 'test', {
      shadow: vB,
      rollout: { id: 7, stage: 0, report_every_s: 0.5 },
    });
    assert.deepEqual(sb.manifest.rollout, { id: 7, stage: 0, report_every_s: 0.5 });
    assert.equal(sb.manifest.shadow?.policy_version, vB);
    assert.equal(await activated, b2 + 1);
    assert.ok(target.version.shadow, 'the applied version carries the shadow');
    assert.notEqual(target.version.id, versionId(target.version.files), 'the pair id covers the shadow');

    const hello = async (n: string) => captureClientHello(n);
    const rd = await hello('reddit.com');
    const wrd = await hello('www.reddit.com');
    for (const h of [rd, rd, wrd, await hello('blocked.example'), await hello('fine.example')])
      target.flow(h);
    const reported = live.next<{ traffic: Record<string, unknown> | null }>(
      agent,
      'reported',
      (x) => (x.traffic as { flows?: number } | null)?.flows === 5,
    );
    // no explicit report: the bundle's rollout asks for one every 0.5 s (--status-every is 60 s here)
    await reported;
    const nodes = await rig.api('root', 'GET', '/v1/nodes');
    const n = nodes.json.nodes.find((x: { name: string }) => x.name === 'box-s');
    const t = n.traffic;
    assert.equal(t.policy_version, vA);
    assert.equal(t.shadow_version, vB);
    assert.equal(t.flows, 5);
    assert.deepEqual(t.by_action, { allow: 4, log: 0, block: 1, throttle: 0 });
    assert.equal(t.pattern_flows, 0, 'suffix rules are not patterns');
    assert.equal(t.fail_open, 0);
    assert.equal(t.report_every_s, 0.5);
    assert.ok(!Number.isNaN(Date.parse(t.since)));
    assert.deepEqual(t.shadow.by_action, { allow: 1, log: 0, block: 4, throttle: 0 });
    assert.equal(t.shadow.changed.length, 1);
    const c = t.shadow.changed[0];
    assert.equal(typeof c.rule_id, 'string');
    assert.equal(c.from, 'allow');
    assert.equal(c.to, 'block');
    assert.equal(c.flows, 3);
    assert.deepEqual(c.top, [
      { name: 'reddit.com', count: 2 },
      { name: 'www.reddit.com', count: 1 },
    ]);
  } finally {
    await live.close();
    await rig.close();
    rmSync(state, { recursive: true, force: true });
  }
});
