/**
 * @module enforce/residual
 * Residual blocking (docs/ENFORCE.md): after a block rule with `residual` triggers, the same 5-tuple
 * (or client + server address pair) stays blocked for the rule's time, new connections included.
 * A bounded table: at most `cap` entries; when full, the oldest inserted entry is evicted (insertion
 * order of a Map, O(1)), so a flood of triggers cannot grow memory beyond the cap. Looked up once per new connection (not per packet), and only while non-empty.
 */
import type { Decision, ResidualKey } from '../policy/types.js';

/** Default capacity (entries): about 100 bytes each. */
export const RESIDUAL_CAP = 65536;

interface Entry {
  until: number;
  decision: Decision;
}

/** The table key of a connection: protocol, addresses (4 words each) and, for a 5-tuple, ports. */
export function residualKey(
  k: ResidualKey,
  proto: number,
  cli: Uint32Array,
  srv: Uint32Array,
  cport: number,
  sport: number,
): string {
  const a = `${cli[0]}.${cli[1]}.${cli[2]}.${cli[3]}>${srv[0]}.${srv[1]}.${srv[2]}.${srv[3]}`;
  return k === 'address-pair' ? `a|${a}` : `t|${proto}|${a}|${cport}|${sport}`;
}

export class ResidualTable {
  private readonly m = new Map<string, Entry>();
  /** Entries evicted because the table was full. */
  evicted = 0;

  constructor(readonly cap = RESIDUAL_CAP) {
    if (!Number.isInteger(cap) || cap < 1) throw new RangeError(`residual cap must be a positive integer`);
  }

  get size(): number {
    return this.m.size;
  }

  /** Block `key` until `until` (ms) with `decision`; a renewed trigger moves it to the newest. */
  add(key: string, until: number, decision: Decision): void {
    if (this.m.has(key)) this.m.delete(key);
    else if (this.m.size >= this.cap) {
      const oldest = this.m.keys().next().value as string;
      this.m.delete(oldest);
      this.evicted++;
    }
    this.m.set(key, { until, decision });
  }

  /** The decision blocking `key` at `now`, or null (an expired entry is removed). */
  get(key: string, now: number): Decision | null {
    const e = this.m.get(key);
    if (!e) return null;
    if (now >= e.until) {
      this.m.delete(key);
      return null;
    }
    return e.decision;
  }

  clear(): void {
    this.m.clear();
  }
}
