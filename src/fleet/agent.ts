/**
 * @module fleet/agent
 * The box as a fleet member: pulls bundles from the controller (long-poll + ETag), verifies each
 * before use (bundle/verify: signature chain from the pinned root, trust and bundle versions never
 * lower than held, expiry; then every file's size and SHA-256; then the policy compiles), applies it
 * through the daemon's acknowledged reload ({@link PolicyTarget}), keeps it as the last-known-good
 * bundle (fleet/state) and reports status after OPA's status API. A refused bundle leaves the box on
 * its version and says why: log, status (`errors`, counters) and /metrics (`reason` label).
 *
 * Expiry (the freeze attack): a bundle past `expires` is never accepted. When the *active* bundle
 * expires (the controller stopped re-signing, or someone holds the box's traffic to it), the box
 * follows `onExpired`: `keep` (default) keeps enforcing it and raises the alarm (status error,
 * `chokepoint_fleet_bundle_expired 1`); `fail-open` switches to an allow-all version until a valid
 * bundle arrives.
 */
import { EventEmitter } from 'node:events';
import { posix } from 'node:path';
import type client from 'prom-client';
import {
  asEnvelope,
  verifyEnvelope,
  verifyFile,
  BundleError,
  type Envelope,
  type FileMeta,
  type Manifest,
} from '../bundle/verify.js';
import { applyDelta, contentHash, DeltaError } from '../bundle/delta.js';
import type { PolicyVersion } from '../enforce/policy-source.js';
import { ChokepointError } from '../util/errors.js';
import { ControllerClient } from './client.js';
import { FleetMetrics, reasonOf, type RefusalReason } from './metrics.js';
import { StateStore } from './state.js';
import {
  allowAllVersion,
  BUNDLE_ROOT,
  bundleVersion,
  checkVersion,
  COMPILED_KEY,
  shadowKey,
} from './version.js';
import type { DaemonTraffic } from '../enforce/traffic.js';

/** What the agent applies versions through: the daemon's two-phase, acknowledged reload. */
export interface PolicyTarget {
  apply(version: PolicyVersion, why: string): Promise<boolean>;
  /** The traffic counters of the version pair in force (the daemon's), for the status report. */
  traffic?(): DaemonTraffic;
}

export type OnExpired = 'keep' | 'fail-open';

export interface AgentOptions {
  controller: string;
  token: string;
  /** The root public key (PEM) the box trusts. */
  rootPublicPem: string;
  node: string;
  labels?: Record<string, string>;
  stateDir: string;
  onExpired?: OnExpired;
  /** Long-poll wait asked of the controller (s, default 60). */
  waitS?: number;
  /** Status report interval (ms, default 30 s); a report is also sent after every activation or refusal. */
  statusEveryMs?: number;
  /** Retry delay after a failed request: doubles from min to max (ms, defaults 1 s … 30 s). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** How long {@link FleetAgent.bootstrap} tries the controller when there is no stored bundle (ms). */
  bootstrapTimeoutMs?: number;
  /** Registry for the fleet metrics (the daemon's, so they are on its /metrics). */
  registry: client.Registry;
  log?: (msg: string) => void;
  now?: () => number;
}

export class FleetError extends ChokepointError {}

export interface StatusError {
  code: string;
  reason: RefusalReason | 'download' | 'state';
  message: string;
  at: string;
  bundle: number | null;
}

interface Held {
  env: Envelope;
  manifest: Manifest;
  trustVersion: number;
  version: PolicyVersion;
}

const MAX_ERRORS = 10;

