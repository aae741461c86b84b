/**
 * @module dissect/dns
 * DNS message parser (RFC 1035 §4): header and the first question, i.e. the name a flow asks
 * for. Input is one message: a UDP payload, or a TCP message after its 2-byte length prefix
 * (the engine strips it). Never throws.
 *
 * Bounded by construction: a name is at most 255 wire bytes (so at most 127 labels); each
 * compression pointer must point strictly before the start of the name or of the previous jump
 * target (what any encoder produces: a suffix is always written earlier), so offsets strictly
 * decrease and a loop is impossible; at most 128 jumps are followed. Label types 01/10 (EDNS0 extended labels, reserved) are errors.
 *
 * `query` is the presentation form: labels lowercased (A–Z only), joined by '.', no trailing dot
 * (the root is ''); bytes outside printable ASCII, and '.' or '\' inside a label, are escaped as
 * `\DDD` / `\.` / `\\` (as dig prints them) and flagged `dns_name_odd_chars`.
 *
 * Status: 'need-more' when the message is shorter than its header+question (for UDP the engine
 * treats that as truncated); 'not-mine' for a header that cannot be a query/response with a
 * question (QDCOUNT 0); 'error' with `dns_bad_label`,
 * `dns_bad_pointer`, `dns_name_too_long`. Non-fatal anomalies: `dns_multiple_questions` (QDCOUNT > 1: the first is used),
 * `dns_name_odd_chars`, `dns_query_has_answers` (a query with answer/authority records),
 * `dns_unusual_opcode` (any opcode but QUERY: IQUERY, STATUS, NOTIFY, UPDATE, DSO or unassigned; the
 * name is still reported).
 */
import type { ParseStatus } from './types.js';
import { ByteReader } from '../util/bytes.js';
import { TruncatedError } from '../util/errors.js';

export type DnsResult =
  | {
      status: 'done';
      query: string /* lowercased, no trailing dot */;
      qtype: number;
      qtypeName: string;
      isResponse: boolean;
      id: number;
      anomalies: string[];
    }
  | ParseStatus;

const NEED_MORE: ParseStatus = Object.freeze({ status: 'need-more' }) as ParseStatus;
const NOT_MINE: ParseStatus = Object.freeze({ status: 'not-mine' }) as ParseStatus;

/** Longest name in wire form (RFC 1035 §2.3.4). */
const MAX_NAME_WIRE = 255;
const MAX_JUMPS = 128;

const TYPE_NAMES: Record<number, string> = {
  1: 'A',
  2: 'NS',
  5: 'CNAME',
  6: 'SOA',
  10: 'NULL',
  12: 'PTR',
  13: 'HINFO',
  15: 'MX',
  16: 'TXT',
  17: 'RP',
  18: 'AFSDB',
  24: 'SIG',
  25: 'KEY',
  28: 'AAAA',
  29: 'LOC',
  33: 'SRV',
  35: 'NAPTR',
  36: 'KX',
  37: 'CERT',
  39: 'DNAME',
  41: 'OPT',
  42: 'APL',
  43: 'DS',
  44: 'SSHFP',
  45: 'IPSECKEY',
  46: 'RRSIG',
  47: 'NSEC',
  48: 'DNSKEY',
  49: 'DHCID',
  50: 'NSEC3',
  51: 'NSEC3PARAM',
  52: 'TLSA',
  53: 'SMIMEA',
  55: 'HIP',
  59: 'CDS',
  60: 'CDNSKEY',
  61: 'OPENPGPKEY',
  62: 'CSYNC',
  63: 'ZONEMD',
  64: 'SVCB',
  65: 'HTTPS',
  99: 'SPF',
  108: 'EUI48',
  109: 'EUI64',
  249: 'TKEY',
  250: 'TSIG',
  251: 'IXFR',
  252: 'AXFR',
  255: 'ANY',
  256: 'URI',
  257: 'CAA',
};

/** Mnemonic of a query type ("A", "AAAA", "HTTPS", ...), else "TYPE<n>" (RFC 3597). */
export function dnsTypeName(t: number): string {
  return TYPE_NAMES[t] ?? `TYPE${t}`;
}

