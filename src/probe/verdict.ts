/**
 * @module probe/verdict
 * Pure verdict logic: from recorded runs (probe/measure samples) to a per-run class and a per-case
 * verdict — `ok`, `throttled` (with an estimated policed rate), `blocked` (`rst`, `timeout`,
 * `drop`), `inconclusive`, or `error` — with the evidence. No I/O: unit-tested on recorded and
 * hand-made measurements.
 *
 * Thresholds (docs/PROBE.md): the 2021 Twitter-throttling studies classified a path as throttled
 * below 300 kbit/s when its control reached at least 1 Mbit/s, and found the distribution strongly
 * bimodal (throttled ~110–150 kbit/s vs. control in the Mbit/s). We use the same two numbers, and
 * call anything between them `inconclusive` rather than guess. A case is only `throttled` if the
 * baseline (control name / scrambled trigger on the same path) reaches at least 1 Mbit/s (so the
 * baseline is always > 3.3× faster); a slow baseline makes a slow name `inconclusive`. Repeats are combined by majority of run classes; the rate is the
 * median over the runs in the winning class, so one noisy run cannot flip a verdict.
 */
import type { DirectionSample, RunSample } from './measure.js';

export const THRESHOLDS = {
  /** A direction at or above this goodput is unthrottled (2021: control ≥ 1 Mbit/s). */
  okMinBps: 1_000_000,
  /** A direction below this estimated rate is throttled (2021: throttled < 300 kbit/s). */
  throttledMaxBps: 300_000,
  /** Fraction of the window ignored at its start when estimating a policed rate (initial burst). */
  burstSkip: 0.25,
  /** Below this many ms of measured transfer, the rate estimate falls back to plain goodput. */
  minSteadyMs: 400,
  /** A TCP download with no new byte for at least this share of the window (and ≥ stallMinMs),
   *  incomplete, without a reset, has stalled (SNI-II, the 2025 curtain) rather than been policed. */
  stallShare: 0.5,
  stallMinMs: 1000,
  /** A stall at or below this many bytes is "after a few packets" (SNI-II: 5–8 packets pass, at most
   *  8 full 1448-byte segments ≈ 11.6 KB); above it, "after N KB" (the curtain, ~16–20 KB). */
  stallPacketsMaxBytes: 12_000,
} as const;

/**
 * What the censor did in a blocked run, named after the documented behaviours
 * (../shared/docs/tspu-later.md):
 * - `reset-in-place` — a reset arrived instead of the server's reply and the server saw none (SNI-I's
 *   rewrite, or an injection toward the client only: "reset (injected or rewritten)");
 * - `reset-both` — a reset reached the probe and the probe-server too (injected to both ends);
 * - `reset-later` — a reset after some of the answer arrived;
 * - `stall-after-packets` — a few packets of the answer, then nothing, no reset (SNI-II);
 * - `curtain` — the answer froze after N KB, no reset (the 2025 curtain);
 * - `trigger-dropped` — handshake done, the ClientHello never reached the server (SNI-IV: never
 *   acknowledged);
 * - `answer-dropped` — the server got the trigger and answered, nothing arrived;
 * - `quic-dropped` — QUIC: the Initial got no answer datagram;
 * - `no-handshake` — no TCP handshake (address blocked).
 */
export type Behaviour =
  | 'reset-in-place'
  | 'reset-both'
  | 'reset-later'
  | 'stall-after-packets'
  | 'curtain'
  | 'trigger-dropped'
  | 'answer-dropped'
  | 'quic-dropped'
  | 'no-handshake';

export const BEHAVIOUR_TEXT: Record<Behaviour, string> = {
  'reset-in-place': "reset (injected or rewritten) in place of the server's reply (SNI-I)",
  'reset-both': 'reset injected to both ends',
  'reset-later': 'reset after part of the answer',
  'stall-after-packets': 'stall after a few packets, no reset (SNI-II)',
  curtain: 'stall after N KB, no reset (curtain)',
  'trigger-dropped': 'ClientHello never acknowledged: dropped including the trigger (SNI-IV)',
  'answer-dropped': "the server's answer dropped",
  'quic-dropped': 'QUIC Initial unanswered (QUIC blocked)',
  'no-handshake': 'no TCP handshake',
};

