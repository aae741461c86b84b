/**
 * @module fleet/replay
 * A replay box (`chokepoint enforce --replay CAPTURE`): the box's one decision core
 * (enforce/enforcer), on the main thread, fed a capture's packets as NFQUEUE would feed it — raw IP,
 * one verdict per packet, at a chosen rate (`pps`) or speed (`speed` × capture time), looping. No
 * root, no NFQUEUE, no iptables: the verdicts are counted and logged (EVE, /metrics), not enforced on
 * a wire. It is a {@link PolicyTarget}, so the fleet agent applies bundles to it exactly as to the
 * daemon (compiled by policy-source `compilePair`, swapped between two packets): a bundle's shadow
 * version is evaluated beside the active one, and {@link ReplayBox.traffic} gives the status report
 * the same `traffic` counters a daemon gives (enforce/traffic), so rollout analysis can judge it.
 *
 * Loops make new flows: iteration `i` maps every TCP/UDP port ≥ 1024 (both directions, so a flow
 * stays one flow) to `1024 + (p − 1024 + i·7919) mod 64512` and fixes the L4 checksum incrementally
 * (RFC 1624); server ports (< 1024) and addresses are unchanged, so rules on addresses and well-known
 * ports decide every iteration alike. The capture is decoded once (decode/decoder finds each frame's
 * IP header); each iteration rewrites one copy of it, so nothing is allocated per packet.
 */
import type { WriteStream } from 'node:fs';
import { readCaptureFile } from '../capture/reader.js';
import { Decoder } from '../decode/decoder.js';
import { Decoded, Packet } from '../decode/packet.js';
import { C, newCounters } from '../enforce/counters.js';
import { Enforcer } from '../enforce/enforcer.js';
import type { EnforceMetrics } from '../enforce/metrics.js';
import { compilePair, versionId, type PolicyVersion } from '../enforce/policy-source.js';
import { mergeTraffic, type DaemonTraffic } from '../enforce/traffic.js';
import type { VerdictEvent } from '../enforce/types.js';
import { writeVerdictEveLine } from '../output/eve.js';
import { JsonBytes } from '../output/json-bytes.js';
import { InputError } from '../util/errors.js';
import type { PolicyTarget } from './agent.js';

/** The verdict line being written (handed to the stream as text). */
const LINE = new JsonBytes();

export interface ReplayOptions {
  capture: string;
  /** Packets per second (default 1000 when `speed` is not given). */
  pps?: number;
  /** Replay at this multiple of the capture's own timing. */
  speed?: number;
  /** Iterations over the capture (Infinity: forever). */
  loops: number;
  /** EVE sink (a file stream or stdout), or null. */
  eve?: WriteStream | NodeJS.WriteStream | null;
  node?: string;
  metrics?: EnforceMetrics;
  log?: (m: string) => void;
}

/** Frames of a capture as raw IP: offsets into one buffer, plus L4 header offsets for the rewrite. */
interface Frames {
  buf: Buffer;
  start: Uint32Array;
  end: Uint32Array;
  /** Offset of the TCP/UDP header, 0 when none (not rewritten). */
  l4: Uint32Array;
  /** 6 or 17 (checksum field position), 0 when none. */
  proto: Uint8Array;
  ts: Float64Array;
  count: number;
}

const STEP = 7919;

