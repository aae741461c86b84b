/**
 * @module policy/types
 * The policy model: what a loaded, validated policy file looks like after normalisation (names
 * lowercased and in punycode, CIDRs canonical, rates in bit/s, sizes in bytes, list files read), and
 * the matcher contract ({@link MatchInput} → {@link Decision}) shared by analyze/simulate/enforce.
 */

export type Action = 'allow' | 'log' | 'block' | 'throttle';
/**
 * How a block is carried out (docs/POLICY.md "Block methods"): `rst` (RST both ways), `drop` (silent,
 * the trigger included: SNI-IV), `stall` (`after_packets` more packets pass, then both directions are
 * dropped: SNI-II), `curtain` (server→client frozen after `after_bytes`, silently: the 2025 curtain),
 * `degrade` (each packet dropped with `probability`: the manual's "capacity"), `redirect` (plain HTTP:
 * the box answers the request with a 307 to `location` and resets the server side), `rst-rewrite` (the
 * trigger passes, the server's next packet is rewritten into RST/ACK to the client: SNI-I).
 */
export type BlockMethod = 'rst' | 'drop' | 'stall' | 'curtain' | 'degrade' | 'redirect' | 'rst-rewrite';
/** What residual blocking keys on after a trigger. */
export type ResidualKey = '5-tuple' | 'address-pair';

/** Parameters of the block methods and of residual blocking (only those of the method are set). */
export interface BlockParams {
  /** stall: packets (either direction) that still pass after the trigger. */
  after_packets?: number;
  /** curtain: server→client payload bytes that pass before the freeze. */
  after_bytes?: number;
  /** degrade: probability in [0, 1] that each packet is dropped. */
  probability?: number;
  /** redirect: the block page (an absolute http/https URL) the 307 points to. */
  location?: string;
  /** Residual blocking after a trigger: seconds, and what it keys on. */
  residual_s?: number;
  residual_key?: ResidualKey;
}

/** Where something was written (1-based line and column). */
export interface SourcePos {
  file: string;
  line: number;
  column: number;
}

export interface HostMatch {
  /** The name itself only. */
  exact: string[];
  /** The name and every name below it, on a label boundary. */
  suffix: string[];
  /** Names strictly below (`*.x`), not the name itself. */
  subdomains: string[];
  /** Emulation only: the pattern anywhere in the raw name (2021 `*t.co*`). Always a lint error. */
  substring: string[];
  /** Emulation only: the raw name ends with the pattern, no label boundary (2021 `*twitter.com`). */
  endswith: string[];
}

export interface PortRange {
  from: number;
  to: number;
}

export interface RuleMatch {
  host: HostMatch | null;
  /** Canonical CIDR strings. */
  dest_ip: string[] | null;
  src_ip: string[] | null;
  dest_port: PortRange[] | null;
  proto: 'TCP' | 'UDP' | null;
  /** Lowercase. */
  app_proto: string[] | null;
  alpn: string[] | null;
  ja4: string[] | null;
  /** Versions as unsigned 32-bit numbers. */
  quic_version: number[] | null;
  ech: boolean | null;
  /** Length ranges of the first client payload (FlowRecord.first_payload.len). */
  payload_len: PortRange[] | null;
  /** Bytes at fixed offsets of the first client payload (all must hold); hex lowercase, within the
   *  first 16 bytes (what records keep). */
  payload: PayloadBytes[] | null;
  /** Server addresses (canonical CIDRs) that exempt the flow from this rule. */
  except_dest_ip: string[] | null;
}

export interface PayloadBytes {
  /** Byte offset from the start of the payload (0-based). */
  offset: number;
  /** The bytes expected there, lowercase hex. */
  hex: string;
}

export interface Rule {
  id: string;
  /** Position in the file (0-based): the last tie-breaker of precedence. */
  order: number;
  action: Action;
  method?: BlockMethod;
  rate_bps?: number;
  burst_bytes?: number;
  block?: BlockParams;
  priority: number;
  enabled: boolean;
  /** ISO date or date-time, or null. */
  expires: string | null;
  tags: string[];
  description: string | null;
  match: RuleMatch;
  provenance: Record<string, unknown> | null;
  /** Set when the rule may block/throttle protected names or addresses. */
  protected_override: { reason: string } | null;
  pos: SourcePos | null;
  /** Where each list file came from, for messages. */
  lists: { field: string; file: string; entries: number }[];
}

