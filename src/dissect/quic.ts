/**
 * @module dissect/quic
 * QUIC client Initial decryption and ClientHello extraction, one assembler per UDP flow.
 *
 * The engine feeds the client→server UDP payloads of a flow, in arrival order, to a
 * {@link QuicInitialAssembler}. For every datagram it walks the coalesced long-header packets by
 * their Length fields (stopping at a short header), skips 0-RTT/Handshake packets, and opens each
 * Initial packet (RFC 9001 §5: header protection, AES-128-GCM) of a supported version (v1, v2 =
 * RFC 9369, the v2 drafts, drafts 29–34; see {@link module:dissect/quic-keys}).
 *
 * Keys: derived from the DCID of the first Initial that opens, then cached (at most 4 sets).
 * Each Initial is tried with the cached keys first (most recently successful first), then with
 * keys derived from its own DCID. That covers both later cases: after the server's first Initial
 * the client switches to the server's connection ID but keeps the original keys; after a Retry
 * the client switches DCID *and* keys (RFC 9001 §5.2) while continuing the same CRYPTO stream.
 *
 * CRYPTO frames are reassembled by offset across packets and datagrams, in any order, first copy
 * wins on overlap ({@link module:dissect/quic-crypto-assembler}), bounded by `maxCryptoBytes`.
 * When the contiguous prefix holds a complete handshake message of type 1 it is parsed with the
 * shared ClientHello parser ({@link parseClientHelloBody}, JA4 transport 'q') and the result is
 * `done`. Other frames allowed in Initial packets are skipped: PADDING, PING, ACK, ACK_ECN,
 * CONNECTION_CLOSE (transport). An unknown frame type stops the parsing of that packet.
 *
 * Results: `not-mine` while nothing QUIC-like that we can open has been seen (including Version
 * Negotiation packets, which never change the state), `need-more` once an Initial opened, `done`
 * or `error` (final; later feeds return the same result). Never throws.
 *
 * Anomaly codes (in `anomalies`, non-fatal unless returned as the error):
 * - `quic_truncated`, `quic_bad_cid_length`, `quic_bad_length`  header framing (packet skipped)
 * - `quic_decrypt_failed`   an Initial did not open with any key tried (fatal if nothing ever opened)
 * - `quic_bad_frame`        a frame runs past the packet payload (rest of the packet skipped)
 * - `quic_unknown_frame`    a frame type not allowed in Initial packets (rest of the packet skipped)
 * - `quic_connection_close` the client sent CONNECTION_CLOSE in an Initial
 * - `quic_crypto_mismatch`  an overlapping CRYPTO frame disagreed with the first copy (kept)
 * - `quic_crypto_beyond_limit` CRYPTO data past `maxCryptoBytes` was dropped
 * - `quic_small_datagram`   a datagram with a client Initial shorter than 1200 bytes (RFC 9000 §14.1)
 * - `quic_unknown_version`  a coalesced packet with an unsupported version (rest of datagram skipped)
 * - `quic_too_many_packets` more than 8 coalesced long-header packets (the rest is skipped; bounds
 *                           the key derivations a hostile datagram can cause)
 * Fatal only (the `error` result): `quic_not_client_hello` (the CRYPTO stream does not start with a
 * ClientHello), `quic_crypto_too_large` (the ClientHello cannot fit in `maxCryptoBytes`),
 * `quic_no_client_hello` (64 datagrams without a complete ClientHello), the ClientHello parser's
 * codes (`tls_malformed_hello`, `tls_sni_invalid`), and `quic_internal_error` (a bug, caught).
 */
import { parseClientHelloBody, TlsMalformedError } from './tls.js';
import { ByteReader } from '../util/bytes.js';
import { TruncatedError } from '../util/errors.js';
import type { ClientHello } from './types.js';
import { CryptoAssembler } from './quic-crypto-assembler.js';
import {
  deriveInitialKeys,
  initialTypeBits,
  PT_INITIAL,
  PT_RETRY,
  quicVersionInfo,
  type InitialKeys,
  type QuicVersionInfo,
} from './quic-keys.js';
import { openInitial, parseLongHeader, type LongHeader } from './quic-packet.js';

export type QuicResult =
  | { status: 'done'; version: number; hello: ClientHello; anomalies: string[] }
  | { status: 'need-more' }
  | { status: 'not-mine' }
  | { status: 'error'; anomaly: string };

