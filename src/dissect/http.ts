/**
 * @module dissect/http
 * HTTP/1.x request head parser (RFC 9112): request line and header fields up to the empty line.
 *
 * Called with a growing prefix of the client→server stream. 'not-mine' is decided from the first
 * bytes (they must spell a known method followed by a space, checked byte by byte, so even one
 * byte can be rejected); the head is then walked line by line through the one bounded cursor (util/bytes ByteReader), each
 * line parsed once when its LF arrives, resuming where the previous call stopped (see
 * {@link HttpHeadScanner}). A head longer than
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
import { ascii, ByteReader } from '../util/bytes.js';

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

const EMPTY = new Uint8Array(0);
const P_METHOD = 0;
const P_REQUEST_LINE = 1;
const P_HEADERS = 2;

/**
 * Resumable {@link parseHttpRequest}: a state machine fed a growing contiguous prefix of the client
 * stream (the same bytes plus more each time; the buffer itself may differ). It walks the head line by
 * line through a {@link ByteReader} and keeps only offsets and what the finished lines said (method,
 * target, version, the first Host, anomalies): each complete line is parsed once, when its LF arrives,
 * and the LF search resumes where it stopped, so a head delivered in n pieces costs O(bytes + n) —
 * whatever the number of header lines or how finely a line is split. Once the result is not
 * 'need-more' it is final and returned again by later calls.
 */
export class HttpHeadScanner {
  /** Work counter: bytes examined by the line search over all calls (each head byte once). */
  scanned = 0;
  /** Work counter: lines parsed over all calls (each complete line once). */
  lines = 0;
  private phase = P_METHOD;
  private method = '';
  /** Start of the first line not yet parsed. */
  private lineStart = 0;
  /** Where the LF search resumes (inside the line at lineStart). */
  private from = 0;
  /** The request line's verdict when it is not HTTP or is malformed: returned once the head ends. */
  private verdict: HttpResult | null = null;
  private target = '';
  private isHttp11 = false;
  private host: string | null = null;
  private anomalies: string[] = [];
  private final_: HttpResult | null = null;
  /** The stream cursor and a line cursor; reset to an empty view after each call (no view is held). */
  private readonly r = new ByteReader(EMPTY);
  private readonly line = new ByteReader(EMPTY);

  feed(data: Uint8Array, final = false): HttpResult {
    if (this.final_ !== null) return this.final_;
    const r = this.step(data, final);
    this.r.reset(EMPTY);
    this.line.reset(EMPTY);
    if (r !== NEED_MORE) this.final_ = r;
    return r;
  }

  private step(data: Uint8Array, final: boolean): HttpResult {
    if (data.length === 0) return final ? NOT_MINE : NEED_MORE;
    if (this.phase === P_METHOD) {
      const m = matchMethod(data);
      if (m === -2) return NOT_MINE;
      if (m === -1) return final ? NOT_MINE : NEED_MORE;
      this.method = METHODS[m];
      this.phase = P_REQUEST_LINE;
    }
    const limit = Math.min(data.length, HTTP_MAX_HEAD);
    const r = this.r.reset(data, this.lineStart, limit);
    for (;;) {
      const lf = r.find(10, this.from);
      if (lf < 0) {
        this.scanned += limit - this.from;
        this.from = limit;
        break;
      }
      this.scanned += lf + 1 - this.from;
      this.lines++;
      const s = r.pos;
      r.seek(lf + 1);
      this.lineStart = this.from = lf + 1;
      const lineEnd = lf > s && data[lf - 1] === 13 ? lf - 1 : lf;
      if (lineEnd === lf) push(this.anomalies, 'http_bare_lf');
      if (this.phase === P_REQUEST_LINE) {
        this.verdict = this.requestLine(this.line.reset(data, s, lineEnd));
        this.phase = P_HEADERS;
      } else if (lineEnd === s) {
        return this.finish(null); // empty line: end of head
      } else if (this.verdict === null) {
        this.headerLine(this.line.reset(data, s, lineEnd));
      }
    }
    if (data.length < HTTP_MAX_HEAD && !final) return NEED_MORE;
    const partial = data.length >= HTTP_MAX_HEAD ? 'http_head_too_large' : 'http_head_incomplete';
    if (this.phase === P_REQUEST_LINE) return { status: 'error', anomaly: partial };
    return this.finish(partial);
  }

