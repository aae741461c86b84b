/**
 * @module enforce/daemon
 * The box's daemon (`chokepoint enforce`), on the main thread: checks (root, libnetfilter_queue,
 * policy), iptables rules (remove leftovers, install, remove on stop), one worker per queue
 * (restarted if it dies, on the acknowledged policy version; traffic fails open meanwhile through
 * --queue-bypass), kernel throttle classes installed on demand, the EVE verdict log and /metrics.
 *
 * Policy reload is a transaction over all queues. A policy *version* is the bytes of the policy file
 * and its list files, with a content-hash id (enforce/policy-source). On SIGHUP or a change of any of
 * those files: read and validate the version here (invalid → rejected, nothing changes); `prepare`
 * it on every worker (the version is compiled once, here, into the compiled registry form in a
 * SharedArrayBuffer; each worker maps those same bytes off to the side, nothing copied); if any worker fails or dies,
 * `abort` — every queue stays on the previous version; else it becomes the acknowledged version and
 * every worker `commit`s it (a swap between two packets). The reload is done, and logged as
 * "policy reloaded (WHY): ID active on all N queues", only when every queue has acknowledged that
 * id. Reloads run one at a time.
 */
import { Worker } from 'node:worker_threads';
import { closeSync, createWriteStream, mkdirSync, watch, type FSWatcher, type WriteStream } from 'node:fs';
import { basename, dirname } from 'node:path';
import { ChokepointError, InputError } from '../util/errors.js';
import type { EvidenceOptions } from '../output/evidence.js';
import { loadNfq } from './nfq.js';
import {
  addClassRule,
  classRule,
  installRules,
  removeRules,
  type RuleOptions,
  type ThrottleClass,
} from './rules.js';
import { forWorkers, readVersion, sealVersion, versionId, type PolicyVersion } from './policy-source.js';
import { C, newCounters } from './counters.js';
import type { Remark } from './enforcer.js';
import { run } from '../util/run.js';
import { mergeTraffic, type DaemonTraffic, type TrafficSnapshot } from './traffic.js';
import { EnforceMetrics } from './metrics.js';
import type { WorkerInit } from './worker.js';

export interface EnforceOptions extends RuleOptions {
  /** The policy file (reloaded on SIGHUP / change). Unused when `initial` is given. */
  policyPath: string;
  /**
   * Start on this version instead of reading `policyPath` (a fleet member: the version comes from a
   * verified bundle and later ones through {@link EnforceDaemon.apply}; no file is watched or read).
   */
  initial?: PolicyVersion;
  throttle: 'kernel' | 'userspace';
  /** Install the iptables rules (false: the operator did; we only print them). */
  install: boolean;
  /** EVE verdict log: a path, '-' for stdout, undefined for none. */
  eve?: string;
  /**
   * Evidence pcaps of blocked/throttled flows (`--evidence DIR`): one writer per queue, files
   * `q<queue>-NNNNNN.pcap`; `totalBytes` is the cap over all queues (each gets an equal share).
   */
  evidence?: Omit<EvidenceOptions, 'prefix'>;
  /** host:port for /metrics. */
  metrics?: string;
  /** Sensor name in the EVE log (`host`, the flow_id prefix); default os.hostname(). */
  node?: string;
  maxlen?: number;
  /** Reload when the policy file or one of its list files changes (default true). */
  watch?: boolean;
  /** How long a reload waits for the workers' answers (default 30 s). */
  reloadTimeoutMs?: number;
  log?: (msg: string) => void;
  /** Use this metrics object (e.g. one the fleet agent registered its metrics on) instead of a new one. */
  metricsObject?: EnforceMetrics;
}

export class EnforceError extends ChokepointError {}

const MAX_CLASSES = 239;

/** The writer's defaults (output/evidence): 16 MiB files, 256 MiB in all. */
const EVIDENCE_FILE_BYTES = 16 << 20;
const EVIDENCE_TOTAL_BYTES = 256 << 20;

/**
 * One queue's share of the evidence options: the total cap divided by the number of queues; the
 * file size, when not given, at most that share. A share below the file size is an error naming both.
 */