/** ms of the last progress of a download (the first sample at its final byte count). */
function lastProgressMs(d: DirectionSample): number {
  for (const [ms, b] of d.timeline) if (b >= d.bytes) return ms;
  return d.duration_ms;
}

export type Blocking = 'rst' | 'timeout' | 'drop' | 'stall';
export type Verdict = 'ok' | 'throttled' | 'blocked' | 'inconclusive' | 'error';
/** Per-run class before comparison with the baseline. */
export type RunClass = 'fast' | 'slow' | 'middle' | 'rst' | 'timeout' | 'drop' | 'stall' | 'error';

export interface DirectionRate {
  /** bytes·8 / time from the trigger to the last byte (or window end). */
  goodput_bps: number;
  /** Steady-state estimate excluding the initial burst (what a policer enforces). */
  rate_bps: number;
}

/**
 * Goodput and steady-state rate of one direction. A completed transfer (all bytes arrived) is
 * measured by goodput; a transfer cut by the window is measured by the slope of cumulative bytes
 * from the last sample before `burstSkip`·window to the end, which removes a policer's initial
 * bucket (e.g. 16 KB).
 */
export function directionRate(d: DirectionSample, windowMs: number): DirectionRate {
  const dur = Math.max(1, d.duration_ms);
  const goodput = (d.bytes * 8 * 1000) / dur;
  if (d.complete || d.bytes === 0) return { goodput_bps: goodput, rate_bps: goodput };
  const end = Math.max(dur, windowMs);
  const t1 = end * THRESHOLDS.burstSkip;
  const span = end - t1;
  if (span < THRESHOLDS.minSteadyMs || d.timeline.length < 3)
    return { goodput_bps: goodput, rate_bps: goodput };
  // start from the last sample at or before t1: its time and bytes are both known exactly
  let s1: [number, number] = [0, 0];
  for (const p of d.timeline) {
    if (p[0] <= t1) s1 = p;
    else break;
  }
  const rate = ((d.bytes - s1[1]) * 8 * 1000) / (end - s1[0]);
  return { goodput_bps: goodput, rate_bps: rate };
}

export interface RunAssessment {
  class: RunClass;
  down?: DirectionRate;
  up?: DirectionRate;
  /** The rate that decided the class (slowest measured direction). */
  rate_bps?: number;
  /** Blocked runs: which documented behaviour it looks like. */
  behaviour?: Behaviour;
  /** Stalls: bytes of the answer that arrived before it froze. */
  stall_bytes?: number;
  reason: string;
}

function rateClass(bps: number): 'fast' | 'slow' | 'middle' {
  if (bps >= THRESHOLDS.okMinBps) return 'fast';
  if (bps < THRESHOLDS.throttledMaxBps) return 'slow';
  return 'middle';
}

const kbit = (bps: number) => `${(bps / 1000).toFixed(bps < 10_000 ? 1 : 0)} kbit/s`;

