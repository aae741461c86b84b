/**
 * @module engine/analyze
 * Offline analysis: read capture files (or stdin), run them through one Engine per file, and hand every
 * flow record to a callback. Unreadable inputs are reported per file; the others still run.
 */
import { readCaptureFile } from '../capture/reader.js';
import { Engine, type EngineOptions, type EngineStats, type PacketTap } from './engine.js';
import type { FlowRecord } from '../record/record.js';
import type { Flow } from '../flow/flow.js';
import { basename } from 'node:path';
import { setFlagsFromString } from 'node:v8';

/**
 * Flow cap for offline analysis: a named flow holds ~1.1–1.3 KB (heap snapshot at the cap: the Flow
 * object ~320 B, its address array ~200 B, lists and numbers ~150 B, what it keeps of the dissection
 * ~350 B for TLS, ~380 B for a 121-label DNS name), a SYN-only one ~0.6 KB. On top of the live flows
 * come the runtime (~48 MiB), the young generation (32 MiB) and the collector's slack, so the cap is
 * what keeps the peak RSS ≤ 150 MiB: 49,152 gave 156–164 MiB on 80,000 DNS queries with long names
 * (`bench:hostile --scale 4`), 40,960 gave 154 MiB, 32,768 gives 141 MiB (2,000,000 SYNs: 106 MiB).
 * The least recently active flow is reported early (anomaly `flow_evicted`, counted in the engine's
 * `caps`) when the cap is reached. Offline, ended flow objects are recycled (`recycleFlows`), so
 * evictions do not pile up as old-generation garbage.
 */
export const ANALYZE_MAX_FLOWS = 32_768;
/**
 * What the flows of an offline run keep of their dissection, together (names, lists, URLs; see
 * `EngineOptions.maxKeptBytes`): 32,768 ordinary TLS flows keep ~11 MiB. Without it, open connections
 * that each keep kilobytes (a 16 KB URL, an SNI of kilobytes; before ALPN lists were capped at
 * `MAX_ALPN_NAMES`, 3,900 ALPN names = 128 KiB each: 60,000 such flows ran analyze out of its 4 GiB
 * heap) grow with the flow cap; with it, 40,000 open connections with 16 KB URLs peak at 135 MiB.
 */
export const ANALYZE_MAX_KEPT_BYTES = 16 << 20;

export interface AnalyzeOptions extends Omit<EngineOptions, 'onFlowEnd' | 'pcapFilename'> {
  onRecord(r: FlowRecord, f: Flow): void;
  onProgress?: (file: string, bytes: number, total: number) => void;
  /** Each file's engine, before its first packet (for `engine.record(flow)` in `onClassified`). */
  onEngine?: (engine: Engine, file: string) => void;
  /** Every packet after the engine saw it. */
  onPacket?: PacketTap;
}

export interface FileResult {
  file: string;
  packets: number;
  stats: EngineStats;
  truncated: string | null;
  anomalies: Record<string, number>;
}

export interface AnalyzeResult {
  errors: { file: string; message: string }[];
  files: FileResult[];
}

/**
 * V8 lets the old generation grow by its default factor (up to 4×) before a full collection: on a
 * flood whose every packet leaves garbage behind (thousands of ALPN names per hello) the peak RSS was
 * ~250 MiB with 30 MiB live. A factor of 1.2 holds it near 150 MiB, with no measurable cost on the
 * bench:analyze capture (BENCHMARKS.md, *Hostile input*). Process-wide; set once per offline run.
 */
const OFFLINE_HEAP_GROWING = '--heap-growing-percent=20';

export async function analyzeFiles(paths: string[], opts: AnalyzeOptions): Promise<AnalyzeResult> {
  setFlagsFromString(OFFLINE_HEAP_GROWING);
  const res: AnalyzeResult = { errors: [], files: [] };
  for (const path of paths) {
    const engine = new Engine({
      maxFlows: ANALYZE_MAX_FLOWS,
      maxKeptBytes: ANALYZE_MAX_KEPT_BYTES,
      recycleFlows: true,
      ...opts,
      pcapFilename: path === '-' ? 'stdin' : basename(path),
      onFlowEnd: (f, why) => opts.onRecord(engine.record(f, why), f),
    });
    opts.onEngine?.(engine, path);
    const tap = opts.onPacket;
    try {
      const st = readCaptureFile(
        path,
        tap
          ? {
              packet: (b, off, end, lt, ts, orig) =>
                tap(engine.packet(b, lt, ts, orig, off, end), b, off, end, lt, ts, orig),
            }
          : { packet: (b, off, end, lt, ts, orig) => void engine.packet(b, lt, ts, orig, off, end) },
        opts.onProgress ? (b, t) => opts.onProgress!(path, b, t) : undefined,
      );
      engine.flush();
      res.files.push({
        file: path,
        packets: st.packets,
        stats: engine.stats,
        truncated: st.truncated,
        // decoder anomalies (incl. fragment-table cap hits) and the engine's cap hits, by code
        anomalies: Object.fromEntries([...engine.decoder.anomalies, ...engine.caps]),
      });
    } catch (e) {
      engine.flush();
      res.errors.push({ file: path, message: (e as Error).message });
    }
    // let the event loop breathe between files (stdout draining)
    await new Promise((r) => setImmediate(r));
  }
  return res;
}
