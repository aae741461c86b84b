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
} as const;

export const N_COUNTERS = 24;

export function newCounters(): Float64Array {
  return new Float64Array(new SharedArrayBuffer(N_COUNTERS * 8));
}
