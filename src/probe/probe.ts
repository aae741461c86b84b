/**
 * @module probe/probe
 * `runProbe(opts)`: the whole measurement. For the name, a control name and a scrambled trigger
 * (same shape as the name, random letters) it runs TCP cases (ClientHello trigger, download and
 * upload through the path), optionally the evasion matrix and QUIC v1 Initials over UDP, repeats
 * each case, and decides verdicts with probe/verdict. Runs are interleaved (control, scrambled,
 * name, control, …) so slow drift of the path affects all cases alike. Returns a
 * {@link ProbeReport} — the stable JSON shape documented in docs/PROBE.md.
 */
import { randomBytes } from 'node:crypto';
import { measureQuic, measureTcp, type DirectionSample, type RunSample } from './measure.js';
import { PLAIN, TECHNIQUES, scrambleName, techniqueById, type Technique } from './triggers.js';
import {
  assessRun,
  decideCase,
  median,
  SEVERITY,
  THRESHOLDS,
  type Baseline,
  type Behaviour,
  type Blocking,
  type RunAssessment,
  type RunClass,
  type Verdict,
} from './verdict.js';

export const REPORT_SCHEMA = 'chokepoint.probe/1';

export interface ProbeOptions {
  /** probe-server address. */
  host: string;
  port: number;
  name: string;
  /** A name nothing should match (default `example.org`). */
  control?: string;
  /** Runs per case (default 1). */
  repeat?: number;
  /** Run the evasion matrix: true = all techniques, or a list of technique ids. */
  evasions?: boolean | string[];
  /** Runs per evasion case (default 1). */
  evasionRepeat?: number;
  /** QUIC v1 cases over UDP (default true). */
  quic?: boolean;
  /** Also run the TCP cases (default true). */
  tcp?: boolean;
  /** Measurement window per run (ms, default 3000). */
  windowMs?: number;
  /** Download bytes per run (default 2 MB: a ≥ 5 Mbit/s path completes before the window). */
  down?: number;
  /** Upload bytes per run (default 512 KB; 0 = download only). */
  up?: number;
  connectTimeoutMs?: number;
  /** Idle-timeout probes (seconds of silence each): is a throttled flow still throttled after it? */
  idle?: number[];
  /** Hop location over UDP: TTL-limited QUIC triggers with TTL 1..locate (see docs/PROBE.md). */
  locate?: number;
  /** Residual blocking: after a triggering connection with the name, follow-up connections with the
   *  control name to the same server, retried until one succeeds or this many ms have passed
   *  (bounded; 0/undefined = not measured). */
  residualMs?: number;
  /** Progress lines (stderr in the CLI). */
  onProgress?: (line: string) => void;
}

export interface DirectionReport {
  bytes: number;
  target: number;
  duration_ms: number;
  complete: boolean;
  goodput_bps: number;
  rate_bps: number;
  timeline: [number, number][];
}

export interface RunReport {
  class: RunClass;
  reason: string;
  connect_ms: number | null;
  ttfb_ms: number | null;
  reset_ms: number | null;
  early_fin: boolean;
  error: string | null;
  down: DirectionReport | null;
  up: DirectionReport | null;
  /** UDP: datagram loss measured with sequence numbers. */
  loss?: number;
  server: {
    trigger_seen: boolean;
    down_sent: number;
    up_bytes: number;
    retrans: number | null;
    segs_out: number | null;
    end: string;
  } | null;
  peer?: string;
}

export type CaseRole = 'control' | 'scrambled' | 'name' | 'evasion';

export interface CaseReport {
  id: string;
  role: CaseRole;
  proto: 'tcp' | 'udp';
  technique: string;
  description: string;
  sni: string | null;
  verdict: Verdict;
  blocking?: Blocking;
  /** Blocked: the documented behaviour it looks like (probe/verdict Behaviour). */
  behaviour?: Behaviour;
  /** Stalled: bytes of the answer before it froze (median). */
  stall_bytes?: number;
  rate_bps?: number;
  down_bps?: number;
  up_bps?: number;
  reason: string;
  runs: RunReport[];
}

export type EvasionOutcome = 'bypass' | 'no-bypass' | 'partial' | 'error';

