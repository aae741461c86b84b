/**
 * @module enforce/metrics
 * Prometheus `/metrics` for the inline engine (prom-client). Names follow Prometheus' conventions
 * (`chokepoint_` prefix, base unit in the name, `_total` on counters only; `promtool check metrics`
 * clean, see metrics.test.ts and the list in docs/ENFORCE.md). Labels are low-cardinality only:
 * `queue`, `action`, `rule` (rule ids of the policy, a bounded set), `reason`, `result` — never a
 * host or an address. Per-queue counters are read from the workers' shared counter arrays at scrape
 * time; verdicts by rule arrive as batched deltas.
 */
import http from 'node:http';
import client from 'prom-client';
import { C } from './counters.js';
import type { DaemonTraffic } from './traffic.js';

export class EnforceMetrics {
  readonly registry = new client.Registry();
  private readonly queues = new Map<number, Float64Array>();
  private readonly verdicts: client.Counter<'action' | 'rule'>;
  readonly failOpen: client.Counter<'reason'>;
  readonly reloads: client.Counter<'result'>;
  private server: http.Server | null = null;
  /** Policy version id of a version index (what a worker writes in its counters' policySeq slot). */
  versionOf: (seq: number) => string = () => '';
  /** The daemon's merged traffic counters (set by the daemon; absent: the traffic gauges are empty). */
  trafficSource: (() => DaemonTraffic) | null = null;

