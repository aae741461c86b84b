/**
 * @module dissect/http
 * HTTP/1.x request head parser (RFC 9112): request line and header fields up to the empty line.
 *
 * Called with a growing prefix of the client→server stream. 'not-mine' is decided from the first
 * bytes (they must spell a known method followed by a space, checked byte by byte, so even one
 * byte can be rejected); 'need-more' only scans for the end of the head, resuming where it stopped (no
 * strings built); the head is parsed once it is complete. A head longer than
 * {@link HTTP_MAX_HEAD} bytes is an error. Never throws.
 *
 * The name: absolute-form targets (proxy requests) and CONNECT's authority-form target take
 * precedence over Host, as RFC 9112 §3.2.2 prescribes; otherwise the Host header. `hostname` is
 * lowercased, without port, brackets (IPv6 literal) or one trailing dot.
 *
 * Anomaly codes (non-fatal): `http_extra_whitespace` (more than one SP between request-line
 * parts), `http_space_in_target` (spaces inside the target: everything between the method and a
 * final `HTTP/x.y` token is taken as the target), `http_bad_version`, `http_no_version` (HTTP/0.9-style line),
 * `http_malformed_request_line`, `http_bad_target`, `http_obs_fold`, `http_malformed_header`,
 * `http_space_before_colon` (such a "Host :" field is not used), `http_multiple_host`,
 * `http_missing_host`, `http_host_invalid` (bytes outside printable ASCII or a bad port),
 * `http_host_mismatch` (target authority differs from Host), `http_bare_lf` (LF without CR).
 * Errors: `http_head_too_large`, `http_malformed_request_line` (no target at all). A request
 * line whose version is not `HTTP/...` (RTSP, SIP, ...) is 'not-mine' once the line is complete.
 */
import type { ParseStatus } from './types.js';
import { ascii } from '../util/bytes.js';

export type HttpResult =
  | {
      status: 'done';
      method: string;
      target: string;
      host: string | null;
      hostname: string | null /* lowercased, no port, no trailing dot */;
      anomalies: string[];
    }
  | ParseStatus;

/** Largest request head (request line + headers + empty line) accepted, in bytes. */
export const HTTP_MAX_HEAD = 16384;

const METHODS = [
  'GET',
  'POST',
  'HEAD',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
  'PROPFIND',
  'PROPPATCH',
  'MKCOL',
  'COPY',
  'MOVE',
  'LOCK',
  'UNLOCK',
  'SEARCH',
  'REPORT',
  'MKCALENDAR',
  'PURGE',
  // HTTP over UDP (SSDP, UPnP GENA)
  'M-SEARCH',
  'NOTIFY',
];
/** Method name + space, as bytes. */
const METHOD_BYTES = METHODS.map((m) => Uint8Array.from(m + ' ', (c) => c.charCodeAt(0)));

const NEED_MORE: ParseStatus = Object.freeze({ status: 'need-more' }) as ParseStatus;
const NOT_MINE: ParseStatus = Object.freeze({ status: 'not-mine' }) as ParseStatus;

/** Index into METHODS of the method the data starts with; -1 possible prefix; -2 no method. */
function matchMethod(data: Uint8Array): number {
  let partial = false;
  for (let m = 0; m < METHOD_BYTES.length; m++) {
    const mb = METHOD_BYTES[m];
    const k = Math.min(mb.length, data.length);
    let i = 0;
    while (i < k && data[i] === mb[i]) i++;
    if (i === mb.length) return m;
    if (i === data.length) partial = true;
  }
  return partial ? -1 : -2;
}

/** Whether the data could be the start of an HTTP/1.x request (a known method). Cheap. */
export function isHttpRequestStart(data: Uint8Array): boolean {
  return data.length > 0 && matchMethod(data) !== -2;
}

/**
 * Offset just past the empty line ending the head, or -1 if not yet present before `limit`.
 * `st.from` is where the LF search resumes (kept across calls on a growing prefix, so the scan is
 * linear over all calls); it is advanced past every LF looked at and to `limit` when none is found.
 */
function findHeadEnd(data: Uint8Array, limit: number, st: { from: number }): number {
  let pos = st.from;
  while (true) {
    const lf = byteAt(data, 10, pos, limit);
    if (lf < 0) {
      st.from = limit;
      return -1;
    }
    // Empty line: LF directly after the previous line's LF, or CR LF.
    if (lf > 0 && (data[lf - 1] === 10 || (data[lf - 1] === 13 && lf > 1 && data[lf - 2] === 10))) {
      st.from = lf + 1;
      return lf + 1;
    }
    pos = lf + 1;
    st.from = pos;
  }
}

/**
 * Index of the first byte `v` in [from, end), or -1. A plain loop: header lines are short, and the
 * builtin indexOf's per-call cost dominated on heads of thousands of lines.
 */
