/**
 * @module enforce/counters
 * Per-queue counters shared between a queue worker (the only writer) and the main thread (reads them
 * for /metrics): one Float64Array over a SharedArrayBuffer, fixed slots, no locking needed.
 */

export const C = {
  packets: 0,
  bytes: 0 + 1,
  /** Packets accepted while their connection was still being inspected (no payload, or server side). */
  passInspecting: 2,
  held: 3,
  holdTimeouts: 4,
  holdOverflows: 5,
  policePass: 6,
  policeDrop: 7,
  rstInjected: 8,
  rstFailed: 9,
  enobufs: 10,
  verdictAllow: 11,
  verdictLog: 12,
  verdictBlock: 13,
  verdictThrottle: 14,
  notIp: 15,
  flowsTracked: 16,
  reloads: 17,
  errors: 18,
  /** Held packets let through unmarked because the engine forgot their flow (fail open). */
  failOpenHeld: 19,
  /** Connections allowed unclassified by `on_timeout: allow` (hold timeout or overflow: fail open). */
  failOpenTimeout: 20,
  /** Connections the engine gave up on (inspection budget spent, no name) and the policy let through. */
  failOpenExhausted: 22,
  /** Connections that ended while still being inspected, after client data, and were let through unnamed. */
  failOpenFlowEnd: 23,
  /** Connections re-decided after a version change because their verdict changed. */
  redecided: 31,
  /** Index of the policy version in force (the worker writes it when it swaps; 0: the first). */
  policySeq: 21,
  /** Connections cut by a stall or curtain block (the kernel drops the rest). */
  cutDrop: 24,
  /** Packets dropped by a degrade block. */
  degradeDrop: 25,
  /** New connections blocked by residual blocking. */
  residualHits: 26,
  /** Residual entries evicted because the table was full. */
  residualEvicted: 27,
  /** HTTP 307 redirects sent in the server's name (block method redirect). */
  redirectSent: 28,
  /** Server packets rewritten into RST/ACK toward the client (block method rst-rewrite). */
  rstRewritten: 29,
  /** ICMP packets dropped by an address-only block rule. */
  icmpDrop: 30,
  /** Reads of the queue socket that returned packets (one recvmmsg takes every packet ready). */
  queueReads: 32,
  /** send(2) calls that carried verdicts (one per batch), and the verdicts they carried. */
  verdictSends: 33,
  verdictsSent: 34,
} as const;

export const N_COUNTERS = 40;

export function newCounters(): Float64Array {
  return new Float64Array(new SharedArrayBuffer(N_COUNTERS * 8));
}