  constructor() {
    const reg = this.registry;
    const perQueue = (
      name: string,
      help: string,
      slot: number,
      type: 'counter' | 'gauge' = 'counter',
    ): void => {
      const queues = this.queues;
      const Ctor = type === 'counter' ? client.Counter : client.Gauge;
      new Ctor({
        name,
        help,
        labelNames: ['queue'],
        registers: [reg],
        collect(this: client.Counter<'queue'> | client.Gauge<'queue'>) {
          this.reset();
          for (const [q, c] of queues) {
            if (this instanceof client.Counter) this.inc({ queue: String(q) }, c[slot]);
            else (this as client.Gauge<'queue'>).set({ queue: String(q) }, c[slot]);
          }
        },
      });
    };
    perQueue('chokepoint_packets_total', 'Packets received from NFQUEUE', C.packets);
    perQueue('chokepoint_bytes_total', 'Bytes (IP) received from NFQUEUE', C.bytes);
    perQueue('chokepoint_held_packets_total', 'Packets held while their connection was being named', C.held);
    perQueue(
      'chokepoint_hold_timeouts_total',
      'Connections whose hold timed out (inspection.hold_ms)',
      C.holdTimeouts,
    );
    perQueue(
      'chokepoint_hold_overflows_total',
      'Connections whose hold overflowed (count/bytes)',
      C.holdOverflows,
    );
    perQueue(
      'chokepoint_policer_passed_packets_total',
      'Packets passed by the userspace policer',
      C.policePass,
    );
    perQueue(
      'chokepoint_policer_dropped_packets_total',
      'Packets dropped by the userspace policer',
      C.policeDrop,
    );
    perQueue('chokepoint_rst_injected_total', 'TCP resets crafted toward servers', C.rstInjected);
    perQueue('chokepoint_block_cut_total', 'Connections cut by a stall or curtain block', C.cutDrop);
    perQueue('chokepoint_degrade_dropped_packets_total', 'Packets dropped by a degrade block', C.degradeDrop);
    perQueue(
      'chokepoint_residual_hits_total',
      'New connections blocked inside a residual-blocking window',
      C.residualHits,
    );
    perQueue(
      'chokepoint_residual_evicted_total',
      'Residual-blocking entries evicted because the table was full',
      C.residualEvicted,
    );
    perQueue('chokepoint_redirects_sent_total', 'HTTP 307 redirects crafted toward clients', C.redirectSent);
    perQueue(
      'chokepoint_rst_rewritten_total',
      'Server packets rewritten into RST/ACK toward clients (rst-rewrite)',
      C.rstRewritten,
    );
    perQueue(
      'chokepoint_icmp_dropped_packets_total',
      'ICMP packets dropped by an address-only block rule',
      C.icmpDrop,
    );
    perQueue(
      'chokepoint_queue_enobufs_total',
      'Receive overruns on the queue socket (packets lost to userspace)',
      C.enobufs,
    );
    perQueue('chokepoint_flows_tracked', 'Flows in the engine table', C.flowsTracked, 'gauge');
    perQueue(
      'chokepoint_queue_reads_total',
      'Reads of the queue socket that returned packets (each takes every packet ready)',
      C.queueReads,
    );
    perQueue(
      'chokepoint_queue_verdict_sends_total',
      'Batches of verdicts sent to the kernel (one send each)',
      C.verdictSends,
    );
    perQueue(
      'chokepoint_queue_policy_reloads_total',
      'Policy reloads applied by the queue worker',
      C.reloads,
    );
    perQueue(
      'chokepoint_packet_errors_total',
      'Packets whose handling failed (accepted unmarked: fail open)',
      C.errors,
    );
    this.verdicts = new client.Counter({
      name: 'chokepoint_verdicts_total',
      help: 'Connection verdicts by action and rule id',
      labelNames: ['action', 'rule'],
      registers: [reg],
    });
    // the workers' fail-open events are counted in their shared counters: folded in at scrape time
    const workerFailOpen: [string, number][] = [
      ['held_flow_end', C.failOpenHeld],
      ['on_timeout_allow', C.failOpenTimeout],
      ['inspection_exhausted', C.failOpenExhausted],
      ['flow_end_uninspected', C.failOpenFlowEnd],
      ['packet_error', C.errors],
    ];
    const seen = new Map<string, number>();
    const queues = this.queues;
    this.failOpen = new client.Counter({
      name: 'chokepoint_fail_open_total',
      help: 'Fail-open events (worker exit; held packets released unmarked at flow end; connections allowed unclassified by on_timeout; packets whose handling failed)',
      labelNames: ['reason'],
      registers: [reg],
      collect(this: client.Counter<'reason'>) {
        for (const [reason, slot] of workerFailOpen) {
          let n = 0;
          for (const c of queues.values()) n += c[slot];
          this.inc({ reason }, n - (seen.get(reason) ?? 0));
          seen.set(reason, n);
        }
      },
    });
    const versionInfo = new client.Gauge({
      name: 'chokepoint_policy_version_info',
      help: 'Policy version each queue worker enforces (value 1; label version = content hash of the policy and its list files)',
      labelNames: ['queue', 'version'],
      registers: [reg],
      collect: () => {
        versionInfo.reset();
        for (const [q, c] of queues)
          versionInfo.set({ queue: String(q), version: this.versionOf(c[C.policySeq]) }, 1);
      },
    });
    this.reloads = new client.Counter({
      name: 'chokepoint_policy_reload_attempts_total',
      help: 'Policy reload attempts by result',
      labelNames: ['result'],
      registers: [reg],
    });
    const kernel = new client.Counter({
      name: 'chokepoint_nfqueue_dropped_packets_total',
      help: 'Packets the kernel dropped on the queue (/proc/net/netfilter/nfnetlink_queue): reason queue_full (queue_dropped) or user (user_dropped)',
      labelNames: ['queue', 'reason'],
      registers: [reg],
      collect: async () => {
        kernel.reset();
        for (const row of await readProcQueues()) {
          if (!this.queues.has(row.queue)) continue;
          kernel.inc({ queue: String(row.queue), reason: 'queue_full' }, row.queueDropped);
          kernel.inc({ queue: String(row.queue), reason: 'user' }, row.userDropped);
        }
      },
    });
    this.trafficMetrics();
  }