/** Classify one run on its own (no baseline). */
export function assessRun(s: RunSample): RunAssessment {
  if (s.error === 'server')
    return { class: 'error', reason: `probe-server: ${s.error_detail ?? 'unavailable'}` };
  if (s.error === 'unsupported')
    return { class: 'error', reason: s.error_detail ?? 'unsupported on this host' };
  if (s.error === 'refused')
    return { class: 'error', reason: `connection refused: ${s.error_detail ?? ''}`.trim() };
  if (s.reset_ms !== null && (!s.down.complete || (s.up !== null && !s.up.complete))) {
    const got = s.down.bytes ? ` after ${s.down.bytes} B` : '';
    const behaviour: Behaviour =
      s.down.bytes > 0 ? 'reset-later' : s.server?.end === 'reset' ? 'reset-both' : 'reset-in-place';
    return {
      class: 'rst',
      behaviour,
      reason: `connection reset ${s.reset_ms} ms after the trigger${got}: ${BEHAVIOUR_TEXT[behaviour]}`,
    };
  }
  if (s.error === 'connect-timeout')
    return { class: 'timeout', behaviour: 'no-handshake', reason: s.error_detail ?? 'no TCP handshake' };
  if (s.error === 'unreachable')
    return { class: 'timeout', behaviour: 'no-handshake', reason: s.error_detail ?? 'unreachable' };
  if (s.error) return { class: 'error', reason: s.error_detail ?? s.error };
  if (s.down.target > 0 && s.down.bytes === 0) {
    const seen = s.server
      ? s.server.trigger_seen
        ? 'the server got the trigger and sent ' + s.server.down_sent + ' B'
        : 'the trigger never reached the server'
      : 'no server report';
    const behaviour: Behaviour =
      s.proto === 'udp'
        ? 'quic-dropped'
        : s.server && !s.server.trigger_seen
          ? 'trigger-dropped'
          : 'answer-dropped';
    if (s.early_fin) return { class: 'drop', behaviour, reason: `closed without data (${seen})` };
    return {
      class: 'drop',
      behaviour,
      reason: `no data in ${s.window_ms} ms (${seen}): ${BEHAVIOUR_TEXT[behaviour]}`,
    };
  }
  if (s.proto === 'tcp' && !s.down.complete && s.down.bytes > 0 && s.reset_ms === null && !s.early_fin) {
    const quiet = s.window_ms - lastProgressMs(s.down);
    if (quiet >= THRESHOLDS.stallMinMs && quiet >= s.window_ms * THRESHOLDS.stallShare) {
      const behaviour: Behaviour =
        s.down.bytes <= THRESHOLDS.stallPacketsMaxBytes ? 'stall-after-packets' : 'curtain';
      return {
        class: 'stall',
        behaviour,
        stall_bytes: s.down.bytes,
        reason: `the download froze after ${s.down.bytes} B (nothing new for ${quiet} ms, no reset): ${BEHAVIOUR_TEXT[behaviour]}`,
      };
    }
  }
  const down = s.down.target > 0 ? directionRate(s.down, s.window_ms) : undefined;
  const up = s.up && s.up.target > 0 ? directionRate(s.up, s.window_ms) : undefined;
  const rates = [down?.rate_bps, up?.rate_bps].filter((x): x is number => x !== undefined);
  if (rates.length === 0) return { class: 'error', reason: 'nothing measured' };
  const r = Math.min(...rates);
  const cls = rateClass(r);
  const parts = [down ? `down ${kbit(down.rate_bps)}` : '', up ? `up ${kbit(up.rate_bps)}` : '']
    .filter(Boolean)
    .join(', ');
  return { class: cls, down, up, rate_bps: r, reason: parts + (s.early_fin ? ' (early FIN)' : '') };
}