export function evidenceShare(
  o: Omit<EvidenceOptions, 'prefix'>,
  queues: number,
): Omit<EvidenceOptions, 'prefix'> {
  const total = o.totalBytes ?? EVIDENCE_TOTAL_BYTES;
  const share = Math.floor(total / queues);
  const fileBytes = o.fileBytes ?? Math.min(EVIDENCE_FILE_BYTES, share);
  if (share < fileBytes || share < 4096)
    throw new InputError(
      `evidence: the total size ${total} over ${queues} queues is ${share} bytes per queue, ` +
        `below the file size ${fileBytes} (raise --evidence-max-size or lower --evidence-file-size; at least 4096)`,
    );
  return { ...o, fileBytes, totalBytes: share };
}

interface QueueWorker {
  queue: number;
  worker: Worker | null;
  counters: Float64Array;
  restarts: number;
  /** Version id the worker enforces (null while it is not up). */
  version: string | null;
  /** Its answer to the last prepare. */
  prepared: { id: string; ok: boolean; error?: string } | null;
  /** Its last traffic snapshot for the active version pair. */
  traffic: TrafficSnapshot | null;
}

const FAIL_OPEN_SLOTS = [C.failOpenHeld, C.failOpenTimeout, C.failOpenExhausted, C.failOpenFlowEnd];

/** The active half's own id of a pair version (its files' content hash). */
function versionIdOfActive(v: PolicyVersion): string {
  return versionId(v.files);
}

export class EnforceDaemon {
  readonly metrics: EnforceMetrics;
  metricsPort = 0;
  private readonly o: EnforceOptions;
  private readonly log: (m: string) => void;
  private workers: QueueWorker[] = [];
  private eve: WriteStream | NodeJS.WriteStream | null = null;
  private watchers: FSWatcher[] = [];
  private stopping = false;
  private readonly classes = new Map<string, ThrottleClass>();
  private reloadTimer: NodeJS.Timeout | null = null;
  private ipv6 = false;
  /** The acknowledged version (what every queue enforces, and what a restarted worker gets). */
  private active!: { version: PolicyVersion; seq: number };
  /** Version ids by index (the index is what workers write into their shared counters). */
  private readonly ids: string[] = [];
  private reloading: Promise<boolean> = Promise.resolve(true);
  /** Settles when the last EVE batch written is on its way to the file. */
  private evePending: Promise<void> = Promise.resolve();
  private readonly waiters = new Set<() => void>();
  /** Each queue's evidence options (the share of the total cap), or undefined. */
  private evidence: Omit<EvidenceOptions, 'prefix'> | undefined;
  /** Traffic counters: when the pair became active, the snapshots of workers that died since, bases. */
  private trafficSince = Date.now();
  private trafficRetired: TrafficSnapshot[] = [];
  private restartBase = 0;
  private failOpenBase = 0;
  private workerExits = 0;

  private constructor(o: EnforceOptions) {
    this.o = o;
    this.metrics = o.metricsObject ?? new EnforceMetrics();
    this.log = o.log ?? ((m) => process.stderr.write(`chokepoint enforce: ${m}\n`));
    this.metrics.versionOf = (seq) => this.ids[seq] ?? '';
    this.metrics.trafficSource = () => this.traffic();
  }

  /** Check, install, start the workers; resolves when every queue is bound. */
  static async start(o: EnforceOptions): Promise<EnforceDaemon> {
    const e = new EnforceDaemon(o);
    await e.startAll();
    return e;
  }

  /** Id of the acknowledged policy version. */
  get policyVersion(): string {
    return this.active.version.id;
  }