  /**
   * The fleet traffic counters of the current version pair (enforce/traffic, merged by the daemon),
   * as gauges: they start over when the (active, shadow) pair changes. Labels: `policy`
   * active|shadow, `action`, and for changed verdicts the rule id and the two actions (bounded by
   * the policy; never a name).
   */
  private trafficMetrics(): void {
    const reg = this.registry;
    const src = (): DaemonTraffic | null => this.trafficSource?.() ?? null;
    const sides = (t: DaemonTraffic) =>
      [
        ['active', t.active],
        ['shadow', t.shadow],
      ] as const;
    new client.Gauge({
      name: 'chokepoint_traffic_flows',
      help: 'New flows decided since the current (active, shadow) version pair became active, by policy and action',
      labelNames: ['policy', 'action'],
      registers: [reg],
      collect(this: client.Gauge<'policy' | 'action'>) {
        this.reset();
        const t = src();
        if (!t) return;
        for (const [p, s] of sides(t))
          if (s) for (const [a, n] of Object.entries(s.by_action)) this.set({ policy: p, action: a }, n);
      },
    });
    new client.Gauge({
      name: 'chokepoint_traffic_pattern_flows',
      help: 'Flows given a non-allow action through a substring/endswith pattern since the version pair became active',
      labelNames: ['policy'],
      registers: [reg],
      collect(this: client.Gauge<'policy'>) {
        this.reset();
        const t = src();
        if (t) for (const [p, s] of sides(t)) if (s) this.set({ policy: p }, s.pattern_flows);
      },
    });
    new client.Gauge({
      name: 'chokepoint_traffic_protected_hits',
      help: 'Flows where a protected name or address met a non-allow rule since the version pair became active',
      labelNames: ['policy'],
      registers: [reg],
      collect(this: client.Gauge<'policy'>) {
        this.reset();
        const t = src();
        if (t) for (const [p, s] of sides(t)) if (s) this.set({ policy: p }, s.protected_hits);
      },
    });
    new client.Gauge({
      name: 'chokepoint_traffic_shadow_changed_flows',
      help: 'Flows whose verdict the shadow version would change, by responsible rule and actions',
      labelNames: ['rule', 'from', 'to'],
      registers: [reg],
      collect(this: client.Gauge<'rule' | 'from' | 'to'>) {
        this.reset();
        const t = src();
        for (const c of t?.shadow?.changed ?? [])
          this.set({ rule: c.rule_id ?? '(default)', from: c.from, to: c.to }, c.flows);
      },
    });
    new client.Gauge({
      name: 'chokepoint_traffic_since_timestamp_seconds',
      help: 'When the current (active, shadow) version pair became active (the traffic gauges count from then)',
      registers: [reg],
      collect(this: client.Gauge) {
        const t = src();
        this.set(t ? Date.parse(t.since) / 1000 : 0);
      },
    });
  }

  addQueue(q: number, counters: Float64Array): void {
    this.queues.set(q, counters);
  }

  addRuleCounts(counts: [string, number][]): void {
    for (const [k, n] of counts) {
      const i = k.indexOf('\u0000');
      this.verdicts.inc({ action: k.slice(0, i), rule: k.slice(i + 1) || '(default)' }, n);
    }
  }

  /** Serve /metrics on host:port; resolves with the bound port. */
  listen(hostPort: string): Promise<number> {
    const i = hostPort.lastIndexOf(':');
    const host = i > 0 ? hostPort.slice(0, i).replace(/^\[|\]$/g, '') : '127.0.0.1';
    const port = Number(i >= 0 ? hostPort.slice(i + 1) : hostPort);
    this.server = http.createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end('not found\n');
        return;
      }
      this.registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(body),
        (e: Error) => res.writeHead(500).end(e.message),
      );
    });
    return new Promise((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => {
        const a = this.server!.address();
        resolve(typeof a === 'object' && a ? a.port : port);
      });
    });
  }

  close(): void {
    this.server?.close();
    this.server = null;
  }
}

interface ProcQueue {
  queue: number;
  queueDropped: number;
  userDropped: number;
}

async function readProcQueues(): Promise<ProcQueue[]> {
  const { readFile } = await import('node:fs/promises');
  try {
    const text = await readFile('/proc/net/netfilter/nfnetlink_queue', 'utf8');
    return text
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => l.trim().split(/\s+/).map(Number))
      .map((f) => ({ queue: f[0], queueDropped: f[5] ?? 0, userDropped: f[6] ?? 0 }));
  } catch {
    return [];
  }
}