function byteAt(data: Uint8Array, v: number, from: number, end: number): number {
  for (let i = from; i < end; i++) if (data[i] === v) return i;
  return -1;
}

function push(anomalies: string[], a: string): void {
  if (!anomalies.includes(a)) anomalies.push(a);
}

function isPrintable(buf: Uint8Array, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (buf[i] < 0x21 || buf[i] > 0x7e) return false;
  return true;
}

/**
 * Host name of an authority ("host", "host:port", "[v6]:port", "user@host"); lowercased, no
 * port, no trailing dot. Returns null for an empty host.
 */
export function hostnameFromAuthority(authority: string, anomalies: string[]): string | null {
  let a = authority;
  const at = a.lastIndexOf('@');
  if (at >= 0) a = a.slice(at + 1);
  let host: string;
  let port = '';
  if (a.startsWith('[')) {
    const close = a.indexOf(']');
    if (close < 0) {
      push(anomalies, 'http_host_invalid');
      host = a.slice(1);
    } else {
      host = a.slice(1, close);
      const rest = a.slice(close + 1);
      if (rest.length > 0) {
        if (rest[0] !== ':') push(anomalies, 'http_host_invalid');
        port = rest.slice(1);
      }
    }
  } else {
    const colon = a.indexOf(':');
    if (colon >= 0) {
      if (a.indexOf(':', colon + 1) >= 0) push(anomalies, 'http_host_invalid'); // bare IPv6 or junk
      host = a.slice(0, colon);
      port = a.slice(colon + 1);
    } else {
      host = a;
    }
  }
  if (port.length > 0 && !/^[0-9]{1,5}$/.test(port)) push(anomalies, 'http_host_invalid');
  host = host.toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) {
      push(anomalies, 'http_host_invalid');
      break;
    }
  }
  return host.length > 0 ? host : null;
}

/**
 * Parse the request head at the start of a client stream prefix. Never throws.
 *
 * `final`: no more bytes will come (the flow ended, or the engine's inspection budget is spent).
 * Then an incomplete head is parsed as far as its complete lines go, with anomaly
 * `http_head_incomplete`, instead of 'need-more'. A head longer than HTTP_MAX_HEAD is parsed
 * the same way over its first HTTP_MAX_HEAD bytes, with anomaly `http_head_too_large`. Both need
 * at least a complete request line, else they are errors with that code.
 */
export function parseHttpRequest(data: Uint8Array, final = false): HttpResult {
  return new HttpHeadScanner().feed(data, final);
}

/**
 * Resumable {@link parseHttpRequest} for a growing stream prefix: the search for the end of the head
 * continues where the previous call stopped, so a head delivered in n pieces costs O(bytes + n).
 * Once the result is not 'need-more' it is final.
 */
export class HttpHeadScanner {
  /** Where the LF search resumes. */
  from = 0;
  private final_: HttpResult | null = null;

  feed(data: Uint8Array, final = false): HttpResult {
    if (this.final_ !== null) return this.final_;
    const r = this.step(data, final);
    if (r !== NEED_MORE) this.final_ = r;
    return r;
  }

  private step(data: Uint8Array, final: boolean): HttpResult {
    if (data.length === 0) return final ? NOT_MINE : NEED_MORE;
    const m = matchMethod(data);
    if (m === -2) return NOT_MINE;
    const tooLarge = data.length >= HTTP_MAX_HEAD;
    if (m === -1) return final ? NOT_MINE : NEED_MORE;
    const limit = Math.min(data.length, HTTP_MAX_HEAD);
    let end = findHeadEnd(data, limit, this);
    let partial: string | null = null;
    if (end < 0) {
      if (!tooLarge && !final) return NEED_MORE;
      partial = tooLarge ? 'http_head_too_large' : 'http_head_incomplete';
      const lastLf = data.lastIndexOf(10, limit - 1);
      if (lastLf < 0) return { status: 'error', anomaly: partial };
      end = lastLf + 1;
    }
    const r = parseHead(data, end, METHODS[m]);
    if (partial !== null && r.status === 'done') r.anomalies.push(partial);
    return r;
  }
}

