/**
 * @module probe/report
 * Human outputs of a {@link ProbeReport}: a plain-text table (one row per case, then the evasion
 * matrix) and a self-contained HTML page with an inline-SVG throughput-over-time chart per case
 * (no scripts, no external resources).
 */
import type { CaseReport, DirectionReport, ProbeReport, ResidualReport, ResidualRun } from './probe.js';

/** A rate in bit/s with an SI prefix and three significant digits at most: "1.33 Mbit/s", never "1333333 kbit/s". */
export function fmtRate(bps: number | undefined): string {
  if (bps === undefined || !Number.isFinite(bps)) return '-';
  const steps: [number, string][] = [
    [1e12, 'Tbit/s'],
    [1e9, 'Gbit/s'],
    [1e6, 'Mbit/s'],
    [1e3, 'kbit/s'],
  ];
  for (const [f, unit] of steps) {
    const v = bps / f;
    if (Math.abs(v) >= 1) return `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${unit}`;
  }
  return `${Math.round(bps)} bit/s`;
}

/** A duration in ms as "850 ms" or "2.5 s". */
export function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms >= 10_000 ? 0 : 1)} s` : `${Math.round(ms)} ms`;
}

function verdictText(c: {
  verdict: string;
  blocking?: string;
  behaviour?: string;
  rate_bps?: number;
}): string {
  if (c.verdict === 'blocked') return `blocked/${c.blocking}${c.behaviour ? ` (${c.behaviour})` : ''}`;
  if (c.verdict === 'throttled') return `throttled ${fmtRate(c.rate_bps)}`;
  return c.verdict;
}

function pad(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]))).join('  ')).join('\n');
}

export function formatTable(r: ProbeReport): string {
  const out: string[] = [];
  out.push(`probe ${r.name} via ${r.server} (control ${r.control}, scrambled ${r.scrambled})`);
  out.push(`verdict: ${verdictText(r)} — ${r.reason}`);
  if (r.quic) out.push(`quic:    ${verdictText(r.quic)} — ${r.quic.reason}`);
  out.push('');
  const rows = [['case', 'proto', 'sni', 'verdict', 'down', 'up', 'ttfb', 'runs']];
  for (const c of r.cases) {
    const ttfb = c.runs.map((x) => x.ttfb_ms).filter((x): x is number => x !== null);
    rows.push([
      c.id,
      c.proto,
      c.sni ?? '(none)',
      verdictText(c),
      fmtRate(c.down_bps),
      fmtRate(c.up_bps),
      ttfb.length ? `${Math.min(...ttfb)} ms` : '-',
      `${c.runs.length}`,
    ]);
  }
  out.push(pad(rows));
  if (r.evasions) {
    out.push('');
    const ev = [['evasion', 'outcome', 'verdict', 'what']];
    for (const e of r.evasions)
      ev.push([
        e.technique,
        e.outcome,
        e.behaviour ? `${e.verdict} (${e.behaviour})` : e.verdict,
        e.description,
      ]);
    out.push(pad(ev));
  } else if (r.evasions_skipped) {
    out.push('', `evasions: skipped — ${r.evasions_skipped}`);
  }
  if (r.idle) {
    out.push('');
    const rows2 = [['idle', 'state', 'before', 'after']];
    for (const i of r.idle)
      rows2.push([
        `${i.idle_s} s`,
        i.state,
        `${i.before.class} ${fmtRate(i.before.rate_bps ?? undefined)}`,
        i.after ? `${i.after.class} ${fmtRate(i.after.rate_bps ?? undefined)}` : '(connection lost)',
      ]);
    out.push(pad(rows2));
  } else if (r.idle_skipped) out.push('', `idle probes: skipped — ${r.idle_skipped}`);
  if (r.residual) out.push('', `residual blocking: ${residualSummary(r.residual)} — ${r.residual.reason}`);
  else if (r.residual_skipped) out.push('', `residual blocking: skipped — ${r.residual_skipped}`);
  if (r.locate) {
    const l = r.locate;
    out.push(
      '',
      `locate (udp): ${l.first_ttl !== null ? `first effective trigger TTL ${l.first_ttl}` : 'not located'}${l.note ? ` — ${l.note}` : ''}`,
    );
    for (const x of l.runs) out.push(`  ttl ${x.ttl}: ${x.class} — ${x.reason}`);
  }
  return out.join('\n') + '\n';
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Throughput over time (bit/s per interval) of one direction, from its cumulative timeline. */
export function throughputSeries(d: DirectionReport): [number, number][] {
  const out: [number, number][] = [];
  const tl = d.timeline;
  for (let i = 1; i < tl.length; i++) {
    const dt = tl[i][0] - tl[i - 1][0];
    if (dt <= 0) continue;
    out.push([tl[i][0], ((tl[i][1] - tl[i - 1][1]) * 8 * 1000) / dt]);
  }
  return out;
}

/**
 * The points to draw for one direction: its per-interval throughput, or — for a run too fast to have
 * two samples — its average rate held from 0 to its duration, so a fast run is not an empty chart.
 */
export function chartPoints(d: DirectionReport): [number, number][] {
  const pts = throughputSeries(d);
  if (pts.length >= 2) return pts;
  const end = Math.max(d.duration_ms, pts[0]?.[0] ?? 0);
  if (end <= 0 || d.bytes <= 0) return pts;
  const avg = pts[0]?.[1] ?? (d.bytes * 8 * 1000) / end;
  return [
    [0, avg],
    [end, avg],
  ];
}

/** Left margin of the chart: wide enough for the longest y label ("999 Mbit/s" at 10 px ≈ 6 px a character). */
export const CHART_LEFT = 84;

/** One case's throughput chart as inline SVG; series told apart by line style and a legend, not colour only. */
export function throughputChart(c: CaseReport): string {
  const W = 600;
  const H = 180;
  const L = CHART_LEFT;
  const B = 40;
  const series: { name: string; color: string; dash: string; pts: [number, number][] }[] = [];
  c.runs.forEach((run, i) => {
    if (run.down)
      series.push({ name: `down #${i + 1}`, color: '#1f6fb2', dash: '', pts: chartPoints(run.down) });
    if (run.up)
      series.push({ name: `up #${i + 1}`, color: '#c0561b', dash: '5 3', pts: chartPoints(run.up) });
  });
  const drawn = series.filter((s) => s.pts.length > 0);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="throughput of ${esc(c.id)}">`,
  );
  if (drawn.length === 0) {
    parts.push(
      `<text x="10" y="${H / 2}" font-size="12">no throughput data: no bytes were transferred in this case</text></svg>`,
    );
    return parts.join('');
  }
  const tMax = Math.max(100, ...drawn.flatMap((s) => s.pts.map((p) => p[0])));
  const yMax = Math.max(400_000, ...drawn.flatMap((s) => s.pts.map((p) => p[1]))) * 1.05;
  const x = (t: number) => L + ((W - L - 10) * t) / tMax;
  const y = (v: number) => H - B - ((H - B - 10) * Math.min(v, yMax)) / yMax;
  parts.push(
    `<rect x="${L}" y="10" width="${W - L - 10}" height="${H - B - 10}" fill="#fafafa" stroke="#ccc"/>`,
  );
  for (const th of [300_000, 1_000_000]) {
    if (th < yMax)
      parts.push(
        `<line x1="${L}" x2="${W - 10}" y1="${y(th)}" y2="${y(th)}" stroke="#999" stroke-dasharray="1 3"/><text x="${W - 12}" y="${y(th) - 2}" font-size="9" text-anchor="end" fill="#555">${fmtRate(th)}</text>`,
      );
  }
  for (const f of [0, 0.5, 1])
    parts.push(
      `<text x="${L - 4}" y="${y(yMax * f) + 4}" font-size="10" text-anchor="end">${esc(fmtRate(yMax * f))}</text>`,
    );
  parts.push(`<text x="${L}" y="${H - B + 14}" font-size="10">0</text>`);
  parts.push(`<text x="${W - 10}" y="${H - B + 14}" font-size="10" text-anchor="end">${fmtMs(tMax)}</text>`);
  parts.push(
    `<text x="${(L + W) / 2}" y="${H - B + 14}" font-size="10" text-anchor="middle">time after trigger</text>`,
  );
  let lx = L;
  for (const s of drawn) {
    const d = s.pts.map(([t, v], i) => `${i ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    parts.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.5" stroke-dasharray="${s.dash}" opacity="0.85"><title>${esc(s.name)}</title></path>`,
    );
    parts.push(
      `<line x1="${lx}" x2="${lx + 18}" y1="${H - 8}" y2="${H - 8}" stroke="${s.color}" stroke-width="2" stroke-dasharray="${s.dash}"/><text x="${lx + 22}" y="${H - 4}" font-size="10">${esc(s.name)}</text>`,
    );
    lx += 90;
  }
  parts.push('</svg>');
  return parts.join('');
}

