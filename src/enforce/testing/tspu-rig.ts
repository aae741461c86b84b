/**
 * @module enforce/testing/tspu-rig
 * The tspu-2021 inspection mode driven the way the box drives it: raw IP packets into the one Engine
 * (with the mode's engine settings), the mode over the engine's Packet and Flow, the state in a slot
 * on Flow.user. `packet(ip, now)` returns the connection's emulated state or null (untracked).
 */
import { Engine } from '../../engine/engine.js';
import {
  Tspu2021Inspector,
  tspuEngineOptions,
  type SniParser,
  type TspuSlot,
  type TspuState,
} from '../tspu2021.js';

export class TspuRig<T> {
  readonly engine: Engine;
  readonly inspector: Tspu2021Inspector<T>;

  constructor(
    parse: SniParser,
    onSni: (sni: string) => T | null,
    opts: { windowPackets?: number; idleMs?: number } = {},
  ) {
    const idleMs = opts.idleMs ?? 600_000;
    this.inspector = new Tspu2021Inspector<T>(parse, (sni) => onSni(sni), { ...opts, idleMs });
    this.engine = new Engine({
      ...tspuEngineOptions(idleMs),
      onFlowEnd: (f) => this.inspector.forget(f.user as TspuSlot<T> | null),
    });
  }

  get size(): number {
    return this.inspector.size;
  }

  packet(ip: Uint8Array, now: number): TspuState<T> | null {
    const f = this.engine.packet(ip, 101, now);
    if (!f) return null;
    let slot = f.user as TspuSlot<T> | null;
    if (!slot) f.user = slot = { tspu: null };
    return this.inspector.inspect(slot, f, this.engine.pkt, this.engine.lastToServer, now);
  }
}
