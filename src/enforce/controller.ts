/**
 * @module enforce/controller
 * The inline engine's main thread: checks (root, libnetfilter_queue, policy), iptables rules (remove
 * leftovers, install, remove on stop), one worker per queue (restarted if it dies; traffic fails open
 * meanwhile through --queue-bypass), kernel throttle classes installed on demand, policy reload
 * (SIGHUP / file change: validated here, then every worker swaps atomically), the EVE verdict log and
 * /metrics.
 */
import { Worker } from 'node:worker_threads';
import { createWriteStream, watch, type FSWatcher, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { ChokepointError } from '../util/errors.js';
import { loadNfq } from './nfq.js';
import {
  addClassRule,
  classRule,
  installRules,
  removeRules,
  type RuleOptions,
  type ThrottleClass,
} from './rules.js';
import { loadPolicy } from './policy-source.js';
import { newCounters } from './counters.js';
import { EnforceMetrics } from './metrics.js';
import type { WorkerInit } from './worker.js';

export interface EnforceOptions extends RuleOptions {
  policyPath: string;
  throttle: 'kernel' | 'userspace';
  /** Install the iptables rules (false: the operator did; we only print them). */
  install: boolean;
  /** EVE verdict log: a path, '-' for stdout, undefined for none. */
  eve?: string;
  /** host:port for /metrics. */
  metrics?: string;
  maxlen?: number;
  holdPackets?: number;
  /** Reload on policy file change (default true). */
  watch?: boolean;
  log?: (msg: string) => void;
}

export class EnforceError extends ChokepointError {}

const MAX_CLASSES = 239;

interface QueueWorker {
  queue: number;
  worker: Worker | null;
  counters: Float64Array;
  restarts: number;
}

export class InlineEnforcer {
  readonly metrics = new EnforceMetrics();
  metricsPort = 0;
  private readonly o: EnforceOptions;
  private readonly log: (m: string) => void;
  private workers: QueueWorker[] = [];
  private eve: WriteStream | NodeJS.WriteStream | null = null;
  private watcher: FSWatcher | null = null;
  private stopping = false;
  private readonly classes = new Map<string, ThrottleClass>();
  private policyHash = '';
  private reloadTimer: NodeJS.Timeout | null = null;
  private ipv6 = false;

  private constructor(o: EnforceOptions) {
    this.o = o;
    this.log = o.log ?? ((m) => process.stderr.write(`chokepoint enforce: ${m}\n`));
  }

  /** Check, install, start the workers; resolves when every queue is bound. */
  static async start(o: EnforceOptions): Promise<InlineEnforcer> {
    const e = new InlineEnforcer(o);
    await e.startAll();
    return e;
  }

  private async startAll(): Promise<void> {
    const o = this.o;
    if (typeof process.getuid === 'function' && process.getuid() !== 0) {
      throw new EnforceError('ERR_NOT_ROOT', 'enforce needs root (CAP_NET_ADMIN) for NFQUEUE and iptables');
    }
    loadNfq();
    await loadPolicy(o.policyPath);
    this.policyHash = await this.fileHash();
    try {
      if (o.eve) this.eve = o.eve === '-' ? process.stdout : createWriteStream(o.eve, { flags: 'a' });
      const starts: Promise<void>[] = [];
      for (let q = o.queues[0]; q <= o.queues[1]; q++) {
        const qw: QueueWorker = { queue: q, worker: null, counters: newCounters(), restarts: 0 };
        this.metrics.addQueue(q, qw.counters);
        this.workers.push(qw);
        starts.push(this.spawn(qw));
      }
      await Promise.all(starts);
      // Rules last: every queue has a listener by the time traffic is steered to it.
      if (o.install) {
        const r = await installRules(o);
        this.ipv6 = r.ipv6;
        if (!r.ipv6) this.log(`IPv6 rules not installed (IPv4 only): ${r.ipv6Error}`);
      }
      if (o.metrics) this.metricsPort = await this.metrics.listen(o.metrics);
      if (o.watch !== false) this.watchPolicy();
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  private spawn(qw: QueueWorker): Promise<void> {
    const init: WorkerInit = {
      queue: qw.queue,
      policyPath: resolve(this.o.policyPath),
      markMask: this.o.markMask,
      throttle: this.o.throttle,
      counters: qw.counters,
      maxlen: this.o.maxlen ?? 4096,
      holdPackets: this.o.holdPackets ?? 32,
      eve: !!this.eve,
    };
    const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: init });
    qw.worker = w;
    return new Promise((resolveStart, rejectStart) => {
      let started = false;
      w.on('message', (m: { type: string; [k: string]: unknown }) => {
        switch (m.type) {
          case 'ready':
            started = true;
            resolveStart();
            break;
          case 'fatal':
            if (!started) rejectStart(new EnforceError(String(m.code), String(m.message)));
            else this.log(`queue ${qw.queue}: ${String(m.message)}`);
            break;
          case 'eve':
            if (this.eve) this.eve.write((m.lines as string[]).join('\n') + '\n');
            break;
          case 'rules':
            this.metrics.addRuleCounts(m.counts as [string, number][]);
            break;
          case 'class-req':
            void this.classRequest(m.rate as number, m.burst as number);
            break;
          case 'reloaded':
            if (!m.ok) this.log(`queue ${qw.queue}: reload failed: ${String(m.error)}`);
            break;
        }
      });
      w.on('error', (err) => {
        if (!started) rejectStart(err);
        else this.log(`queue ${qw.queue} worker error: ${err.message}`);
      });
      w.on('exit', (code) => {
        if (qw.worker === w) qw.worker = null;
        if (!started) {
          rejectStart(
            new EnforceError('ERR_WORKER', `queue ${qw.queue} worker exited (${code}) before binding`),
          );
          return;
        }
        if (this.stopping) return;
        // Traffic of this queue fails open (queue bypass) until the worker is back.
        this.metrics.failOpen.inc({ reason: 'worker_exit' });
        qw.restarts++;
        this.log(`queue ${qw.queue} worker exited (${code}); restarting`);
        setTimeout(() => {
          if (!this.stopping) this.spawn(qw).catch((e: Error) => this.log(`restart failed: ${e.message}`));
        }, 500);
      });
    });
  }

  private async classRequest(rate: number, burst: number): Promise<void> {
    const key = `${rate}:${burst}`;
    let c = this.classes.get(key);
    let id = -1;
    if (c) id = c.id;
    else if (this.classes.size < MAX_CLASSES) {
      c = { id: this.classes.size, rateBps: rate, burstBytes: burst };
      this.classes.set(key, c);
      try {
        if (this.o.install) await addClassRule(this.o, c, this.ipv6);
        else
          this.log(
            `add this rule for throttle class ${c.id}: iptables -t filter ${classRule(this.o, c).join(' ')}`,
          );
        id = c.id;
      } catch (e) {
        this.log((e as Error).message + ' (falling back to userspace policing)');
        this.classes.delete(key);
      }
    }
    for (const qw of this.workers) qw.worker?.postMessage({ type: 'class', rate, burst, id });
  }

  private async fileHash(): Promise<string> {
    try {
      return createHash('sha256')
        .update(await readFile(this.o.policyPath))
        .digest('hex');
    } catch {
      return '';
    }
  }

  private watchPolicy(): void {
    const file = resolve(this.o.policyPath);
    try {
      this.watcher = watch(dirname(file), (_ev, name) => {
        if (name !== null && name !== basename(file)) return;
        if (this.reloadTimer) clearTimeout(this.reloadTimer);
        this.reloadTimer = setTimeout(() => {
          this.reloadTimer = null;
          void this.fileHash().then((h) => {
            if (h && h !== this.policyHash) void this.reload('file change');
          });
        }, 200);
      });
    } catch (e) {
      this.log(`cannot watch ${file}: ${(e as Error).message} (SIGHUP still reloads)`);
    }
  }

  /** Validate the policy file, then have every worker swap to it. False when the file is invalid. */
  async reload(why = 'SIGHUP'): Promise<boolean> {
    try {
      await loadPolicy(this.o.policyPath);
    } catch (e) {
      this.metrics.reloads.inc({ result: 'invalid' });
      this.log(`reload (${why}) rejected, keeping the current policy: ${(e as Error).message}`);
      return false;
    }
    this.policyHash = await this.fileHash();
    for (const qw of this.workers) qw.worker?.postMessage({ type: 'reload' });
    this.metrics.reloads.inc({ result: 'ok' });
    this.log(`policy reloaded (${why})`);
    return true;
  }

  /** Stop workers, remove rules (if installed), close outputs. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.watcher?.close();
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    // Remove the rules first: with nobody queueing, nothing can stall.
    if (this.o.install) await removeRules(this.o.chain);
    await Promise.all(
      this.workers.map(async (qw) => {
        const w = qw.worker;
        if (!w) return;
        const exited = new Promise<void>((r) => w.once('exit', () => r()));
        w.postMessage({ type: 'stop' });
        const t = setTimeout(() => void w.terminate(), 1000);
        await exited;
        clearTimeout(t);
      }),
    );
    this.metrics.close();
    if (this.eve && this.eve !== process.stdout) {
      const s = this.eve as WriteStream;
      await new Promise<void>((r) => s.end(r));
    }
  }
}
