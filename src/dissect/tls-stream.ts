/**
 * @module dissect/tls-stream
 * Finds and parses the TLS ClientHello at the start of a client→server TCP byte stream.
 *
 * The engine keeps one {@link TlsHelloScanner} per flow and feeds it the growing contiguous prefix of
 * the stream (TCP reassembly is the engine's job), once per new segment, until the result is not
 * 'need-more'; the scanner resumes where it stopped. The record layer is walked here:
 * - the ClientHello may be fragmented over several handshake records (even 1-byte records);
 * - non-handshake records (ChangeCipherSpec, alert, application data, heartbeat) before or in
 *   between are skipped and reported (`tls_record_before_hello`, `tls_record_interleaved`);
 * - the 'need-more' path only peeks at record and handshake headers — no body parsing, no
 *   allocation, no copy; each byte is looked at once over all calls (the walk resumes);
 * - the body is parsed once, as a view of the input when it lies in one record, or copied
 *   together from its fragments otherwise.
 *
 * Non-fatal anomalies (besides the body parser's): `tls_record_before_hello`,
 * `tls_record_interleaved`, `tls_hello_fragmented` (the hello spans several records: legal, rare
 * in real clients, a known DPI evasion).
 *
 * 'not-mine' is decided from at most the first 5 bytes (record header). Errors are reported as
 * `{status:'error', anomaly}`; this function never throws. Error codes: `tls_malformed_hello`,
 * `tls_sni_invalid`, `tls_not_client_hello` (first handshake message has another type),
 * `tls_bad_record` (an invalid record header after the first), `tls_no_client_hello` (more than
 * 4 non-handshake records first, e.g. a stream picked up mid-connection), `tls_hello_too_large`
 * (declared length > {@link MAX_HELLO_BODY}), `tls_sslv2_hello` (SSLv2-format ClientHello,
 * which has no extensions and hence no SNI).
 */
import type { ClientHello, ParseStatus } from './types.js';
import { TruncatedError } from '../util/errors.js';
import { parseClientHelloBody, TlsMalformedError } from './tls.js';

export type TlsStreamResult = { status: 'done'; hello: ClientHello; anomalies: string[] } | ParseStatus;

/** Largest ClientHello body accepted (bytes); a larger declared length is an error. */
export const MAX_HELLO_BODY = 1 << 16;
/** Largest TLS record length accepted in a header (2^14 plaintext + 2048 expansion). */
const MAX_RECORD = 16384 + 2048;

/** Non-handshake records tolerated before the ClientHello (more: not a handshake start). */
const MAX_RECORDS_BEFORE_HELLO = 4;

const CT_CCS = 20;
const CT_HANDSHAKE = 22;
const CT_HEARTBEAT = 24;

const NEED_MORE: ParseStatus = Object.freeze({ status: 'need-more' }) as ParseStatus;
const NOT_MINE: ParseStatus = Object.freeze({ status: 'not-mine' }) as ParseStatus;

function isContentType(t: number): boolean {
  return t >= CT_CCS && t <= CT_HEARTBEAT;
}

/**
 * Whether the record header at `p` (its available part, up to 5 bytes) is plausible.
 * Version must be 0x0300..0x0304 and, once known, the length 1..MAX_RECORD.
 */
function headerPlausible(data: Uint8Array, p: number): boolean {
  const n = data.length - p;
  if (n >= 1 && !isContentType(data[p])) return false;
  if (n >= 2 && data[p + 1] !== 3) return false;
  if (n >= 3 && data[p + 2] > 4) return false;
  if (n >= 5) {
    const len = (data[p + 3] << 8) | data[p + 4];
    if (len === 0 && data[p] === CT_HANDSHAKE) return false;
    if (len > MAX_RECORD) return false;
  }
  return true;
}

/**
 * Cheap protocol guess: true if the available prefix (up to 5 bytes, at least 1) is consistent
 * with the header of a TLS record (any content type 20..24, version 3.x, sane length).
 */
export function isTlsRecordStart(data: Uint8Array): boolean {
  return data.length > 0 && headerPlausible(data, 0);
}

function looksLikeSslv2Hello(data: Uint8Array): boolean {
  // 2-byte header with the high bit set, msg_type 1 (CLIENT-HELLO), version 0x0002 or 0x03xx.
  return (
    data.length >= 5 &&
    (data[0] & 0x80) !== 0 &&
    data[2] === 1 &&
    ((data[3] === 0 && data[4] === 2) || (data[3] === 3 && data[4] <= 4))
  );
}

/** Try to extract the ClientHello from a stream prefix (one shot). Never throws. */
export function tlsClientHelloFromStream(data: Uint8Array): TlsStreamResult {
  return new TlsHelloScanner().feed(data);
}

/**
 * Resumable walk of the record layer: {@link TlsHelloScanner.feed} is called with a growing contiguous
 * prefix of the stream (the same bytes plus more each time; the buffer itself may differ) and
 * continues where the previous call stopped, so a ClientHello delivered in n pieces costs O(total
 * bytes + n), not O(n²). Only offsets are kept, never views. Once the result is not 'need-more' it is
 * final and returned again by later calls.
 */
export class TlsHelloScanner {
  /** Offset of the current record header. */
  private p = 0;
  /** Inside the record at `p` (its header was read). */
  private inRecord = false;
  private recType = 0;
  private recLen = 0;
  /** Payload bytes of the current record already taken. */
  private taken = 0;
  private skippedBefore = false;
  private skippedInside = false;
  private skippedCount = 0;
  /** Handshake payload bytes seen so far, and the body length from the 4-byte header. */
  private hsSeen = 0;
  private bodyLen = -1;
  /** Handshake records contributing to the hello, and the offset of the first payload byte. */
  private records = 0;
  private firstPayload = 0;
  private final: TlsStreamResult | null = null;