type NameResult = { name: string; end: number; odd: boolean } | { error: string };

/**
 * Read a (possibly compressed) name at the reader's position through the shared bounded cursor; `end`
 * is the offset after the name at its original position, and the reader is left there. A name that
 * runs past the message throws the cursor's TruncatedError (the caller's single catch: need more).
 */
function readName(r: ByteReader): NameResult {
  const start = r.pos;
  let end = -1; // offset after the name at its original position (set at the first jump)
  let wire = 0;
  let jumps = 0;
  let labels = 0;
  let name = '';
  let odd = false;
  let minPtr = start; // pointers must go strictly before this
  const data = r.buf;
  while (true) {
    const len = r.u8();
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      const target = ((len & 0x3f) << 8) | r.u8();
      if (target >= minPtr || ++jumps > MAX_JUMPS) return { error: 'dns_bad_pointer' };
      if (end < 0) end = r.pos;
      minPtr = target;
      r.pos = target;
      continue;
    }
    if (kind !== 0) return { error: 'dns_bad_label' };
    wire += len + 1;
    if (wire > MAX_NAME_WIRE) return { error: 'dns_name_too_long' };
    if (len === 0) {
      if (end < 0) end = r.pos;
      r.pos = end;
      return { name, end, odd };
    }
    const p = r.pos;
    r.skip(len);
    if (labels++ > 0) name += '.';
    for (let i = p; i < p + len; i++) {
      const c = data[i];
      if (c >= 0x41 && c <= 0x5a) name += String.fromCharCode(c | 0x20);
      else if (c === 0x2e || c === 0x5c) {
        name += '\\' + String.fromCharCode(c);
        odd = true;
      } else if (c > 0x20 && c < 0x7f) name += String.fromCharCode(c);
      else {
        name += '\\' + String(c).padStart(3, '0');
        odd = true;
      }
    }
  }
}

/**
 * The name at `offset` of a message (question or record owner name), following compression
 * pointers under the rules above. null: the message ends inside the name.
 */
export function dnsNameAt(
  data: Uint8Array,
  offset: number,
): { name: string; end: number; odd: boolean } | { error: string } | null {
  if (offset < 0 || offset > data.length) return null;
  try {
    return readName(new ByteReader(data, offset));
  } catch (e) {
    if (e instanceof TruncatedError) return null;
    throw e;
  }
}

/** Parse one DNS message (header + first question) through the bounded cursor. Never throws. */
export function parseDnsMessage(data: Uint8Array): DnsResult {
  if (data.length < 12) return NEED_MORE;
  const r = new ByteReader(data);
  const id = r.u16();
  const flags = r.u16();
  const qd = r.u16();
  const an = r.u16();
  const ns = r.u16();
  r.skip(2); // ARCOUNT
  const isResponse = (flags & 0x8000) !== 0;
  const opcode = (flags >> 11) & 0xf;
  if (qd === 0) return NOT_MINE;
  const anomalies: string[] = [];
  // Opcodes 0 QUERY, 1 IQUERY (obsolete), 2 STATUS, 4 NOTIFY, 5 UPDATE, 6 DSO (RFC 8490); 3 and 7–15
  // unassigned. Anything but QUERY still names the flow (a tunnel or an evasion may use any opcode),
  // flagged.
  if (opcode !== 0) anomalies.push('dns_unusual_opcode');
  if (qd > 1) anomalies.push('dns_multiple_questions');
  if (!isResponse && opcode === 0 && (an > 0 || ns > 0)) anomalies.push('dns_query_has_answers');
  let n: NameResult;
  let qtype: number;
  try {
    n = readName(r);
    if ('error' in n) return { status: 'error', anomaly: n.error };
    qtype = r.u16();
    r.skip(2); // QCLASS
  } catch (e) {
    // the one truncation point: the message ends inside the question
    if (e instanceof TruncatedError) return NEED_MORE;
    throw e;
  }
  if (n.odd) anomalies.push('dns_name_odd_chars');
  return { status: 'done', query: n.name, qtype, qtypeName: dnsTypeName(qtype), isResponse, id, anomalies };
}
