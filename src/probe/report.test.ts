/**
 * @module probe/report.test
 * The probe's HTML chart with hand-made cases: readable rate units, a fast run (one sample) drawn
 * rather than an empty chart, a case without bytes saying so, and y labels that fit the margin.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHART_LEFT, fmtMs, fmtRate, throughputChart } from './report.js';
import type { CaseReport, DirectionReport } from './probe.js';

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