/** One line: state, how long, what it keys on. */
function residualSummary(x: ResidualReport): string {
  const parts: string[] = [x.state];
  if (x.state === 'residual')
    parts.push(
      x.lasted_ms === null ? `still on after ${fmtMs(x.bound_ms)}` : `lasted ≤ ${fmtMs(x.lasted_ms)}`,
      x.key ? `keyed on the ${x.key}` : 'key unknown',
    );
  return parts.join(', ');
}

/** The residual-blocking measurement as an HTML section (trigger, each follow-up, the other-port check). */
function residualHtml(r: ProbeReport): string {
  const x = r.residual;
  if (!x) return r.residual_skipped ? `<p>Residual blocking skipped: ${esc(r.residual_skipped)}</p>` : '';
  const row = (what: string, a: ResidualRun) =>
    `<tr><td>${esc(what)}</td><td>+${esc(fmtMs(a.at_ms))}</td><td class="${esc(a.class)}">${esc(a.behaviour ? `${a.class} (${a.behaviour})` : a.class)}</td><td>${esc(a.reason)}</td></tr>`;
  return `<h2>Residual blocking</h2>
<p class="v ${x.state === 'residual' ? 'blocked' : x.state === 'none' ? 'ok' : 'inconclusive'}">${esc(residualSummary(x))} — ${esc(x.reason)}</p>
<table><caption>Trigger, then follow-ups with the control name (bounded at ${esc(fmtMs(x.bound_ms))})</caption><tr><th>connection</th><th>after the trigger</th><th>result</th><th>what</th></tr>${[
    row('trigger', x.trigger),
    ...x.followups.map((f, i) => row(`follow-up ${i + 1}`, f)),
    ...(x.other_port ? [row('same follow-up, other source port', x.other_port)] : []),
  ].join('')}</table>`;
}

