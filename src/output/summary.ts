/**
 * @module output/summary
 * Human output: a per-flow table and a summary (flows by application protocol, top names, anomalies).
 */
import type { FlowRecord } from '../record/record.js';

export class Summary {
  flows = 0;
  named = 0;
  readonly byProto = new Map<string, number>();
  readonly byHost = new Map<string, number>();
  readonly anomalies = new Map<string, number>();
  bytes = 0;

  add(r: FlowRecord): void {
    this.flows++;
    if (r.host) {
      this.named++;
      this.byHost.set(r.host, (this.byHost.get(r.host) ?? 0) + 1);
    }
    const ap = r.app_proto ?? '(unknown)';
    this.byProto.set(ap, (this.byProto.get(ap) ?? 0) + 1);
    for (const a of r.anomalies) this.anomalies.set(a, (this.anomalies.get(a) ?? 0) + 1);
    this.bytes += r.bytes_toserver + r.bytes_toclient;
  }

  render(topN = 15): string {
    const lines: string[] = [];
    lines.push(
      `flows: ${this.flows}   named: ${this.named} (${pct(this.named, this.flows)})   bytes: ${this.bytes}`,
    );
    lines.push('');
    lines.push('by application protocol:');
    for (const [k, v] of sortDesc(this.byProto)) lines.push(`  ${k.padEnd(12)} ${String(v).padStart(8)}`);
    if (this.byHost.size) {
      lines.push('');
      lines.push(`top names (${Math.min(topN, this.byHost.size)} of ${this.byHost.size}):`);
      for (const [k, v] of sortDesc(this.byHost).slice(0, topN))
        lines.push(`  ${String(v).padStart(6)}  ${k}`);
    }
    if (this.anomalies.size) {
      lines.push('');
      lines.push('anomalies:');
      for (const [k, v] of sortDesc(this.anomalies)) lines.push(`  ${String(v).padStart(6)}  ${k}`);
    }
    return lines.join('\n') + '\n';
  }
}

function pct(a: number, b: number): string {
  return b ? `${((100 * a) / b).toFixed(1)}%` : '0%';
}

function sortDesc(m: Map<string, number>): [string, number][] {
  return [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
}

/** One table row per flow (fixed-width columns). */
export function tableHeader(): string {
  return `${'proto'.padEnd(5)} ${'client'.padEnd(40)} ${'server'.padEnd(40)} ${'app'.padEnd(5)} host\n`;
}

export function tableRow(r: FlowRecord): string {
  const c = fmtEp(r.src_ip, r.src_port);
  const s = fmtEp(r.dest_ip, r.dest_port);
  return `${r.proto.padEnd(5)} ${c.padEnd(40)} ${s.padEnd(40)} ${(r.app_proto ?? '-').padEnd(5)} ${r.host ?? '-'}\n`;
}

function fmtEp(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
