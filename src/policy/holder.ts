/**
 * @module policy/holder
 * {@link PolicyHolder}: the one place the current compiled policy lives. A reload compiles the new
 * policy off to the side (the old one keeps serving), then `swap` replaces the reference in one
 * assignment, so every lookup sees either the old or the new policy, never a mix.
 */
import type { CompiledPolicy } from './types.js';

export class PolicyHolder {
  private cur: CompiledPolicy;
  private gen = 1;
  private readonly listeners: ((next: CompiledPolicy, prev: CompiledPolicy) => void)[] = [];

  constructor(initial: CompiledPolicy) {
    this.cur = initial;
  }

  get current(): CompiledPolicy {
    return this.cur;
  }

  /** Increases by one on every swap. */
  get generation(): number {
    return this.gen;
  }

  swap(next: CompiledPolicy): void {
    const prev = this.cur;
    this.cur = next;
    this.gen++;
    for (const l of this.listeners) l(next, prev);
  }

  /** Called after each swap (e.g. to log the change or reset per-flow verdicts). */
  onSwap(fn: (next: CompiledPolicy, prev: CompiledPolicy) => void): void {
    this.listeners.push(fn);
  }
}
