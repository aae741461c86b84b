/**
 * @module engine/live
 * Live analysis of an interface (a mirror/SPAN port, a tap, or any local interface): packets from
 * libpcap (capture/pcap-live) go to the same `Engine.packet(...)` as capture files do, and flow
 * records come out the same way. On top of the file path:
 * - flows end by idle timeout on the wall clock even when no packet arrives (`Engine.expire`);
 * - long flows get a periodic record every `flowIntervalMs` (`"partial": true`, counters and duration
 *   so far, cumulative); the flow's last record (idle, close, eviction, stop) has no `partial` and the
 *   totals — a consumer keeps the latest record per `flow_id`;
 * - `stop` (an AbortSignal: the command wires SIGINT/SIGTERM to it) ends every flow with its final
 *   record and returns the counters, including packets the kernel dropped (`pcap_stats`).
 * The loop drains up to a batch of packets synchronously, then yields to the event loop; with nothing
 * to read it waits in poll(2) off the event loop. The periodic-record scan walks the flow table at most
 * once a second (O(flows), bounded by the table's cap) and records a flow only if it moved since its
 * last record. A flood the ring cannot absorb is dropped by the kernel and counted, never queued here.
 */
import { Engine, type EngineOptions, type EngineStats, type PacketTap } from './engine.js';
import type { Flow } from '../flow/flow.js';
import type { FlowRecord } from '../record/record.js';
import { LivePcap, type LivePcapOptions, type PcapCounters } from '../capture/pcap-live.js';

export interface LiveOptions extends LivePcapOptions, Omit<EngineOptions, 'onFlowEnd' | 'pcapFilename'> {
  /** Every record: final ones when a flow ends, `partial: true` snapshots of long flows. */
  onRecord(r: FlowRecord, f: Flow): void;
  /** Every captured packet after the engine saw it. */
  onPacket?: PacketTap;
  /** Periodic records for flows alive longer than this (ms); 0 or undefined = none. */
  flowIntervalMs?: number;
  /** Called about once a second with the counters so far (progress display). */
  onTick?(s: LiveStats): void;
  /** Stops the capture: every flow then ends with its final record. */
  stop: AbortSignal;
  /** Called once the interface is open and filtering (tests wait for it before sending). */
  onReady?(): void;
  /** The engine, before the first packet (for `engine.record(flow)` in `onClassified`). */
  onEngine?(engine: Engine): void;
}

export interface LiveStats {
  iface: string;
  linktype: number;
  /** Packets read from libpcap and given to the engine. */
  packets: number;
  kernel: PcapCounters;
  engine: EngineStats;
  records: number;
  partialRecords: number;
}

/** Packets drained per turn of the event loop. */
const BATCH = 4096;
/** Longest wait in poll(2) before the loop looks at timers and the stop signal again (ms). */
const WAIT_MS = 200;

export async function captureLive(o: LiveOptions): Promise<LiveStats> {
  const cap = new LivePcap(o);
  const interval = o.flowIntervalMs ?? 0;
  const reported = new Map<Flow, number>();
  const st: LiveStats = {
    iface: o.iface,
    linktype: cap.linktype,
    packets: 0,
    kernel: { received: 0, dropped: 0, ifDropped: 0 },
    engine: undefined as unknown as EngineStats,
    records: 0,
    partialRecords: 0,
  };
  const engine = new Engine({
    ...o,
    onFlowEnd: (f, why) => {
      reported.delete(f);
      st.records++;
      o.onRecord(engine.record(f, why), f);
    },
  });
  st.engine = engine.stats;
  o.onEngine?.(engine);
  const lt = cap.linktype;
  const onPacket = o.onPacket;
  let nextTick = Date.now() + 1000;
  let nextScan = interval > 0 ? Date.now() + Math.min(interval, 1000) : Infinity;

  /** Hands up to `max` queued packets to the engine (and the tap); returns how many there were. */
  const drain = (max: number): number => {
    let n = 0;
    while (n < max && cap.next()) {
      n++;
      const b = cap.buf;
      const off = cap.off;
      const f = engine.packet(b, lt, cap.tsMs, cap.wirelen, off, off + cap.caplen);
      if (onPacket) onPacket(f, b, off, off + cap.caplen, lt, cap.tsMs, cap.wirelen);
    }
    st.packets += n;
    return n;
  };

  const scan = (now: number): void => {
    for (const f of engine.table.all()) {
      const since = reported.get(f) ?? f.firstMs;
      if (now - since < interval || f.lastMs <= (reported.get(f) ?? -1)) continue;
      const r = engine.record(f);
      r.partial = true;
      reported.set(f, now);
      st.records++;
      st.partialRecords++;
      o.onRecord(r, f);
    }
  };

  try {
    o.onReady?.();
    while (!o.stop.aborted) {
      const n = drain(BATCH);
      const now = Date.now();
      if (now >= nextTick) {
        nextTick = now + 1000;
        // idle flows end on the wall clock too, not only when a later packet arrives
        engine.expire(Math.max(now, engine.nowMs));
        st.kernel = cap.counters();
        o.onTick?.(st);
      }
      if (now >= nextScan) {
        nextScan = now + Math.max(1000, Math.min(interval / 10, 10_000));
        scan(now);
      }
      if (n === BATCH) await new Promise((r) => setImmediate(r));
      else await cap.wait(WAIT_MS);
    }
    // what arrived before the stop still counts (bounded: a flood must not delay the stop)
    drain(4 * BATCH);
    st.kernel = cap.counters();
  } finally {
    engine.flush();
    cap.close();
  }
  return st;
}
