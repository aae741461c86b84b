/**
 * @module policy/flow-decisions
 * A policy decision per flow for the engine's modes that see packets (analyze with `--policy`, on
 * files or live): the flow is decided once, when its inspection finishes (the moment an inline box
 * would decide), or at its end if it never finished. The decision is the compiled policy's own
 * `match` on the same input simulate builds from the record (`inputFromRecord`), so analyze,
 * simulate and evidence agree. The final record gets `policy: {rule_id, action}` as simulate writes it.
 */
import type { Flow } from '../flow/flow.js';
import type { FlowRecord } from '../record/record.js';
import { inputFromRecord } from './simulate.js';
import type { CompiledPolicy, Decision } from './types.js';

export class FlowDecisions {
  private readonly decided = new Map<Flow, Decision>();

  constructor(
    private readonly policy: CompiledPolicy,
    /** Called once per flow when it is decided, with the record at that moment. */
    private readonly onDecided?: (f: Flow, rec: FlowRecord, d: Decision) => void,
  ) {}

  /** The flow's inspection finished (engine `onClassified`); `rec` is its record now. */
  classified(f: Flow, rec: FlowRecord): Decision {
    return this.decided.get(f) ?? this.decide(f, rec);
  }

  /** The flow ended with `rec`: decide it if not yet, set `rec.policy`, forget the flow. */
  ended(f: Flow, rec: FlowRecord): Decision {
    const d = this.decided.get(f) ?? this.decide(f, rec);
    this.decided.delete(f);
    rec.policy = { rule_id: d.rule_id, action: d.action };
    return d;
  }

  /** The decision of a flow still running (for periodic records), or null before it is decided. */
  current(f: Flow): Decision | null {
    return this.decided.get(f) ?? null;
  }

  private decide(f: Flow, rec: FlowRecord): Decision {
    const d = this.policy.match(inputFromRecord(rec));
    this.decided.set(f, d);
    this.onDecided?.(f, rec, d);
    return d;
  }
}