export interface CaseDecision {
  verdict: Verdict;
  blocking?: Blocking;
  rate_bps?: number;
  down_bps?: number;
  up_bps?: number;
  /** Blocked: the documented behaviour of the first run of the winning class. */
  behaviour?: Behaviour;
  /** Stalled: median bytes before the freeze. */
  stall_bytes?: number;
  reason: string;
  classes: Record<RunClass, number>;
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Majority class; ties are broken towards the less severe reading (fast > middle > slow > blocking). */
function majority(counts: Record<RunClass, number>): RunClass {
  const order: RunClass[] = ['fast', 'middle', 'slow', 'stall', 'drop', 'rst', 'timeout', 'error'];
  let best: RunClass = 'error';
  let n = -1;
  for (const c of order) {
    if (counts[c] > n) {
      best = c;
      n = counts[c];
    }
  }
  return best;
}

/** Baseline for a case: the best median rate among the control cases, and whether they worked. */
export interface Baseline {
  rate_bps: number;
  ok: boolean;
  label: string;
}

/**
 * Decide one case from its runs. `baseline` is omitted for the control cases themselves; then a
 * slow path is reported as `throttled` only in absolute terms (for a control that is itself slow,
 * the name's verdict becomes `inconclusive`).
 */
export function decideCase(runs: RunAssessment[], baseline?: Baseline): CaseDecision {
  const classes: Record<RunClass, number> = {
    fast: 0,
    slow: 0,
    middle: 0,
    rst: 0,
    timeout: 0,
    drop: 0,
    stall: 0,
    error: 0,
  };
  for (const r of runs) classes[r.class]++;
  if (runs.length === 0) return { verdict: 'error', reason: 'no runs', classes };
  const cls = majority(classes);
  const inClass = runs.filter((r) => r.class === cls);
  const rate = median(inClass.map((r) => r.rate_bps ?? NaN).filter((x) => !Number.isNaN(x)));
  const down = median(inClass.map((r) => r.down?.rate_bps ?? NaN).filter((x) => !Number.isNaN(x)));
  const up = median(inClass.map((r) => r.up?.rate_bps ?? NaN).filter((x) => !Number.isNaN(x)));
  const of = `${inClass.length}/${runs.length} runs`;
  const rates: Partial<CaseDecision> = {};
  if (!Number.isNaN(down)) rates.down_bps = Math.round(down);
  if (!Number.isNaN(up)) rates.up_bps = Math.round(up);
  switch (cls) {
    case 'error':
      return { verdict: 'error', reason: `${of}: ${inClass[0].reason}`, classes };
    case 'rst':
    case 'timeout':
    case 'drop':
    case 'stall': {
      const d: CaseDecision = {
        verdict: 'blocked',
        blocking: cls,
        reason: `${of}: ${inClass[0].reason}`,
        classes,
      };
      const b = inClass[0].behaviour;
      if (b) d.behaviour = b;
      const sb = median(inClass.map((r) => r.stall_bytes ?? NaN).filter((x) => !Number.isNaN(x)));
      if (!Number.isNaN(sb)) d.stall_bytes = Math.round(sb);
      return d;
    }
    case 'fast':
      return {
        verdict: 'ok',
        ...rates,
        reason: `${of} ≥ ${kbit(THRESHOLDS.okMinBps)} (median ${kbit(rate)})`,
        classes,
      };
    case 'middle':
      return {
        verdict: 'inconclusive',
        ...rates,
        reason: `${of} between ${kbit(THRESHOLDS.throttledMaxBps)} and ${kbit(THRESHOLDS.okMinBps)} (median ${kbit(rate)})`,
        classes,
      };
    case 'slow': {
      if (!baseline) {
        return {
          verdict: 'throttled',
          rate_bps: Math.round(rate),
          ...rates,
          reason: `${of} < ${kbit(THRESHOLDS.throttledMaxBps)} (median ${kbit(rate)}), no baseline`,
          classes,
        };
      }
      if (!baseline.ok || baseline.rate_bps < THRESHOLDS.okMinBps) {
        return {
          verdict: 'inconclusive',
          ...rates,
          reason: `${of} slow (median ${kbit(rate)}) but the baseline (${baseline.label}) is not ≥ ${kbit(THRESHOLDS.okMinBps)} either`,
          classes,
        };
      }
      return {
        verdict: 'throttled',
        rate_bps: Math.round(rate),
        ...rates,
        reason: `${of} < ${kbit(THRESHOLDS.throttledMaxBps)} (median ${kbit(rate)}) while ${baseline.label} reaches ${kbit(baseline.rate_bps)}`,
        classes,
      };
    }
  }
}

/** Severity order used to combine verdicts (worst wins). */
export const SEVERITY: Record<Verdict, number> = {
  ok: 0,
  inconclusive: 1,
  error: 1,
  throttled: 2,
  blocked: 3,
};