const NEED_MORE: QuicResult = Object.freeze({ status: 'need-more' });
const NOT_MINE: QuicResult = Object.freeze({ status: 'not-mine' });

/** Default bound on buffered CRYPTO bytes. */
export const DEFAULT_MAX_CRYPTO_BYTES = 64 * 1024;
/** Datagrams fed without a complete ClientHello before giving up. */
export const MAX_DATAGRAMS = 64;
const MAX_KEY_SETS = 4;
/** Long-header packets examined per datagram (real clients coalesce two or three). */
export const MAX_PACKETS_PER_DATAGRAM = 8;
/**
 * Minimum size of a datagram carrying a client Initial (RFC 9000 §14.1). The one size rule for
 * Initials: a smaller one is still dissected and named (the box inspects, it is not the server that
 * must discard it), with the anomaly `quic_small_datagram`; offline and on the wire alike, since both
 * run this dissector through engine/inspect.
 */
export const MIN_INITIAL_DATAGRAM = 1200;

interface KeySet {
  info: QuicVersionInfo;
  dcid: Uint8Array;
  keys: InitialKeys;
  largestPn: number;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function u32(d: Uint8Array, p: number): number {
  return ((d[p] << 24) | (d[p + 1] << 16) | (d[p + 2] << 8) | d[p + 3]) >>> 0;
}

/**
 * Cheap first check for a UDP payload that starts with a client Initial: long header with the
 * fixed bit, a supported version, the Initial type bits of that version, a DCID of at most 20
 * bytes. Not the datagram size: an Initial under {@link MIN_INITIAL_DATAGRAM} bytes is taken too
 * (and noted by the assembler), so a 1001–1199-byte Initial is named, on the wire as offline.
 * Allocation-free.
 */
export function looksLikeQuicInitial(d: Uint8Array): boolean {
  if (d.length < 6) return false; // the header bytes read below
  const b0 = d[0];
  if ((b0 & 0xc0) !== 0xc0) return false;
  const bits = initialTypeBits((d[1] << 24) | (d[2] << 16) | (d[3] << 8) | d[4]);
  if (bits < 0 || ((b0 >> 4) & 3) !== bits) return false;
  return d[5] <= 20;
}

/**
 * What a QUIC dissector in progress costs besides its CRYPTO buffer: the assembler and its frame walk,
 * the Initial keys (four node:crypto Buffers, each its own backing store) and the DCID per key set.
 * Measured on 60,000 flows each left after its first Initial: ~2.3 KB per flow on the heap and in
 * array buffers beside the CRYPTO data. Counted with it, so that the global reassembly cap bounds a
 * flood of half-sent QUIC handshakes too (it held 236 MiB at the offline flow cap before).
 */
export const QUIC_STATE_BYTES = 2560;

export class QuicInitialAssembler {
  /** Non-fatal anomaly codes seen so far (deduplicated, in order of first occurrence). */
  readonly anomalies: string[] = [];
  private readonly crypto: CryptoAssembler;
  private keySets: KeySet[] = [];
  private opened = 0;
  private datagrams = 0;
  private version = 0;
  private final: QuicResult | null = null;
  /** The one cursor the frame walk reads through (reset per packet, never reallocated). */
  private readonly rd = new ByteReader(new Uint8Array(0));
  /** Length of the datagram being fed. */
  private curLen = 0;

  constructor(readonly maxCryptoBytes: number = DEFAULT_MAX_CRYPTO_BYTES) {
    const m =
      Number.isFinite(maxCryptoBytes) && maxCryptoBytes > 0
        ? Math.floor(maxCryptoBytes)
        : DEFAULT_MAX_CRYPTO_BYTES;
    this.crypto = new CryptoAssembler(m);
  }

  /** Bytes allocated for the CRYPTO stream. */
  get held(): number {
    return this.crypto.held;
  }

  /**
   * What this assembler costs while it runs, for the engine's global reassembly cap: the CRYPTO
   * stream plus {@link QUIC_STATE_BYTES} for the rest of its state.
   */
  get costBytes(): number {
    return this.crypto.held + QUIC_STATE_BYTES;
  }

  /** Feed one client→server UDP payload. Never throws. */
  feed(datagram: Uint8Array): QuicResult {
    if (this.final) return this.final;
    try {
      return this.feedDatagram(datagram);
    } catch {
      return this.fail('quic_internal_error');
    }
  }