export interface DefaultAction {
  action: Action;
  method?: BlockMethod;
  rate_bps?: number;
  burst_bytes?: number;
  block?: BlockParams;
}

export type InspectionMode = 'normal' | 'tspu-2021';
export type OnTimeout = 'allow' | 'apply-default' | 'block';

/**
 * How `chokepoint enforce` inspects a flow before it has a verdict (documented in docs/POLICY.md).
 */
export interface Inspection {
  /** `normal`: reassemble ClientHellos across segments/records/QUIC packets. `tspu-2021`: the 2021
   *  box's parser limits (first TLS record of one segment, no reassembly, ≥101-byte junk first packet
   *  stops inspection, SNI only, TCP initiated from inside). */
  mode: InspectionMode;
  /** What an undecided flow gets when hold_ms, budget_bytes or max_packets runs out. */
  on_timeout: OnTimeout;
  /** Longest time a flow's packets may be held waiting for a verdict. */
  hold_ms: number;
  /** Most client→server payload bytes buffered/inspected before giving up. */
  budget_bytes: number;
  /** Most packets per direction inspected before giving up (tspu-2021: 15–20). */
  max_packets: number;
  /** A flow idle this long is forgotten (its verdict with it); tspu-2021: ~600 s. */
  idle_timeout_s: number;
}

export interface ProtectedSet {
  exact: string[];
  suffix: string[];
  cidr: string[];
}

export interface Policy {
  /** The file it was loaded from (null when built in memory). */
  file: string | null;
  version: 1;
  name: string | null;
  description: string | null;
  default: DefaultAction;
  names: { trailing_dot: 'ignore' | 'literal' };
  inspection: Inspection;
  protected: ProtectedSet;
  provenance: Record<string, unknown> | null;
  rules: Rule[];
  /** The subscriber side (canonical CIDRs), or null: when set, block/throttle rules trigger only on
   *  connections a subscriber initiated (the loader narrows their `src_ip` to these ranges). */
  subscriber?: string[] | null;
}

/** What the matcher sees of a flow. */
export interface MatchInput {
  /** The flow's name (TLS/QUIC SNI, HTTP Host, DNS query), as the analyzer reports it. */
  host: string | null;
  proto: 'TCP' | 'UDP';
  src_ip: string;
  dest_ip: string;
  dest_port: number;
  app_proto: string | null;
  alpn?: string[];
  ja4?: string | null;
  /** `0x`-prefixed hex, e.g. "0x00000001". */
  quic_version?: string | null;
  ech?: boolean;
  /** The name exactly as sent on the wire (e.g. SNI with its trailing dot); emulation match types and
   *  `names.trailing_dot: literal` use it. Defaults to `host`. */
  raw_host?: string | null;
  /** Length of the first client payload; absent/null: none seen (payload_len/payload rules fail). */
  payload_len?: number | null;
  /** Its leading bytes as lowercase hex (up to 16 bytes). */
  payload_head?: string | null;
}

export interface Decision {
  /** The winning rule; null when the default applied; '$protected' when protection overrode. */
  rule_id: string | null;
  action: Action;
  method?: BlockMethod;
  rate_bps?: number;
  burst_bytes?: number;
  /** Block method parameters and residual blocking (block only; absent: none). */
  block?: BlockParams;
}

export interface CompiledPolicy {
  readonly policy: Policy;
  readonly inspection: Readonly<Inspection>;
  /** Number of rules in force (enabled, not expired at compile time). */
  readonly ruleCount: number;
  /** Earliest future `expires` among the compiled rules (ms since epoch), or null: recompile then. */
  readonly expiresAt: number | null;
  match(input: MatchInput): Decision;
  /** Whether the flow touches a protected name or address (either side). */
  isProtected?(input: MatchInput): boolean;
}

export const PROTECTED_RULE_ID = '$protected';
