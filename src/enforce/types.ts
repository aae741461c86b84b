/**
 * @module enforce/types
 * The verdict event the inline engine emits (one EVE line per decided connection). The policy
 * contract itself (CompiledPolicy, Decision, MatchInput) is the policy module's, used as is.
 */
import type { EnforcementName, FlowRecord } from '../record/record.js';
import type { Action } from '../policy/types.js';

/** Why a verdict was taken. */
export type VerdictReason =
  'named' | 'gave_up' | 'hold_timeout' | 'hold_overflow' | 'emulation' | 'flow_end' | 'residual';

/** What the wire does with the connection from now on. */
export interface VerdictTaken {
  action: Action;
  /** How it is enforced: kernel accept, drop, tcp-reset, userspace policer, kernel hashlimit. */
  enforcement: EnforcementName;
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
  /** Id of the policy version that decided (content hash of the policy file and its list files). */
  policy_version: string;
  policy: { rule_id: string | null; action: Action };
  verdict: VerdictTaken;
};