  private note(code: string): void {
    if (!this.anomalies.includes(code)) this.anomalies.push(code);
  }

  private fail(code: string): QuicResult {
    this.final = { status: 'error', anomaly: code };
    return this.final;
  }

  private feedDatagram(d: Uint8Array): QuicResult {
    const n = d.length;
    // Version Negotiation (version 0) is a server packet: not ours, and it changes nothing.
    if (n >= 5 && (d[0] & 0x80) !== 0 && u32(d, 1) === 0) return NOT_MINE;
    this.datagrams++;
    this.curLen = n;
    let pos = 0;
    let sawKnown = false;
    let failure: string | null = null;
    let packets = 0;
    while (pos < n) {
      if (++packets > MAX_PACKETS_PER_DATAGRAM) {
        this.note('quic_too_many_packets');
        break;
      }
      if ((d[pos] & 0x80) === 0) break; // short header: the rest is one 1-RTT packet
      if (pos + 5 > n) {
        this.note('quic_truncated');
        break;
      }
      const version = u32(d, pos + 1);
      if (version === 0) break;
      const info = quicVersionInfo(version);
      if (!info) {
        if (pos > 0) this.note('quic_unknown_version');
        break;
      }
      sawKnown = true;
      const h = parseLongHeader(d, pos, info);
      if (typeof h === 'string') {
        this.note(h);
        failure = h;
        break;
      }
      const pt = info.typeOf[h.typeBits];
      if (pt === PT_RETRY) break; // no Length field; a server packet anyway
      if (pt === PT_INITIAL) {
        const r = this.processInitial(d, h, info);
        if (this.final) return this.final;
        if (r !== null) failure = r;
      }
      pos = h.end;
    }
    if (this.opened === 0) {
      if (!sawKnown) return NOT_MINE;
      if (failure !== null) return this.fail(failure);
    }
    if (this.datagrams >= MAX_DATAGRAMS) return this.fail('quic_no_client_hello');
    return NEED_MORE;
  }

  /** Open one Initial and take its frames; returns an error code or null. */
  private processInitial(d: Uint8Array, h: LongHeader, info: QuicVersionInfo): string | null {
    let code = 'quic_decrypt_failed';
    let ownTried = false;
    for (let i = 0; i < this.keySets.length; i++) {
      const ks = this.keySets[i];
      if (ks.info !== info) continue;
      if (sameBytes(ks.dcid, h.dcid)) ownTried = true;
      const r = openInitial(d, h, ks.keys, ks.largestPn);
      if (typeof r === 'string') {
        if (r !== 'quic_decrypt_failed') code = r;
        continue;
      }
      if (r.pn > ks.largestPn) ks.largestPn = r.pn;
      if (i > 0) {
        this.keySets.splice(i, 1);
        this.keySets.unshift(ks);
      }
      this.accept(info, r.payload);
      return null;
    }
    if (!ownTried) {
      const keys = deriveInitialKeys(info, h.dcid);
      const r = openInitial(d, h, keys, -1);
      if (typeof r !== 'string') {
        const ks: KeySet = { info, dcid: Uint8Array.from(h.dcid), keys, largestPn: r.pn };
        this.keySets.unshift(ks);
        if (this.keySets.length > MAX_KEY_SETS) this.keySets.length = MAX_KEY_SETS;
        this.accept(info, r.payload);
        return null;
      }
      if (r !== 'quic_decrypt_failed') code = r;
    }
    this.note(code);
    return code;
  }

  private accept(info: QuicVersionInfo, payload: Uint8Array): void {
    if (this.curLen < MIN_INITIAL_DATAGRAM) this.note('quic_small_datagram');
    this.opened++;
    this.version = info.version;
    this.takeFrames(payload, info.cryptoFrameType);
    if (this.crypto.mismatch) this.note('quic_crypto_mismatch');
    this.tryComplete();
  }

