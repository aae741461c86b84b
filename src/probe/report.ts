/**
 * @module probe/report
 * Human outputs of a {@link ProbeReport}: a plain-text table (one row per case, then the evasion
 * matrix) and a self-contained HTML page with an inline-SVG throughput-over-time chart per case
 * (no scripts, no external resources).
 */
import type { CaseReport, DirectionReport, ProbeReport } from './probe.js';

export function fmtRate(bps: number | undefined): string {
  if (bps === undefined || !Number.isFinite(bps)) return '-';
  if (bps >= 1e9) return `${(bps / 1e9).toFixed(2)} Gbit/s`;
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(1)} Mbit/s`;
  return `${(bps / 1e3).toFixed(1)} kbit/s`;
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

function chart(c: CaseReport): string {
  const W = 560;
  const H = 160;
  const L = 60;
  const B = 24;
  const series: { name: string; color: string; pts: [number, number][] }[] = [];
  c.runs.forEach((run, i) => {
    if (run.down) series.push({ name: `down #${i + 1}`, color: '#1f6fb2', pts: throughputSeries(run.down) });
    if (run.up) series.push({ name: `up #${i + 1}`, color: '#c0561b', pts: throughputSeries(run.up) });
  });
  const tMax = Math.max(100, ...series.flatMap((s) => s.pts.map((p) => p[0])));
  const yMax = Math.max(400_000, ...series.flatMap((s) => s.pts.map((p) => p[1])));
  // log-ish scale would hide the gap; use linear, but cap at 20x the throttle threshold when mixed
  const x = (t: number) => L + ((W - L - 10) * t) / tMax;
  const y = (v: number) => H - B - ((H - B - 10) * Math.min(v, yMax)) / yMax;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="throughput of ${esc(c.id)}">`,
  );
  parts.push(
    `<rect x="${L}" y="10" width="${W - L - 10}" height="${H - B - 10}" fill="#fafafa" stroke="#ccc"/>`,
  );
  for (const th of [300_000, 1_000_000]) {
    if (th < yMax)
      parts.push(
        `<line x1="${L}" x2="${W - 10}" y1="${y(th)}" y2="${y(th)}" stroke="#999" stroke-dasharray="4 3"/><text x="${W - 12}" y="${y(th) - 2}" font-size="9" text-anchor="end" fill="#777">${fmtRate(th)}</text>`,
      );
  }
  parts.push(`<text x="${L - 4}" y="16" font-size="10" text-anchor="end">${esc(fmtRate(yMax))}</text>`);
  parts.push(`<text x="${L - 4}" y="${H - B}" font-size="10" text-anchor="end">0</text>`);
  parts.push(`<text x="${W - 10}" y="${H - 6}" font-size="10" text-anchor="end">${tMax} ms</text>`);
  parts.push(`<text x="${L}" y="${H - 6}" font-size="10">0 ms after trigger</text>`);
  for (const s of series) {
    if (s.pts.length === 0) continue;
    const d = s.pts.map(([t, v], i) => `${i ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    parts.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.5" opacity="0.8"><title>${esc(s.name)}</title></path>`,
    );
  }
  parts.push('</svg>');
  return parts.join('');
}

export function formatHtml(r: ProbeReport): string {
  const rows = r.cases
    .map(
      (c) => `<section><h3>${esc(c.id)} <small>${esc(c.proto)} · SNI ${esc(c.sni ?? '(none)')}</small></h3>
<p class="v ${esc(c.verdict)}">${esc(verdictText(c))} — ${esc(c.reason)}</p>
<p>${esc(c.description)}. down ${esc(fmtRate(c.down_bps))}, up ${esc(fmtRate(c.up_bps))}; runs: ${c.runs
        .map((x) => esc(x.class))
        .join(', ')}</p>
${chart(c)}</section>`,
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
<p>Thresholds: ok ≥ ${fmtRate(r.thresholds.okMinBps)}, throttled &lt; ${fmtRate(r.thresholds.throttledMaxBps)} while the baseline reaches ≥ ${fmtRate(r.thresholds.okMinBps)}. Charts: throughput per 50 ms interval after the trigger (blue download, orange upload).</p>
${ev}
<h2>Cases</h2>
${rows}
</body></html>
`;
}