export class FleetAgent extends EventEmitter {
  readonly metrics: FleetMetrics;
  private readonly o: AgentOptions;
  private readonly client: ControllerClient;
  private readonly state: StateStore;
  private readonly log: (m: string) => void;
  private readonly now: () => number;
  private held: Held | null = null;
  private pending: { held: Held; files: Map<string, Buffer>; fromState: boolean } | null = null;
  private target: PolicyTarget | null = null;
  private etag: string | null = null;
  private stopped = false;
  private readonly abort = new AbortController();
  private loop: Promise<void> | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private statusMs = 0;
  private expiryTimer: NodeJS.Timeout | null = null;
  private reporting: Promise<void> = Promise.resolve();
  private persisting: Promise<void> = Promise.resolve();
  private expired = false;
  private failedOpen = false;
  private lastRequest: number | null = null;
  private lastDownload: number | null = null;
  private lastActivation: number | null = null;
  private errors: StatusError[] = [];
  readonly counters = {
    bundles_downloaded: 0,
    bundles_activated: 0,
    bundles_refused: 0,
    download_errors: 0,
    status_reports_ok: 0,
    status_reports_failed: 0,
    started_from_state: 0,
    deltas_applied: 0,
    delta_fallbacks: 0,
    bytes_full: 0,
    bytes_delta: 0,
  };
  private readonly refusedBy = new Map<string, number>();

  constructor(o: AgentOptions) {
    super();
    this.o = o;
    this.client = new ControllerClient(o.controller, o.token);
    this.state = new StateStore(o.stateDir);
    this.log = o.log ?? ((m) => process.stderr.write(`chokepoint enforce: fleet: ${m}\n`));
    this.now = o.now ?? Date.now;
    this.metrics = new FleetMetrics(o.registry);
  }

  /** The bundle version the box enforces (null before bootstrap). */
  get activeBundle(): number | null {
    return this.held?.manifest.version ?? null;
  }

  /**
   * The version to start the daemon on: the last-known-good bundle from the state directory when it
   * verifies (expiry aside: the expiry option decides), else the controller's current bundle (tried
   * for `bootstrapTimeoutMs`). Throws when there is neither: a box without any signed policy does not
   * start.
   */
  async bootstrap(): Promise<PolicyVersion> {
    let stored: Awaited<ReturnType<StateStore['load']>> = null;
    try {
      stored = await this.state.load((env) => {
        const m = JSON.parse(env.manifest) as Manifest;
        return allFiles(m);
      });
    } catch (e) {
      this.addError('ERR_FLEET_STATE', 'state', `stored bundle unreadable: ${(e as Error).message}`, null);
    }
    if (stored) {
      try {
        const { manifest, trust } = verifyEnvelope(stored.env, this.o.rootPublicPem, {
          now: this.now(),
          allowExpired: true,
        });
        for (const f of manifest.files)
          verifyFile(manifest, f.name, stored.files.get(f.name) ?? Buffer.alloc(0));
        for (const f of manifest.shadow?.files ?? [])
          verifyFile(manifest, f.name, stored.files.get(shadowKey(f.name)) ?? Buffer.alloc(0), 'shadow');
        if (manifest.compiled)
          verifyFile(
            manifest,
            manifest.compiled.name,
            stored.files.get(COMPILED_KEY) ?? Buffer.alloc(0),
            'compiled',
          );
        const version = await checkVersion(
          bundleVersion(manifest, stored.files, this.now()),
          manifest.version,
        );
        const held: Held = { env: stored.env, manifest, trustVersion: trust.version, version };
        this.pending = { held, files: stored.files, fromState: true };
        this.counters.started_from_state++;
        this.log(`starting from the last-known-good bundle ${manifest.version} in ${this.o.stateDir}`);
        return this.startVersion(held);
      } catch (e) {
        const code = (e as ChokepointError).code ?? 'ERR_FLEET_STATE';
        this.addError(code, 'state', `stored bundle refused: ${(e as Error).message}`, null);
        this.log(`stored bundle in ${this.o.stateDir} refused: ${(e as Error).message}`);
      }
    }
    const deadline = this.now() + (this.o.bootstrapTimeoutMs ?? 30_000);
    let delay = this.o.retryMinMs ?? 1000;
    let last = 'no answer';
    while (!this.stopped) {
      try {
        const r = await this.client.bundle(null, 0, this.abort.signal);
        this.lastRequest = this.now();
        if (r.status === 200) {
          this.etag = r.etag;
          const got = await this.fetchVerified(r.body);
          this.pending = { held: got.held, files: got.files, fromState: false };
          return this.startVersion(got.held);
        }
        last = 'nothing published yet';
      } catch (e) {
        last = (e as Error).message;
        if (e instanceof BundleError) this.refuse(e, r0(e));
        else this.downloadError(e as Error);
      }
      if (this.now() + delay > deadline) break;
      await this.sleep(delay);
      delay = Math.min(delay * 2, this.o.retryMaxMs ?? 30_000);
    }
    throw new FleetError(
      'ERR_FLEET_NO_BUNDLE',
      `no last-known-good bundle in ${this.o.stateDir} and no valid bundle from ${this.o.controller} (${last})`,
    );
  }