  /**
   * Walk the frames of an opened Initial payload (RFC 9000 §19) through the assembler's one reused
   * {@link ByteReader}: a frame that runs past the payload is a truncation at the cursor
   * (`quic_bad_frame`, rest of the packet skipped), caught once per packet, not per field.
   */
  private takeFrames(f: Uint8Array, cryptoType: number): void {
    const r = this.rd.reset(f, 0, f.length);
    try {
      while (r.pos < r.end) {
        const t = r.u8();
        if (t === 0x00) {
          while (r.pos < r.end && f[r.pos] === 0) r.pos++;
          continue;
        }
        if (t === 0x01) continue;
        if (t === cryptoType) {
          const off = r.varint();
          const data = r.bytes(r.varint());
          if (!this.crypto.add(off, data)) this.note('quic_crypto_beyond_limit');
          continue;
        }
        if (t === 0x02 || t === 0x03) {
          // Largest Acknowledged, ACK Delay, ACK Range Count, First ACK Range, ranges, [ECN counts]
          r.varint();
          r.varint();
          const count = r.varint();
          r.varint();
          for (let i = 0; i < count; i++) {
            r.varint(); // each range is ≥ 2 bytes: the loop ends at the payload's end at the latest
            r.varint();
          }
          if (t === 0x03) {
            r.varint();
            r.varint();
            r.varint();
          }
          continue;
        }
        if (t === 0x1c) {
          // Error Code, Frame Type, Reason Phrase Length, Reason Phrase
          this.note('quic_connection_close');
          r.varint();
          r.varint();
          r.skip(r.varint());
          continue;
        }
        return this.note('quic_unknown_frame');
      }
    } catch (e) {
      if (!(e instanceof TruncatedError)) throw e;
      this.note('quic_bad_frame');
    }
  }

  /** If the contiguous CRYPTO prefix holds the whole ClientHello, parse it and finish. */
  private tryComplete(): void {
    const c = this.crypto.contiguous;
    if (c < 4) return;
    const b = this.crypto.prefix();
    if (b[0] === 0x43 && b[1] === 0x48 && b[2] === 0x4c && b[3] === 0x4f) {
      // Google Q050: a QUIC-crypto CHLO (tag/value map) instead of a TLS ClientHello
      const sni = chloSni(b.subarray(0, c));
      if (sni === undefined) return;
      this.final = {
        status: 'done',
        version: this.version,
        hello: chloHello(sni),
        anomalies: this.anomalies.slice(),
      };
      return;
    }
    if (b[0] !== 1) {
      this.fail('quic_not_client_hello');
      return;
    }
    const len = (b[1] << 16) | (b[2] << 8) | b[3];
    if (4 + len > this.crypto.max) {
      this.fail('quic_crypto_too_large');
      return;
    }
    if (c < 4 + len) return;
    let hello: ClientHello;
    try {
      hello = parseClientHelloBody(b.subarray(4, 4 + len), 'q');
    } catch (e) {
      this.fail(e instanceof TlsMalformedError ? e.anomaly : 'tls_malformed_hello');
      return;
    }
    const anomalies = this.anomalies.slice();
    if (hello.anomalies) for (const a of hello.anomalies) if (!anomalies.includes(a)) anomalies.push(a);
    this.final = { status: 'done', version: this.version, hello, anomalies };
  }
}

/**
 * The SNI tag of a complete QUIC-crypto CHLO message ("CHLO", u16 tag count, u16 padding, then
 * (tag, u32 LE end offset) pairs and the values): the name, null without an SNI tag, or undefined
 * while the message is incomplete.
 */
function chloSni(d: Uint8Array): string | null | undefined {
  if (d.length < 8) return undefined;
  const n = d[4] | (d[5] << 8);
  const values = 8 + n * 8;
  if (n > 128 || values > d.length) return undefined;
  let prev = 0;
  for (let t = 0; t < n; t++) {
    const o = 8 + t * 8;
    const end = (d[o + 4] | (d[o + 5] << 8) | (d[o + 6] << 16)) + d[o + 7] * 16777216;
    if (end < prev) return null;
    if (values + end > d.length) return undefined;
    if (d[o] === 0x53 && d[o + 1] === 0x4e && d[o + 2] === 0x49 && d[o + 3] === 0) {
      let s = '';
      for (let k = values + prev; k < values + end; k++) s += String.fromCharCode(d[k]);
      return s;
    }
    prev = end;
  }
  return null;
}

const NO_VALUES = new Uint16Array(0);

/** A ClientHello-shaped result for a CHLO (no TLS fields; the engine reports only the QUIC name). */
function chloHello(sni: string | null): ClientHello {
  return {
    legacyVersion: 0,
    sni,
    alpn: [],
    supportedVersions: [],
    cipherSuites: NO_VALUES,
    extensions: NO_VALUES,
    signatureAlgorithms: NO_VALUES,
    ech: false,
    ja4: '',
  };
}