  /**
   * The request line (without its line end): method SP target SP version. Runs of spaces are
   * tolerated (RFC 9112 §3 allows parsing on whitespace boundaries) and flagged. Returns the verdict
   * when the line is not an HTTP request line, else null.
   */
  private requestLine(line: ByteReader): HttpResult | null {
    const anomalies = this.anomalies;
    const data = line.buf;
    const lineEnd = line.end;
    line.skip(this.method.length + 1);
    while (line.peek() === 32) line.skip(1);
    const tStart = line.pos;
    if (tStart > this.method.length + 1) push(anomalies, 'http_extra_whitespace');
    let sp = line.find(32);
    if (sp < 0) sp = lineEnd;
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
    this.target = ascii(data, tStart, sp);
    if (!isPrintable(data, tStart, sp)) push(anomalies, 'http_bad_target');
    line.seek(sp);
    while (line.peek() === 32) line.skip(1);
    const vStart = line.pos;
    let vEnd = lineEnd;
    while (vEnd > vStart && data[vEnd - 1] === 32) vEnd--;
    if (vStart > sp + 1 || vEnd < lineEnd) push(anomalies, 'http_extra_whitespace');
    if (vStart === vEnd) {
      push(anomalies, 'http_no_version');
      return null;
    }
    const v = ascii(data, vStart, Math.min(vEnd, vStart + 16));
    // Same request-line syntax, other protocols (RTSP, SIP, ...): not HTTP.
    if (!v.startsWith('HTTP/')) return NOT_MINE;
    line.end = vEnd;
    if (line.find(32) >= 0) push(anomalies, 'http_malformed_request_line');
    if (v !== 'HTTP/1.1' && v !== 'HTTP/1.0') push(anomalies, 'http_bad_version');
    this.isHttp11 = v === 'HTTP/1.1';
    return null;
  }

  /** One header field line (not empty, without its line end). Only Host is materialised as a string. */
  private headerLine(line: ByteReader): void {
    const anomalies = this.anomalies;
    const data = line.buf;
    const s = line.pos;
    const c0 = line.peek();
    if (c0 === 32 || c0 === 9) {
      push(anomalies, 'http_obs_fold');
      return;
    }
    const colon = line.find(58);
    if (colon <= s) {
      push(anomalies, 'http_malformed_header');
      return;
    }
    if (data[colon - 1] === 32 || data[colon - 1] === 9) {
      push(anomalies, 'http_space_before_colon');
      return;
    }
    if (colon - s !== 4) return;
    if (
      (line.u8() | 0x20) !== 0x68 ||
      (line.u8() | 0x20) !== 0x6f ||
      (line.u8() | 0x20) !== 0x73 ||
      (line.u8() | 0x20) !== 0x74
    ) {
      return;
    }
    line.skip(1); // the colon
    let c = line.peek();
    while (c === 32 || c === 9) {
      line.skip(1);
      c = line.peek();
    }
    const vs = line.pos;
    let ve = line.end;
    while (ve > vs && (data[ve - 1] === 32 || data[ve - 1] === 9)) ve--;
    if (this.host !== null) {
      push(anomalies, 'http_multiple_host');
      return;
    }
    this.host = ascii(data, vs, ve);
  }

  /** The head ended (or was cut: `partial` names how): the name and the result. */
  private finish(partial: string | null): HttpResult {
    if (this.verdict !== null) return this.verdict;
    const { method, target, host, anomalies } = this;
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
    } else if (!fromTarget && this.isHttp11) {
      push(anomalies, 'http_missing_host');
    }
    if (partial !== null) anomalies.push(partial);
    return { status: 'done', method, target, host, hostname, anomalies };
  }
}
