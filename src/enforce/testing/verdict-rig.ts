/**
 * @module enforce/testing/verdict-rig
 * A real Enforcer fed packets by hand; the sink records each packet's verdict and mark as the kernel
 * would receive them (tests of the block methods and of the profiles).
 */
import assert from 'node:assert/strict';
import { Enforcer } from '../enforcer.js';
import type { NfPacket } from '../nfq.js';
import { newCounters } from '../counters.js';
import type { CompiledPolicy } from '../../policy/types.js';
import type { VerdictEvent } from '../types.js';
import type { Conv } from './packets.js';

export const MASK = 0x00ff0000;

export class Rig {
  verdicts: [number, number, number][] = [];
  events: VerdictEvent[] = [];
  /** Packets the enforcer replaced (verdictWith): id → the new bytes. */
  rewritten = new Map<number, Uint8Array>();
  id = 0;
  counters = newCounters();
  enf: Enforcer;
  constructor(p: CompiledPolicy, residualCap?: number) {
    this.enf = new Enforcer({
      queue: 0,
      sink: {
        verdict: (id, v, m) => this.verdicts.push([id, v, m]),
        verdictWith: (id, v, m, buf) => {
          this.verdicts.push([id, v, m]);
          this.rewritten.set(id, Uint8Array.from(buf));
        },
      },
      policy: p,
      markMask: MASK,
      throttle: 'userspace',
      counters: this.counters,
      onVerdict: (e) => this.events.push(e),
      rstToServer: false,
      residualCap,
    });
  }
  /** Feed one packet; its verdict [verdict, mark]. */
  feed(buf: Uint8Array, now = 0): [number, number] {
    const id = ++this.id;
    const p: NfPacket = { id, mark: 0, hwProtocol: 0x0800, hook: 2, payload: buf };
    this.enf.handle(p, now);
    const v = this.verdicts.find((x) => x[0] === id);
    assert.ok(v, `packet ${id} got a verdict`);
    return [v[1], v[2]];
  }
  handshake(c: Conv, now = 0): void {
    this.feed(c.syn(), now);
    this.feed(c.synAck(), now);
    this.feed(c.ack(), now);
  }
}