  /** The version to enforce for a held bundle, given the expiry option. */
  private startVersion(h: Held): PolicyVersion {
    if (Date.parse(h.manifest.expires) <= this.now()) {
      this.markExpired(h);
      if (this.failedOpen) return allowAllVersion(this.now());
    }
    return h.version;
  }

  /** Start pulling, reporting and watching expiry; `target` now enforces the bootstrap version. */
  run(target: PolicyTarget): void {
    this.target = target;
    const p = this.pending;
    this.pending = null;
    if (p) {
      this.held = p.held;
      this.lastActivation = this.now();
      this.metrics.version.set(p.held.manifest.version);
      this.metrics.lastActivation.set(this.lastActivation / 1000);
      if (!p.fromState) {
        this.counters.bundles_activated++;
        this.metrics.activated.inc();
        this.persisting = this.persist(p.held, p.files);
      }
      this.scheduleExpiry();
    }
    this.loop = this.pull();
    this.armStatus();
    void this.persisting.then(() => this.report());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    if (this.statusTimer) clearInterval(this.statusTimer);
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    await this.loop;
    await this.persisting;
    await this.reporting;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const sig = this.abort.signal;
      function done(): void {
        clearTimeout(t);
        sig.removeEventListener('abort', done);
        resolve();
      }
      sig.addEventListener('abort', done);
    });
  }

  private async pull(): Promise<void> {
    let delay = this.o.retryMinMs ?? 1000;
    while (!this.stopped) {
      let ok = true;
      try {
        const r = await this.client.bundle(this.etag, this.o.waitS ?? 60, this.abort.signal);
        this.lastRequest = this.now();
        if (r.status === 200) {
          this.etag = r.etag;
          // a refused or failed bundle backs off before the next request (a hostile or broken
          // controller answering 200 without an ETag cannot make the box spin)
          ok = await this.consider(r.body);
        } else if (r.status === 404) ok = false; // nothing published: ask again after a while
      } catch (e) {
        if (this.stopped) break;
        this.downloadError(e as Error);
        ok = false;
      }
      if (ok) {
        delay = this.o.retryMinMs ?? 1000;
        continue;
      }
      await this.sleep(delay + Math.floor(Math.random() * delay * 0.2));
      delay = Math.min(delay * 2, this.o.retryMaxMs ?? 30_000);
    }
  }

  /** Verify an envelope and fetch + verify its files. Throws BundleError on any refusal. */
  private async fetchVerified(body: unknown): Promise<{ held: Held; files: Map<string, Buffer> }> {
    const env = asEnvelope(body);
    const h = this.held;
    let v: ReturnType<typeof verifyEnvelope>;
    try {
      v = verifyEnvelope(env, this.o.rootPublicPem, {
        now: this.now(),
        minVersion: h?.manifest.version,
        minTrustVersion: h?.trustVersion,
      });
    } catch (e) {
      withBundle(e as Error, peekVersion(env));
      throw e;
    }
    const m = v.manifest;
    if (h && m.version === h.manifest.version && env.manifest !== h.env.manifest)
      throw withBundle(
        new BundleError('ERR_BUNDLE_ROLLBACK', `bundle ${m.version} is already held with other content`),
        m.version,
      );
    const files = new Map<string, Buffer>();
    try {
      // the active files, then the shadow's (verified the same way, kept apart under shadowKey)
      const lists: ['active' | 'shadow', FileMeta[]][] = [['active', m.files]];
      if (m.shadow) lists.push(['shadow', m.shadow.files]);
      for (const [section, list] of lists)
        for (const f of list) {
          // entries already checked by verifyEnvelope (checkManifestFiles): hash, size, unique names
          const key = section === 'shadow' ? shadowKey(f.name) : f.name;
          if (files.has(key)) throw new BundleError('ERR_BUNDLE_FORMAT', `${f.name} is listed twice`);
          // a delta against the held bundle's file of the same name (active files only)
          let data = section === 'active' ? await this.viaDelta(h, f) : null;
          if (!data) {
            try {
              data = await this.client.blob(f.sha256, f.size, this.abort.signal);
            } catch (e) {
              throw withBundle(e as Error, m.version);
            }
            this.counters.bytes_full += data.length;
          }
          verifyFile(m, f.name, data, section);
          files.set(key, data);
        }
      // the compiled registry (absent in older bundles): a full download, verified like the others
      if (m.compiled) {
        const f = m.compiled;
        let data: Buffer;
        try {
          data = await this.client.blob(f.sha256, f.size, this.abort.signal);
        } catch (e) {
          throw withBundle(e as Error, m.version);
        }
        this.counters.bytes_full += data.length;
        verifyFile(m, f.name, data, 'compiled');
        files.set(COMPILED_KEY, data);
      }
      this.lastDownload = this.now();
      this.counters.bundles_downloaded++;
      const version = await checkVersion(bundleVersion(m, files, this.now()), m.version);
      return { held: { env, manifest: m, trustVersion: v.trust.version, version }, files };
    } catch (e) {
      throw withBundle(e as Error, m.version);
    }
  }

  /**
   * The file `f` of a new bundle built from the held bundle's file of the same name and a delta
   * (bundle/delta), or null — no held counterpart, no delta, or a delta that does not apply or does
   * not reproduce the hash the signed manifest lists — and then the caller downloads the full file.
   */
  private async viaDelta(h: Held | null, f: FileMeta): Promise<Buffer | null> {
    if (!h || f.size === 0) return null;
    const old = h.manifest.files.find((o) => o.name === f.name);
    if (!old || old.sha256 === f.sha256) return null;
    const text = h.version.files.find(([p]) => p === posix.join(BUNDLE_ROOT, f.name))?.[1];
    if (text === undefined) return null;
    const base = Buffer.from(text, 'utf8');
    try {
      const d = await this.client.delta(
        old.sha256,
        f.sha256,
        2 * (base.length + f.size) + 256,
        this.abort.signal,
      );
      if (!d) return null;
      this.counters.bytes_delta += d.length;
      const out = applyDelta(base, d);
      if (out.length !== f.size || contentHash(out) !== f.sha256)
        throw new DeltaError('ERR_DELTA_HASH', 'the result is not the file the signed manifest lists');
      this.counters.deltas_applied++;
      return out;
    } catch (e) {
      if (this.stopped) throw e;
      this.counters.delta_fallbacks++;
      this.log(`delta for ${f.name} not used (${(e as Error).message}): fetching the full file`);
      return null;
    }
  }

  private async consider(body: unknown): Promise<boolean> {
    let got: { held: Held; files: Map<string, Buffer> };
    try {
      const h = this.held;
      const env = asEnvelope(body);
      if (h && env.manifest === h.env.manifest && env.signature === h.env.signature) return true;
      got = await this.fetchVerified(env);
    } catch (e) {
      if (e instanceof BundleError) this.refuse(e, r0(e));
      else if (!this.stopped) this.downloadError(e as Error);
      return false;
    }
    const m = got.held.manifest;
    const ok = await this.target!.apply(got.held.version, `bundle ${m.version}`);
    if (!ok) {
      this.refuse(
        new BundleError(
          'ERR_BUNDLE_APPLY',
          `bundle ${m.version}: the reload failed on a queue (see the log)`,
        ),
        m.version,
      );
      return false;
    }
    const was = this.held?.manifest.version ?? null;
    this.held = got.held;
    this.lastActivation = this.now();
    this.counters.bundles_activated++;
    this.metrics.activated.inc();
    this.metrics.version.set(m.version);
    this.metrics.lastActivation.set(this.lastActivation / 1000);
    this.errors = [];
    if (this.expired || this.failedOpen) this.log(`bundle ${m.version} is valid: expiry alarm cleared`);
    this.expired = false;
    this.failedOpen = false;
    this.metrics.expired.set(0);
    this.metrics.failedOpen.set(0);
    this.log(
      `bundle ${m.version} (policy version ${m.policy_version}, ${m.kind}) active as ${got.held.version.id} (was ${was ?? 'none'})`,
    );
    this.scheduleExpiry();
    this.armStatus();
    await this.persist(got.held, got.files);
    this.emit('activated', m.version);
    void this.report();
    return true;
  }

  private async persist(h: Held, files: Map<string, Buffer>): Promise<void> {
    try {
      const hashes = new Map(allFiles(h.manifest).map((f) => [f.name, f.sha256]));
      await this.state.save(h.env, files, hashes);
    } catch (e) {
      this.addError(
        'ERR_FLEET_STATE',
        'state',
        `cannot save the bundle: ${(e as Error).message}`,
        h.manifest.version,
      );
      this.log(`cannot save bundle ${h.manifest.version} in ${this.o.stateDir}: ${(e as Error).message}`);
    }
  }

  private scheduleExpiry(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    const h = this.held;
    if (!h || this.expired) return;
    const left = Date.parse(h.manifest.expires) - this.now();
    // timers are capped at 2^31-1 ms; a later expiry is re-checked then
    this.expiryTimer = setTimeout(
      () => {
        if (this.held !== h) return;
        if (Date.parse(h.manifest.expires) > this.now()) return this.scheduleExpiry();
        this.markExpired(h);
        const fallback =
          this.failedOpen && this.target
            ? this.target.apply(
                allowAllVersion(this.now()),
                `bundle ${h.manifest.version} expired (fail-open)`,
              )
            : Promise.resolve(true);
        void fallback.then((ok) => {
          if (!ok)
            this.log('could not apply the allow-all version (fail-open); still enforcing the expired bundle');
          this.emit('expired', h.manifest.version);
          return this.report();
        });
      },
      Math.max(0, Math.min(left, 2 ** 31 - 1)),
    );
  }

  private markExpired(h: Held): void {
    this.expired = true;
    this.failedOpen = this.o.onExpired === 'fail-open';
    this.metrics.expired.set(1);
    this.metrics.failedOpen.set(this.failedOpen ? 1 : 0);
    const what = this.failedOpen
      ? 'failing open (allow-all) until a valid bundle arrives'
      : 'still enforcing it';
    this.addError(
      'ERR_BUNDLE_EXPIRED',
      'expired',
      `active bundle ${h.manifest.version} expired at ${h.manifest.expires}; ${what}`,
      h.manifest.version,
    );
    this.log(`ALARM: active bundle ${h.manifest.version} expired at ${h.manifest.expires}; ${what}`);
  }

  private refuse(e: BundleError, bundle: number | null): void {
    const reason = reasonOf(e.code);
    this.counters.bundles_refused++;
    this.refusedBy.set(reason, (this.refusedBy.get(reason) ?? 0) + 1);
    this.metrics.refused.inc({ reason });
    this.addError(e.code, reason, e.message, bundle);
    this.log(
      `bundle ${bundle ?? '?'} refused (${reason}): ${e.message}; staying on bundle ${this.held?.manifest.version ?? 'none'}`,
    );
    this.emit('refused', { reason, code: e.code, bundle, message: e.message });
    void this.report();
  }

  private downloadError(e: Error): void {
    this.counters.download_errors++;
    this.metrics.downloadErrors.inc();
    this.addError((e as ChokepointError).code ?? 'ERR_FLEET_HTTP', 'download', e.message, null);
    this.emit('download-error', e.message);
  }

  private addError(
    code: string,
    reason: StatusError['reason'],
    message: string,
    bundle: number | null,
  ): void {
    this.errors.push({ code, reason, message, at: new Date(this.now()).toISOString(), bundle });
    if (this.errors.length > MAX_ERRORS) this.errors.splice(0, this.errors.length - MAX_ERRORS);
  }

  /**
   * The status report interval: `--status-every`, or the held bundle's rollout `report_every_s` when
   * that is shorter (a rollout's analysis needs a report in every window it samples).
   */
  private cadenceMs(): number {
    const base = this.o.statusEveryMs ?? 30_000;
    const r = this.held?.manifest.rollout?.report_every_s;
    return typeof r === 'number' ? Math.min(base, Math.max(500, r * 1000)) : base;
  }

  /** (Re)start the status timer when the cadence changed (or was never set). */
  private armStatus(): void {
    if (this.stopped) return;
    const ms = this.cadenceMs();
    if (this.statusTimer && ms === this.statusMs) return;
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.statusMs = ms;
    this.statusTimer = setInterval(() => void this.report(), ms);
  }

  /** The status report (the controller's fields, plus OPA-style bundle detail). */
  status(): Record<string, unknown> {
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    const h = this.held;
    const last = this.errors[this.errors.length - 1];
    return {
      node: this.o.node,
      labels: this.o.labels ?? {},
      active_version: h?.manifest.version ?? null,
      last_download: iso(this.lastDownload),
      last_activation: iso(this.lastActivation),
      errors: this.errors,
      counters: {
        ...this.counters,
        ...Object.fromEntries([...this.refusedBy].map(([r, n]) => [`refused_${r}`, n])),
        expired: this.expired ? 1 : 0,
        failed_open: this.failedOpen ? 1 : 0,
      },
      bundle: {
        active_revision: h?.manifest.version ?? null,
        policy_version: h?.manifest.policy_version ?? null,
        policy_id: h?.version.id ?? null,
        expires: h?.manifest.expires ?? null,
        mode: this.failedOpen ? 'fail-open' : this.expired ? 'expired' : h ? 'enforcing' : 'none',
        last_request: iso(this.lastRequest),
        last_successful_download: iso(this.lastDownload),
        last_successful_activation: iso(this.lastActivation),
        code: last?.code ?? null,
        message: last?.message ?? null,
      },
      traffic: this.traffic(),
    };
  }

  /**
   * The `traffic` object of the status report (docs/FLEET.md): the daemon's counters for the pair
   * in force, labelled with the controller's version numbers of the held bundle. Null before the box
   * enforces a bundle, or when it enforces something else (the fail-open allow-all version).
   */
  private traffic(): Record<string, unknown> | null {
    const h = this.held;
    const t = this.target?.traffic?.();
    if (!h || !t || t.id !== h.version.id) return null;
    return {
      since: t.since,
      policy_version: h.manifest.policy_version,
      shadow_version: h.manifest.shadow?.policy_version ?? null,
      flows: t.active.flows,
      by_action: t.active.by_action,
      pattern_flows: t.active.pattern_flows,
      pattern_top: t.active.pattern_top,
      protected_hits: t.active.protected_hits,
      fail_open: t.fail_open,
      worker_restarts: t.worker_restarts,
      shadow: t.shadow,
      report_every_s: this.statusMs / 1000,
    };
  }

  /** Send a status report (one at a time; a failure is counted, never fatal). */
  report(): Promise<void> {
    const r = this.reporting.then(async () => {
      if (this.stopped) return;
      try {
        const body = this.status();
        await this.client.status(body, this.abort.signal);
        this.counters.status_reports_ok++;
        this.metrics.reports.inc({ result: 'ok' });
        this.emit('reported', body);
      } catch (e) {
        if (this.stopped) return;
        this.counters.status_reports_failed++;
        this.metrics.reports.inc({ result: 'failed' });
        this.emit('report-failed', (e as Error).message);
      }
    });
    this.reporting = r;
    return r;
  }
}

/** Every file of a manifest, the shadow's under {@link shadowKey} (the state store's one list). */
function allFiles(m: Manifest): FileMeta[] {
  const a = Array.isArray(m.files) ? m.files : [];
  const s = m.shadow && Array.isArray(m.shadow.files) ? m.shadow.files : [];
  const c = m.compiled && typeof m.compiled === 'object' ? [{ ...m.compiled, name: COMPILED_KEY }] : [];
  return [...a, ...s.map((f) => ({ ...f, name: shadowKey(f.name) })), ...c];
}

function peekVersion(env: Envelope): number | null {
  try {
    const v = (JSON.parse(env.manifest) as { version?: unknown }).version;
    return Number.isInteger(v) ? (v as number) : null;
  } catch {
    return null;
  }
}

function withBundle<E extends Error>(e: E, n: number | null): E {
  (e as { bundle?: number | null }).bundle = n;
  return e;
}

function r0(e: Error): number | null {
  return (e as { bundle?: number | null }).bundle ?? null;
}
