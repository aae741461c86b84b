/**
 * @module enforce/worker
 * One worker thread per NFQUEUE. It binds the queue, compiles the policy version it was given (the
 * daemon's acknowledged one: the same bytes every worker has, never the disk), and runs the receive
 * loop: one read that waits up to 20 ms and takes every packet ready (recvmmsg, see enforce/nfq;
 * the verdicts given so far leave first, in one send), the packets it brought through the enforcer,
 * hold timeouts, then the worker's own event loop (so reload / stop messages get through) when the
 * read found nothing or 5 ms have passed since it last turned.
 *
 * Reload is two-phase: `prepare {version}` compiles the version off to the side and answers
 * `prepared {id, ok}`; `commit {id, seq}` swaps it in between two packets, after flushing the EVE
 * lines of the previous version, and answers `committed {id}`; `abort {id}` forgets it.
 * Fault injection for tests: CHOKEPOINT_FAULT_RELOAD="QUEUE:N:fail|exit[,...]" makes this queue's
 * N-th prepare fail (answer not ok) or exit the thread (a crash mid-reload); a restarted worker
 * has no faults.
 *
 * With `evidence` (enforce --evidence) it owns one EvidenceWriter with the prefix `q<queue>-`: packet
 * records are written out with the EVE lines (every 100 ms), the files closed on stop.
 *
 * Messages to the parent: ready {id, fd} (fd: the queue's netlink socket, which the daemon closes if
 * the thread dies without closing it, so the restarted worker can bind the queue again) | fatal {code,message} | eve {lines} | rules {counts} |
 * class-req {rate,burst} | prepared {id,ok,error?} | committed {id} | remark {list} (conntrack marks to
 * update after a commit, enforcer.redecide) | traffic {id, snapshot} (the
 * queue's enforce/traffic counters for the version pair `id`, with the EVE lines when changed). From the parent: prepare |
 * commit | abort | stop | class.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { NF_ACCEPT, NfQueue } from './nfq.js';
import { Enforcer } from './enforcer.js';
import { compilePair, type PolicyVersion } from './policy-source.js';
import { C } from './counters.js';
import type { CompiledPolicy } from '../policy/types.js';
import type { VerdictEvent } from './types.js';
import type { Flow } from '../flow/flow.js';
import { EvidenceWriter, type EvidenceOptions } from '../output/evidence.js';
import { hostname } from 'node:os';
import { writeVerdictEveLine } from '../output/eve.js';
import { JsonBytes } from '../output/json-bytes.js';

export interface WorkerInit {
  queue: number;
  /** The version to come up on, and its index (written to the shared counters). */
  version: PolicyVersion;
  seq: number;
  /** How many times this queue's worker was restarted (injected faults apply to the first only). */
  generation: number;
  markMask: number;
  throttle: 'kernel' | 'userspace';
  counters: Float64Array;
  maxlen: number;
  eve: boolean;
  /** Evidence pcaps: this queue's share (`totalBytes` already divided by the number of queues). */
  evidence?: Omit<EvidenceOptions, 'prefix'>;
  /** Sensor name for the EVE log (`host`, flow_id prefix); default os.hostname(). */
  node?: string;
}

type ParentMsg =
  | { type: 'prepare'; version: PolicyVersion }
  | { type: 'commit'; id: string; seq: number }
  | { type: 'abort'; id: string }
  | { type: 'stop' }
  | { type: 'class'; rate: number; burst: number; id: number };

const init = workerData as WorkerInit;
const port = parentPort!;
const counters = init.counters;

/** Verdicts sent together at most (a packet waits for at most this many others' processing). */
const VERDICT_FLUSH = 16;
/** Longest time the receive loop runs without turning the worker's event loop (ms). */
const YIELD_MS = 5;
/** Longest wait for a packet in one read (ms): the loop's tick when idle. */
const WAIT_MS = 20;

