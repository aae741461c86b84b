/**
 * @module output/eve
 * The written record: a {@link FlowRecord} (plus, inline, the verdict taken) as a drop-in Suricata EVE
 * object, and the reader that turns such a line back into a FlowRecord (simulate / lint read flow logs).
 *
 * Every field Suricata defines keeps Suricata's name, nesting, type and meaning (`flow{}`, `tls.sni`,
 * `tls.ja4`, `tls.client_alpns`, `quic{version,sni,ja4}`, `http{hostname,url,http_method}`, `dns` in
 * the v3 `queries[]` form, `host` = the sensor's node name, `timestamp` with a `+0000` offset). What
 * is ours lives under one key, {@link OUR_KEY}. Event types: `flow` (a flow's record; also an inline
 * allow), `alert` with `alert.action: "allowed"` (inline log and throttle), `drop` (inline block). The
 * layout is documented in schema/flow-record.schema.json and docs/EVE.md.
 *
 * `flow_id` is a safe integer (< 2^53, as JSON readers parse numbers as doubles; Suricata masks its own
 * to 51 bits for the same reason): without a node name it is the engine's flow number; with one it is
 * node hash (21 bits) · queue slot (5 bits, the NFQUEUE number mod 32) · flow number mod 2^27.
 */
import { createHash } from 'node:crypto';
import type {
  DnsInfo,
  EnforcementName,
  FlowEndReason,
  FlowRecord,
  FlowStateName,
  HttpInfo,
  PolicyVerdict,
  QuicInfo,
  TlsInfo,
} from '../record/record.js';
import { InputError } from '../util/errors.js';
import { JsonBytes } from './json-bytes.js';
import type { JsonlWriter } from './jsonl.js';

/** The one top-level key of our own in every record. */
export const OUR_KEY = 'chokepoint';

/** Where the record was made: the sensor's name, the queue (inline), the policy version applied. */
export interface EveContext {
  /** Node (sensor) name → top-level `host` and the high bits of `flow_id`. Absent: no `host`. */
  node?: string;
  /** NFQUEUE number of the worker that saw the flow (inline). */
  queue?: number;
  /** Id of the policy version that decided (fleet). */
  policyVersion?: string;
}

/** The verdict details an inline box adds (structurally the enforcer's VerdictTaken). */
export interface VerdictDetails {
  action: PolicyVerdict['action'];
  enforcement: EnforcementName;
  rate_bps?: number;
  burst_bytes?: number;
  reason: string;
  queue: number;
  held_packets: number;
  held_ms: number;
}

/** Our own part of a record (under {@link OUR_KEY}). */
export interface EveOurs {
  /** The flow's name: SNI / Host / first query name, normalised (what policies match). */
  name: string | null;
  anomalies: string[];
  /** Seconds from the first to the last packet (millisecond resolution). */
  duration: number;
  /** TLS ClientHello details Suricata has no field for (QUIC flows too). */
  tls?: { versions: string[]; ech: boolean };
  quic?: { alpn: string[] };
  policy?: { rule_id: string | null; action: PolicyVerdict['action']; version?: string };
  verdict?: Omit<VerdictDetails, 'action'>;
  /** The first client payload's length and leading bytes (hex), see FlowRecord.first_payload. */
  first_payload?: { len: number; head: string };
  /** Live capture: a periodic snapshot of a flow still running. */
  partial?: true;
}

export interface EveRecord {
  timestamp: string;
  flow_id: number;
  pcap_filename?: string;
  host?: string;
  event_type: 'flow' | 'alert' | 'drop';
  src_ip: string;
  src_port: number;
  dest_ip: string;
  dest_port: number;
  proto: 'TCP' | 'UDP';
  app_proto?: string;
  community_id: string;
  flow: {
    pkts_toserver: number;
    pkts_toclient: number;
    bytes_toserver: number;
    bytes_toclient: number;
    start: string;
    end?: string;
    age?: number;
    state?: FlowStateName;
    reason?: FlowEndReason;
    alerted?: boolean;
  };
  alert?: {
    action: 'allowed' | 'blocked';
    signature_id: number;
    signature: string;
    category: string;
    severity: number;
  };
  drop?: { reason: string };
  verdict?: { action: 'drop' | 'alert' | 'pass'; reject?: string[]; reject_target?: 'to_client' | 'both' };
  tls?: { sni?: string; ja4?: string; client_alpns?: string[] };
  quic?: { version: string; sni?: string; ja4?: string };
  http?: { hostname?: string; url: string; http_method: string };
  dns?: { version: 3; type: 'request'; queries: { rrname: string; rrtype: string }[] };
  [OUR_KEY]: EveOurs;
}

// ---------------------------------------------------------------------------------------------
// flow_id

const NODE_BITS = 21;
const COUNTER_SPAN = 2 ** 27;
const SLOT_SPAN = 2 ** 32; // node hash starts here; 5 slot bits between the counter and it
const nodeCache = new Map<string, number>();