function parseHead(data: Uint8Array, end: number, method: string): HttpResult {
  const anomalies: string[] = [];
  // Request line.
  let lf = byteAt(data, 10, 0, end);
  let lineEnd = lf > 0 && data[lf - 1] === 13 ? lf - 1 : lf;
  if (lineEnd === lf) push(anomalies, 'http_bare_lf');
  // method SP target SP version; runs of spaces are tolerated (RFC 9112 §3 allows parsing on
  // whitespace boundaries) and flagged.
  let tStart = method.length + 1;
  while (tStart < lineEnd && data[tStart] === 32) tStart++;
  if (tStart > method.length + 1) push(anomalies, 'http_extra_whitespace');
  let sp = byteAt(data, 32, tStart, lineEnd);
  if (sp < 0 || sp > lineEnd) sp = lineEnd;
  if (sp === tStart) return { status: 'error', anomaly: 'http_malformed_request_line' };
  // A target with spaces in it (attack tools send `GET /a;cat /etc/passwd HTTP/1.1`): when the
  // line's last token is an HTTP version, everything before it is the target.
  {
    let e = lineEnd;
    while (e > sp && data[e - 1] === 32) e--;
    let ls = e - 1;
    while (ls > sp && data[ls] !== 32) ls--;
    if (
      ls > sp &&
      e - ls > 5 &&
      data[ls + 1] === 0x48 &&
      data[ls + 2] === 0x54 &&
      data[ls + 3] === 0x54 &&
      data[ls + 4] === 0x50 &&
      data[ls + 5] === 0x2f
    ) {
      let te = ls;
      while (te > sp && data[te - 1] === 32) te--;
      if (te > sp) {
        sp = te;
        push(anomalies, 'http_space_in_target');
      }
    }
  }
  const target = ascii(data, tStart, sp);
  if (!isPrintable(data, tStart, sp)) push(anomalies, 'http_bad_target');
  let vStart = sp;
  while (vStart < lineEnd && data[vStart] === 32) vStart++;
  let vEnd = lineEnd;
  while (vEnd > vStart && data[vEnd - 1] === 32) vEnd--;
  if (vStart > sp + 1 || vEnd < lineEnd) push(anomalies, 'http_extra_whitespace');
  let isHttp11 = false;
  if (vStart === vEnd) {
    push(anomalies, 'http_no_version');
  } else {
    const v = ascii(data, vStart, Math.min(vEnd, vStart + 16));
    // Same request-line syntax, other protocols (RTSP, SIP, ...): not HTTP.
    if (!v.startsWith('HTTP/')) return NOT_MINE;
    if (byteAt(data, 32, vStart, vEnd) >= 0) {
      push(anomalies, 'http_malformed_request_line');
    }
    if (v !== 'HTTP/1.1' && v !== 'HTTP/1.0') push(anomalies, 'http_bad_version');
    isHttp11 = v === 'HTTP/1.1';
  }

  // Header fields: only Host is materialised as a string.
  let host: string | null = null;
  let pos = lf + 1;
  while (pos < end) {
    lf = byteAt(data, 10, pos, end);
    lineEnd = lf > pos && data[lf - 1] === 13 ? lf - 1 : lf;
    if (lineEnd === lf) push(anomalies, 'http_bare_lf');
    const s = pos;
    pos = lf + 1;
    if (lineEnd === s) break; // empty line: end of head
    const c0 = data[s];
    if (c0 === 32 || c0 === 9) {
      push(anomalies, 'http_obs_fold');
      continue;
    }
    let colon = -1;
    for (let i = s; i < lineEnd; i++) {
      if (data[i] === 58) {
        colon = i;
        break;
      }
    }
    if (colon <= s) {
      push(anomalies, 'http_malformed_header');
      continue;
    }
    const spaced = data[colon - 1] === 32 || data[colon - 1] === 9;
    if (spaced) {
      push(anomalies, 'http_space_before_colon');
      continue;
    }
    if (colon - s !== 4) continue;
    if (
      (data[s] | 0x20) !== 0x68 ||
      (data[s + 1] | 0x20) !== 0x6f ||
      (data[s + 2] | 0x20) !== 0x73 ||
      (data[s + 3] | 0x20) !== 0x74
    ) {
      continue;
    }
    let vs = colon + 1;
    let ve = lineEnd;
    while (vs < ve && (data[vs] === 32 || data[vs] === 9)) vs++;
    while (ve > vs && (data[ve - 1] === 32 || data[ve - 1] === 9)) ve--;
    if (host !== null) {
      push(anomalies, 'http_multiple_host');
      continue;
    }
    host = ascii(data, vs, ve);
  }

  // The name.
  let hostname: string | null = null;
  let fromTarget = false;
  if (method === 'CONNECT') {
    hostname = hostnameFromAuthority(target, anomalies);
    fromTarget = true;
  } else {
    const scheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.exec(target);
    if (scheme !== null) {
      const rest = target.slice(scheme[0].length);
      const stop = rest.search(/[/?#]/);
      hostname = hostnameFromAuthority(stop < 0 ? rest : rest.slice(0, stop), anomalies);
      fromTarget = true;
    }
  }
  if (host !== null) {
    const fromHost = hostnameFromAuthority(host, fromTarget ? [] : anomalies);
    if (fromTarget) {
      if (fromHost !== hostname) push(anomalies, 'http_host_mismatch');
    } else {
      hostname = fromHost;
    }
  } else if (!fromTarget && isHttp11) {
    push(anomalies, 'http_missing_host');
  }
  return { status: 'done', method, target, host, hostname, anomalies };
}