let stopping = false;
/** The EVE verdict lines since the last flush, as UTF-8 (posted to the main thread as one transfer). */
const eveLines = new JsonBytes();
const eveNode = init.node ?? hostname();
const ruleCounts = new Map<string, number>();
const classes = new Map<string, number>();
const requested = new Set<string>();
/** This queue's evidence writer (files `q<queue>-NNNNNN.pcap`), or null without --evidence. */
let evidence: EvidenceWriter<Flow> | null = null;
let enforcer: Enforcer | null = null;

/** This queue's faults: prepare number → what happens. */
function faults(): Map<number, string> {
  const m = new Map<number, string>();
  for (const f of (process.env.CHOKEPOINT_FAULT_RELOAD ?? '').split(',')) {
    const [q, n, what] = f.split(':');
    if (Number(q) === init.queue && Number(n) > 0 && init.generation === 0) m.set(Number(n), what);
  }
  return m;
}

function onVerdict(ev: VerdictEvent): void {
  const key = `${ev.policy.action}\u0000${ev.policy.rule_id ?? ''}`;
  ruleCounts.set(key, (ruleCounts.get(key) ?? 0) + 1);
  if (init.eve)
    writeVerdictEveLine(eveLines, ev, ev.verdict, {
      node: eveNode,
      queue: init.queue,
      policyVersion: ev.policy_version,
    });
}

/** Evidence failed (disk full, ...): off for this worker, said once; enforcement goes on. */
function evidenceFailed(e: Error): void {
  const w = evidence;
  if (w === null) return;
  evidence = null;
  enforcer?.dropEvidence();
  try {
    w.close();
  } catch {
    /* it failed already */
  }
  port.postMessage({
    type: 'fatal',
    code: 'ERR_EVIDENCE',
    message: `evidence off for this queue: ${e.message}`,
  });
}

function flush(): void {
  if (evidence) {
    try {
      evidence.flush();
    } catch (e) {
      evidenceFailed(e as Error);
    }
  }
  if (eveLines.pos > 0) {
    const bytes = eveLines.copy();
    eveLines.reset();
    port.postMessage({ type: 'eve', bytes }, [bytes.buffer]);
  }
  if (ruleCounts.size) {
    port.postMessage({ type: 'rules', counts: [...ruleCounts] });
    ruleCounts.clear();
  }
  const e = enforcer;
  if (e !== null && e.traffic.dirty)
    port.postMessage({ type: 'traffic', id: e.policyVersion, snapshot: e.traffic.snapshot() });
}