/** Load a capture as raw IP frames (what NFQUEUE hands the box). Throws InputError naming the file. */
export function loadFrames(path: string): Frames {
  const parts: Buffer[] = [];
  const meta: number[] = [];
  const dec = new Decoder();
  const p = new Packet();
  let size = 0;
  const stats = readCaptureFile(path, {
    packet(buf, off, end, linktype, tsMs) {
      if (dec.decode(buf, linktype, tsMs, p, off, end) !== Decoded.Ok) return;
      const ipEnd = Math.min(end, p.ipOff + p.ipLen);
      if (p.ipOff < off || ipEnd <= p.ipOff) return;
      const ip = Buffer.from(buf.subarray(p.ipOff, ipEnd));
      let l4 = 0;
      let proto = 0;
      const v = ip[0]! >> 4;
      if (v === 4) {
        const ihl = (ip[0]! & 15) * 4;
        const fragOff = ip.readUInt16BE(6) & 0x1fff;
        if (fragOff === 0 && (ip[9] === 6 || ip[9] === 17) && ip.length >= ihl + 8) {
          l4 = ihl;
          proto = ip[9]!;
        }
      } else if (v === 6 && (ip[6] === 6 || ip[6] === 17) && ip.length >= 48) {
        l4 = 40;
        proto = ip[6]!;
      }
      meta.push(size, size + ip.length, l4 ? size + l4 : 0, proto, tsMs);
      parts.push(ip);
      size += ip.length;
    },
  });
  const n = parts.length;
  if (n === 0)
    throw new InputError(`${path}: no IP packets the box could be fed (${stats.packets} frames read)`);
  const f: Frames = {
    buf: Buffer.concat(parts, size),
    start: new Uint32Array(n),
    end: new Uint32Array(n),
    l4: new Uint32Array(n),
    proto: new Uint8Array(n),
    ts: new Float64Array(n),
    count: n,
  };
  for (let i = 0; i < n; i++) {
    f.start[i] = meta[i * 5]!;
    f.end[i] = meta[i * 5 + 1]!;
    f.l4[i] = meta[i * 5 + 2]!;
    f.proto[i] = meta[i * 5 + 3]!;
    f.ts[i] = meta[i * 5 + 4]!;
  }
  return f;
}

/** The port of iteration `iter` for an original port (bijective on 1024..65535; < 1024 unchanged). */
export function shiftPort(port: number, iter: number): number {
  if (port < 1024 || iter === 0) return port;
  return 1024 + ((port - 1024 + ((iter * STEP) % 64512)) % 64512);
}

