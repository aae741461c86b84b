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

/**
 * Flow cap for offline analysis: a named flow holds ~1.3 KB (measured with --expose-gc on 50k TLS
 * flows), a SYN-only one ~0.6 KB; 49,152 flows keep the peak RSS ≤ 150 MiB even under a flow flood
 * (500,000 SYNs from distinct ports: 131 MiB since the flow table's buckets are an array, 158 MiB while
 * they were a Map, whose reallocated backing stores piled up; 65,536 flows gave 162 MiB then — the
 * collector keeps a share of garbage on top of the live flows). The least recently active flow is reported early (anomaly
 * `flow_evicted`, counted in the engine's `caps`) when the cap is reached. Offline, ended flow objects
 * are recycled (`recycleFlows`), so evictions do not pile up as old-generation garbage.
 */
export const ANALYZE_MAX_FLOWS = 49_152;

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

export async function analyzeFiles(paths: string[], opts: AnalyzeOptions): Promise<AnalyzeResult> {
  const res: AnalyzeResult = { errors: [], files: [] };
  for (const path of paths) {
    const engine = new Engine({
      maxFlows: ANALYZE_MAX_FLOWS,
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
