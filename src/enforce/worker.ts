/**
 * @module enforce/worker
 * One worker thread per NFQUEUE. It binds the queue, loads the policy, and runs the receive loop:
 * drain the socket (non-blocking recv, up to a batch), run hold timeouts, yield to its own event loop
 * (so reload / stop messages get through), then block in poll(2) for at most 20 ms. Blocking here
 * never stalls the main thread (signals, /metrics, the EVE writer live there).
 *
 * Messages to the parent: ready | fatal {code,message} | eve {lines} | rules {counts} |
 * class-req {rate,burst} | reloaded {ok,error?}. From the parent: reload | stop | class.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { NF_ACCEPT, NfQueue } from './nfq.js';
import { Enforcer } from './enforcer.js';
import { loadPolicy } from './policy-source.js';
import { C } from './counters.js';
import type { VerdictEvent } from './types.js';
import { hostname } from 'node:os';
import { verdictToEve } from '../output/eve.js';

export interface WorkerInit {
  queue: number;
  policyPath: string;
  markMask: number;
  throttle: 'kernel' | 'userspace';
  counters: Float64Array;
  maxlen: number;
  holdPackets: number;
  eve: boolean;
  /** Sensor name for the EVE log (`host`, flow_id prefix); default os.hostname(). */
  node?: string;
}

type ParentMsg =
  { type: 'reload' } | { type: 'stop' } | { type: 'class'; rate: number; burst: number; id: number };

const init = workerData as WorkerInit;
const port = parentPort!;
const counters = init.counters;

let stopping = false;
const eveBuf: string[] = [];
const eveNode = init.node ?? hostname();
const ruleCounts = new Map<string, number>();
const classes = new Map<string, number>();
const requested = new Set<string>();

function onVerdict(ev: VerdictEvent): void {
  const key = `${ev.policy.action}\u0000${ev.policy.rule_id ?? ''}`;
  ruleCounts.set(key, (ruleCounts.get(key) ?? 0) + 1);
  if (init.eve)
    eveBuf.push(JSON.stringify(verdictToEve(ev, ev.verdict, { node: eveNode, queue: init.queue })));
}

function flush(): void {
  if (eveBuf.length) {
    port.postMessage({ type: 'eve', lines: eveBuf.splice(0) });
  }
  if (ruleCounts.size) {
    port.postMessage({ type: 'rules', counts: [...ruleCounts] });
    ruleCounts.clear();
  }
}

async function main(): Promise<void> {
  let q: NfQueue;
  let enf: Enforcer;
  try {
    const policy = await loadPolicy(init.policyPath);
    q = new NfQueue({ queue: init.queue, maxlen: init.maxlen });
    enf = new Enforcer({
      queue: init.queue,
      sink: q,
      policy,
      markMask: init.markMask,
      throttle: init.throttle,
      counters,
      holdPackets: init.holdPackets,
      onVerdict,
      classFor: (rate, burst) => {
        const key = `${rate}:${burst}`;
        const id = classes.get(key);
        if (id !== undefined) return id;
        if (!requested.has(key)) {
          requested.add(key);
          port.postMessage({ type: 'class-req', rate, burst });
        }
        return -1;
      },
    });
  } catch (e) {
    const err = e as { code?: string; message?: string };
    port.postMessage({ type: 'fatal', code: err.code ?? 'ERR_WORKER', message: err.message ?? String(e) });
    return;
  }
  port.on('message', (m: ParentMsg) => {
    if (m.type === 'stop') stopping = true;
    else if (m.type === 'class') {
      classes.set(`${m.rate}:${m.burst}`, m.id);
      enf.classReady(m.rate, m.burst, m.id, Date.now());
    } else if (m.type === 'reload') {
      loadPolicy(init.policyPath).then(
        (p) => {
          enf.setPolicy(p);
          counters[C.reloads]++;
          port.postMessage({ type: 'reloaded', ok: true });
        },
        (e: Error) => port.postMessage({ type: 'reloaded', ok: false, error: e.message }),
      );
    }
  });
  port.postMessage({ type: 'ready' });
  let lastFlush = Date.now();
  const yieldNow = (): Promise<void> => new Promise((r) => setImmediate(r));
  while (!stopping) {
    let n = 0;
    for (; n < 512; n++) {
      const p = q.receive();
      if (!p) break;
      try {
        enf.handle(p, Date.now());
      } catch (e) {
        // a bug must not stall the wire: let this packet through unmarked (fail open) and go on
        q.verdict(p.id, NF_ACCEPT, 0);
        if (counters[C.errors]++ < 5)
          port.postMessage({ type: 'fatal', code: 'ERR_PACKET', message: String((e as Error).stack ?? e) });
      }
    }
    const now = Date.now();
    enf.tick(now);
    counters[C.enobufs] = q.enobufs;
    counters[C.flowsTracked] = enf.engine.table.size;
    if (now - lastFlush >= 100) {
      flush();
      lastFlush = now;
    }
    await yieldNow();
    if (n < 512 && !stopping) q.wait(20);
  }
  flush();
  q.close();
  port.postMessage({ type: 'stopped' });
}

main().catch((e: Error) => {
  port.postMessage({ type: 'fatal', code: 'ERR_WORKER', message: e.stack ?? String(e) });
});
