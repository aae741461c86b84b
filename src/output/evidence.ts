/**
 * @module output/evidence
 * Bounded evidence capture: the first packets of every blocked or throttled flow, written to classic
 * pcap files that tshark/tcpdump/Wireshark read, with a JSON-lines index beside each file.
 *
 * Driven by three calls, in any mode (analyze with a policy, enforce):
 * - `packet(key, tsMs, linktype, buf, off, end, wireLen)` for every packet of a flow (`key` is any
 *   value identifying the flow, e.g. the engine's Flow object). Until the flow is decided its first
 *   packets are copied aside (at most `flowPackets`, and `pendingBytes` over all flows: when that is
 *   full, the flow undecided the longest gives its packets up, so stalled flows cannot blind the
 *   evidence of new ones; what is lost is counted as `missed`); returns false
 *   once the flow needs no more packets (decided allow/log, or its bound is reached), so a caller may
 *   stop calling it for that flow.
 * - `flowDecided(key, record, {action, rule_id})`: block or throttle writes the held packets and every
 *   later one up to the per-flow bound (`flowPackets` packets, `flowBytes` captured bytes); any other
 *   action frees them.
 * - `flowEnd(key)`: the flow is over; its state is freed.
 *
 * Files: `DIR/<prefix>NNNNNN.pcap` (NNNNNN a sequence number, zero-padded, continuing after files
 * already in DIR) and `DIR/<prefix>NNNNNN.jsonl`, one line per flow and file: `file`, `flow_id`,
 * `community_id`, `pcap_filename` (analyze), the 5-tuple, `host`, `app_proto`, `action`, `rule_id`,
 * `packets` and `bytes` of that flow in that file, `first_ts`/`last_ts`, `truncated` (the per-flow
 * bound stopped it) and `missed` (early packets not kept because the pending budget was full). So a
 * record's `community_id` (or `flow_id` + `pcap_filename`) finds its file by a grep of the index, and
 * its packets in the file by the 5-tuple. A flow's packets may span two files when a file rotates.
 * A file rotates at `fileBytes` (or when the link type changes); when the files of this writer exceed
 * `totalBytes`, the oldest pcap+index pairs are deleted. Packet records are buffered (64 KiB) and
 * written whole; the buffer is written out before every index line, at rotation and close, and by
 * `flush()` (live callers: once a second), so an index line never names packets not yet on disk and a
 * killed process leaves a readable file (at worst its last record cut, which tshark reports and reads
 * past). An index line is one write(2), made when a flow's part in a file is complete (bound reached,
 * flow end, rotation, close).
 */