/** RFC 1624 incremental update of a 16-bit one's-complement checksum for a field old → new. */
function fixSum(sum: number, oldV: number, newV: number): number {
  let s = (~sum & 0xffff) + (~oldV & 0xffff) + newV;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** Rewrite `out` (a copy of `f.buf`) for iteration `iter`. */
function rewrite(f: Frames, out: Buffer, iter: number): void {
  f.buf.copy(out);
  if (iter === 0) return;
  for (let i = 0; i < f.count; i++) {
    const o = f.l4[i]!;
    if (o === 0) continue;
    const sp = out.readUInt16BE(o);
    const dp = out.readUInt16BE(o + 2);
    const nsp = shiftPort(sp, iter);
    const ndp = shiftPort(dp, iter);
    out.writeUInt16BE(nsp, o);
    out.writeUInt16BE(ndp, o + 2);
    const at = f.proto[i] === 6 ? o + 16 : o + 6;
    if (at + 2 > f.end[i]!) continue;
    const sum = out.readUInt16BE(at);
    if (f.proto[i] === 17 && sum === 0) continue; // IPv4 UDP without checksum
    let s = fixSum(fixSum(sum, sp, nsp), dp, ndp);
    if (f.proto[i] === 17 && s === 0) s = 0xffff;
    out.writeUInt16BE(s, at);
  }
}

export class ReplayBox implements PolicyTarget {
  readonly counters: Float64Array;
  readonly enforcer: Enforcer;
  /** Verdict events seen (for status / tests: action per EVE line written). */
  verdicts = 0;
  iterations = 0;
  private readonly o: ReplayOptions;
  private readonly frames: Frames;
  private readonly work: Buffer;
  private readonly ruleCounts = new Map<string, number>();
  private version: PolicyVersion;
  private stopped = false;
  private wake: (() => void) | null = null;
  private pktId = 0;
  /** When the current (active, shadow) pair took over: the traffic counters are cumulative since. */
  private trafficSince = Date.now();
  private readonly log: (m: string) => void;

  private constructor(
    o: ReplayOptions,
    frames: Frames,
    version: PolicyVersion,
    enforcer: Enforcer,
    counters: Float64Array,
  ) {
    this.o = o;
    this.counters = counters;
    this.frames = frames;
    this.work = Buffer.allocUnsafe(frames.buf.length);
    this.version = version;
    this.enforcer = enforcer;
    this.log = o.log ?? ((m) => process.stderr.write(`chokepoint enforce: replay: ${m}\n`));
  }

  static async start(initial: PolicyVersion, o: ReplayOptions): Promise<ReplayBox> {
    if (o.pps !== undefined && o.speed !== undefined)
      throw new InputError('--rate and --speed exclude each other');
    const frames = loadFrames(o.capture);
    const { policy, shadow } = await compilePair(initial);
    const counters = newCounters();
    const box: { b: ReplayBox | null } = { b: null };
    const enf = new Enforcer({
      queue: 0,
      sink: { verdict: () => {} },
      policy,
      shadow,
      version: initial.id,
      markMask: 0x00ff0000,
      throttle: 'userspace',
      counters,
      rstToServer: false,
      onVerdict: (ev) => box.b!.onVerdict(ev),
    });
    const b = new ReplayBox(o, frames, initial, enf, counters);
    box.b = b;
    o.metrics?.addQueue(0, counters);
    if (o.metrics) o.metrics.versionOf = () => b.version.id;
    return b;
  }

  get activeVersion(): string {
    return this.version.id;
  }

  private onVerdict(ev: VerdictEvent): void {
    this.verdicts++;
    const key = `${ev.policy.action}\u0000${ev.policy.rule_id ?? ''}`;
    this.ruleCounts.set(key, (this.ruleCounts.get(key) ?? 0) + 1);
    const eve = this.o.eve;
    if (eve) {
      LINE.reset();
      writeVerdictEveLine(LINE, ev, ev.verdict, {
        node: this.o.node,
        queue: 0,
        policyVersion: ev.policy_version,
      });
      eve.write(LINE.text());
    }
  }

  /** The agent's reload: compile, then swap between two packets (as the daemon's commit). */
  async apply(v: PolicyVersion, why: string): Promise<boolean> {
    let p;
    try {
      p = await compilePair(v);
    } catch (e) {
      this.log(`reload (${why}) refused: ${(e as Error).message}`);
      return false;
    }
    if (v.id !== this.version.id) this.trafficSince = Date.now();
    this.enforcer.setPolicy(p.policy, v.id, p.shadow);
    this.version = v;
    this.counters[C.reloads]++;
    this.log(`policy reloaded (${why}): ${v.id} active`);
    return true;
  }

  /** The traffic counters of the pair in force, as the daemon reports them (one queue, no workers). */
  traffic(): DaemonTraffic {
    const v = this.version;
    const m = mergeTraffic([this.enforcer.traffic.snapshot()], 10, Boolean(v.shadow));
    return {
      since: new Date(this.trafficSince).toISOString(),
      id: v.id,
      active_id: v.shadow ? versionId(v.files) : v.id,
      shadow_id: v.shadow?.id ?? null,
      ...m,
      fail_open: 0,
      worker_restarts: 0,
    };
  }

  private flushRules(): void {
    if (this.ruleCounts.size && this.o.metrics) this.o.metrics.addRuleCounts([...this.ruleCounts]);
    this.ruleCounts.clear();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => {
      const done = (): void => {
        clearTimeout(t);
        this.wake = null;
        r();
      };
      const t = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /** Replay every iteration; resolves when done or stopped. */
  async run(): Promise<void> {
    const f = this.frames;
    const pps = this.o.speed === undefined ? (this.o.pps ?? 1000) : 0;
    const speed = this.o.speed ?? 0;
    const span = f.count > 1 ? Math.max(1, f.ts[f.count - 1]! - f.ts[0]!) : 1;
    const t0 = Date.now();
    let sent = 0;
    for (let iter = 0; iter < this.o.loops && !this.stopped; iter++) {
      rewrite(f, this.work, iter);
      for (let i = 0; i < f.count && !this.stopped; i++) {
        const due =
          pps > 0 ? t0 + (sent * 1000) / pps : t0 + (iter * (span + 1000) + (f.ts[i]! - f.ts[0]!)) / speed;
        let now = Date.now();
        if (due > now + 1) {
          this.enforcer.tick(now);
          this.flushRules();
          await this.sleep(due - now);
          now = Date.now();
        }
        this.enforcer.handle(
          {
            id: ++this.pktId,
            mark: 0,
            hwProtocol: 0,
            hook: 2,
            payload: this.work.subarray(f.start[i]!, f.end[i]!),
          },
          now,
        );
        // let the agent's reloads and reports through even when nothing sleeps
        if ((++sent & 4095) === 0) await new Promise((r) => setImmediate(r));
      }
      this.iterations++;
      // yield between iterations so the agent's reloads and reports get through even at full speed
      await new Promise((r) => setImmediate(r));
    }
    this.enforcer.tick(Date.now());
    this.flushRules();
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }
}
