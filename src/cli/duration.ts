/**
 * @module cli/duration
 * Durations on the command line: `90s`, `15m`, `12h`, `7d` (or a number of milliseconds).
 */
const UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds, or null when `s` is not a duration. */
export function parseDuration(s: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(s);
  if (!m) return null;
  return Math.round(Number(m[1]) * UNIT[m[2] ?? 'ms']);
}