  private async startAll(): Promise<void> {
    const o = this.o;
    if (typeof process.getuid === 'function' && process.getuid() !== 0) {
      throw new EnforceError('ERR_NOT_ROOT', 'enforce needs root (CAP_NET_ADMIN) for NFQUEUE and iptables');
    }
    loadNfq();
    const first = o.initial ? { version: await sealVersion(o.initial) } : await readVersion(o.policyPath);
    this.active = { version: first.version, seq: 0 };
    this.trafficSince = Date.now();
    this.ids.push(first.version.id);
    const nq = o.queues[1] - o.queues[0] + 1;
    const evidence = o.evidence ? evidenceShare(o.evidence, nq) : undefined;
    if (evidence) {
      try {
        mkdirSync(evidence.dir, { recursive: true });
      } catch (e) {
        throw new InputError(`evidence directory ${evidence.dir}: ${(e as Error).message}`, { cause: e });
      }
    }
    this.evidence = evidence;
    try {
      if (o.eve) this.eve = o.eve === '-' ? process.stdout : createWriteStream(o.eve, { flags: 'a' });
      const starts: Promise<void>[] = [];
      for (let q = o.queues[0]; q <= o.queues[1]; q++) {
        const qw: QueueWorker = {
          queue: q,
          worker: null,
          counters: newCounters(),
          restarts: 0,
          version: null,
          prepared: null,
          traffic: null,
        };
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
      if (o.watch !== false && !o.initial) this.watchPolicy();
      this.log(`policy ${first.version.id} active on all ${this.workers.length} queues (start)`);
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves true once `cond()` holds (checked on every worker message and exit), false on timeout. */
  private until(cond: () => boolean, ms: number): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (!cond()) return;
        done(true);
      };
      const done = (v: boolean): void => {
        clearTimeout(t);
        this.waiters.delete(check);
        resolve(v);
      };
      const t = setTimeout(() => done(false), ms);
      this.waiters.add(check);
    });
  }

  private spawn(qw: QueueWorker): Promise<void> {
    const { version, seq } = this.active;
    const init: WorkerInit = {
      queue: qw.queue,
      version: forWorkers(version),
      seq,
      generation: qw.restarts,
      markMask: this.o.markMask,
      throttle: this.o.throttle,
      counters: qw.counters,
      maxlen: this.o.maxlen ?? 4096,
      eve: !!this.eve,
      evidence: this.evidence,
      ...(this.o.node !== undefined ? { node: this.o.node } : {}),
    };
    const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: init });
    qw.worker = w;
    qw.version = null;
    qw.prepared = null;
    return new Promise((resolveStart, rejectStart) => {
      let started = false;
      /** The queue socket while the worker holds it open. */
      let fd = -1;
      w.on('message', (m: { type: string; [k: string]: unknown }) => {
        switch (m.type) {
          case 'ready':
            started = true;
            fd = m.fd as number;
            qw.version = m.id as string;
            resolveStart();
            if (qw.restarts > 0) this.log(`queue ${qw.queue} worker restarted on policy ${qw.version}`);
            // spawned before a commit and up after it: bring it to the acknowledged version
            if (qw.version !== this.active.version.id) void this.catchUp(qw, w);
            break;
          case 'fatal':
            if (!started) rejectStart(new EnforceError(String(m.code), String(m.message)));
            else this.log(`queue ${qw.queue}: ${String(m.message)}`);
            break;
          case 'eve':
            if (this.eve) {
              const out = this.eve;
              const bytes = m.bytes as Uint8Array; // whole lines, each with its newline
              this.evePending = new Promise<void>((r) => out.write(bytes, () => r()));
            }
            break;
          case 'rules':
            this.metrics.addRuleCounts(m.counts as [string, number][]);
            break;
          case 'remark':
            void this.remark(m.list as Remark[]);
            break;
          case 'traffic':
            // a snapshot of the previous pair arriving after the commit is dropped
            if (m.id === this.active.version.id) qw.traffic = m.snapshot as TrafficSnapshot;
            break;
          case 'class-req':
            void this.classRequest(m.rate as number, m.burst as number);
            break;
          case 'prepared':
            qw.prepared = { id: m.id as string, ok: m.ok as boolean, error: m.error as string | undefined };
            break;
          case 'committed':
            qw.version = m.id as string;
            break;
          case 'stopped':
            fd = -1; // closed by the worker itself
            break;
        }
        this.notify();
      });
      w.on('error', (err) => {
        if (!started) rejectStart(err);
        else this.log(`queue ${qw.queue} worker error: ${err.message}`);
      });
      w.on('exit', (code) => {
        if (qw.worker === w) {
          qw.worker = null;
          qw.version = null;
          // what the dead worker counted stays in the totals of the pair
          if (qw.traffic) this.trafficRetired.push(qw.traffic);
          qw.traffic = null;
        }
        this.notify();
        if (!started) {
          rejectStart(
            new EnforceError('ERR_WORKER', `queue ${qw.queue} worker exited (${code}) before binding`),
          );
          return;
        }
        if (fd >= 0) {
          // the thread died holding the queue: close its socket so the queue can be bound again
          try {
            closeSync(fd);
          } catch {
            /* already closed */
          }
          fd = -1;
        }
        if (this.stopping) return;
        // Traffic of this queue fails open (queue bypass) until the worker is back.
        this.metrics.failOpen.inc({ reason: 'worker_exit' });
        this.workerExits++;
        qw.restarts++;
        this.log(`queue ${qw.queue} worker exited (${code}); restarting`);
        setTimeout(() => {
          if (!this.stopping) this.spawn(qw).catch((e: Error) => this.log(`restart failed: ${e.message}`));
        }, 500);
      });
    });
  }

  private async catchUp(qw: QueueWorker, w: Worker): Promise<void> {
    const { version, seq } = this.active;
    w.postMessage({ type: 'prepare', version: forWorkers(version) });
    const ok = await this.until(
      () => qw.worker !== w || qw.prepared?.id === version.id,
      this.o.reloadTimeoutMs ?? 30_000,
    );
    if (ok && qw.worker === w && qw.prepared?.ok) w.postMessage({ type: 'commit', id: version.id, seq });
    else this.log(`queue ${qw.queue}: could not bring the worker to policy ${version.id}`);
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

  /** Watch the directories of the policy file and of the list files of the acknowledged version. */
  private watchPolicy(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    const byDir = new Map<string, Set<string>>();
    for (const [p] of this.active.version.files) {
      const d = dirname(p);
      if (!byDir.has(d)) byDir.set(d, new Set());
      byDir.get(d)!.add(basename(p));
    }
    for (const [dir, names] of byDir) {
      try {
        this.watchers.push(
          watch(dir, (_ev, name) => {
            if (name !== null && !names.has(name)) return;
            if (this.reloadTimer) clearTimeout(this.reloadTimer);
            this.reloadTimer = setTimeout(() => {
              this.reloadTimer = null;
              void this.reload('file change', true);
            }, 200);
          }),
        );
      } catch (e) {
        this.log(`cannot watch ${dir}: ${(e as Error).message} (SIGHUP still reloads)`);
      }
    }
  }

  /**
   * Reload the policy as one transaction over every queue (see the module comment). Resolves true
   * when the new version is active on all queues (or the content did not change), false when it was
   * rejected (invalid) or failed on a worker (all queues stay on the previous version).
   */
  reload(why = 'SIGHUP', quietIfUnchanged = false): Promise<boolean> {
    if (this.o.initial) {
      this.log(`reload (${why}) ignored: the policy comes from the fleet controller`);
      return Promise.resolve(true);
    }
    const r = this.reloading.then(() => this.reloadOnce(why, quietIfUnchanged));
    this.reloading = r.catch(() => false);
    return r;
  }

  /**
   * Tell the kernel the new verdicts of re-decided connections (enforcer.redecide): their conntrack
   * mark (our bits only) via `conntrack -U`, so connections the kernel carries without us (allowed,
   * dropped, reset, kernel-throttled) follow the new version at once. A connection gone meanwhile is
   * not an error.
   */
  private async remark(list: Remark[]): Promise<void> {
    const mask = `0x${(this.o.markMask >>> 0).toString(16)}`;
    let ok = 0;
    for (const r of list) {
      const res = await run(
        ['conntrack', '-U', '-p', r.proto.toLowerCase(), '--orig-src', r.src, '--orig-dst', r.dst,
          '--sport', String(r.sport), '--dport', String(r.dport), '--mark', `0x${(r.mark >>> 0).toString(16)}/${mask}`],
        { timeoutMs: 5000 },
      ).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message })); // prettier-ignore
      if (res.code === 0) ok++;
    }
    this.remarked += ok;
    this.log(
      `re-decided ${list.length} connection(s) under policy ${this.policyVersion}; ${ok} conntrack mark(s) updated`,
    );
    this.notify();
  }

  /** Conntrack marks updated after version changes (re-decided connections). */
  remarked = 0;

  private failOpenNow(): number {
    let n = this.workerExits;
    for (const qw of this.workers) for (const k of FAIL_OPEN_SLOTS) n += qw.counters[k];
    return n;
  }

  private restartsNow(): number {
    return this.workers.reduce((n, qw) => n + qw.restarts, 0);
  }

  /** The version pair changed: counters start over (workers reset theirs at the commit). */
  private resetTraffic(): void {
    this.trafficSince = Date.now();
    this.trafficRetired = [];
    for (const qw of this.workers) qw.traffic = null;
    this.restartBase = this.restartsNow();
    this.failOpenBase = this.failOpenNow();
  }

  /**
   * Traffic counters of the acknowledged (active, shadow) pair since it became active, merged over
   * the queues (and workers that died meanwhile); name tables cut to the top 10. Snapshots reach the
   * daemon with the EVE batches (every 100 ms).
   */
  traffic(): DaemonTraffic {
    const v = this.active.version;
    const snaps = [...this.trafficRetired];
    for (const qw of this.workers) if (qw.traffic) snaps.push(qw.traffic);
    const m = mergeTraffic(snaps, 10, Boolean(v.shadow));
    return {
      since: new Date(this.trafficSince).toISOString(),
      id: v.id,
      active_id: v.shadow ? versionIdOfActive(v) : v.id,
      shadow_id: v.shadow?.id ?? null,
      ...m,
      fail_open: this.failOpenNow() - this.failOpenBase,
      worker_restarts: this.restartsNow() - this.restartBase,
    };
  }

  /**
   * The same transaction for a version given as bytes (already read and validated by the caller,
   * e.g. a verified fleet bundle): resolves true when it is active on every queue.
   */
  apply(version: PolicyVersion, why: string): Promise<boolean> {
    const r = this.reloading.then(() => this.reloadOnce(why, false, version));
    this.reloading = r.catch(() => false);
    return r;
  }

  private async reloadOnce(why: string, quietIfUnchanged: boolean, given?: PolicyVersion): Promise<boolean> {
    if (this.stopping) return false;
    let next: PolicyVersion;
    try {
      next = given ? await sealVersion(given) : (await readVersion(this.o.policyPath)).version;
    } catch (e) {
      this.metrics.reloads.inc({ result: 'invalid' });
      this.log(`reload (${why}) rejected, keeping policy ${this.policyVersion}: ${(e as Error).message}`);
      return false;
    }
    const old = this.active.version.id;
    const id = next.id;
    if (id === old) {
      if (!quietIfUnchanged) this.log(`reload (${why}): policy ${id} unchanged`);
      return true;
    }
    const timeout = this.o.reloadTimeoutMs ?? 30_000;
    // phase 1: every live worker maps the same compiled bytes off to the side
    const live = this.workers.filter((qw) => qw.worker !== null).map((qw) => ({ qw, w: qw.worker! }));
    const toWorkers = forWorkers(next);
    for (const { qw, w } of live) {
      qw.prepared = null;
      w.postMessage({ type: 'prepare', version: toWorkers });
    }
    const answered = await this.until(
      () => live.every(({ qw, w }) => qw.worker !== w || qw.prepared?.id === id),
      timeout,
    );
    const failed = live.filter(({ qw, w }) => qw.worker !== w || !qw.prepared?.ok);
    if (!answered || failed.length > 0 || this.stopping) {
      for (const { qw, w } of live) if (qw.worker === w) w.postMessage({ type: 'abort', id });
      const why2 = failed
        .map(({ qw, w }) =>
          qw.worker !== w
            ? `queue ${qw.queue}: worker exited`
            : `queue ${qw.queue}: ${qw.prepared?.error ?? 'no answer'}`,
        )
        .join('; ');
      this.metrics.reloads.inc({ result: 'failed' });
      this.log(
        `reload (${why}) of policy ${id} failed (${why2 || 'timeout'}); all queues stay on policy ${old}`,
      );
      return false;
    }
    // phase 2: the version is decided (a worker restarted from now on comes up on it); swap everywhere
    const seq = this.ids.length;
    this.ids.push(id);
    this.active = { version: next, seq };
    this.resetTraffic();
    for (const { qw, w } of live) if (qw.worker === w) w.postMessage({ type: 'commit', id, seq });
    const acked = await this.until(() => this.workers.every((qw) => qw.version === id), timeout);
    if (!acked) {
      this.metrics.reloads.inc({ result: 'incomplete' });
      const late = this.workers.filter((qw) => qw.version !== id).map((qw) => qw.queue);
      this.log(
        `reload (${why}): policy ${id} decided, but queues ${late.join(',')} did not acknowledge in time`,
      );
      return false;
    }
    // every EVE line of the previous version (flushed by the workers before their ack) is written first
    await this.evePending;
    this.metrics.reloads.inc({ result: 'ok' });
    this.log(`policy reloaded (${why}): ${id} active on all ${this.workers.length} queues (was ${old})`);
    if (this.o.watch !== false && !this.o.initial) this.watchPolicy();
    return true;
  }

  /**
   * The reader of the EVE log on stdout (`--eve -`) is gone: stop writing it (the caller then stops
   * the daemon, which removes its rules). Workers keep enforcing until then.
   */
  eveClosed(): void {
    if (this.eve === process.stdout) this.eve = null;
  }

  /** Stop workers, remove rules (if installed), close outputs. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const w of this.watchers) w.close();
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