async function main(): Promise<void> {
  let q: NfQueue;
  let enf: Enforcer;
  try {
    const { policy, shadow } = await compilePair(init.version);
    if (init.evidence)
      evidence = new EvidenceWriter<Flow>({
        ...init.evidence,
        prefix: `q${init.queue}-`,
        node: eveNode,
        queue: init.queue,
      });
    q = new NfQueue({ queue: init.queue, maxlen: init.maxlen });
    enf = new Enforcer({
      queue: init.queue,
      sink: q,
      policy,
      shadow,
      version: init.version.id,
      markMask: init.markMask,
      throttle: init.throttle,
      counters,
      onVerdict,
      evidence,
      onEvidenceError: evidenceFailed,
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
    enforcer = enf;
    counters[C.policySeq] = init.seq;
  } catch (e) {
    const err = e as { code?: string; message?: string };
    port.postMessage({ type: 'fatal', code: err.code ?? 'ERR_WORKER', message: err.message ?? String(e) });
    return;
  }
  const fault = faults();
  let prepares = 0;
  let staged: { id: string; policy: CompiledPolicy; shadow: CompiledPolicy | null } | null = null;
  port.on('message', (m: ParentMsg) => {
    if (m.type === 'stop') stopping = true;
    else if (m.type === 'class') {
      classes.set(`${m.rate}:${m.burst}`, m.id);
      enf.classReady(m.rate, m.burst, m.id, Date.now());
    } else if (m.type === 'prepare') {
      const id = m.version.id;
      const f = fault.get(++prepares);
      if (f === 'exit') process.exit(70);
      void (async () => {
        try {
          const p = await compilePair(m.version);
          if (f === 'fail')
            throw new Error(`injected failure (CHOKEPOINT_FAULT_RELOAD) at prepare ${prepares}`);
          staged = { id, policy: p.policy, shadow: p.shadow };
          port.postMessage({ type: 'prepared', id, ok: true });
        } catch (e) {
          staged = null;
          port.postMessage({ type: 'prepared', id, ok: false, error: (e as Error).message });
        }
      })();
    } else if (m.type === 'commit') {
      if (staged?.id !== m.id) {
        port.postMessage({ type: 'fatal', code: 'ERR_RELOAD', message: `commit of ${m.id} without prepare` });
        return;
      }
      flush(); // every EVE line of the previous version leaves before the acknowledgement
      enf.setPolicy(staged.policy, staged.id, staged.shadow);
      staged = null;
      // connections the previous version decided, under this one: the kernel's share to the daemon
      const remarks = enf.redecide(Date.now());
      if (remarks.length > 0) port.postMessage({ type: 'remark', list: remarks });
      counters[C.policySeq] = m.seq;
      counters[C.reloads]++;
      port.postMessage({ type: 'committed', id: m.id });
    } else if (m.type === 'abort') {
      if (staged?.id === m.id) staged = null;
    }
  });
  port.postMessage({ type: 'ready', id: init.version.id, fd: q.fd });
  let lastFlush = Date.now();
  let lastYield = lastFlush;
  const yieldNow = (): Promise<void> => new Promise((r) => setImmediate(r));
  while (!stopping) {
    let n = 0;
    for (; n < 512; n++) {
      // the first read waits (verdicts flushed first) and takes every packet ready; the rest of the
      // drain is what that read brought (the next wait returns at once if more came meanwhile)
      const p = q.receive(n === 0 && !stopping ? WAIT_MS : -1);
      if (!p) break;
      try {
        enf.handle(p, Date.now());
      } catch (e) {
        // a bug must not stall the wire: let this packet through unmarked (fail open) and go on
        q.verdict(p.id, NF_ACCEPT, 0);
        if (counters[C.errors]++ < 5)
          port.postMessage({ type: 'fatal', code: 'ERR_PACKET', message: String((e as Error).stack ?? e) });
      }
      // verdicts leave in batches of a few: one send(2), and no packet waits behind many others
      if (q.pending >= VERDICT_FLUSH) q.flush();
    }
    const now = Date.now();
    enf.tick(now);
    q.flush(); // this drain's verdicts (and hold releases) in one send(2)
    counters[C.enobufs] = q.enobufs;
    counters[C.queueReads] = q.reads;
    counters[C.verdictSends] = q.sends;
    counters[C.verdictsSent] = q.verdicts;
    counters[C.flowsTracked] = enf.engine.table.size;
    if (now - lastFlush >= 100) {
      flush();
      lastFlush = now;
    }
    // the event loop (parent messages: stop, reload, class) every few ms, not after every wakeup;
    // verdicts given there (a class ready) leave with the next read's flush
    if (n === 0 || now - lastYield >= YIELD_MS) {
      await yieldNow();
      lastYield = Date.now();
    }
  }
  q.flush();
  flush();
  try {
    evidence?.close(); // every flow's index line; the files are complete
  } catch (e) {
    port.postMessage({ type: 'fatal', code: 'ERR_EVIDENCE', message: `evidence: ${(e as Error).message}` });
  }
  q.close();
  port.postMessage({ type: 'stopped' });
}

main().catch((e: Error) => {
  port.postMessage({ type: 'fatal', code: 'ERR_WORKER', message: e.stack ?? String(e) });
});