  /** Start over (for a scanner reused across one-shot calls). */
  reset(): void {
    this.p = 0;
    this.inRecord = false;
    this.recType = this.recLen = this.taken = 0;
    this.skippedBefore = this.skippedInside = false;
    this.skippedCount = 0;
    this.hsSeen = 0;
    this.bodyLen = -1;
    this.records = this.firstPayload = 0;
    this.final = null;
  }

  feed(data: Uint8Array): TlsStreamResult {
    if (this.final !== null) return this.final;
    const r = this.step(data);
    if (r !== NEED_MORE) this.final = r;
    return r;
  }

  private step(data: Uint8Array): TlsStreamResult {
    const n = data.length;
    if (n === 0) return NEED_MORE;
    if (this.p === 0 && !this.inRecord) {
      if (!headerPlausible(data, 0)) {
        return looksLikeSslv2Hello(data) ? { status: 'error', anomaly: 'tls_sslv2_hello' } : NOT_MINE;
      }
    }
    for (;;) {
      const p = this.p;
      if (!this.inRecord) {
        if (p + 5 > n) {
          return headerPlausible(data, p) ? NEED_MORE : { status: 'error', anomaly: 'tls_bad_record' };
        }
        if (!headerPlausible(data, p)) {
          return p === 0 ? NOT_MINE : { status: 'error', anomaly: 'tls_bad_record' };
        }
        const type = data[p];
        if (type !== CT_HANDSHAKE) {
          if (this.hsSeen === 0) {
            this.skippedBefore = true;
            if (++this.skippedCount > MAX_RECORDS_BEFORE_HELLO) {
              return { status: 'error', anomaly: 'tls_no_client_hello' };
            }
          } else this.skippedInside = true;
        } else {
          if (this.records === 0) this.firstPayload = p + 5;
          this.records++;
        }
        this.recType = type;
        this.recLen = (data[p + 3] << 8) | data[p + 4];
        this.taken = 0;
        this.inRecord = true;
      }
      const start = p + 5;
      const len = this.recLen;
      const avail = Math.min(len, n - start);
      if (this.recType === CT_HANDSHAKE) {
        // collect the handshake header bytes that lie in the newly available part of this record
        const fresh = avail - this.taken;
        let i = 0;
        while (this.hsSeen + i < 4 && i < fresh) {
          const b = data[start + this.taken + i];
          if (this.hsSeen + i === 0) {
            if (b !== 1) return { status: 'error', anomaly: 'tls_not_client_hello' };
            this.bodyLen = 0;
          } else this.bodyLen = (this.bodyLen << 8) | b;
          i++;
        }
        this.hsSeen += fresh;
        this.taken = avail;
        if (this.hsSeen >= 4 && this.bodyLen > MAX_HELLO_BODY) {
          return { status: 'error', anomaly: 'tls_hello_too_large' };
        }
        if (this.hsSeen >= 4 && this.hsSeen >= 4 + this.bodyLen) {
          return finish(
            data,
            this.firstPayload,
            this.records,
            this.bodyLen,
            this.skippedBefore,
            this.skippedInside,
          );
        }
      } else this.taken = avail;
      if (avail < len) return NEED_MORE;
      this.p = start + len;
      this.inRecord = false;
    }
  }
}

function finish(
  data: Uint8Array,
  firstPayload: number,
  records: number,
  bodyLen: number,
  skippedBefore: boolean,
  skippedInside: boolean,
): TlsStreamResult {
  let body: Uint8Array;
  if (records === 1) {
    body = data.subarray(firstPayload + 4, firstPayload + 4 + bodyLen);
  } else {
    body = gather(data, bodyLen);
  }
  const anomalies: string[] = [];
  if (skippedBefore) anomalies.push('tls_record_before_hello');
  if (skippedInside) anomalies.push('tls_record_interleaved');
  if (records > 1) anomalies.push('tls_hello_fragmented');
  try {
    const hello = parseClientHelloBody(body, 't');
    if (hello.anomalies) for (const a of hello.anomalies) anomalies.push(a);
    return { status: 'done', hello, anomalies };
  } catch (e) {
    if (e instanceof TlsMalformedError) return { status: 'error', anomaly: e.anomaly };
    if (e instanceof TruncatedError) return { status: 'error', anomaly: 'tls_malformed_hello' };
    return { status: 'error', anomaly: 'tls_malformed_hello' };
  }
}

/** Copy the handshake body (after its 4-byte header) out of consecutive handshake records. */
function gather(data: Uint8Array, bodyLen: number): Uint8Array {
  const out = new Uint8Array(bodyLen);
  let skip = 4; // handshake header bytes still to drop
  let w = 0;
  let p = 0;
  while (w < bodyLen) {
    const type = data[p];
    const len = (data[p + 3] << 8) | data[p + 4];
    const start = p + 5;
    if (type === CT_HANDSHAKE) {
      let s = start;
      const e = Math.min(start + len, data.length);
      if (skip > 0) {
        const d = Math.min(skip, e - s);
        s += d;
        skip -= d;
      }
      const take = Math.min(e - s, bodyLen - w);
      if (take > 0) {
        out.set(data.subarray(s, s + take), w);
        w += take;
      }
    }
    p = start + len;
  }
  return out;
}
