/**
 * @module probe/verdict.test
 * Verdict logic on recorded lab measurements (probe/fixtures: an iptables censor policing at
 * 131072 bit/s, resetting, dropping) and on hand-made noisy ones. Expected rates come from the
 * censor's configuration or from hand computation on the timelines, never from the code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assessRun, decideCase, directionRate, median, THRESHOLDS, type RunAssessment } from './verdict.js';
import { DROP, FAST, POLICED_BPS, QUIC_FAST, RST, THROTTLED } from './fixtures.js';
import type { DirectionSample, RunSample } from './measure.js';

const near = (x: number | undefined, want: number, tol: number) =>
  assert.ok(x !== undefined && Math.abs(x - want) <= tol * want, `${x} not within ${tol * 100}% of ${want}`);

function slowRun(bps: number, windowMs = 3000, burst = 16384): RunSample {
  // hand-made policed download: `burst` bytes at once, then bps/8 bytes per second, sampled every 200 ms
  const tl: [number, number][] = [[0, 0]];
  for (let t = 50; t < windowMs; t += 200) tl.push([t, Math.round(burst + ((bps / 8) * t) / 1000)]);
  tl.push([windowMs, Math.round(burst + ((bps / 8) * windowMs) / 1000)]); // measure pushes a last sample at the window end
  const bytes = tl[tl.length - 1][1];
  return {
    proto: 'tcp',
    connected: true,
    connect_ms: 1,
    ttfb_ms: 2,
    reset_ms: null,
    early_fin: false,
    error: null,
    window_ms: windowMs,
    down: { bytes, target: 1_000_000, duration_ms: windowMs, complete: false, timeline: tl },
    up: null,
    server: null,
  };
}

function fastRun(bytes = 1_000_000, ms = 8): RunSample {
  return {
    ...slowRun(0),
    down: {
      bytes,
      target: bytes,
      duration_ms: ms,
      complete: true,
      timeline: [
        [0, 0],
        [ms, bytes],
      ],
    },
  };
}

test('recorded throttled runs: slow, both directions within ±25% of the policed rate', () => {
  for (const s of THROTTLED) {
    const a = assessRun(s);
    assert.equal(a.class, 'slow', a.reason);
    near(a.down!.rate_bps, POLICED_BPS, 0.25);
    near(a.up!.rate_bps, POLICED_BPS, 0.25);
    // the burst (~29 KB in the first 50 ms) inflates plain goodput; the steady-state estimate removes it
    assert.ok(a.down!.goodput_bps > a.down!.rate_bps);
  }
});

test('steady-state rate by hand on the first recorded throttled download', () => {
  const d = THROTTLED[0].down;
  // window end = max(duration 3032, window 3000) = 3032; t1 = 0.25 · 3032 = 758 ms;
  // last sample at or before 758 ms is [660, 38570]; (74770 − 38570) · 8000 / (3032 − 660)
  // = 289600000 / 2372 = 122091.06
  assert.equal(d.duration_ms, 3032);
  const r = directionRate(d, 3000);
  assert.equal(Math.round(r.rate_bps), 122091);
  assert.equal(Math.round(r.goodput_bps), Math.round((74770 * 8000) / 3032));
});

test('recorded fast runs are fast; goodput is bytes over the time to the last byte', () => {
  for (const s of [...FAST, ...QUIC_FAST]) {
    const a = assessRun(s);
    assert.equal(a.class, 'fast', a.reason);
    assert.equal(a.down!.rate_bps, (s.down.bytes * 8000) / s.down.duration_ms);
  }
});

test('recorded reset and drop runs', () => {
  const r = assessRun(RST[0]);
  assert.equal(r.class, 'rst');
  assert.match(r.reason, /reset 51 ms after the trigger/);
  const d = assessRun(DROP[0]);
  assert.equal(d.class, 'drop');
  // the censor dropped the ClientHello: the server never saw the token
  assert.match(d.reason, /trigger never reached the server/);
});

test('policed synthetic run: the initial burst is excluded exactly', () => {
  const s = slowRun(131072);
  const a = assessRun(s);
  // bytes(t) = 16384 + 16384·t/1000 is linear after the burst, so the slope is exact up to rounding
  near(a.down!.rate_bps, 131072, 0.01);
  assert.equal(a.class, 'slow');
});

test('noisy throttled run with a 1 s stall (retransmission timeout) is still slow', () => {
  const s = slowRun(131072);
  const tl = s.down.timeline;
  // freeze bytes from 1000 to 2000 ms, then catch up partially
  const frozen = tl.find(([t]) => t >= 1000)![1];
  s.down.timeline = tl.map(([t, b]) => [t, t >= 1000 && t < 2000 ? frozen : t >= 2000 ? b - 8000 : b]);
  s.down.bytes = s.down.timeline[s.down.timeline.length - 1][1];
  const a = assessRun(s);
  assert.equal(a.class, 'slow');
  assert.ok(a.rate_bps! < THRESHOLDS.throttledMaxBps);
});

test('repeats: majority class wins, rate is the median of that class (outliers cannot flip it)', () => {
  const runs: RunAssessment[] = [100_000, 120_000, 140_000, 110_000].map((b) => assessRun(slowRun(b)));
  runs.push(assessRun(fastRun()));
  const d = decideCase(runs, { rate_bps: 500_000_000, ok: true, label: 'control' });
  assert.equal(d.verdict, 'throttled');
  // median of 100k,110k,120k,140k = 115k (± the burst rounding)
  near(d.rate_bps, 115_000, 0.02);
  assert.deepEqual({ slow: d.classes.slow, fast: d.classes.fast }, { slow: 4, fast: 1 });
  // one slow run among fast ones (transient congestion) is not a throttle
  const ok = decideCase([assessRun(fastRun()), assessRun(fastRun()), assessRun(slowRun(100_000))]);
  assert.equal(ok.verdict, 'ok');
  // a tie is read the less severe way
  assert.equal(decideCase([assessRun(fastRun()), assessRun(slowRun(100_000))]).verdict, 'ok');
});

test('a slow name on a slow path is inconclusive, not throttled', () => {
  const runs = [assessRun(slowRun(100_000))];
  const d = decideCase(runs, { rate_bps: 200_000, ok: false, label: 'control' });
  assert.equal(d.verdict, 'inconclusive');
  assert.match(d.reason, /baseline/);
  assert.equal(d.rate_bps, undefined);
});

test('between the thresholds (the gap of a bimodal distribution) is inconclusive', () => {
  const d = decideCase([assessRun(slowRun(500_000))], { rate_bps: 1e9, ok: true, label: 'control' });
  assert.equal(d.verdict, 'inconclusive');
  // boundaries: exactly 300 kbit/s is not throttled, exactly 1 Mbit/s is ok
  const at = (bps: number) => assessRun(fastRun(bps / 8, 1000)).class;
  assert.equal(at(299_992), 'slow');
  assert.equal(at(300_000), 'middle');
  assert.equal(at(1_000_000), 'fast');
});

test('blocking kinds: reset with partial data, connect timeout, early FIN without data, server errors', () => {
  const partial = { ...slowRun(131072), reset_ms: 900 };
  assert.equal(assessRun(partial).class, 'rst');
  const to: RunSample = {
    ...slowRun(0),
    connected: false,
    connect_ms: null,
    error: 'connect-timeout',
    error_detail: 'no TCP handshake within 3000 ms',
  };
  to.down = { bytes: 0, target: 1, duration_ms: 0, complete: false, timeline: [] };
  assert.equal(assessRun(to).class, 'timeout');
  const fin: RunSample = { ...slowRun(0), early_fin: true };
  fin.down = { bytes: 0, target: 1000, duration_ms: 5, complete: false, timeline: [[0, 0]] };
  assert.equal(assessRun(fin).class, 'drop');
  const srv: RunSample = {
    ...to,
    error: 'server',
    error_detail: 'probe-server 10.0.0.1:1: connect ECONNREFUSED',
  };
  const a = assessRun(srv);
  assert.equal(a.class, 'error');
  const d = decideCase([a, a]);
  assert.equal(d.verdict, 'error');
  const b = decideCase([assessRun(to), assessRun(to), assessRun(fastRun())]);
  assert.equal(b.verdict, 'blocked');
  assert.equal(b.blocking, 'timeout');
});

test('a reset counts as blocking only while a direction is still incomplete', () => {
  const s: RunSample = {
    ...fastRun(),
    reset_ms: 50,
    up: { bytes: 1000, target: 262144, duration_ms: 50, complete: false, timeline: [[0, 0]] },
  };
  assert.equal(assessRun(s).class, 'rst');
  const s2: RunSample = { ...fastRun(), reset_ms: 50 };
  assert.equal(assessRun(s2).class, 'fast');
});

test('median', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

test('directionRate falls back to goodput for short or sparse measurements', () => {
  const d: DirectionSample = {
    bytes: 1000,
    target: 10_000,
    duration_ms: 300,
    complete: false,
    timeline: [
      [0, 0],
      [300, 1000],
    ],
  };
  // short: 300 ms of transfer, below minSteadyMs after the burst skip → both are 1000·8000/300 = 26,666.7
  const r = directionRate(d, 300);
  assert.equal(Math.round(r.goodput_bps), 26667);
  assert.equal(Math.round(r.rate_bps), 26667);
  // sparse: 3 s but only two samples → no slope to take; both are 30,000·8000/3000 = 80,000
  const sparse = directionRate(
    {
      ...d,
      bytes: 30_000,
      duration_ms: 3000,
      timeline: [
        [0, 0],
        [3000, 30_000],
      ],
    },
    3000,
  );
  assert.equal(Math.round(sparse.goodput_bps), 80_000);
  assert.equal(Math.round(sparse.rate_bps), 80_000);
  // the same 3 s with samples: the slope after the first 25 % differs from the goodput
  const dense = directionRate(
    {
      ...d,
      bytes: 30_000,
      duration_ms: 3000,
      timeline: [
        [0, 0],
        [500, 20_000],
        [750, 21_000],
        [3000, 30_000],
      ],
    },
    3000,
  );
  // t1 = 750 ms → sample [750, 21000]; (30000 − 21000)·8000 / (3000 − 750) = 32,000
  assert.equal(Math.round(dense.rate_bps), 32_000);
  assert.equal(Math.round(dense.goodput_bps), 80_000);
});

/** A hand-made download that delivers `bytes` in the first 100 ms, then nothing until the window ends. */
function frozenRun(bytes: number, windowMs = 3000): RunSample {
  const tl: [number, number][] = [[0, 0], [50, Math.round(bytes / 2)], [100, bytes]];
  for (let t = 300; t < windowMs; t += 200) tl.push([t, bytes]);
  tl.push([windowMs, bytes]);
  return { ...slowRun(0, windowMs), down: { bytes, target: 1_000_000, duration_ms: windowMs, complete: false, timeline: tl } };
} // prettier-ignore