export interface EvasionReport {
  technique: string;
  description: string;
  outcome: EvasionOutcome;
  verdict: Verdict;
  /** No-bypass by a block: the behaviour seen (e.g. `stall-after-packets`). */
  behaviour?: Behaviour;
  case: string;
}

export interface IdleReport {
  idle_s: number;
  before: { class: RunClass; rate_bps: number | null; reason: string };
  after: { class: RunClass; rate_bps: number | null; reason: string } | null;
  /** kept: still slow after the silence; forgotten: fast again; unknown: anything else. */
  state: 'kept' | 'forgotten' | 'unknown';
}

/** One connection of the residual-blocking measurement. */
export interface ResidualRun {
  /** ms since the end of the triggering connection when this attempt started. */
  at_ms: number;
  class: RunClass;
  behaviour?: Behaviour;
  reason: string;
}

export interface ResidualReport {
  /** residual: the first follow-up (control name, allowed alone) failed right after the trigger;
   *  none: it succeeded; unknown: the control name itself is not allowed, nothing to compare. */
  state: 'residual' | 'none' | 'unknown';
  bound_ms: number;
  trigger: ResidualRun;
  followups: ResidualRun[];
  /** residual: the first failed follow-up repeated at once from another source port… */
  other_port?: ResidualRun;
  /** …which tells the key: it succeeded → `5-tuple`, it failed too → `address-pair` (or wider). */
  key?: '5-tuple' | 'address-pair';
  /** residual: ms from the trigger's end to the first successful follow-up (an upper bound of how
   *  long it lasted), or null when none succeeded within `bound_ms`. */
  lasted_ms: number | null;
  reason: string;
}

export interface LocateReport {
  proto: 'udp';
  max_ttl: number;
  /** Class of the benign flow without any trigger. */
  baseline: RunClass;
  /** Smallest trigger TTL after which the benign flow is treated differently, or null. */
  first_ttl: number | null;
  runs: { ttl: number; class: RunClass; reason: string }[];
  note?: string;
}

export interface ProbeReport {
  schema: typeof REPORT_SCHEMA;
  server: string;
  name: string;
  control: string;
  scrambled: string;
  started: string;
  duration_ms: number;
  thresholds: typeof THRESHOLDS;
  /** Verdict for the name over TCP (or QUIC when TCP was not run). */
  verdict: Verdict;
  rate_bps?: number;
  blocking?: Blocking;
  behaviour?: Behaviour;
  reason: string;
  quic?: { verdict: Verdict; rate_bps?: number; blocking?: Blocking; behaviour?: Behaviour; reason: string };
  cases: CaseReport[];
  evasions?: EvasionReport[];
  /** When the evasion matrix was asked for but not run (the name is not interfered with). */
  evasions_skipped?: string;
  /** Idle-timeout probes (`idle`), or why they were skipped. */
  idle?: IdleReport[];
  idle_skipped?: string;
  /** Hop location (`locate`). */
  locate?: LocateReport;
  /** Residual blocking (`residualMs`), or why it was skipped. */
  residual?: ResidualReport;
  residual_skipped?: string;
}

function dirReport(
  d: DirectionSample | null,
  a: { goodput_bps: number; rate_bps: number } | undefined,
): DirectionReport | null {
  if (!d) return null;
  return {
    bytes: d.bytes,
    target: d.target,
    duration_ms: d.duration_ms,
    complete: d.complete,
    goodput_bps: Math.round(a?.goodput_bps ?? 0),
    rate_bps: Math.round(a?.rate_bps ?? 0),
    timeline: d.timeline,
  };
}

function runReport(s: RunSample, a: RunAssessment): RunReport {
  const r: RunReport = {
    class: a.class,
    reason: a.reason,
    connect_ms: s.connect_ms,
    ttfb_ms: s.ttfb_ms,
    reset_ms: s.reset_ms,
    early_fin: s.early_fin,
    error: s.error,
    down: s.down.target ? dirReport(s.down, a.down) : null,
    up: dirReport(s.up, a.up),
    server: s.server
      ? {
          trigger_seen: s.server.trigger_seen,
          down_sent: s.server.down_sent,
          up_bytes: s.server.up_bytes,
          retrans: s.server.retrans,
          segs_out: s.server.segs_out,
          end: s.server.end,
        }
      : null,
  };
  if (s.peer) r.peer = s.peer;
  if (s.datagrams && s.server?.down_datagrams) {
    r.loss = Math.max(0, 1 - s.datagrams.received / s.server.down_datagrams);
  }
  return r;
}

