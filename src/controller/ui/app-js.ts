/**
 * @module controller/ui/app-js
 * The dashboard's browser script as one ES module (hand-written, no framework, no build step), served
 * at `/ui/app.js`. It builds the page from the `/v1` API with DOM text nodes only (no innerHTML), so
 * registry text renders inert; it sends the session's CSRF token on every state change; it shows a
 * control only when the signed-in role may use it (the API checks again); charts are hand-drawn SVG
 * images named by a summary of their values, with values as text and a data table with each chart,
 * so nothing is told by colour alone.
 */
export const APP_JS = String.raw`// Chokepoint dashboard (served by the controller; no framework, no build step).
// Every value from the API is put into the page as a text node or an attribute value set through
// setAttribute on a fixed list of attributes — never as markup — so registry text is inert.
const state = { me: null, view: '', timer: null, history: [] };

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (['class', 'id', 'for', 'type', 'name', 'value', 'href', 'role', 'scope', 'colspan', 'min', 'max',
      'placeholder', 'required', 'aria-label', 'aria-live', 'aria-current', 'aria-describedby', 'accept',
      'data-testid', 'viewBox', 'width', 'height', 'x', 'y', 'x1', 'x2', 'y1', 'y2', 'points', 'fill',
      'stroke', 'stroke-width', 'stroke-dasharray', 'text-anchor', 'focusable', 'tabindex'].includes(k))
      el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of kids.flat()) if (c !== null && c !== undefined && c !== false)
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}
const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of kids) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// ---- readable numbers with units
function num(n) { return n === null || n === undefined ? '—' : Number(n).toLocaleString('en'); }
function si(n, unit) {
  if (n === null || n === undefined || !isFinite(n)) return '—';
  const p = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  for (const [f, pre] of p) if (Math.abs(n) >= f) return (n / f).toFixed(n / f >= 100 ? 0 : n / f >= 10 ? 1 : 2) + ' ' + pre + unit;
  return (Math.round(n * 100) / 100) + ' ' + unit;
}
function rate(bps) { return si(bps, 'bit/s'); }
function when(ms) { return ms ? new Date(Number(ms)).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : '—'; }
function ago(ms) {
  if (!ms) return '—';
  const d = Math.max(0, (Date.now() - Number(ms)) / 1000);
  return d < 90 ? Math.round(d) + ' s ago' : d < 5400 ? Math.round(d / 60) + ' min ago' : Math.round(d / 3600) + ' h ago';
}
function mark(ok, text) { return h('span', { class: ok ? 'ok' : 'bad' }, text); }

// ---- API
const RANK = { node: 0, viewer: 1, editor: 2, approver: 3, admin: 4 };
function can(role) { return state.me && RANK[state.me.role] >= RANK[role]; }
async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (method !== 'GET') headers['x-csrf-token'] = state.me ? state.me.csrf : '';
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = { error: { message: text } }; }
  if (r.status === 401 && path !== '/ui/session') { showSignin('Your session ended; sign in again.'); }
  if (!r.ok) { const e = new Error((json && json.error && json.error.message) || ('HTTP ' + r.status)); e.status = r.status; e.body = json; throw e; }
  return json;
}
function say(msg) { document.getElementById('status').textContent = msg; }
async function act(label, fn) {
  try { await fn(); say(label + ': done'); await render(); }
  catch (e) { say(label + ' refused: ' + e.message); }
}

// ---- tables and charts
function table(caption, cols, rows) {
  return h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c[0])))),
    h('tbody', {}, rows.length ? rows.map((r) => h('tr', {}, cols.map((c) => {
      const v = c[1](r);
      return h('td', { class: c[2] === 'num' ? 'num' : null }, v);
    }))) : h('tr', {}, h('td', { colspan: cols.length }, 'none'))));
}
// Charts are hand-made SVG, not a charting library (docs/CONTROLLER.md says why): each is an image
// whose accessible name is its title plus a summary of its values, each bar and line carries its
// value or label as text (nothing told by colour alone), and a data table goes with every chart,
// either in the figure (a "Data" disclosure) or beside it on the page.
function dataTable(caption, cols, rows) {
  return h('details', {}, h('summary', {}, 'Data: ' + caption), table(caption, cols, rows));
}
function bars(title, items, fmt) {
  const w = 520, rowH = 22, left = 150, max = Math.max(1, ...items.map((i) => i[1]));
  const summary = title + ': ' + items.map(([label, v]) => label + ' ' + fmt(v)).join(', ');
  const svg = s('svg', { viewBox: '0 0 ' + w + ' ' + (items.length * rowH + 10), width: w, height: items.length * rowH + 10, role: 'img', 'aria-label': summary });
  items.forEach(([label, v], i) => {
    const bw = Math.max(1, (w - left - 110) * v / max);
    svg.append(s('text', { x: left - 6, y: i * rowH + 15, 'text-anchor': 'end' }, label));
    svg.append(s('rect', { x: left, y: i * rowH + 4, width: bw, height: rowH - 8, fill: '#3a6ea5' }));
    svg.append(s('text', { x: left + bw + 6, y: i * rowH + 15 }, fmt(v)));
  });
  return h('figure', {}, h('figcaption', {}, title), svg,
    dataTable(title, [['Label', (x) => x[0]], ['Value', (x) => fmt(x[1]), 'num']], items));
}
// A line chart of series [{label, points: [[t, v]]}] with labelled axes inside the drawing area;
// dashed/solid strokes and end labels tell series apart without colour. Threshold: optional line.
// withTable: add the points as a data table (charts whose data is not already in a table beside them).
function lines(title, series, fmt, threshold, withTable) {
  const w = 640, ht = 220, l = 80, r = 120, t = 10, b = 30;
  const pts = series.flatMap((x) => x.points);
  const summary = title + ': ' + series.filter((x) => x.points.length).map((x) => x.label + ' latest ' + fmt(x.points[x.points.length - 1][1]) + ', peak ' + fmt(Math.max(...x.points.map((p) => p[1])))).join('; ') +
    (threshold !== undefined ? '; threshold ' + fmt(threshold) : '');
  const svg = s('svg', { viewBox: '0 0 ' + w + ' ' + ht, width: w, height: ht, role: 'img', 'aria-label': summary });
  const data = withTable ? dataTable(title, [['Time', (p) => when(p[0])], ...series.map((x, i) => [x.label, (p) => p[1][i] === undefined ? '' : fmt(p[1][i]), 'num'])],
    [...new Set(pts.map((p) => p[0]))].sort((a, b2) => b2 - a).slice(0, 30).map((at) => [at, series.map((x) => { const q = x.points.find((p) => p[0] === at); return q ? q[1] : undefined; })])) : null;
  if (pts.length < 2 && !(threshold !== undefined && pts.length)) {
    return h('figure', {}, h('figcaption', {}, title), h('p', {}, pts.length ? 'one sample so far: ' + fmt(pts[0][1]) : 'no samples yet'), data);
  }
  const t0 = Math.min(...pts.map((p) => p[0])), t1 = Math.max(t0 + 1, ...pts.map((p) => p[0]));
  const vmax = (Math.max(threshold || 0, ...pts.map((p) => p[1])) || 1) * 1.1;
  const X = (x) => l + (w - l - r) * (x - t0) / (t1 - t0), Y = (y) => t + (ht - t - b) * (1 - y / vmax);
  svg.append(s('line', { x1: l, x2: l, y1: t, y2: ht - b, stroke: '#555' }));
  svg.append(s('line', { x1: l, x2: w - r, y1: ht - b, y2: ht - b, stroke: '#555' }));
  for (const f of [0, 0.5, 1]) {
    svg.append(s('text', { x: l - 4, y: Y(vmax * f / 1.1) + 4, 'text-anchor': 'end' }, fmt(vmax * f / 1.1)));
  }
  svg.append(s('text', { x: l, y: ht - 8 }, new Date(t0).toISOString().slice(11, 19)));
  svg.append(s('text', { x: w - r, y: ht - 8, 'text-anchor': 'end' }, new Date(t1).toISOString().slice(11, 19) + ' UTC'));
  const dashes = ['', '6 3', '2 3', '10 4 2 4'];
  const used = [];
  series.forEach((x, i) => {
    if (!x.points.length) return;
    svg.append(s('polyline', { points: x.points.map((p) => X(p[0]) + ',' + Y(p[1])).join(' '), fill: 'none', stroke: '#1d4f7a', 'stroke-width': 2, 'stroke-dasharray': dashes[i % 4] }));
    const last = x.points[x.points.length - 1];
    // end labels of series that end at the same height are stacked, not drawn over each other
    let ly = Y(last[1]) + 4;
    while (used.some((u) => Math.abs(u - ly) < 12)) ly -= 12;
    used.push(ly);
    svg.append(s('text', { x: X(last[0]) + 4, y: ly }, x.label));
  });
  if (threshold !== undefined) {
    svg.append(s('line', { x1: l, x2: w - r, y1: Y(threshold), y2: Y(threshold), stroke: '#a4161a', 'stroke-dasharray': '4 4' }));
    svg.append(s('text', { x: w - r + 4, y: Y(threshold) + 4 }, 'threshold ' + fmt(threshold)));
  }
  return h('figure', {}, h('figcaption', {}, title), svg, data);
}

// ---- pages
const pages = {};
pages.overview = async () => {
  const [n, vs] = await Promise.all([api('GET', '/v1/nodes'), api('GET', '/v1/versions')]);
  const nodes = n.nodes || [];
  const active = vs.versions.find((v) => v.status === 'active');
  const byAction = { allow: 0, log: 0, block: 0, throttle: 0 };
  let failOpen = 0, flows = 0;
  const top = new Map();
  for (const x of nodes) {
    const tr = x.traffic || (x.counters && x.counters.traffic) || null;
    if (!tr) continue;
    flows += tr.flows || 0; failOpen += tr.fail_open || 0;
    for (const k of Object.keys(byAction)) byAction[k] += (tr.by_action && tr.by_action[k]) || 0;
    for (const p of tr.pattern_top || []) { const k = p.rule_id + '\u0000' + p.action + '\u0000' + p.name; top.set(k, (top.get(k) || 0) + p.count); }
  }
  state.history.push([Date.now(), { ...byAction }]);
  if (state.history.length > 720) state.history.shift();
  const alerts = [];
  for (const x of nodes) {
    if (x.drift) alerts.push(h('li', { class: 'warn' }, 'drift: ' + x.name + ' runs bundle ' + num(x.active_version) + ', intended ' + num(x.intended_version !== undefined ? x.intended_version : n.current_bundle)));
    const errs = Array.isArray(x.errors) ? x.errors : x.last_error ? [x.last_error] : [];
    for (const e of errs.slice(0, 3)) alerts.push(h('li', { class: 'bad' }, 'refused bundle on ' + x.name + ': ' + (typeof e === 'string' ? e : JSON.stringify(e))));
  }
  if (failOpen) alerts.push(h('li', { class: 'bad' }, 'fail-open events: ' + num(failOpen)));
  const healthy = nodes.filter((x) => !x.drift && Date.now() - Number(x.last_seen) < 120000).length;
  return [
    h('h2', {}, 'Overview'),
    h('p', { 'data-testid': 'health' }, 'Fleet: ' + num(nodes.length) + ' boxes, ' + num(healthy) + ' current and seen in the last 2 min. Active version: ' + (active ? '#' + active.id : 'none') + '. Current bundle: ' + num(n.current_bundle) + '.'),
    h('h3', {}, 'Alerts'), alerts.length ? h('ul', {}, alerts) : h('p', { class: 'ok' }, 'no alerts'),
    table('Active version per box', [['Box', (x) => x.name], ['Bundle', (x) => num(x.active_version), 'num'], ['Drift', (x) => x.drift ? mark(false, 'drift') : mark(true, 'current')], ['Last seen', (x) => ago(x.last_seen)]], nodes),
    bars('Flows by action (' + num(flows) + ' flows since the counters began)', Object.entries(byAction), (v) => num(v) + ' flows'),
    lines('Verdicts over time (this page, sampled every refresh)', Object.keys(byAction).map((k) => ({ label: k, points: state.history.map((p) => [p[0], p[1][k]]) })), (v) => num(Math.round(v * 10) / 10) + ' flows', undefined, true),
    table('Top pattern matches', [['Rule', (x) => x[0].split('\u0000')[0]], ['Action', (x) => x[0].split('\u0000')[1]], ['Name', (x) => x[0].split('\u0000')[2]], ['Flows', (x) => num(x[1]), 'num']], [...top.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10)),
  ];
};

pages.registry = async (args) => {
  const q = args.get('q') || '', kind = args.get('kind') || '', status = args.get('status') || '', after = args.get('after') || '';
  const why = args.get('why') || '';
  const out = [h('h2', {}, 'Registry')];
  out.push(h('form', { class: 'inline', role: 'search', onsubmit: (e) => { e.preventDefault(); go('registry', { why: e.target.elements.why.value }); } },
    h('label', {}, 'Why is this name treated so? ', h('input', { name: 'why', value: why, placeholder: 'reddit.com', required: true })),
    h('button', { type: 'submit' }, 'Explain')));
  if (why) {
    const w = await api('GET', '/v1/registry/why?name=' + encodeURIComponent(why));
    const d = w.active ? w.active.decision : null;
    out.push(h('section', { 'aria-label': 'explanation', 'data-testid': 'why' },
      h('h3', {}, 'Why: ' + (w.query.name || why)),
      h('p', {}, w.active ? 'Active version #' + w.active.version + ' decides: ' + (d.action || 'allow') + (d.rule_id ? ' (rule ' + d.rule_id + ')' : '') + (d.rate_bps ? ' at ' + rate(d.rate_bps) : '') : 'No active version.'),
      entryTable('Matching entries', w.entries)));
  }
  out.push(h('form', { class: 'inline', role: 'search', onsubmit: (e) => { e.preventDefault(); const f = e.target.elements; go('registry', { q: f.q.value, kind: f.kind.value, status: f.status.value }); } },
    h('label', {}, 'Value contains', h('input', { name: 'q', value: q })),
    h('label', {}, 'Kind', h('select', { name: 'kind' }, ['', 'exact', 'suffix', 'subdomains', 'substring', 'endswith', 'cidr'].map((k) => { const o = h('option', { value: k }, k || 'any'); o.selected = k === kind; return o; }))),
    h('label', {}, 'Status', h('select', { name: 'status' }, ['', 'active', 'retired'].map((k) => { const o = h('option', { value: k }, k || 'any'); o.selected = k === status; return o; }))),
    h('button', { type: 'submit' }, 'Search')));
  const qs = new URLSearchParams({ limit: '50' });
  if (q) qs.set('q', q); if (kind) qs.set('kind', kind); if (status) qs.set('status', status); if (after) qs.set('after', after);
  const t0 = performance.now();
  const r = await api('GET', '/v1/registry/entries?' + qs);
  out.push(entryTable('Entries (' + num(r.entries.length) + ' on this page, answered in ' + Math.round(performance.now() - t0) + ' ms)', r.entries));
  if (r.next !== null) out.push(h('p', {}, h('a', { href: '#registry?' + new URLSearchParams({ q, kind, status, after: String(r.next) }) }, 'Next page')));
  if (args.get('entry')) out.push(...await entryHistory(args.get('entry')));
  return out;
};
function entryTable(caption, rows) {
  return table(caption, [
    ['Entry', (e) => h('a', { href: '#registry?entry=' + e.id }, e.kind + ' ' + e.value)],
    ['Action', (e) => e.action + (e.rate_bps ? ' ' + rate(e.rate_bps) : '')],
    ['Authority', (e) => e.authority], ['Reference', (e) => e.reference], ['Legal basis', (e) => e.legal_basis],
    ['Decided', (e) => e.decided], ['Requested by', (e) => e.requested_by], ['Source', (e) => e.source],
    ['Since version', (e) => e.since_version === undefined ? '' : e.since_version === null ? 'not yet active' : '#' + e.since_version],
  ], rows || []);
}
async function entryHistory(id) {
  const [e, a] = await Promise.all([api('GET', '/v1/registry/entries/' + encodeURIComponent(id)), api('GET', '/v1/audit?target=' + encodeURIComponent('entry:' + id))]);
  return [h('h3', {}, 'History of entry ' + e.kind + ' ' + e.value), auditTable(a.rows)];
}

pages.versions = async (args) => {
  if (args.get('id')) return versionPage(args.get('id'));
  const vs = await api('GET', '/v1/versions');
  return [h('h2', {}, 'Versions'), table('Versions, newest first', [
    ['Version', (v) => h('a', { href: '#versions?id=' + v.id }, '#' + v.id)], ['Status', (v) => v.status], ['Author', (v) => v.author],
    ['Origin', (v) => v.origin], ['Lint', (v) => (v.errors ? mark(false, num(v.errors) + ' errors') : mark(true, '0 errors')) ], ['Warnings', (v) => num(v.warnings), 'num'],
    ['Approvals', (v) => v.approvals.map((a) => a.user).join(', ')], ['Note', (v) => v.note], ['Created', (v) => when(v.created_at)]], vs.versions)];
};
async function versionPage(id) {
  const v = await api('GET', '/v1/versions/' + encodeURIComponent(id));
  let shadow = null;
  try { shadow = await api('GET', '/v1/versions/' + encodeURIComponent(id) + '/shadow'); } catch { shadow = null; }
  const out = [h('h2', {}, 'Version #' + v.id + ' — ' + v.status),
    h('p', {}, 'By ' + v.author + ', ' + v.origin + '. ' + (v.note || '')),
    h('p', {}, 'Approvals: ' + (v.approvals.length ? v.approvals.map((a) => a.user + ' at ' + when(a.at)).join('; ') : 'none')),
    v.override ? h('p', { class: 'warn' }, 'Findings overridden by ' + v.override.by + ': ' + v.override.reason) : null,
    v.rejected_reason ? h('p', { class: 'bad' }, 'Rejected: ' + v.rejected_reason) : null];
  const controls = h('form', { class: 'inline', 'aria-label': 'Decisions', onsubmit: (e) => e.preventDefault() });
  const reason = h('input', { id: 'reason', name: 'reason' });
  controls.append(h('label', { for: 'reason' }, 'Reason (reject / override)'), reason);
  if (can('approver') && v.status === 'submitted') controls.append(h('button', { type: 'button', onclick: () => act('approve', () => api('POST', '/v1/versions/' + v.id + '/approve')) }, 'Approve'));
  if (can('approver') && (v.status === 'submitted' || v.status === 'approved')) controls.append(h('button', { type: 'button', onclick: () => act('reject', () => api('POST', '/v1/versions/' + v.id + '/reject', { reason: reason.value })) }, 'Reject'));
  if (can('admin') && v.status === 'submitted' && v.errors) controls.append(h('button', { type: 'button', onclick: () => act('override', () => api('POST', '/v1/versions/' + v.id + '/override', { reason: reason.value })) }, 'Override findings'));
  if (can('approver') && v.status === 'approved') {
    const plan = h('textarea', { id: 'plan', name: 'plan', placeholder: 'default plan' });
    controls.append(h('label', { for: 'plan' }, 'Rollout plan (YAML or JSON, optional)'), plan);
    controls.append(h('button', { type: 'button', onclick: () => act('start rollout', async () => { const r = await api('POST', '/v1/rollouts', plan.value.trim() ? { version_id: v.id, plan: plan.value } : { version_id: v.id }); location.hash = '#rollouts?id=' + r.id; }) }, 'Start rollout'));
    controls.append(h('button', { type: 'button', onclick: () => act('publish', () => api('POST', '/v1/versions/' + v.id + '/publish')) }, 'Publish to all now'));
  }
  if (controls.querySelector('button')) out.push(controls);
  const findings = v.findings || [];
  out.push(table('Lint findings and blast radius (' + num(findings.length) + ')', [
    ['Severity', (f) => f.severity === 'error' ? mark(false, 'error') : h('span', { class: 'warn' }, f.severity || '')],
    ['Code', (f) => f.code], ['Rule', (f) => f.rule_id || ''], ['Message', (f) => f.message],
    ['Names hit', (f) => f.count === undefined ? '' : num(f.count), 'num'], ['Examples', (f) => (f.examples || []).slice(0, 8).join(', ')]], findings));
  if (v.diff) {
    const d = v.diff;
    out.push(h('h3', {}, 'Diff against the active version'),
      h('p', {}, num(d.changed) + ' of ' + num(d.names) + ' reference names change their verdict.'),
      table('Changed verdicts', [['From', (g) => g.from.action + (g.from.rule_id ? ' (' + g.from.rule_id + ')' : '')], ['To', (g) => g.to.action + (g.to.rule_id ? ' (' + g.to.rule_id + ')' : '')], ['Names', (g) => num(g.count), 'num'], ['Examples', (g) => (g.names || []).slice(0, 12).join(', ')]], d.groups || []));
  }
  out.push(h('h3', {}, 'Shadow results'), shadow ? h('pre', {}, JSON.stringify(shadow, null, 2)) : h('p', {}, 'none reported'));
  return out;
}

pages.rollouts = async (args) => {
  const out = [h('h2', {}, 'Rollouts')];
  if (can('approver')) out.push(emergencyForm());
  let list;
  try { list = await api('GET', '/v1/rollouts'); } catch (e) { out.push(h('p', {}, 'Rollouts are not available: ' + e.message)); return out; }
  const rs = list.rollouts || [];
  out.push(table('Rollouts', [['Rollout', (r) => h('a', { href: '#rollouts?id=' + r.id }, '#' + r.id)], ['Version', (r) => '#' + r.version_id], ['State', (r) => stateMark(r.state)], ['Reason', (r) => r.reason || '']], rs));
  const id = args.get('id');
  if (id) {
    const r = await api('GET', '/v1/rollouts/' + encodeURIComponent(id));
    out.push(h('h3', { 'data-testid': 'rollout-title' }, 'Rollout #' + r.id + ': ' + r.state), r.reason ? h('p', { 'data-testid': 'rollout-reason', class: r.state === 'rolled_back' || r.state === 'failed' ? 'bad' : null }, 'Reason: ' + r.reason) : null);
    const live = r.state === 'running' || r.state === 'paused';
    if (live && can('approver')) {
      // abort and rollback record the reason typed here with the rollout (and in the audit log)
      const why = h('input', { id: 'rollout-reason-input', name: 'reason' });
      const ctl = h('div', { role: 'group', 'aria-label': 'Rollout controls', class: 'inline' });
      const btn = (verb, ok, body) => ok ? ctl.append(h('button', { type: 'button', onclick: () => act(verb, () => api('POST', '/v1/rollouts/' + r.id + '/' + verb, body ? body() : undefined)) }, verb)) : null;
      btn('pause', r.state === 'running'); btn('resume', r.state === 'paused');
      ctl.append(h('label', { for: 'rollout-reason-input' }, 'Reason (abort / rollback)'), why);
      btn('abort', true, () => ({ reason: why.value })); btn('rollback', true, () => ({ reason: why.value }));
      out.push(ctl);
    }
    const stages = r.stages || [];
    out.push(table('Stages', [['Stage', (st) => st.name], ['State', (st) => stateMark(st.state)], ['Nodes', (st) => (st.nodes || []).join(', ')], ['Bake', (st) => st.bake_s + ' s'], ['Started', (st) => st.started ? when(st.started) : ''], ['Ended', (st) => st.ended ? when(st.ended) : '']], stages));
    const samples = r.samples || [];
    const metrics = [...new Set(samples.map((x) => x.metric))];
    for (const m of metrics) {
      const ms = samples.filter((x) => x.metric === m);
      const nodesOf = [...new Set(ms.map((x) => x.node))];
      out.push(lines('Metric ' + m + ' against its threshold', nodesOf.map((nd) => ({ label: nd, points: ms.filter((x) => x.node === nd).map((x) => [typeof x.at === 'number' ? x.at : Date.parse(x.at), Number(x.value)]) })), (v) => String(Math.round(v * 1000) / 1000), Number(ms[0].threshold)));
    }
    out.push(table('Analysis samples', [['At', (x) => typeof x.at === 'number' ? when(x.at) : x.at], ['Node', (x) => x.node], ['Metric', (x) => x.metric], ['Value', (x) => num(x.value), 'num'], ['Baseline', (x) => num(x.baseline), 'num'], ['Threshold', (x) => num(x.threshold), 'num'], ['Result', (x) => mark(x.pass, x.pass ? 'pass' : 'FAIL')], ['Names', (x) => (x.names || []).slice(0, 5).join(', ')]], samples.slice(-200)));
  }
  return out;
};
// The kill switch (POST /v1/emergency-stop, approver and up) takes two steps: a reason and the
// button, then an explicit confirmation that says what happens; Cancel (or Escape) sends nothing.
function emergencyForm() {
  const reason = h('input', { id: 'estop-reason', name: 'reason', required: true });
  const confirmBox = h('div', { role: 'alertdialog', 'aria-label': 'Confirm emergency stop', 'aria-describedby': 'estop-what' });
  confirmBox.hidden = true;
  const start = h('button', { type: 'submit' }, 'Emergency stop');
  const cancel = () => { confirmBox.hidden = true; start.disabled = false; reason.disabled = false; start.focus(); say('emergency stop cancelled'); };
  confirmBox.append(
    h('p', { id: 'estop-what', class: 'warn' }, 'This publishes an allow-all policy to every box at once, skipping approval, and ends any running rollout.'),
    h('button', { type: 'button', onclick: () => act('emergency stop', () => api('POST', '/v1/emergency-stop', { reason: reason.value })) }, 'Confirm emergency stop'),
    h('button', { type: 'button', onclick: cancel }, 'Cancel'));
  confirmBox.addEventListener('keydown', (e) => { if (e.key === 'Escape') cancel(); });
  const form = h('form', { class: 'inline', 'aria-label': 'Emergency stop', onsubmit: (e) => {
    e.preventDefault();
    confirmBox.hidden = false; start.disabled = true; reason.disabled = true;
    confirmBox.querySelector('button').focus();
  } }, h('label', { for: 'estop-reason' }, 'Reason for the emergency stop'), reason, start, confirmBox);
  return form;
}
function stateMark(st) {
  if (st === 'succeeded' || st === 'done' || st === 'passed') return mark(true, st);
  if (st === 'failed' || st === 'rolled_back' || st === 'aborted') return mark(false, st);
  return h('span', {}, st || '');
}

pages.nodes = async () => {
  const n = await api('GET', '/v1/nodes');
  return [h('h2', {}, 'Nodes'), table('Boxes', [['Box', (x) => x.name], ['Labels', (x) => JSON.stringify(x.labels || {})], ['Active bundle', (x) => num(x.active_version), 'num'], ['Intended', (x) => num(x.intended_version !== undefined ? x.intended_version : n.current_bundle), 'num'], ['Drift', (x) => x.drift ? mark(false, 'drift') : mark(true, 'current')], ['Last seen', (x) => ago(x.last_seen)], ['Last error', (x) => { const e = x.last_error || (Array.isArray(x.errors) && x.errors[x.errors.length - 1]); return e ? (typeof e === 'string' ? e : JSON.stringify(e)) : ''; }], ['Address', (x) => x.addr || '']], n.nodes || [])];
};

function auditTable(rows) {
  return table('Audit rows', [['Seq', (r) => num(r.seq), 'num'], ['At', (r) => when(r.at)], ['Actor', (r) => r.actor], ['Action', (r) => r.action], ['Target', (r) => r.target || ''], ['After', (r) => r.after || '']], rows);
}
pages.audit = async (args) => {
  const after = Number(args.get('after') || 0);
  const [v, a] = await Promise.all([api('GET', '/v1/audit/verify'), api('GET', '/v1/audit?limit=100&after=' + after)]);
  return [h('h2', {}, 'Audit log'),
    h('p', { 'data-testid': 'chain' }, v.ok ? mark(true, 'Chain verified: ' + num(v.rows) + ' rows, head ' + v.head.hash.slice(0, 16) + '…') : mark(false, 'Chain broken at row ' + (v.bad ? v.bad.seq : '?') + ': ' + (v.bad ? v.bad.reason : ''))),
    auditTable(a.rows), a.next ? h('p', {}, h('a', { href: '#audit?after=' + a.next }, 'Next page')) : null];
};

pages.takedowns = async () => {
  const t = await api('GET', '/v1/takedowns');
  return [h('h2', {}, 'Takedown requests'), table('Requests', [['Id', (x) => '#' + x.id], ['Status', (x) => x.status], ['Authority', (x) => x.authority], ['Reference', (x) => x.reference], ['Legal basis', (x) => x.legal_basis], ['Requested by', (x) => x.requested_by], ['Received', (x) => when(x.received_at)], ['Note', (x) => x.note || '']], t.takedowns || t.requests || [])];
};

pages.probe = async () => {
  const input = h('input', { id: 'probe-file', type: 'file', accept: 'application/json,.json' });
  const res = h('div', { 'aria-live': 'polite' });
  input.addEventListener('change', async () => {
    res.replaceChildren();
    try { res.append(...probeView(JSON.parse(await input.files[0].text()))); } catch (e) { res.append(h('p', { class: 'bad', role: 'alert' }, 'Not a probe report: ' + e.message)); }
  });
  return [h('h2', {}, 'Probe results'), h('p', {}, h('label', { for: 'probe-file' }, 'Probe JSON report (chokepoint probe --json)'), ' ', input), res];
};
function probeView(rep) {
  if (!rep || !Array.isArray(rep.cases)) throw new Error('no "cases" list (expected chokepoint probe --format json output)');
  const out = [h('p', {}, 'Probe of ' + rep.name + ' via ' + rep.server + ', started ' + rep.started + ', ' + num(rep.duration_ms) + ' ms. Verdict: ' + rep.verdict + ' — ' + (rep.reason || ''))];
  out.push(table('Cases', [['Case', (c) => c.id], ['Protocol', (c) => c.proto], ['SNI', (c) => c.sni || '(none)'], ['Verdict', (c) => c.verdict + (c.verdict === 'throttled' && c.rate_bps ? ' at ' + rate(c.rate_bps) : '')], ['Download', (c) => rate(c.down_bps), 'num'], ['Upload', (c) => rate(c.up_bps), 'num'], ['Reason', (c) => c.reason]], rep.cases));
  for (const c of rep.cases) {
    const series = [];
    (c.runs || []).forEach((run, i) => {
      for (const dir of ['down', 'up']) {
        const d = run[dir];
        if (!d || !Array.isArray(d.timeline)) continue;
        const pts = [];
        for (let k = 1; k < d.timeline.length; k++) {
          const dt = d.timeline[k][0] - d.timeline[k - 1][0];
          if (dt > 0) pts.push([d.timeline[k][0], (d.timeline[k][1] - d.timeline[k - 1][1]) * 8 * 1000 / dt]);
        }
        // a run too fast for two samples: its average rate over its duration
        if (pts.length < 2 && d.bytes > 0 && d.duration_ms > 0) { const avg = d.bytes * 8 * 1000 / d.duration_ms; pts.splice(0, pts.length, [0, avg], [d.duration_ms, avg]); }
        series.push({ label: dir + ' #' + (i + 1), points: pts });
      }
    });
    out.push(linesMs('Throughput of ' + c.id + ' (time after the trigger)', series, rate));
  }
  return out;
}
// the probe's timelines are in ms from the trigger, not wall-clock times
function linesMs(title, series, fmt) {
  const fig = lines(title, series.map((x) => ({ label: x.label, points: x.points.map((p) => [p[0], p[1]]) })), fmt);
  for (const t of fig.querySelectorAll('svg > text')) if (/^\d\d:\d\d:\d\d/.test(t.textContent)) t.textContent = '';
  const xs = series.flatMap((x) => x.points.map((p) => p[0]));
  const svg = fig.querySelector('svg');
  if (svg && xs.length) { svg.append(s('text', { x: 80, y: 212 }, '0 ms')); svg.append(s('text', { x: 520, y: 212, 'text-anchor': 'end' }, Math.round(Math.max(...xs)) + ' ms')); }
  return fig;
}

// ---- shell
function go(view, params) {
  const qs = new URLSearchParams(Object.entries(params || {}).filter((e) => e[1]));
  location.hash = '#' + view + (String(qs) ? '?' + qs : '');
}
async function render() {
  if (!state.me) return;
  const hash = location.hash.slice(1) || 'overview';
  const [view, query] = hash.split('?');
  const page = pages[view] || pages.overview;
  for (const a of document.querySelectorAll('nav a')) {
    if (a.getAttribute('href') === '#' + view) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  try {
    const nodes = await page(new URLSearchParams(query || ''));
    document.getElementById('view').replaceChildren(...[nodes].flat().filter(Boolean));
    if (view !== state.view) { state.view = view; document.getElementById('main').focus(); }
  } catch (e) {
    if (e.status !== 401) document.getElementById('view').replaceChildren(h('p', { class: 'bad', role: 'alert' }, 'Could not load: ' + e.message));
  }
}
function showSignin(msg) {
  state.me = null;
  document.getElementById('nav').hidden = true;
  document.getElementById('view').replaceChildren();
  document.getElementById('me').replaceChildren();
  document.getElementById('signin').hidden = false;
  document.getElementById('signin-error').textContent = msg || '';
}
function signedIn(me) {
  state.me = me;
  document.getElementById('signin').hidden = true;
  document.getElementById('nav').hidden = false;
  document.getElementById('me').replaceChildren('Signed in as ' + me.name + ' (' + me.role + ') ', h('button', { type: 'button', onclick: async () => { try { await api('DELETE', '/ui/session'); } finally { showSignin('Signed out.'); } } }, 'Sign out'));
  const ev = new EventSource('/ui/events');
  let last = 0;
  const refresh = () => { if (Date.now() - last > 2000 && !document.getElementById('view').contains(document.activeElement)) { last = Date.now(); render(); } };
  ev.addEventListener('bundle', refresh);
  ev.addEventListener('tick', refresh);
  render();
}
document.getElementById('signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try { signedIn(await api('POST', '/ui/session', { token: document.getElementById('token').value })); document.getElementById('token').value = ''; }
  catch (err) { document.getElementById('signin-error').textContent = 'Sign-in failed: ' + err.message; }
});
window.addEventListener('hashchange', render);
api('GET', '/ui/session').then(signedIn, () => showSignin(''));
`;
