/**
 * @module probe/report.test
 * The probe's HTML chart with hand-made cases: readable rate units, a fast run (one sample) drawn
 * rather than an empty chart, a case without bytes saying so, and y labels that fit the margin; the
 * residual-blocking section of the text and HTML reports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHART_LEFT, fmtMs, fmtRate, formatHtml, formatTable, throughputChart } from './report.js';
import type { CaseReport, DirectionReport, ProbeReport } from './probe.js';

const dir = (timeline: [number, number][], bytes: number, duration_ms: number): DirectionReport => ({
  bytes,
  target: bytes,
  duration_ms,
  complete: true,
  goodput_bps: 0,
  rate_bps: 0,
  timeline,
});
const kase = (down: DirectionReport | null): CaseReport =>
  ({ id: 'c1', runs: [{ class: 'ok', down, up: null }] }) as unknown as CaseReport;

test('fmtRate: SI prefixes, at most three significant digits', () => {
  assert.equal(fmtRate(1_333_333), '1.33 Mbit/s');
  assert.equal(fmtRate(1_333_333_000), '1.33 Gbit/s');
  assert.equal(fmtRate(999_999), '1000 kbit/s');
  assert.equal(fmtRate(80_000), '80.0 kbit/s');
  assert.equal(fmtRate(512), '512 bit/s');
  assert.equal(fmtRate(2.5e12), '2.50 Tbit/s');
  assert.equal(fmtRate(undefined), '-');
  assert.equal(fmtMs(850), '850 ms');
  assert.equal(fmtMs(2500), '2.5 s');
});

test('a fast run with one sample is drawn at its average rate', () => {
  // 100 000 bytes in 40 ms = 20 Mbit/s, one timeline sample
  const svg = throughputChart(kase(dir([[40, 100_000]], 100_000, 40)));
  const path = /<path d="M([\d.]+),([\d.]+) L([\d.]+),([\d.]+)"/.exec(svg);
  assert.ok(path, svg);
  assert.equal(path[2], path[4], 'a flat line at the average');
  assert.ok(Number(path[3]) > Number(path[1]));
  assert.ok(!/kbit\/s/.test(svg.replace(/<line[^>]*\/><text[^>]*>[^<]*<\/text>/g, '')), 'axis in Mbit/s');
  assert.match(svg, /Mbit\/s/);
});

test('a case without bytes says so instead of an empty chart', () => {
  const svg = throughputChart(kase(dir([], 0, 0)));
  assert.match(svg, /no throughput data/);
  assert.ok(!svg.includes('<path'));
});

test('y labels fit the left margin (no clipping at 10 px, ≤ 6 px a character)', () => {
  const svg = throughputChart(
    kase(
      dir(
        [
          [50, 5_000_000],
          [100, 11_000_000],
        ],
        11_000_000,
        100,
      ),
    ),
  );
  const labels = [...svg.matchAll(/<text x="(\d+)"[^>]*text-anchor="end">([^<]+)<\/text>/g)].filter(
    (m) => Number(m[1]) === CHART_LEFT - 4,
  );
  assert.equal(labels.length, 3);
  for (const m of labels) assert.ok(m[2].length * 6 <= CHART_LEFT - 4, `label "${m[2]}" fits`);
  assert.ok(labels.some((m) => /Gbit\/s|Mbit\/s/.test(m[2])));
});

test('residual blocking: the text and HTML reports give state, duration, key and every follow-up, escaped', () => {
  const r = {
    name: 'x.example',
    server: '10.0.0.1:8443',
    control: 'allowed.example',
    scrambled: 'y',
    started: '2026-12-02T00:00:00Z',
    duration_ms: 1,
    verdict: 'blocked',
    blocking: 'stall',
    reason: 'r',
    cases: [],
    thresholds: { okMinBps: 1, throttledMaxBps: 1 },
    residual: {
      state: 'residual',
      bound_ms: 15_000,
      trigger: { at_ms: 0, class: 'stall', reason: 'the trigger stalled' },
      followups: [
        { at_ms: 10, class: 'stall', reason: 'first <b>follow-up</b> stalled' },
        { at_ms: 3200, class: 'fast', reason: 'answered' },
      ],
      other_port: { at_ms: 15, class: 'fast', reason: 'another port gets through' },
      key: '5-tuple',
      lasted_ms: 3200,
      reason: 'the control name failed right after the trigger',
    },
  } as unknown as ProbeReport;
  const txt = formatTable(r);
  assert.match(
    txt,
    /residual blocking: residual, lasted ≤ 3\.2 s, keyed on the 5-tuple — the control name failed/,
  );
  const html = formatHtml(r);
  assert.match(html, /<h2>Residual blocking<\/h2>/);
  assert.match(html, /residual, lasted ≤ 3\.2 s, keyed on the 5-tuple/);
  assert.match(html, /follow-up 2<\/td><td>\+3\.2 s<\/td><td class="fast">fast/);
  assert.match(html, /same follow-up, other source port/);
  assert.ok(!html.includes('<b>follow-up</b>'), 'reasons are escaped');
  assert.match(html, /first &#60;b&#62;follow-up&#60;/);
  const skipped = formatHtml({ ...r, residual: undefined, residual_skipped: 'no control' } as ProbeReport);
  assert.match(skipped, /Residual blocking skipped: no control/);
});
