/**
 * @module enforce/types
 * The slice of the policy contract the inline engine uses (structural, so enforce/ compiles against
 * any CompiledPolicy that has these members), and the verdict event it emits.
 */
import type { FlowRecord } from '../record/record.js';

export type Action = 'allow' | 'log' | 'block' | 'throttle';

export interface EnforceDecision {
  rule_id: string | null;
  action: Action;
  method?: 'rst' | 'drop';
  rate_bps?: number;
  burst_bytes?: number;
}

export interface EnforceMatchInput {
  host: string | null;
  raw_host: string | null;
  proto: 'TCP' | 'UDP';
  src_ip: string;
  dest_ip: string;
  dest_port: number;
  app_proto: string | null;
  alpn: string[];
  ja4: string | null;
  quic_version: string | null;
  ech: boolean;
}

export interface InspectionSettings {
  mode: 'normal' | 'tspu-2021';
  /** What a connection whose name is still unknown gets when the hold times out / overflows. */
  on_timeout: 'allow' | 'apply-default' | 'block' | string;
  hold_ms: number;
  budget_bytes: number;
  /** Packets inspected per direction before giving up (tspu-2021: the 15–20 packet window). */
  max_packets?: number;
  /** Idle time after which a flow (and its verdict) is forgotten; tspu-2021: ~600 s. */
  idle_timeout_s?: number;
}

export interface PolicyLike {
  match(input: EnforceMatchInput): EnforceDecision;
  inspection: InspectionSettings;
  /** The source policy (its default action serves on_timeout: apply-default). */
  policy?: { default?: { action: Action; method?: 'rst' | 'drop'; rate_bps?: number; burst_bytes?: number } };
}

/** Why a verdict was taken. */
export type VerdictReason = 'named' | 'gave_up' | 'hold_timeout' | 'hold_overflow' | 'emulation' | 'flow_end';

/** What the wire does with the connection from now on. */
export interface VerdictTaken {
  action: Action;
  /** How it is enforced: kernel accept, drop, tcp-reset, userspace policer, kernel hashlimit. */
  enforcement: 'accept' | 'drop' | 'reset' | 'police-userspace' | 'police-kernel';
  rate_bps?: number;
  burst_bytes?: number;
  reason: VerdictReason;
  queue: number;
  /** Packets that were held while the name was unknown, released with this verdict. */
  held_packets: number;
  /** Milliseconds the first held packet waited. */
  held_ms: number;
}

export type VerdictEvent = Omit<FlowRecord, 'event_type'> & {
  event_type: 'verdict';
  policy: { rule_id: string | null; action: Action };
  verdict: VerdictTaken;
};

/** Build the policy's match input from a flow record. */
export function matchInputFromRecord(rec: FlowRecord): EnforceMatchInput {
  return {
    host: rec.host,
    raw_host: rec.tls?.sni ?? rec.quic?.sni ?? rec.http?.hostname ?? rec.dns?.query ?? null,
    proto: rec.proto,
    src_ip: rec.src_ip,
    dest_ip: rec.dest_ip,
    dest_port: rec.dest_port,
    app_proto: rec.app_proto,
    alpn: rec.tls?.alpn ?? rec.quic?.alpn ?? [],
    ja4: rec.tls?.ja4 ?? null,
    quic_version: rec.quic?.version ?? null,
    ech: rec.tls?.ech ?? false,
  };
}