/** The node's 21-bit flow_id prefix: the first bits of SHA-256 of its name. */
export function nodeHash(node: string): number {
  let h = nodeCache.get(node);
  if (h === undefined) {
    h = createHash('sha256').update(node, 'utf8').digest().readUInt32BE(0) >>> (32 - NODE_BITS);
    if (nodeCache.size < 64) nodeCache.set(node, h);
  }
  return h;
}

/**
 * Fleet-unique flow id: node hash · queue slot · per-worker flow number (mod 2^27). Without a node name
 * the engine's flow number is returned unchanged (unique within one input file).
 */
export function fleetFlowId(counter: number, node?: string, queue = 0): number {
  if (node === undefined) return counter;
  return nodeHash(node) * SLOT_SPAN + (queue & 31) * COUNTER_SPAN + (counter % COUNTER_SPAN);
}

// ---------------------------------------------------------------------------------------------
// field conversions (each with its inverse for the reader)

/** `2023-11-14T22:13:20.000018Z` → `2023-11-14T22:13:20.000018+0000` (Suricata's form). */
export function eveTime(iso: string): string {
  return iso.endsWith('Z') ? iso.slice(0, -1) + '+0000' : iso;
}

const EVE_TIME = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d{1,9})([+-])(\d{2}):?(\d{2})$/;

/** Any EVE timestamp (offset form) → our in-memory form: UTC, microseconds, `Z`. */
export function fromEveTime(s: string): string | null {
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/.test(s)) return s; // old shape
  const m = EVE_TIME.exec(s);
  if (!m) return null;
  const frac = (m[2] + '000000').slice(0, 6);
  if (m[4] === '00' && m[5] === '00') return `${m[1]}.${frac}Z`;
  const ms = Date.parse(`${m[1]}${m[3]}${m[4]}:${m[5]}`);
  if (!Number.isFinite(ms)) return null;
  return new Date(ms).toISOString().slice(0, 19) + '.' + frac + 'Z';
}

/** The hour last parsed (`YYYY-MM-DDTHH`) and its epoch seconds: flows end in time order. */
let hourKey = '';
let hourVal = 0;

const digit = (s: string, i: number): number => s.charCodeAt(i) - 48;

/** Whole epoch seconds of an ISO timestamp: the hour parsed once, minutes and seconds read as digits. */
function secondsOf(iso: string): number {
  const mm = digit(iso, 14) * 10 + digit(iso, 15);
  const ss = digit(iso, 17) * 10 + digit(iso, 18);
  const hh = digit(iso, 11) * 10 + digit(iso, 12);
  const form = iso.length >= 19 && iso.charCodeAt(13) === 0x3a && iso.charCodeAt(16) === 0x3a;
  if (!form || !(hh >= 0 && hh < 24 && mm >= 0 && mm < 60 && ss >= 0 && ss < 60))
    return Math.floor(Date.parse(iso.slice(0, 19) + 'Z') / 1000);
  if (hourKey.length !== 13 || !iso.startsWith(hourKey)) {
    hourKey = iso.slice(0, 13);
    hourVal = Math.floor(Date.parse(hourKey + ':00:00Z') / 1000);
  }
  return hourVal + mm * 60 + ss;
}

