/**
 * @module cli/analyze-policy
 * `analyze --policy P [--evidence DIR]` glue, the same for files and live capture: the engine's
 * hooks (`onEngine`, `onClassified`, `onPacket`, records) feed one {@link FlowDecisions} (the policy's
 * own match, as simulate does) and, with `--evidence`, one {@link EvidenceWriter} keyed by the flow.
 */
import type { Engine } from '../engine/engine.js';
import type { Flow } from '../flow/flow.js';
import type { FlowRecord } from '../record/record.js';
import { FlowDecisions } from '../policy/flow-decisions.js';
import type { CompiledPolicy } from '../policy/types.js';
import type { EvidenceWriter } from '../output/evidence.js';

/** Marks a flow whose evidence needs no more packets (analyze owns `Flow.user`). */
const EVIDENCE_DONE = Symbol('evidence-done');

export class AnalyzePolicy {
  private engine: Engine | null = null;
  readonly decisions: FlowDecisions;

  constructor(
    policy: CompiledPolicy,
    private readonly evidence: EvidenceWriter<Flow> | null,
  ) {
    this.decisions = new FlowDecisions(
      policy,
      evidence ? (f, rec, d) => evidence.flowDecided(f, rec, d) : undefined,
    );
  }

  readonly onEngine = (e: Engine): void => {
    this.engine = e;
  };

  readonly onClassified = (f: Flow): void => {
    this.decisions.classified(f, this.engine!.record(f));
  };

  readonly onPacket = (
    f: Flow | null,
    buf: Uint8Array,
    off: number,
    end: number,
    lt: number,
    ts: number,
    wire: number,
  ): void => {
    const ev = this.evidence;
    if (f === null || ev === null || f.user === EVIDENCE_DONE) return;
    if (!ev.packet(f, ts, lt, buf, off, end, wire)) f.user = EVIDENCE_DONE;
  };

  /** Write buffered evidence out (live capture calls this once a second). */
  flush(): void {
    this.evidence?.flush();
  }

  /** A record is about to be written: final ones get their decision; partial ones the one so far. */
  record(r: FlowRecord, f: Flow): void {
    if (r.partial) {
      const d = this.decisions.current(f);
      if (d) r.policy = { rule_id: d.rule_id, action: d.action };
      return;
    }
    this.decisions.ended(f, r);
    this.evidence?.flowEnd(f);
  }
}
