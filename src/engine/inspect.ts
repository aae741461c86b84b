/**
 * @module engine/inspect
 * Runs the dissectors on what a flow's client sends and stores the result on the flow. TCP: the
 * reassembled client stream prefix (TLS ClientHello, HTTP request, DNS over TCP). UDP: each client
 * datagram (DNS, QUIC Initial). Dissector failures become anomaly codes; nothing throws from here.
 */
import { Flow, FlowState } from '../flow/flow.js';
import { TlsHelloScanner, isTlsRecordStart, type TlsStreamResult } from '../dissect/tls-stream.js';
import { HttpHeadScanner, isHttpRequestStart, type HttpResult } from '../dissect/http.js';
import { parseDnsMessage } from '../dissect/dns.js';
import { QuicInitialAssembler, looksLikeQuicInitial } from '../dissect/quic.js';
import { gquicVersion, parseGquicChlo } from '../dissect/quic-gquic.js';
import type { ClientHello } from '../dissect/types.js';

/**
 * A TCP flow's dissector state is kept in flow.dstate: a TlsHelloScanner or HttpHeadScanner (both resume
 * on the growing stream prefix), T_DNS for DNS over TCP (its 2-byte length says when the query is
 * complete), or null while the protocol is unknown. `flow.protoKnown` is set when it is chosen.
 */
const T_DNS = 3;

const TLS_VERSION_NAMES: Record<number, string> = {
  0x0304: 'TLS1.3',
  0x0303: 'TLS1.2',
  0x0302: 'TLS1.1',
  0x0301: 'TLS1.0',
  0x0300: 'SSL3',
};

export function versionName(v: number): string {
  return TLS_VERSION_NAMES[v] ?? `0x${v.toString(16).padStart(4, '0')}`;
}

/** Lowercase, no trailing dot(s), no port; null for empty. */
export function normalizeHost(name: string | null): string | null {
  if (!name) return null;
  let s = name.toLowerCase();
  while (s.endsWith('.')) s = s.slice(0, -1);
  return s.length ? s : null;
}

function tlsInfo(h: ClientHello) {
  const versions = (h.supportedVersions.length ? h.supportedVersions : [h.legacyVersion]).map(versionName);
  return { sni: h.sni, alpn: h.alpn, versions, ja4: h.ja4 ?? null, ech: h.ech };
}

/**
 * Inspect the TCP client stream prefix `data` (contiguous bytes from offset 0). `final` when no more
 * bytes will come (flow end or budget): an incomplete HTTP head is then parsed over its complete lines.
 */
export function inspectTcp(f: Flow, data: Uint8Array, final = false): void {
  if (data.length === 0) return;
  let st = f.dstate;
  if (st === null) {
    if (isTlsRecordStart(data)) {
      // most hellos arrive whole in the first segment: try a shared scanner first and keep one on the
      // flow only when more bytes are needed (it then walks this prefix again, once)
      ONE_SHOT.reset();
      const r = ONE_SHOT.feed(data);
      ONE_SHOT.reset(); // hold no reference to the result
      if (r.status !== 'need-more') {
        f.protoKnown = true;
        finishTls(f, r);
        return;
      }
      st = new TlsHelloScanner();
    } else if (isHttpRequestStart(data)) st = new HttpHeadScanner();
    else if ((f.sport === 53 || f.sport === 5353 || f.sport === 853) && data.length >= 2) st = T_DNS;
    else if (data.length >= 6) {
      f.state = FlowState.GaveUp;
      return;
    } else return;
    f.dstate = st;
    f.protoKnown = true;
  }
  if (st instanceof TlsHelloScanner) {
    const r = st.feed(data);
    // a final result drops the scanner, which holds it (and the parsed hello's lists) otherwise
    if (r.status !== 'need-more') f.dstate = null;
    finishTls(f, r);
    return;
  }
  if (st instanceof HttpHeadScanner) {
    const r = st.feed(data, final);
    if (r.status !== 'need-more') f.dstate = null;
    finishHttp(f, r, 'http');
    return;
  }
  // DNS over TCP: 2-byte length prefix
  const len = (data[0] << 8) | data[1];
  if (data.length < 2 + len) {
    if (len === 0) f.state = FlowState.GaveUp;
    return;
  }
  const r = parseDnsMessage(data.subarray(2, 2 + len));
  finishDns(f, r);
}