/** Our `0x00000001` → Suricata's `1` (lowercase hex without leading zeros; gQUIC tags as `Q046`). */
export function eveQuicVersion(v: string): string {
  const n = parseInt(v.slice(2), 16) >>> 0;
  const c0 = n >>> 24;
  if (c0 === 0x51 || c0 === 0x54) {
    const tag = String.fromCharCode(c0, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
    if (/^[QT][0-9]{3}$/.test(tag)) return tag;
  }
  return n.toString(16);
}

export function fromEveQuicVersion(v: string): string | null {
  let n: number;
  if (/^[QT][0-9]{3}$/.test(v))
    n = ((v.charCodeAt(0) << 24) | (v.charCodeAt(1) << 16) | (v.charCodeAt(2) << 8) | v.charCodeAt(3)) >>> 0;
  else if (/^0x[0-9a-f]{8}$/.test(v))
    return v; // old shape
  else if (/^[0-9a-f]{1,8}$/.test(v)) n = parseInt(v, 16);
  else return null;
  return '0x' + n.toString(16).padStart(8, '0');
}

/** Our `TYPE65534` (RFC 3597) → Suricata's `65534`; named types unchanged. */
function eveRrtype(t: string): string {
  return t.startsWith('TYPE') ? t.slice(4) : t;
}
function fromEveRrtype(t: string): string {
  return /^[0-9]+$/.test(t) ? 'TYPE' + t : t;
}

// ---------------------------------------------------------------------------------------------
// writer

type RecordIn = Omit<FlowRecord, 'event_type'> & { event_type?: string };

/** Suricata's part of a record; `ours` gets the protocol details of ours (the caller adds it last). */
function base(r: RecordIn, ctx: EveContext, eventType: EveRecord['event_type'], ours: EveOurs): EveRecord {
  const end = r.end ?? r.timestamp;
  const e = {
    timestamp: eveTime(end),
    flow_id: fleetFlowId(r.flow_id, ctx.node, ctx.queue),
  } as EveRecord;
  if (r.pcap_filename !== undefined) e.pcap_filename = r.pcap_filename;
  if (ctx.node !== undefined) e.host = ctx.node;
  e.event_type = eventType;
  e.src_ip = r.src_ip;
  e.src_port = r.src_port;
  e.dest_ip = r.dest_ip;
  e.dest_port = r.dest_port;
  e.proto = r.proto;
  if (r.app_proto !== null) e.app_proto = r.app_proto;
  e.community_id = r.community_id;
  e.flow = {
    pkts_toserver: r.pkts_toserver,
    pkts_toclient: r.pkts_toclient,
    bytes_toserver: r.bytes_toserver,
    bytes_toclient: r.bytes_toclient,
    start: eveTime(r.timestamp),
  };
  addProtocols(e, ours, r.tls, r.quic, r.http, r.dns);
  return e;
}

function oursOf(r: RecordIn): EveOurs {
  const o: EveOurs = { name: r.host, anomalies: r.anomalies, duration: r.duration };
  if (r.first_payload) o.first_payload = { len: r.first_payload.len, head: r.first_payload.head };
  return o;
}

function addProtocols(
  e: EveRecord,
  ours: EveOurs,
  tls: TlsInfo | undefined,
  quic: QuicInfo | undefined,
  http: HttpInfo | undefined,
  dns: DnsInfo | undefined,
): void {
  if (quic) {
    // Suricata logs a QUIC flow's ClientHello under quic{} (no tls{}); ALPN and versions are ours
    const q: NonNullable<EveRecord['quic']> = { version: eveQuicVersion(quic.version) };
    if (quic.sni !== null) q.sni = quic.sni;
    if (tls?.ja4) q.ja4 = tls.ja4;
    e.quic = q;
    ours.quic = { alpn: quic.alpn };
    // (the engine fills tls{} of a QUIC flow from the same ClientHello: same SNI and ALPN as quic{})
    if (tls) ours.tls = { versions: tls.versions, ech: tls.ech };
  } else if (tls) {
    const t: NonNullable<EveRecord['tls']> = {};
    if (tls.sni !== null) t.sni = tls.sni;
    if (tls.ja4 !== null) t.ja4 = tls.ja4;
    if (tls.alpn.length) t.client_alpns = tls.alpn;
    e.tls = t;
    ours.tls = { versions: tls.versions, ech: tls.ech };
  }
  if (http) {
    const h: NonNullable<EveRecord['http']> = { url: http.url, http_method: http.method };
    if (http.hostname !== null) h.hostname = http.hostname;
    e.http = h;
  }
  if (dns)
    e.dns = { version: 3, type: 'request', queries: [{ rrname: dns.query, rrtype: eveRrtype(dns.qtype) }] };
}

/**
 * A finished flow (analyze, simulate): `event_type: "flow"` with the complete `flow{}` (start, end,
 * age, state, reason, alerted); `policy` (simulate: what the policy would do) under our key.
 */
export function flowToEve(r: RecordIn, ctx: EveContext = {}): EveRecord {
  const ours = oursOf(r);
  const e = base(r, ctx, 'flow', ours);
  e[OUR_KEY] = ours;
  flowSoFar(e, r, r.state);
  if (r.reason && !r.partial) e.flow.reason = r.reason;
  e.flow.alerted = false;
  if (r.policy) e[OUR_KEY].policy = policyOf(r.policy, ctx);
  if (r.partial) e[OUR_KEY].partial = true;
  return e;
}

/** `flow.end`, `flow.age` and `flow.state` (the given one, else from which sides have sent). */
function flowSoFar(e: EveRecord, r: RecordIn, state: FlowStateName | undefined): void {
  const end = r.end ?? r.timestamp;
  e.flow.end = eveTime(end);
  e.flow.age = Math.max(0, secondsOf(end) - secondsOf(r.timestamp));
  e.flow.state = state ?? (r.pkts_toserver > 0 && r.pkts_toclient > 0 ? 'established' : 'new');
}

function policyOf(p: PolicyVerdict, ctx: EveContext): NonNullable<EveOurs['policy']> {
  const o: NonNullable<EveOurs['policy']> = { rule_id: p.rule_id, action: p.action };
  if (ctx.policyVersion !== undefined) o.version = ctx.policyVersion;
  return o;
}

/** Rule id → signature id, memoised (a SHA-256 each); bounded: a box sees few rules at a time. */
const SIG_IDS = new Map<string | null, number>();

/** Stable 31-bit signature id of a rule (for SIEM group-by): first bits of SHA-256 of the rule id. */
export function signatureId(ruleId: string | null): number {
  let id = SIG_IDS.get(ruleId);
  if (id === undefined) {
    id =
      createHash('sha256')
        .update(ruleId ?? '(default)', 'utf8')
        .digest()
        .readUInt32BE(0) >>> 1;
    if (SIG_IDS.size >= 4096) SIG_IDS.clear();
    SIG_IDS.set(ruleId, id);
  }
  return id;
}

/** The alert's signature text of a rule (both verdict writers). */
function signatureText(action: string, rule: string | null): string {
  return `chokepoint ${action} ${rule === null ? '(policy default)' : `rule ${rule}`}`;
}

/** The alert's severity of an action: block 1, throttle 2, log 3. */
function severityOf(action: string): number {
  return action === 'block' ? 1 : action === 'throttle' ? 2 : 3;
}

/** Whom a reset answers: REJECT answers the client; rst.ts resets the server too (IPv4 only). */
function rejectTarget(srcIp: string): 'to_client' | 'both' {
  return srcIp.includes(':') ? 'to_client' : 'both';
}

/**
 * An inline verdict, written when it is taken (the flow goes on): block → `drop` (with the `alert` of
 * the rule that caused it, `drop.reason: "rules"`, `verdict{action: "drop"}`); log and throttle →
 * `alert` with `alert.action: "allowed"` (the traffic passes; throttled at our `verdict.rate_bps`);
 * allow → `flow` (a snapshot: counters so far, no `flow.reason`). Our details: `policy`, `verdict`.
 */
export function verdictToEve(
  r: RecordIn & { policy: PolicyVerdict },
  v: VerdictDetails,
  ctx: EveContext = {},
): EveRecord {
  const c = ctx.queue === undefined ? { ...ctx, queue: v.queue } : ctx;
  const action = v.action;
  const type = action === 'block' ? 'drop' : action === 'allow' ? 'flow' : 'alert';
  const ours = oursOf(r);
  const e = base(r, c, type, ours);
  if (type === 'flow') {
    flowSoFar(e, r, undefined);
    e.flow.alerted = false;
  } else {
    const rule = r.policy.rule_id;
    e.alert = {
      action: action === 'block' ? 'blocked' : 'allowed',
      signature_id: signatureId(rule),
      signature: signatureText(action, rule),
      category: `Policy ${action}`,
      severity: severityOf(action),
    };
    e.flow.alerted = true;
  }
  if (type === 'drop') {
    e.drop = { reason: 'rules' };
    e.verdict =
      v.enforcement === 'reset'
        ? { action: 'drop', reject: ['tcp-reset'], reject_target: rejectTarget(r.src_ip) }
        : { action: 'drop' };
  }
  ours.policy = policyOf(r.policy, c);
  const { action: _a, ...rest } = v;
  ours.verdict = rest;
  // our key last, after Suricata's alert/drop/verdict (key order is only for people reading the log)
  e[OUR_KEY] = ours;
  return e;
}

// ---------------------------------------------------------------------------------------------
// reader

/** A flow log line that is not a record we can read: names the place and the field. */
export class EveReadError extends InputError {
  constructor(
    readonly where: string,
    readonly field: string,
    message: string,
  ) {
    super(`${where}: ${field}: ${message}`);
  }
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Fields {
  constructor(private readonly where: string) {}
  fail(field: string, msg: string): never {
    throw new EveReadError(this.where, field, msg);
  }
  obj(o: Obj, k: string, path: string): Obj {
    const v = o[k];
    if (!isObj(v)) this.fail(path + k, 'expected an object');
    return v;
  }
  optObj(o: Obj, k: string, path: string): Obj | undefined {
    return o[k] === undefined ? undefined : this.obj(o, k, path);
  }
  str(o: Obj, k: string, path: string): string {
    const v = o[k];
    if (typeof v !== 'string') this.fail(path + k, 'expected a string');
    return v;
  }
  optStr(o: Obj, k: string, path: string): string | null {
    return o[k] === undefined || o[k] === null ? null : this.str(o, k, path);
  }
  count(o: Obj, k: string, path: string): number {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      this.fail(path + k, 'expected a non-negative integer');
    return v;
  }
  num(o: Obj, k: string, path: string): number {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      this.fail(path + k, 'expected a non-negative number');
    return v;
  }
  bool(o: Obj, k: string, path: string): boolean {
    const v = o[k];
    if (typeof v !== 'boolean') this.fail(path + k, 'expected true or false');
    return v;
  }
  strs(o: Obj, k: string, path: string, optional = false): string[] {
    const v = o[k];
    if (v === undefined && optional) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
      this.fail(path + k, 'expected a list of strings');
    return v as string[];
  }
  time(o: Obj, k: string, path: string): string {
    const t = fromEveTime(this.str(o, k, path));
    if (t === null) this.fail(path + k, 'expected a timestamp like 2023-11-14T22:13:20.000018+0000');
    return t;
  }
  port(o: Obj, k: string): number {
    const v = this.count(o, k, '');
    if (v > 65535) this.fail(k, 'expected a port (0-65535)');
    return v;
  }
}

const ACTIONS = new Set(['allow', 'log', 'block', 'throttle']);
const STATES = new Set(['new', 'established', 'closed']);
const REASONS = new Set(['timeout', 'forced', 'shutdown', 'tcp_reuse']);

/**
 * One EVE record (this version's shape, or the pre-EVE shape of schema version 1) → a FlowRecord.
 * Returns null for records that are not about a flow we wrote (other event types, e.g. Suricata's
 * `stats`, or our `simulate_summary`); throws {@link EveReadError} naming `where` and the field.
 */
export function fromEve(v: unknown, where = 'record'): FlowRecord | null {
  const F: Fields = new Fields(where);
  if (!isObj(v)) F.fail('(record)', 'expected a JSON object');
  const et = v.event_type;
  if (typeof et !== 'string') F.fail('event_type', 'expected a string');
  if (v.flow === undefined && v.pkts_toserver !== undefined) return fromOldShape(v, F);
  const ours = v[OUR_KEY];
  if (!isObj(ours) || (et !== 'flow' && et !== 'alert' && et !== 'drop')) return null;
  const fl = F.obj(v, 'flow', '');
  const proto = F.str(v, 'proto', '');
  if (proto !== 'TCP' && proto !== 'UDP') F.fail('proto', "expected 'TCP' or 'UDP'");
  const P = OUR_KEY + '.';
  const name = F.optStr(ours, 'name', P);
  const rec: FlowRecord = {
    event_type: 'flow',
    flow_id: F.count(v, 'flow_id', ''),
    community_id: F.str(v, 'community_id', ''),
    timestamp: F.time(fl, 'start', 'flow.'),
    proto,
    src_ip: F.str(v, 'src_ip', ''),
    src_port: F.port(v, 'src_port'),
    dest_ip: F.str(v, 'dest_ip', ''),
    dest_port: F.port(v, 'dest_port'),
    app_proto: F.optStr(v, 'app_proto', ''),
    host: name,
    anomalies: F.strs(ours, 'anomalies', P),
    pkts_toserver: F.count(fl, 'pkts_toserver', 'flow.'),
    pkts_toclient: F.count(fl, 'pkts_toclient', 'flow.'),
    bytes_toserver: F.count(fl, 'bytes_toserver', 'flow.'),
    bytes_toclient: F.count(fl, 'bytes_toclient', 'flow.'),
    duration: F.num(ours, 'duration', P),
  };
  if (v.pcap_filename !== undefined) rec.pcap_filename = F.str(v, 'pcap_filename', '');
  // keep the in-memory key order of buildRecord: protocol info after host
  const tail: Partial<FlowRecord> = {};
  if (fl.end !== undefined) tail.end = F.time(fl, 'end', 'flow.');
  if (fl.state !== undefined) {
    const s = F.str(fl, 'state', 'flow.');
    if (!STATES.has(s)) F.fail('flow.state', 'expected new, established or closed');
    tail.state = s as FlowStateName;
  }
  if (fl.reason !== undefined) {
    const s = F.str(fl, 'reason', 'flow.');
    if (!REASONS.has(s)) F.fail('flow.reason', 'expected timeout, forced, shutdown or tcp_reuse');
    tail.reason = s as FlowEndReason;
  }
  readProtocols(v, ours, rec, F);
  const fp = F.optObj(ours, 'first_payload', P);
  if (fp) {
    const len = F.count(fp, 'len', P + 'first_payload.');
    if (len < 1 || len > 65535) F.fail(P + 'first_payload.len', 'expected an integer 1..65535');
    const head = F.str(fp, 'head', P + 'first_payload.');
    if (!/^(?:[0-9a-f]{2}){0,16}$/.test(head))
      F.fail(P + 'first_payload.head', 'expected lowercase hex of at most 16 bytes');
    tail.first_payload = { len, head };
  }
  const pol = readPolicy(ours, F, P);
  if (pol) tail.policy = pol;
  if (ours.partial !== undefined) {
    if (ours.partial !== true) F.fail(P + 'partial', 'expected true');
    tail.partial = true;
  }
  return Object.assign(rec, tail);
}

function readProtocols(v: Obj, ours: Obj, rec: FlowRecord, F: Fields): void {
  const P = OUR_KEY + '.';
  const ot = F.optObj(ours, 'tls', P);
  const oq = F.optObj(ours, 'quic', P);
  const q = F.optObj(v, 'quic', '');
  if (q) {
    const ver = fromEveQuicVersion(F.str(q, 'version', 'quic.'));
    if (ver === null) F.fail('quic.version', 'expected a QUIC version (hex, or a gQUIC tag like Q046)');
    const sni = F.optStr(q, 'sni', 'quic.');
    const alpn = oq ? F.strs(oq, 'alpn', P + 'quic.') : [];
    if (ot) {
      rec.tls = {
        sni,
        alpn,
        versions: F.strs(ot, 'versions', P + 'tls.'),
        ja4: F.optStr(q, 'ja4', 'quic.'),
        ech: F.bool(ot, 'ech', P + 'tls.'),
      };
    }
    rec.quic = { version: ver, sni, alpn };
  } else {
    const t = F.optObj(v, 'tls', '');
    if (t || ot) {
      const tt = t ?? {};
      rec.tls = {
        sni: F.optStr(tt, 'sni', 'tls.'),
        alpn: F.strs(tt, 'client_alpns', 'tls.', true),
        versions: ot ? F.strs(ot, 'versions', P + 'tls.') : [],
        ja4: F.optStr(tt, 'ja4', 'tls.'),
        ech: ot ? F.bool(ot, 'ech', P + 'tls.') : false,
      };
    }
  }
  readHttp(v, rec, F, 'http_method');
  const d = F.optObj(v, 'dns', '');
  if (d) {
    const qs = d.queries;
    if (!Array.isArray(qs) || qs.length === 0 || !isObj(qs[0]))
      F.fail('dns.queries', 'expected a list of queries');
    const q0 = qs[0] as Obj;
    rec.dns = {
      query: F.str(q0, 'rrname', 'dns.queries[0].'),
      qtype: fromEveRrtype(F.str(q0, 'rrtype', 'dns.queries[0].')),
    };
  }
}

/** Schema version 1 (before EVE): counters and `host` (= the flow's name) at the top level. */
function fromOldShape(v: Obj, F: Fields): FlowRecord | null {
  if (v.event_type !== 'flow' && v.event_type !== 'verdict') return null;
  const proto = F.str(v, 'proto', '');
  if (proto !== 'TCP' && proto !== 'UDP') F.fail('proto', "expected 'TCP' or 'UDP'");
  const rec: FlowRecord = {
    event_type: 'flow',
    flow_id: F.count(v, 'flow_id', ''),
    community_id: F.str(v, 'community_id', ''),
    timestamp: F.time(v, 'timestamp', ''),
    proto,
    src_ip: F.str(v, 'src_ip', ''),
    src_port: F.port(v, 'src_port'),
    dest_ip: F.str(v, 'dest_ip', ''),
    dest_port: F.port(v, 'dest_port'),
    app_proto: F.optStr(v, 'app_proto', ''),
    host: F.optStr(v, 'host', ''),
    anomalies: F.strs(v, 'anomalies', ''),
    pkts_toserver: F.count(v, 'pkts_toserver', ''),
    pkts_toclient: F.count(v, 'pkts_toclient', ''),
    bytes_toserver: F.count(v, 'bytes_toserver', ''),
    bytes_toclient: F.count(v, 'bytes_toclient', ''),
    duration: F.num(v, 'duration', ''),
  };
  if (v.pcap_filename !== undefined) rec.pcap_filename = F.str(v, 'pcap_filename', '');
  const t = F.optObj(v, 'tls', '');
  if (t)
    rec.tls = {
      sni: F.optStr(t, 'sni', 'tls.'),
      alpn: F.strs(t, 'alpn', 'tls.'),
      versions: F.strs(t, 'versions', 'tls.'),
      ja4: F.optStr(t, 'ja4', 'tls.'),
      ech: F.bool(t, 'ech', 'tls.'),
    };
  const q = F.optObj(v, 'quic', '');
  if (q) {
    const ver = fromEveQuicVersion(F.str(q, 'version', 'quic.'));
    if (ver === null) F.fail('quic.version', 'expected 0x + 8 hex digits');
    rec.quic = { version: ver, sni: F.optStr(q, 'sni', 'quic.'), alpn: F.strs(q, 'alpn', 'quic.') };
  }
  readHttp(v, rec, F, 'method');
  const d = F.optObj(v, 'dns', '');
  if (d) rec.dns = { query: F.str(d, 'query', 'dns.'), qtype: F.str(d, 'qtype', 'dns.') };
  const p = readPolicy(v, F, '');
  if (p) rec.policy = p;
  return rec;
}

/** `http{}` of either shape (this version: Suricata's `http_method`; schema version 1: `method`). */
function readHttp(v: Obj, rec: FlowRecord, F: Fields, methodKey: 'http_method' | 'method'): void {
  const h = F.optObj(v, 'http', '');
  if (h)
    rec.http = {
      hostname: F.optStr(h, 'hostname', 'http.'),
      method: F.str(h, methodKey, 'http.'),
      url: F.str(h, 'url', 'http.'),
    };
}

/** `policy{rule_id, action}` under `o` (our key in this version, the top level in schema version 1). */
function readPolicy(o: Obj, F: Fields, path: string): PolicyVerdict | undefined {
  const p = F.optObj(o, 'policy', path);
  if (!p) return undefined;
  const action = F.str(p, 'action', path + 'policy.');
  if (!ACTIONS.has(action)) F.fail(path + 'policy.action', 'expected allow, log, block or throttle');
  return { rule_id: F.optStr(p, 'rule_id', path + 'policy.'), action: action as PolicyVerdict['action'] };
}

/** Longest line the reader accepts (a record is < 4 KiB; this bounds what a hostile log costs). */
export const MAX_EVE_LINE = 1 << 20;

/** Parse one JSON line of a flow log (`where` = file:line for errors). */
export function fromEveLine(line: string, where: string): FlowRecord | null {
  if (line.length > MAX_EVE_LINE)
    throw new EveReadError(where, '(line)', `longer than ${MAX_EVE_LINE} characters`);
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    throw new EveReadError(where, '(line)', `not JSON: ${(e as Error).message}`);
  }
  return fromEve(v, where);
}

// ---------------------------------------------------------------------------------------------
// one flow record as a JSON line, without the intermediate objects

/**
 * `JSON.stringify(flowToEve(r, ctx))`, built directly as text for the common case of offline analysis
 * (no sensor, queue or policy version in `ctx`, no policy, not partial; otherwise it is exactly that
 * call). Same bytes, key order and omissions (held to the generic form by the tests, over the nDPI
 * corpus and generated captures); it skips the EVE object, its nested objects and V8's generic walk.
 */
export function flowToEveLine(r: RecordIn, ctx: EveContext = {}): string {
  if (needsGeneric(r, ctx)) return JSON.stringify(flowToEve(r, ctx));
  LINE.reset();
  flowEveBytes(r, LINE);
  return LINE.text();
}

/** {@link flowToEveLine} appended to `out` as one line, without the intermediate string. */
export function writeEveLine(out: JsonlWriter, r: RecordIn, ctx: EveContext = {}): void {
  if (needsGeneric(r, ctx)) {
    out.line(JSON.stringify(flowToEve(r, ctx)));
    return;
  }
  LINE.reset();
  flowEveBytes(r, LINE);
  out.bytes(LINE.buf, LINE.pos);
}

/** The cases written by the generic form (sensor, queue or policy version given; policy; partial). */
function needsGeneric(r: RecordIn, ctx: EveContext): boolean {
  return (
    ctx.node !== undefined ||
    ctx.queue !== undefined ||
    ctx.policyVersion !== undefined ||
    !!r.policy ||
    !!r.partial
  );
}

/** The reused bytes of the line being written. */
const LINE = new JsonBytes();

/** The common case's line, key by key in flowToEve's order (see {@link flowToEveLine}). */
function flowEveBytes(r: RecordIn, j: JsonBytes): void {
  soFarBytes(r, j, headBytes(r, j, r.flow_id, undefined, 'flow'));
  j.strAt(',"state":', r.state ?? (r.pkts_toserver > 0 && r.pkts_toclient > 0 ? 'established' : 'new'));
  if (r.reason) j.strAt(',"reason":', r.reason);
  j.raw(',"alerted":false}');
  protocolBytes(r, j);
  oursBytes(r, j);
  j.raw('}}');
}

/** `base()` as bytes: from `{"timestamp"` to `flow.start` (the caller goes on inside `flow{}`). */
function headBytes(
  r: RecordIn,
  j: JsonBytes,
  flowId: number,
  node: string | undefined,
  type: string,
): string {
  const endEve = eveTime(r.end ?? r.timestamp);
  j.strAt('{"timestamp":', endEve);
  j.numAt(',"flow_id":', flowId);
  if (r.pcap_filename !== undefined) j.strAt(',"pcap_filename":', r.pcap_filename);
  if (node !== undefined) j.strAt(',"host":', node);
  j.raw(
    type === 'flow'
      ? ',"event_type":"flow"'
      : type === 'drop'
        ? ',"event_type":"drop"'
        : ',"event_type":"alert"',
  );
  j.strAt(',"src_ip":', r.src_ip);
  j.numAt(',"src_port":', r.src_port);
  j.strAt(',"dest_ip":', r.dest_ip);
  j.numAt(',"dest_port":', r.dest_port);
  j.strAt(',"proto":', r.proto);
  if (r.app_proto !== null) j.strAt(',"app_proto":', r.app_proto);
  j.strAt(',"community_id":', r.community_id);
  j.numAt(',"flow":{"pkts_toserver":', r.pkts_toserver);
  j.numAt(',"pkts_toclient":', r.pkts_toclient);
  j.numAt(',"bytes_toserver":', r.bytes_toserver);
  j.numAt(',"bytes_toclient":', r.bytes_toclient);
  j.strAt(',"start":', eveTime(r.timestamp));
  return endEve;
}

/** flowSoFar's `flow.end` (`endEve`: as headBytes returned it) and `flow.age`; its `state` is the caller's. */
function soFarBytes(r: RecordIn, j: JsonBytes, endEve: string): void {
  const end = r.end ?? r.timestamp;
  j.strAt(',"end":', endEve);
  j.numAt(',"age":', Math.max(0, secondsOf(end) - secondsOf(r.timestamp)));
}

/** addProtocols' Suricata fields as bytes, in its order (ours are written by {@link oursBytes}). */
function protocolBytes(r: RecordIn, j: JsonBytes): void {
  const tls = r.tls;
  const quic = r.quic;
  if (quic) {
    j.strAt(',"quic":{"version":', eveQuicVersion(quic.version));
    if (quic.sni !== null) j.strAt(',"sni":', quic.sni);
    if (tls?.ja4) j.strAt(',"ja4":', tls.ja4);
    j.raw('}');
  } else if (tls) {
    j.raw(',"tls":{');
    let first = true;
    if (tls.sni !== null) {
      j.strAt('"sni":', tls.sni);
      first = false;
    }
    if (tls.ja4 !== null) {
      j.raw(first ? '"ja4":' : ',"ja4":');
      j.str(tls.ja4);
      first = false;
    }
    if (tls.alpn.length) {
      j.raw(first ? '"client_alpns":' : ',"client_alpns":');
      j.strs(tls.alpn);
    }
    j.raw('}');
  }
  const http = r.http;
  if (http) {
    j.strAt(',"http":{"url":', http.url);
    j.strAt(',"http_method":', http.method);
    if (http.hostname !== null) j.strAt(',"hostname":', http.hostname);
    j.raw('}');
  }
  const dns = r.dns;
  if (dns) {
    j.strAt(',"dns":{"version":3,"type":"request","queries":[{"rrname":', dns.query);
    j.strAt(',"rrtype":', eveRrtype(dns.qtype));
    j.raw('}]}');
  }
}

/** Our key and what oursOf and addProtocols put under it (left open: policy and verdict may follow). */
function oursBytes(r: RecordIn, j: JsonBytes): void {
  j.raw(',"' + OUR_KEY + '":{"name":');
  j.str(r.host);
  j.strsAt(',"anomalies":', r.anomalies);
  j.numAt(',"duration":', r.duration);
  const fp = r.first_payload;
  if (fp) {
    j.numAt(',"first_payload":{"len":', fp.len);
    j.strAt(',"head":', fp.head);
    j.raw('}');
  }
  const quic = r.quic;
  const tls = r.tls;
  if (quic) {
    j.strsAt(',"quic":{"alpn":', quic.alpn);
    j.raw('}');
  }
  if (tls) {
    j.strsAt(',"tls":{"versions":', tls.versions);
    j.raw(',"ech":');
    j.bool(tls.ech);
    j.raw('}');
  }
}

/**
 * `JSON.stringify(verdictToEve(r, v, ctx))` and a newline, appended to `j` without the EVE object,
 * its nested objects and V8's generic walk (the box writes one per decided connection). Same bytes,
 * key order and omissions: held to the generic form by the tests. Verdict details of a type other
 * than number or string (none today) are written by the generic form.
 */
export function writeVerdictEveLine(
  j: JsonBytes,
  r: RecordIn & { policy: PolicyVerdict },
  v: VerdictDetails,
  ctx: EveContext = {},
): void {
  for (const k in v) {
    const x = (v as unknown as Record<string, unknown>)[k];
    if (typeof x !== 'number' && typeof x !== 'string' && x !== undefined) {
      j.line(JSON.stringify(verdictToEve(r, v, ctx)));
      return;
    }
  }
  const queue = ctx.queue === undefined ? v.queue : ctx.queue;
  const action = v.action;
  const type = action === 'block' ? 'drop' : action === 'allow' ? 'flow' : 'alert';
  const endEve = headBytes(r, j, fleetFlowId(r.flow_id, ctx.node, queue), ctx.node, type);
  if (type === 'flow') {
    soFarBytes(r, j, endEve);
    j.raw(r.pkts_toserver > 0 && r.pkts_toclient > 0 ? ',"state":"established"' : ',"state":"new"');
    j.raw(',"alerted":false}');
  } else j.raw(',"alerted":true}');
  protocolBytes(r, j);
  if (type !== 'flow') {
    const rule = r.policy.rule_id;
    j.raw(action === 'block' ? ',"alert":{"action":"blocked"' : ',"alert":{"action":"allowed"');
    j.numAt(',"signature_id":', signatureId(rule));
    j.strAt(',"signature":', signatureText(action, rule));
    j.strAt(',"category":', `Policy ${action}`);
    j.numAt(',"severity":', severityOf(action));
    j.raw('}');
  }
  if (type === 'drop') {
    j.raw(',"drop":{"reason":"rules"},"verdict":{"action":"drop"');
    if (v.enforcement === 'reset')
      j.strAt(',"reject":["tcp-reset"],"reject_target":', rejectTarget(r.src_ip));
    j.raw('}');
  }
  oursBytes(r, j);
  j.strAt(',"policy":{"rule_id":', r.policy.rule_id);
  j.strAt(',"action":', r.policy.action);
  if (ctx.policyVersion !== undefined) j.strAt(',"version":', ctx.policyVersion);
  j.raw('},"verdict":{');
  let first = true;
  for (const k in v) {
    if (k === 'action') continue;
    const x = (v as unknown as Record<string, unknown>)[k];
    if (x === undefined) continue;
    if (!first) j.raw(',');
    first = false;
    j.str(k);
    j.raw(':');
    if (typeof x === 'number') j.num(x);
    else j.str(x as string);
  }
  j.raw('}}}\n');
}