interface PendingCase {
  id: string;
  role: CaseRole;
  proto: 'tcp' | 'udp';
  technique: Technique;
  sni: string | null;
  samples: RunSample[];
  assessments: RunAssessment[];
}

function baselineOf(cases: PendingCase[], label: string): Baseline | undefined {
  if (cases.length === 0) return undefined;
  let best: Baseline | undefined;
  for (const c of cases) {
    const d = decideCase(c.assessments);
    const rate = median(
      c.assessments
        .filter((a) => a.class === 'fast' || a.class === 'middle' || a.class === 'slow')
        .map((a) => a.rate_bps ?? 0),
    );
    const b: Baseline = {
      rate_bps: Number.isNaN(rate) ? 0 : rate,
      ok: d.verdict === 'ok',
      label: `${label} ${c.sni ?? c.id}`,
    };
    if (!best || b.rate_bps > best.rate_bps) best = b;
  }
  return best;
}

export async function runProbe(opts: ProbeOptions): Promise<ProbeReport> {
  const started = Date.now();
  const log = opts.onProgress ?? (() => {});
  const repeat = Math.max(1, opts.repeat ?? 1);
  const windowMs = opts.windowMs ?? 3000;
  const down = opts.down ?? 2_000_000;
  const up = opts.up ?? 512_000;
  const control = opts.control ?? 'example.org';
  const scrambled = scrambleName(opts.name);
  const ctx = { control, serverHost: opts.host, serverPort: opts.port };

  const runTcp = async (c: PendingCase) => {
    const token = randomBytes(16);
    const trig = c.technique.build(c.sni ?? opts.name, token, ctx);
    const s = await measureTcp({
      host: opts.host,
      port: opts.port,
      trigger: trig,
      token,
      down,
      up: c.role === 'evasion' ? 0 : up,
      windowMs,
      connectTimeoutMs: opts.connectTimeoutMs,
    });
    const a = assessRun(s);
    c.samples.push(s);
    c.assessments.push(a);
    log(`${c.id}: ${a.class} — ${a.reason}`);
  };
  const runUdp = async (c: PendingCase) => {
    const token = randomBytes(16);
    const s = await measureQuic({
      host: opts.host,
      port: opts.port,
      sni: c.sni,
      token,
      down: Math.min(down, 1_000_000),
      windowMs,
    });
    const a = assessRun(s);
    c.samples.push(s);
    c.assessments.push(a);
    log(`${c.id}: ${a.class} — ${a.reason}`);
  };

  const mk = (
    id: string,
    role: CaseRole,
    proto: 'tcp' | 'udp',
    technique: Technique,
    sni: string | null,
  ): PendingCase => ({
    id,
    role,
    proto,
    technique,
    sni,
    samples: [],
    assessments: [],
  });

  const all: PendingCase[] = [];
  const tcpCases: PendingCase[] = [];
  if (opts.tcp !== false) {
    tcpCases.push(
      mk('control', 'control', 'tcp', PLAIN, control),
      mk('scrambled', 'scrambled', 'tcp', PLAIN, scrambled),
      mk('name', 'name', 'tcp', PLAIN, opts.name),
    );
  }
  const quicCases: PendingCase[] = [];
  if (opts.quic !== false) {
    quicCases.push(
      mk('quic:control', 'control', 'udp', PLAIN, control),
      mk('quic:name', 'name', 'udp', PLAIN, opts.name),
    );
  }
  for (let i = 0; i < repeat; i++) {
    for (const c of tcpCases) await runTcp(c);
    for (const c of quicCases) await runUdp(c);
  }
  all.push(...tcpCases, ...quicCases);

  const decide = (c: PendingCase, base?: Baseline): CaseReport => {
    const d = decideCase(c.assessments, base);
    const r: CaseReport = {
      id: c.id,
      role: c.role,
      proto: c.proto,
      technique: c.technique.id,
      description: c.technique.description,
      sni:
        c.proto === 'tcp'
          ? c.samples.length
            ? c.technique.build(c.sni ?? opts.name, new Uint8Array(16), ctx).sni
            : c.sni
          : c.sni,
      verdict: d.verdict,
      reason: d.reason,
      runs: c.samples.map((s, i) => runReport(s, c.assessments[i])),
    };
    if (d.blocking) r.blocking = d.blocking;
    if (d.behaviour) r.behaviour = d.behaviour;
    if (d.stall_bytes !== undefined) r.stall_bytes = d.stall_bytes;
    if (d.rate_bps !== undefined) r.rate_bps = d.rate_bps;
    if (d.down_bps !== undefined) r.down_bps = d.down_bps;
    if (d.up_bps !== undefined) r.up_bps = d.up_bps;
    return r;
  };

  const tcpBase = baselineOf(
    tcpCases.filter((c) => c.role !== 'name'),
    'control',
  );
  const quicBase = baselineOf(
    quicCases.filter((c) => c.role !== 'name'),
    'control',
  );
  const reports: CaseReport[] = [];
  for (const c of tcpCases) reports.push(decide(c, c.role === 'name' ? tcpBase : undefined));
  for (const c of quicCases) reports.push(decide(c, c.role === 'name' ? quicBase : undefined));
  const nameTcp = reports.find((r) => r.id === 'name');
  const nameQuic = reports.find((r) => r.id === 'quic:name');

  // evasion matrix
  let evasions: EvasionReport[] | undefined;
  let evasionsSkipped: string | undefined;
  if (opts.evasions && opts.tcp !== false) {
    const ids = opts.evasions === true ? TECHNIQUES.map((t) => t.id) : opts.evasions;
    const techs = ids.map((id) => {
      const t = techniqueById(id);
      if (!t)
        throw new RangeError(
          `unknown evasion technique '${id}' (known: ${TECHNIQUES.map((x) => x.id).join(', ')})`,
        );
      return t;
    });
    if (!nameTcp || (nameTcp.verdict !== 'throttled' && nameTcp.verdict !== 'blocked')) {
      evasionsSkipped = `the name is not throttled or blocked on this path (verdict ${nameTcp?.verdict ?? 'none'}): nothing to evade`;
    } else {
      evasions = [];
      const evCases = techs.map((t) => mk(`evasion:${t.id}`, 'evasion', 'tcp', t, opts.name));
      for (let i = 0; i < Math.max(1, opts.evasionRepeat ?? 1); i++) for (const c of evCases) await runTcp(c);
      for (const c of evCases) {
        const r = decide(c, tcpBase);
        reports.push(r);
        let outcome: EvasionOutcome;
        if (r.verdict === 'ok') outcome = 'bypass';
        else if (r.verdict === 'throttled' || r.verdict === 'blocked') outcome = 'no-bypass';
        else if (r.verdict === 'inconclusive') outcome = 'partial';
        else outcome = 'error';
        const e: EvasionReport = {
          technique: c.technique.id,
          description: c.technique.description,
          outcome,
          verdict: r.verdict,
          case: r.id,
        };
        if (r.behaviour) e.behaviour = r.behaviour;
        evasions.push(e);
      }
    }
  }

  // idle-timeout probes: a small download (64 KB: it completes even when throttled, so the server
  // then falls silent), silence, the same download again on the same connection
  let idle: IdleReport[] | undefined;
  let idleSkipped: string | undefined;
  if (opts.idle?.length && opts.tcp !== false) {
    if (nameTcp?.verdict !== 'throttled') {
      idleSkipped = `the name is not throttled on this path (verdict ${nameTcp?.verdict ?? 'none'})`;
    } else {
      idle = [];
      const idleDown = Math.min(down, 65_536);
      for (const sec of opts.idle) {
        const token = randomBytes(16);
        const s = await measureTcp({
          host: opts.host,
          port: opts.port,
          trigger: PLAIN.build(opts.name, token, ctx),
          token,
          down: idleDown,
          up: 0,
          windowMs: Math.max(windowMs, 6000),
          idleMs: Math.round(sec * 1000),
          connectTimeoutMs: opts.connectTimeoutMs,
        });
        const before = assessRun(s);
        const after = s.after ? assessRun({ ...s, down: s.after, reset_ms: null, early_fin: false }) : null;
        let state: IdleReport['state'] = 'unknown';
        if (before.class === 'slow' && after?.class === 'slow') state = 'kept';
        else if (before.class === 'slow' && after?.class === 'fast') state = 'forgotten';
        const item: IdleReport = {
          idle_s: sec,
          before: { class: before.class, rate_bps: before.rate_bps ?? null, reason: before.reason },
          after: after
            ? { class: after.class, rate_bps: after.rate_bps ?? null, reason: after.reason }
            : null,
          state,
        };
        idle.push(item);
        log(`idle ${sec} s: ${state} (before ${before.reason}; after ${after?.reason ?? 'connection lost'})`);
      }
    }
  }

  // hop location over UDP: baseline (benign datagram only), then TTL-limited triggers 1..max
  let locate: LocateReport | undefined;
  if (opts.locate && opts.locate > 0) {
    const max = Math.min(64, Math.floor(opts.locate));
    const one = async (ttl: number) => {
      const s = await measureQuic({
        host: opts.host,
        port: opts.port,
        sni: opts.name,
        token: randomBytes(16),
        down: Math.min(down, 300_000),
        windowMs: Math.min(windowMs, 1500),
        locateTtl: ttl,
      });
      const a = assessRun(s);
      log(`locate ttl ${ttl || '-'}: ${a.class} — ${a.reason}`);
      return a;
    };
    const base = await one(0);
    locate = { proto: 'udp', max_ttl: max, baseline: base.class, first_ttl: null, runs: [] };
    if (base.class !== 'fast') {
      locate.note = `the benign flow is not fast without a trigger (${base.reason}): nothing to compare`;
    } else {
      for (let ttl = 1; ttl <= max; ttl++) {
        const a = await one(ttl);
        locate.runs.push({ ttl, class: a.class, reason: a.reason });
        if (a.class !== 'fast') {
          locate.first_ttl = ttl;
          break;
        }
      }
      if (locate.first_ttl === null)
        locate.note = `no trigger up to TTL ${max} changed the flow (no stateful QUIC filter, or farther away)`;
    }
  }

  // residual blocking: a trigger, then follow-ups with the control name right after (bounded)
  let residual: ResidualReport | undefined;
  let residualSkipped: string | undefined;
  if (opts.residualMs && opts.residualMs > 0 && opts.tcp !== false) {
    const controlCase = reports.find((r) => r.id === 'control');
    const bound = Math.floor(opts.residualMs);
    const small = Math.min(down, 65_536);
    // trigger and follow-ups share one source port, so a residual keyed on the 5-tuple is seen too
    // (the trigger is closed by a reset: the port is free again at once)
    const localPort = 20000 + (randomBytes(2).readUInt16BE(0) % 40000);
    const runOne = async (
      name: string,
      t0: number,
      port?: number,
    ): Promise<ResidualRun & { ok: boolean }> => {
      const at = Date.now() - t0;
      const token = randomBytes(16);
      const s = await measureTcp({
        host: opts.host,
        port: opts.port,
        trigger: PLAIN.build(name, token, ctx),
        token,
        down: small,
        up: 0,
        windowMs: Math.min(windowMs, 1500),
        // below the first SYN retransmission (1 s): a connection that only gets through on a
        // retransmitted SYN was blocked when it started
        connectTimeoutMs: 900,
        controlTimeoutMs: 900,
        resetOnClose: true,
        localPort: port,
      });
      const a = assessRun(s);
      const r: ResidualRun & { ok: boolean } = {
        at_ms: at,
        class: a.class,
        reason: a.reason,
        ok: s.down.complete && (a.class === 'fast' || a.class === 'middle' || a.class === 'slow'),
      };
      if (a.behaviour) r.behaviour = a.behaviour;
      return r;
    };
    const strip = ({ ok: _ok, ...r }: ResidualRun & { ok: boolean }): ResidualRun => r;
    if (controlCase?.verdict !== 'ok') {
      residualSkipped = `the control name is not ok on this path (verdict ${controlCase?.verdict ?? 'none'}): a failing follow-up would prove nothing`;
    } else {
      // a clean start: an earlier trigger (the name case) may itself have left a residual, so wait
      // (bounded) until a control connection succeeds before triggering
      const p0 = Date.now();
      let clean = false;
      while (!clean && Date.now() - p0 < bound) {
        const f = await runOne(control, p0);
        log(`residual pre-check +${f.at_ms} ms: ${f.class} — ${f.reason}`);
        clean = f.ok;
        if (!clean) await new Promise((res) => setTimeout(res, 250));
      }
      if (!clean) residualSkipped = `no control connection succeeded within ${bound} ms before the trigger`;
    }
    if (residualSkipped === undefined) {
      const trig = await runOne(opts.name, Date.now(), localPort);
      log(`residual trigger: ${trig.class} — ${trig.reason}`);
      const t0 = Date.now();
      const followups: ResidualRun[] = [];
      let lasted: number | null = null;
      let firstOk = false;
      let otherPort: (ResidualRun & { ok: boolean }) | undefined;
      for (;;) {
        const f = await runOne(control, t0, localPort);
        followups.push(strip(f));
        log(`residual +${f.at_ms} ms: ${f.class} — ${f.reason}`);
        if (!f.ok && followups.length === 1) {
          // the same right after from another source port: does the residual cover the address pair?
          otherPort = await runOne(control, t0);
          log(`residual other port +${otherPort.at_ms} ms: ${otherPort.class} — ${otherPort.reason}`);
        }
        if (f.ok) {
          if (followups.length === 1) firstOk = true;
          lasted = f.at_ms;
          break;
        }
        if (Date.now() - t0 >= bound) break;
        // pace the attempts (a reset answers at once): at most ~4 per second
        await new Promise((res) => setTimeout(res, 250));
      }
      const state: ResidualReport['state'] = firstOk ? 'none' : 'residual';
      residual = {
        state,
        bound_ms: bound,
        trigger: strip(trig),
        followups,
        lasted_ms: state === 'residual' ? lasted : null,
        ...(otherPort
          ? {
              other_port: strip(otherPort),
              key: otherPort.ok ? ('5-tuple' as const) : ('address-pair' as const),
            }
          : {}),
        reason:
          state === 'none'
            ? `a connection with ${control} right after the trigger succeeded`
            : lasted !== null
              ? `connections with ${control} (allowed alone) failed after the trigger for ≤ ${lasted} ms (${followups.length - 1} failed attempts)`
              : `connections with ${control} (allowed alone) still failed ${bound} ms after the trigger (bound reached)`,
      };
    }
  }

  const main = nameTcp ?? nameQuic;
  const report: ProbeReport = {
    schema: REPORT_SCHEMA,
    server: opts.host.includes(':') ? `[${opts.host}]:${opts.port}` : `${opts.host}:${opts.port}`,
    name: opts.name,
    control,
    scrambled,
    started: new Date(started).toISOString(),
    duration_ms: Date.now() - started,
    thresholds: THRESHOLDS,
    verdict: main?.verdict ?? 'error',
    reason: main?.reason ?? 'no case run',
    cases: reports,
  };
  if (main?.rate_bps !== undefined && main.verdict === 'throttled') report.rate_bps = main.rate_bps;
  if (main?.blocking) report.blocking = main.blocking;
  if (main?.behaviour) report.behaviour = main.behaviour;
  if (nameQuic) {
    report.quic = { verdict: nameQuic.verdict, reason: nameQuic.reason };
    if (nameQuic.verdict === 'throttled' && nameQuic.rate_bps !== undefined)
      report.quic.rate_bps = nameQuic.rate_bps;
    if (nameQuic.blocking) report.quic.blocking = nameQuic.blocking;
    if (nameQuic.behaviour) report.quic.behaviour = nameQuic.behaviour;
  }
  if (evasions) report.evasions = evasions;
  if (evasionsSkipped) report.evasions_skipped = evasionsSkipped;
  if (idle) report.idle = idle;
  if (idleSkipped) report.idle_skipped = idleSkipped;
  if (locate) report.locate = locate;
  if (residual) report.residual = residual;
  if (residualSkipped) report.residual_skipped = residualSkipped;
  return report;
}

/** Worst verdict among cases with the given role (for summaries). */
export function worstVerdict(cases: CaseReport[]): Verdict {
  let w: Verdict = 'ok';
  for (const c of cases) if (SEVERITY[c.verdict] > SEVERITY[w]) w = c.verdict;
  return w;
}