/** The scanner for first segments that hold a whole ClientHello (one at a time: inspection is synchronous). */
const ONE_SHOT = new TlsHelloScanner();

function finishTls(f: Flow, r: TlsStreamResult): void {
  if (r.status === 'need-more') return;
  if (r.status === 'done') {
    f.appProto = 'tls';
    f.tls = tlsInfo(r.hello);
    f.host = normalizeHost(r.hello.sni);
    for (const a of r.anomalies) f.anomaly(a);
    f.state = FlowState.Named;
    return;
  }
  if (r.status === 'error') {
    f.appProto = 'tls';
    f.anomaly(r.anomaly);
  }
  f.state = FlowState.GaveUp;
}

function finishHttp(f: Flow, r: HttpResult, proto: 'http'): void {
  if (r.status === 'need-more') return;
  if (r.status === 'done') {
    f.appProto = proto;
    f.http = { hostname: r.hostname, method: r.method, url: r.target };
    f.host = normalizeHost(r.hostname);
    for (const a of r.anomalies) f.anomaly(a);
    f.state = FlowState.Named;
    return;
  }
  if (r.status === 'error') {
    f.appProto = proto;
    f.anomaly(r.anomaly);
  }
  f.state = FlowState.GaveUp;
}

function finishDns(f: Flow, r: ReturnType<typeof parseDnsMessage>): void {
  if (r.status === 'done') {
    f.appProto = 'dns';
    f.dns = { query: r.query, qtype: r.qtypeName };
    f.host = normalizeHost(r.query);
    for (const a of r.anomalies) f.anomaly(a);
    f.state = FlowState.Named;
  } else if (r.status === 'error') {
    f.anomaly(r.anomaly);
    f.state = FlowState.GaveUp;
  } else if (r.status === 'not-mine') f.state = FlowState.GaveUp;
}

const DNS_PORTS = new Set([53, 5353, 5355]);

/** Inspect one UDP datagram (payload) sent by the client. */
export function inspectUdp(f: Flow, data: Uint8Array, toServer: boolean): void {
  const st = f.dstate;
  if (st instanceof QuicInitialAssembler) {
    if (!toServer) return;
    const r = st.feed(data);
    finishQuic(f, r, st);
    return;
  }
  if (DNS_PORTS.has(f.sport) || DNS_PORTS.has(f.cport)) {
    const r = parseDnsMessage(data);
    if (r.status === 'done' || r.status === 'error') {
      finishDns(f, r);
      return;
    }
    if (r.status === 'not-mine' && f.inspectedPkts > 2) f.state = FlowState.GaveUp;
    return;
  }
  if (!toServer) return;
  if (gquicVersion(data)) {
    // Google QUIC (Q024–Q046): a plaintext CHLO, no TLS
    const r = parseGquicChlo(data);
    if (r.status === 'done') {
      f.appProto = 'quic';
      f.quic = { version: '0x' + (r.version >>> 0).toString(16).padStart(8, '0'), sni: r.sni, alpn: [] };
      f.host = normalizeHost(r.sni);
      for (const a of r.anomalies) f.anomaly(a);
      f.state = FlowState.Named;
    } else if (r.status === 'error') {
      f.appProto = 'quic';
      f.anomaly(r.anomaly);
      f.state = FlowState.GaveUp;
    }
    return;
  }
  if (looksLikeQuicInitial(data)) {
    const a = new QuicInitialAssembler();
    f.dstate = a;
    f.protoKnown = true;
    finishQuic(f, a.feed(data), a);
    return;
  }
  if (isHttpRequestStart(data)) {
    // HTTP over UDP (SSDP M-SEARCH / NOTIFY, other UPnP-style requests): one datagram, one head
    finishHttp(f, new HttpHeadScanner().feed(data, true), 'http');
    return;
  }
  if (f.inspectedPkts >= 3) f.state = FlowState.GaveUp;
}