const server = (trigger_seen: boolean, end: 'open' | 'reset' = 'open') => ({
  op: 'result' as const, trigger_seen, down_sent: trigger_seen ? 1_000_000 : 0, up_bytes: 0, up_timeline: [],
  retrans: null, segs_out: null, end,
}); // prettier-ignore

test('the documented behaviours are named: SNI-I, SNI-II, SNI-IV, the curtain, QUIC dropped', () => {
  // SNI-II: 5–8 packets pass (8 × 1448 = 11,584 B), then nothing, no reset
  const sni2 = assessRun({ ...frozenRun(8 * 1448), server: server(true) });
  assert.deepEqual([sni2.class, sni2.behaviour, sni2.stall_bytes], ['stall', 'stall-after-packets', 11584]);
  // the curtain: ~16–20 KB server→client, then a silent freeze
  const cur = assessRun({ ...frozenRun(18_000), server: server(true) });
  assert.deepEqual([cur.class, cur.behaviour, cur.stall_bytes], ['stall', 'curtain', 18000]);
  // SNI-I: a reset instead of the reply, the server saw no reset
  const sni1 = assessRun({
    ...slowRun(0),
    down: { ...slowRun(0).down, bytes: 0, timeline: [[0, 0]] },
    reset_ms: 40,
    server: server(true),
  });
  assert.equal(sni1.class, 'rst');
  assert.equal(sni1.behaviour, 'reset-in-place');
  assert.match(sni1.reason, /reset \(injected or rewritten\)/);
  // a reset injected to both ends: the probe-server's socket was reset too
  const both = assessRun({
    ...slowRun(0),
    down: { ...slowRun(0).down, bytes: 0, timeline: [[0, 0]] },
    reset_ms: 40,
    server: server(true, 'reset'),
  });
  assert.equal(both.behaviour, 'reset-both');
  // SNI-IV: handshake done, the ClientHello never reached the server, nothing came back
  const none = { ...slowRun(0).down, bytes: 0, timeline: [[0, 0]] as [number, number][] };
  const sni4 = assessRun({ ...slowRun(0), down: none, server: server(false) });
  assert.deepEqual([sni4.class, sni4.behaviour], ['drop', 'trigger-dropped']);
  const ans = assessRun({ ...slowRun(0), down: none, server: server(true) });
  assert.deepEqual([ans.class, ans.behaviour], ['drop', 'answer-dropped']);
  const quic = assessRun({ ...slowRun(0), proto: 'udp', down: none, server: server(true) });
  assert.deepEqual([quic.class, quic.behaviour], ['drop', 'quic-dropped']);
  // a policed transfer keeps progressing: not a stall
  assert.equal(assessRun(slowRun(131072)).class, 'slow');
  // a short pause (< half the window) is not a stall either
  const paused = frozenRun(18_000);
  paused.down.timeline.push([1600, 18_001]);
  paused.down.bytes = 18_001;
  paused.down.timeline = paused.down.timeline
    .sort((a, b) => a[0] - b[0])
    .map(([t, b]) => [t, t >= 1600 ? 18_001 : b]);
  assert.notEqual(assessRun(paused).class, 'stall');
  // a case of stalled runs is blocked/stall with the behaviour and the median stall size
  const d = decideCase([
    assessRun(frozenRun(17_000)),
    assessRun(frozenRun(18_000)),
    assessRun(frozenRun(19_000)),
  ]);
  assert.deepEqual(
    [d.verdict, d.blocking, d.behaviour, d.stall_bytes],
    ['blocked', 'stall', 'curtain', 18000],
  );
});