export function formatHtml(r: ProbeReport): string {
  const rows = r.cases
    .map(
      (c) => `<section><h3>${esc(c.id)} <small>${esc(c.proto)} · SNI ${esc(c.sni ?? '(none)')}</small></h3>
<p class="v ${esc(c.verdict)}">${esc(verdictText(c))} — ${esc(c.reason)}</p>
<p>${esc(c.description)}. down ${esc(fmtRate(c.down_bps))}, up ${esc(fmtRate(c.up_bps))}; runs: ${c.runs
        .map((x) => esc(x.class))
        .join(', ')}</p>
${throughputChart(c)}</section>`,
    )
    .join('\n');
  const ev = r.evasions
    ? `<h2>Evasion matrix</h2><table><tr><th>technique</th><th>outcome</th><th>verdict</th><th>what</th></tr>${r.evasions
        .map(
          (e) =>
            `<tr><td>${esc(e.technique)}</td><td class="${esc(e.outcome)}">${esc(e.outcome)}</td><td>${esc(e.behaviour ? `${e.verdict} (${e.behaviour})` : e.verdict)}</td><td>${esc(e.description)}</td></tr>`,
        )
        .join('')}</table>`
    : r.evasions_skipped
      ? `<p>Evasion matrix skipped: ${esc(r.evasions_skipped)}</p>`
      : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chokepoint probe: ${esc(r.name)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:64em}
.v{font-weight:600}.ok{color:#176b2c}.throttled{color:#a35a00}.blocked{color:#a31515}.inconclusive,.error{color:#555}
.bypass{color:#176b2c}.no-bypass{color:#a31515}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 8px;text-align:left}
section{margin:1.5em 0;border-top:1px solid #eee}
</style></head><body>
<h1>Probe of ${esc(r.name)}</h1>
<p>Server ${esc(r.server)}, control ${esc(r.control)}, scrambled ${esc(r.scrambled)}, started ${esc(r.started)}, ${r.duration_ms} ms.</p>
<p class="v ${esc(r.verdict)}">TCP/TLS: ${esc(verdictText(r))} — ${esc(r.reason)}</p>
${r.quic ? `<p class="v ${esc(r.quic.verdict)}">QUIC: ${esc(verdictText(r.quic))} — ${esc(r.quic.reason)}</p>` : ''}
<p>Thresholds: ok ≥ ${fmtRate(r.thresholds.okMinBps)}, throttled &lt; ${fmtRate(r.thresholds.throttledMaxBps)} while the baseline reaches ≥ ${fmtRate(r.thresholds.okMinBps)}. Charts: throughput per 50 ms interval after the trigger (download solid, upload dashed).</p>
${ev}
${residualHtml(r)}
<h2>Cases</h2>
${rows}
</body></html>
`;
}
