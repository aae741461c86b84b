/**
 * @module showcase/fleet
 * The showcase's demo fleet: replay boxes in this process, each the pair `chokepoint enforce
 * --replay CAPTURE --controller …` runs — a {@link FleetAgent} (bootstrap, long-poll, signature and
 * hash checks, last-known-good state, status reports over HTTP with its own node token) applying
 * bundles to a {@link ReplayBox} (the box's decision core fed the capture in a loop). No root, no
 * child process; `stop` ends every box and its agent.
 */
import { join } from 'node:path';
import { EnforceMetrics } from '../enforce/metrics.js';
import { FleetAgent } from '../fleet/agent.js';
import { ReplayBox } from '../fleet/replay.js';

export interface BoxSpec {
  node: string;
  labels: Record<string, string>;
  token: string;
}

export interface DemoFleet {
  boxes: { node: string; agent: FleetAgent; box: ReplayBox }[];
  stop(): Promise<void>;
}

export async function startFleet(o: {
  controller: string;
  rootPublicPem: string;
  capture: string;
  stateDir: string;
  specs: BoxSpec[];
  /** Packets per second per box. */
  pps: number;
  /** Status report interval when no rollout asks for more (ms). */
  statusEveryMs: number;
  log: (m: string) => void;
}): Promise<DemoFleet> {
  const boxes: DemoFleet['boxes'] = [];
  const running: Promise<void>[] = [];
  const metrics: EnforceMetrics[] = [];
  const fleet: DemoFleet = {
    boxes,
    async stop() {
      for (const b of boxes) b.box.stop();
      await Promise.all(running);
      await Promise.all(boxes.map((b) => b.agent.stop()));
      for (const m of metrics) m.close();
    },
  };
  try {
    for (const s of o.specs) {
      const m = new EnforceMetrics();
      metrics.push(m);
      const agent = new FleetAgent({
        controller: o.controller,
        token: s.token,
        rootPublicPem: o.rootPublicPem,
        node: s.node,
        labels: s.labels,
        stateDir: join(o.stateDir, s.node),
        waitS: 30,
        statusEveryMs: o.statusEveryMs,
        retryMinMs: 200,
        retryMaxMs: 2000,
        bootstrapTimeoutMs: 30_000,
        registry: m.registry,
        log: (msg) => o.log(`${s.node}: ${msg}`),
      });
      const box = await ReplayBox.start(await agent.bootstrap(), {
        capture: o.capture,
        pps: o.pps,
        loops: Infinity,
        eve: null,
        node: s.node,
        metrics: m,
        log: (msg) => o.log(`${s.node}: ${msg}`),
      });
      boxes.push({ node: s.node, agent, box });
      agent.run(box);
      running.push(box.run());
    }
  } catch (e) {
    await fleet.stop();
    throw e;
  }
  return fleet;
}