import { closeSync, mkdirSync, openSync, readdirSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { FlowRecord } from '../record/record.js';
import { InputError } from '../util/errors.js';
import { fleetFlowId } from './eve.js';

export interface EvidenceOptions {
  dir: string;
  /** File name prefix (default `evidence-`); give each writer sharing a directory its own. */
  prefix?: string;
  /** Packets written per flow (default 32). */
  flowPackets?: number;
  /** Captured bytes written per flow (default 64 KiB; the packet crossing it is cut, as by a snaplen). */
  flowBytes?: number;
  /** Size at which a file rotates (default 16 MiB). */
  fileBytes?: number;
  /** Cap on this writer's files in DIR, pcap + index (default 256 MiB); the oldest go first. */
  totalBytes?: number;
  /** Sensor name and queue of the records' EVE flow_id (output/eve.ts fleetFlowId), so the index matches. */
  node?: string;
  queue?: number;
  /** Bytes held over all flows not yet decided (default 8 MiB). */
  pendingBytes?: number;
}

export interface EvidenceDecision {
  action: string;
  rule_id: string | null;
}

export interface EvidenceStats {
  /** Flows whose packets were written. */
  flows: number;
  packets: number;
  bytes: number;
  files: number;
  deletedFiles: number;
  /** Early packets not kept because `pendingBytes` was reached. */
  pendingDropped: number;
}

const enum S {
  Pending,
  Writing,
  Done,
}

interface Entry {
  state: S;
  held: { ts: number; lt: number; data: Uint8Array; wire: number }[] | null;
  heldBytes: number;
  /** Its held packets gave way to newer flows: later ones are not held either. */
  evicted: boolean;
  /** In the pending queue with packets held. */
  holdingNow: boolean;
  missed: number;
  packets: number;
  bytes: number;
  truncated: boolean;
  id: Record<string, unknown> | null;
  // the flow's part in the current file
  segFile: number;
  segPackets: number;
  segBytes: number;
  segFirst: number;
  segLast: number;
}

interface FileInfo {
  seq: number;
  size: number;
}

const PCAP_HEADER = 24;
const REC_HEADER = 16;

export class EvidenceWriter<K = unknown> {
  readonly stats: EvidenceStats = {
    flows: 0,
    packets: 0,
    bytes: 0,
    files: 0,
    deletedFiles: 0,
    pendingDropped: 0,
  };
  private readonly dir: string;
  private readonly prefix: string;
  private readonly flowPackets: number;
  private readonly flowBytes: number;
  private readonly fileBytes: number;
  private readonly totalBytes: number;
  private readonly pendingCap: number;
  private readonly flows = new Map<K, Entry>();
  private readonly openSegs = new Set<Entry>();
  /**
   * Pending entries holding packets, oldest first (evicted first when the pending budget is full): an
   * array queue with lazy removal (`Entry.holdingNow`), compacted when stale slots dominate, so each
   * operation is O(1) amortised (a Set deleted from its front degrades: V8 keeps the holes).
   */
  private fifo: Entry[] = [];
  private fifoHead = 0;
  private holdingCount = 0;
  private readonly closed: FileInfo[] = [];
  private closedBytes = 0;
  private pendingBytes = 0;
  private nextSeq = 1;
  private fd = -1;
  private idxFd = -1;
  private seq = 0;
  private size = 0;
  private idxSize = 0;
  private linktype = -1;
  private scratch = Buffer.allocUnsafe(REC_HEADER + 65536);
  /** Whole packet records not yet written (flushed before every index line, rotation, close). */
  private readonly pbuf = Buffer.allocUnsafe(64 * 1024);
  private plen = 0;

  private readonly node: string | undefined;
  private readonly queue: number;
  constructor(o: EvidenceOptions) {
    this.dir = o.dir;
    this.node = o.node;
    this.queue = o.queue ?? 0;
    this.prefix = o.prefix ?? 'evidence-';
    this.flowPackets = o.flowPackets ?? 32;
    this.flowBytes = o.flowBytes ?? 64 * 1024;
    this.fileBytes = o.fileBytes ?? 16 << 20;
    this.totalBytes = o.totalBytes ?? 256 << 20;
    this.pendingCap = o.pendingBytes ?? 8 << 20;
    const pos = (n: number, what: string) => {
      if (!Number.isInteger(n) || n < 1) throw new InputError(`evidence: ${what} must be a positive integer`);
    };
    pos(this.flowPackets, 'packets per flow');
    pos(this.flowBytes, 'bytes per flow');
    pos(this.fileBytes, 'file size');
    pos(this.totalBytes, 'total size');
    if (this.fileBytes < 4096) throw new InputError('evidence: file size must be at least 4096 bytes');
    if (this.totalBytes < this.fileBytes)
      throw new InputError('evidence: total size must be at least the file size');
    if (!/^[A-Za-z0-9._-]*$/.test(this.prefix))
      throw new InputError(`evidence: prefix '${this.prefix}' may use only letters, digits, . _ -`);
    try {
      mkdirSync(this.dir, { recursive: true });
    } catch (e) {
      throw new InputError(`evidence directory ${this.dir}: ${(e as Error).message}`, { cause: e });
    }
    // files from earlier runs count against the cap, and numbering continues after them
    const re = new RegExp(`^${this.prefix.replace(/[.]/g, '\\.')}(\\d{6,})\\.pcap$`);
    const found: FileInfo[] = [];
    for (const name of readdirSync(this.dir)) {
      const m = re.exec(name);
      if (!m) continue;
      const seq = Number(m[1]);
      found.push({ seq, size: this.sizeOf(seq) });
    }
    found.sort((a, b) => a.seq - b.seq);
    for (const f of found) {
      this.closed.push(f);
      this.closedBytes += f.size;
      if (f.seq >= this.nextSeq) this.nextSeq = f.seq + 1;
    }
    this.enforceCap();
  }

  /** Names of the files of sequence number `seq`. */
  fileNames(seq: number): { pcap: string; index: string } {
    const n = String(seq).padStart(6, '0');
    return { pcap: `${this.prefix}${n}.pcap`, index: `${this.prefix}${n}.jsonl` };
  }

  /** One packet of a flow; false when the flow needs no more packets. */
  packet(
    key: K,
    tsMs: number,
    linktype: number,
    buf: Uint8Array,
    off = 0,
    end = buf.length,
    wireLen = end - off,
  ): boolean {
    let e = this.flows.get(key);
    if (e === undefined) {
      e = newEntry();
      this.flows.set(key, e);
    }
    if (e.state === S.Done) return false;
    if (e.state === S.Writing) {
      this.write(e, tsMs, linktype, buf, off, end, wireLen);
      return e.state === S.Writing;
    }
    const len = end - off;
    if (e.evicted) {
      e.missed++;
      this.stats.pendingDropped++;
      return true;
    }
    const held = e.held ?? (e.held = []);
    // beyond the per-flow bounds anyway (never written; held, they would only push other flows out)
    if (held.length >= this.flowPackets || e.heldBytes >= this.flowBytes) return true;
    // over budget: the flows that have held the longest without a decision give way (a real flow is
    // decided within a few packets; stalled ones must not blind the evidence of new flows)
    while (this.pendingBytes + len > this.pendingCap && this.fifoHead < this.fifo.length) {
      const oldest = this.fifo[this.fifoHead];
      if (!oldest.holdingNow) {
        this.fifoHead++;
        continue;
      }
      if (oldest === e) break;
      this.fifoHead++;
      this.evict(oldest);
    }
    if (this.pendingBytes + len > this.pendingCap) {
      e.missed++;
      this.stats.pendingDropped++;
      return true;
    }
    // a copy (the caller's buffer is reused; Buffer#slice would be a view)
    held.push({ ts: tsMs, lt: linktype, data: new Uint8Array(buf.subarray(off, end)), wire: wireLen });
    e.heldBytes += len;
    this.pendingBytes += len;
    if (!e.holdingNow) {
      e.holdingNow = true;
      this.holdingCount++;
      this.fifo.push(e);
      this.compact();
    }
    return true;
  }

  private unhold(x: Entry): void {
    if (!x.holdingNow) return;
    x.holdingNow = false;
    this.holdingCount--;
  }

  private compact(): void {
    const live = this.fifo.length - this.fifoHead;
    if (live > 2 * this.holdingCount + 1024) {
      const next: Entry[] = [];
      for (let i = this.fifoHead; i < this.fifo.length; i++)
        if (this.fifo[i].holdingNow) next.push(this.fifo[i]);
      this.fifo = next;
      this.fifoHead = 0;
    } else if (this.fifoHead > 1024 && this.fifoHead * 2 > this.fifo.length) {
      this.fifo = this.fifo.slice(this.fifoHead);
      this.fifoHead = 0;
    }
  }

  private evict(x: Entry): void {
    this.unhold(x);
    const n = x.held ? x.held.length : 0;
    this.pendingBytes -= x.heldBytes;
    x.held = null;
    x.heldBytes = 0;
    x.evicted = true;
    x.missed += n;
    this.stats.pendingDropped += n;
  }

  /** The policy decided the flow: block/throttle writes its packets, anything else frees them. */
  flowDecided(key: K, rec: FlowRecord, d: EvidenceDecision): void {
    let e = this.flows.get(key);
    if (e === undefined) {
      e = newEntry();
      this.flows.set(key, e);
    }
    if (e.state !== S.Pending) return;
    const held = e.held;
    this.unhold(e);
    e.held = null;
    this.pendingBytes -= e.heldBytes;
    e.heldBytes = 0;
    if (d.action !== 'block' && d.action !== 'throttle') {
      e.state = S.Done;
      return;
    }
    e.state = S.Writing;
    e.id = {
      flow_id: fleetFlowId(rec.flow_id, this.node, this.queue),
      community_id: rec.community_id,
      ...(rec.pcap_filename !== undefined ? { pcap_filename: rec.pcap_filename } : {}),
      proto: rec.proto,
      src_ip: rec.src_ip,
      src_port: rec.src_port,
      dest_ip: rec.dest_ip,
      dest_port: rec.dest_port,
      host: rec.host,
      app_proto: rec.app_proto,
      action: d.action,
      rule_id: d.rule_id,
    };
    this.stats.flows++;
    if (held) {
      for (const p of held) {
        if (e.state !== S.Writing) break;
        this.write(e, p.ts, p.lt, p.data, 0, p.data.length, p.wire);
      }
    }
  }

  /** The flow ended: finish its index line and forget it. */
  flowEnd(key: K): void {
    const e = this.flows.get(key);
    if (e === undefined) return;
    this.flows.delete(key);
    if (e.held) this.pendingBytes -= e.heldBytes;
    this.unhold(e);
    e.held = null;
    this.endSeg(e);
  }

  /** Finish every index line and close the files (flows still open are written as they are). */
  close(): void {
    for (const e of this.flows.values()) this.endSeg(e);
    this.flows.clear();
    this.fifo = [];
    this.fifoHead = 0;
    this.holdingCount = 0;
    this.pendingBytes = 0;
    this.closeFile();
  }

  /** Flows currently tracked (pending, writing or done but not ended). */
  get tracked(): number {
    return this.flows.size;
  }

  private write(
    e: Entry,
    tsMs: number,
    lt: number,
    buf: Uint8Array,
    off: number,
    end: number,
    wireLen: number,
  ): void {
    let cap = end - off;
    const room = this.flowBytes - e.bytes;
    if (cap > room) {
      cap = room;
      e.truncated = true;
    }
    const recLen = REC_HEADER + cap;
    if (
      this.fd < 0 ||
      lt !== this.linktype ||
      (this.size > PCAP_HEADER && this.size + recLen > this.fileBytes)
    )
      this.rotate(lt);
    if (this.plen + recLen > this.pbuf.length) this.flush();
    let b: Buffer;
    let o: number;
    if (recLen <= this.pbuf.length) {
      b = this.pbuf;
      o = this.plen;
    } else {
      if (this.scratch.length < recLen) this.scratch = Buffer.allocUnsafe(recLen);
      b = this.scratch;
      o = 0;
    }
    const sec = Math.floor(tsMs / 1000);
    let usec = Math.round((tsMs - sec * 1000) * 1000);
    if (usec > 999_999) usec = 999_999;
    b.writeUInt32LE(sec >>> 0, o);
    b.writeUInt32LE(usec, o + 4);
    b.writeUInt32LE(cap, o + 8);
    b.writeUInt32LE(Math.max(wireLen, cap), o + 12);
    b.set(buf.subarray(off, off + cap), o + REC_HEADER);
    if (b === this.pbuf) this.plen += recLen;
    else writeAll(this.fd, b, recLen);
    this.size += recLen;
    if (e.segFile !== this.seq) {
      e.segFile = this.seq;
      e.segPackets = 0;
      e.segBytes = 0;
      e.segFirst = tsMs;
      this.openSegs.add(e);
    }
    e.segPackets++;
    e.segBytes += cap;
    e.segLast = tsMs;
    e.packets++;
    e.bytes += cap;
    this.stats.packets++;
    this.stats.bytes += cap;
    if (e.packets >= this.flowPackets || e.bytes >= this.flowBytes) {
      if (e.packets >= this.flowPackets) e.truncated = true;
      e.state = S.Done;
      this.endSeg(e);
    }
    if (this.closedBytes + this.size + this.idxSize > this.totalBytes) this.enforceCap();
  }

  /** Write the index line of the flow's part in the current file. */
  private endSeg(e: Entry): void {
    if (!this.openSegs.has(e)) return;
    this.openSegs.delete(e);
    const line =
      JSON.stringify({
        file: this.fileNames(e.segFile).pcap,
        ...e.id,
        packets: e.segPackets,
        bytes: e.segBytes,
        first_ts: isoMs(e.segFirst),
        last_ts: isoMs(e.segLast),
        truncated: e.truncated,
        missed: e.missed,
      }) + '\n';
    const b = Buffer.from(line);
    this.flush(); // the packets an index line names are on disk before it
    writeAll(this.idxFd, b, b.length);
    this.idxSize += b.length;
    if (this.closedBytes + this.size + this.idxSize > this.totalBytes) this.enforceCap();
  }

  private rotate(lt: number): void {
    this.closeFile();
    const seq = this.nextSeq++;
    const n = this.fileNames(seq);
    this.fd = openSync(join(this.dir, n.pcap), 'wx');
    this.idxFd = openSync(join(this.dir, n.index), 'wx');
    const h = Buffer.alloc(PCAP_HEADER);
    h.writeUInt32LE(0xa1b2c3d4, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeUInt32LE(65535, 16);
    h.writeUInt32LE(lt, 20);
    writeAll(this.fd, h, PCAP_HEADER);
    this.seq = seq;
    this.size = PCAP_HEADER;
    this.idxSize = 0;
    this.linktype = lt;
    this.stats.files++;
    this.enforceCap();
  }

  /** Write buffered packet records out (long-running callers: about once a second). */
  flush(): void {
    if (this.plen === 0 || this.fd < 0) return;
    writeAll(this.fd, this.pbuf, this.plen);
    this.plen = 0;
  }

  private closeFile(): void {
    if (this.fd < 0) return;
    for (const e of [...this.openSegs]) this.endSeg(e);
    this.flush();
    closeSync(this.fd);
    closeSync(this.idxFd);
    this.closed.push({ seq: this.seq, size: this.size + this.idxSize });
    this.closedBytes += this.size + this.idxSize;
    this.fd = this.idxFd = -1;
    this.size = this.idxSize = 0;
    this.seq = 0;
    this.linktype = -1;
  }

  /** Delete the oldest closed files until this writer is within `totalBytes`. */
  private enforceCap(): void {
    while (this.closed.length > 0 && this.closedBytes + this.size + this.idxSize > this.totalBytes) {
      const f = this.closed.shift()!;
      this.closedBytes -= f.size;
      const n = this.fileNames(f.seq);
      for (const name of [n.pcap, n.index]) {
        try {
          unlinkSync(join(this.dir, name));
        } catch {
          /* already gone */
        }
      }
      this.stats.deletedFiles++;
    }
  }

  private sizeOf(seq: number): number {
    const n = this.fileNames(seq);
    let s = 0;
    for (const name of [n.pcap, n.index]) {
      try {
        s += statSync(join(this.dir, name)).size;
      } catch {
        /* index missing */
      }
    }
    return s;
  }
}

function newEntry(): Entry {
  return {
    state: S.Pending,
    held: null,
    heldBytes: 0,
    evicted: false,
    holdingNow: false,
    missed: 0,
    packets: 0,
    bytes: 0,
    truncated: false,
    id: null,
    segFile: 0,
    segPackets: 0,
    segBytes: 0,
    segFirst: 0,
    segLast: 0,
  };
}

/**
 * A capture time as ISO text; outside what ISO years 0-9999 hold (a crafted pcapng timestamp or
 * if_tsoffset) it is the epoch, as in the flow records (engine/record-build isoMicro), not a throw.
 */
function isoMs(tsMs: number): string {
  return new Date(Number.isFinite(tsMs) && tsMs >= 0 && tsMs <= 253402300799999 ? tsMs : 0).toISOString();
}

function writeAll(fd: number, b: Uint8Array, len: number): void {
  let o = 0;
  while (o < len) o += writeSync(fd, b, o, len - o);
}