/** Heap bytes of a one-byte string of `s.length` characters (header and alignment included), 0 for null. */
function strBytes(s: string | null): number {
  return s === null ? 0 : (16 + s.length + 7) & ~7;
}

/** Heap bytes of a list of strings (the array and its strings). */
function listBytes(l: readonly string[]): number {
  let n = 32 + 8 * l.length;
  for (let i = 0; i < l.length; i++) n += strBytes(l[i]);
  return n;
}

/**
 * The offered versions: known names are shared constants (not counted), an unknown one is a string of
 * its own (`0x1a2b`: a hello may offer 127 of them, ~3 KB).
 */
function versionsBytes(l: readonly string[]): number {
  let n = 32 + 8 * l.length;
  for (let i = 0; i < l.length; i++) if (l[i].charCodeAt(0) === 48) n += strBytes(l[i]);
  return n;
}

/**
 * What a flow keeps of its dissection, in heap bytes (an estimate that counts headers, so that a list
 * of 4,000 two-letter ALPN names weighs what it costs): names, lists, the URL. Known version names
 * and the query types are shared constants, not counted. For the engine's budget (`maxKeptBytes`).
 */
export function keptBytes(f: Flow): number {
  let n = 0;
  const t = f.tls;
  if (t !== null) n += 64 + strBytes(t.sni) + listBytes(t.alpn) + versionsBytes(t.versions) + strBytes(t.ja4);
  const q = f.quic;
  if (q !== null)
    n +=
      48 + strBytes(q.version) + strBytes(q.sni) + (t !== null && q.alpn === t.alpn ? 0 : listBytes(q.alpn));
  const h = f.http;
  if (h !== null) n += 48 + strBytes(h.hostname) + strBytes(h.url);
  const d = f.dns;
  if (d !== null) n += 40 + strBytes(d.query);
  const host = f.host;
  if (host !== null && host !== t?.sni && host !== q?.sni && host !== h?.hostname && host !== d?.query)
    n += strBytes(host);
  return n;
}

/** Bytes the flow's dissector state costs (a QUIC assembler in progress), for the engine's reassembly cap. */
export function inspectHeld(f: Flow): number {
  return f.dstate instanceof QuicInitialAssembler ? f.dstate.costBytes : 0;
}

/**
 * A UDP flow's inspection is cut short (a cap, or the flow ends while still inspecting): keep what the
 * QUIC dissector noted as the flow's anomalies (its cap hits among them). True when the flow was in
 * the QUIC dissector. The caller drops `f.dstate` after.
 */
export function abandonUdp(f: Flow): boolean {
  const st = f.dstate;
  if (!(st instanceof QuicInitialAssembler)) return false;
  for (const x of st.anomalies) f.anomaly(x);
  return true;
}

function finishQuic(f: Flow, r: ReturnType<QuicInitialAssembler['feed']>, a: QuicInitialAssembler): void {
  if (r.status === 'need-more') return;
  if (r.status === 'done') {
    f.appProto = 'quic';
    const h = r.hello;
    f.quic = { version: '0x' + (r.version >>> 0).toString(16).padStart(8, '0'), sni: h.sni, alpn: h.alpn };
    if (h.cipherSuites.length) f.tls = tlsInfo(h); // Google QUIC's CHLO is not TLS
    f.host = normalizeHost(h.sni);
    for (const x of r.anomalies) f.anomaly(x);
    f.state = FlowState.Named;
    f.dstate = null;
    return;
  }
  if (r.status === 'error') {
    f.appProto = 'quic';
    f.anomaly(r.anomaly);
  }
  for (const x of a.anomalies) f.anomaly(x);
  f.state = FlowState.GaveUp;
  f.dstate = null;
}
