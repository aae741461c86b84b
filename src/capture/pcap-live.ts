/**
 * @module capture/pcap-live
 * Live capture through libpcap (`libpcap.so.0.8`, Debian `libpcap0.8`) called with koffi.
 *
 * Why libpcap and not a raw AF_PACKET socket: `--filter` takes a BPF expression, and libpcap is the
 * one BPF compiler operators already use with tcpdump (same syntax, same semantics, same optimiser);
 * it also sets up the TPACKET_V3 memory-mapped ring (no system call per packet, blocks
 * of packets per wake-up), handles every link type the interface may have (Ethernet, `any` as
 * SLL2, tun devices as raw IP), and keeps the kernel's drop counters (`pcap_stats`). Doing this on a
 * bare AF_PACKET socket would mean re-implementing the filter compiler and the ring.
 *
 * Packets are read with `pcap_next_ex` in non-blocking mode: it returns pointers to libpcap's header
 * and to the packet (as two 32-bit halves in a reused buffer). The header is read through
 * one `koffi.view` of libpcap's header struct (the same address every call; a new view only if it
 * moves). The packet is where pcap_next_ex put it: libpcap copies it out of the TPACKET ring into one
 * snaplen-sized buffer of the pcap_t, the same address every call, so it too is viewed once (after
 * the address repeated) and read in place: one foreign call and no allocation or copy per packet.
 * A packet at another address is `memcpy`'d into a buffer allocated once. Waiting for packets
 * is `poll(2)` on libpcap's selectable descriptor, run on koffi's worker thread (`.async`), so the event
 * loop stays free for signals and output while nothing arrives.
 */
import koffi from 'koffi';
import { ChokepointError } from '../util/errors.js';

/** libpcap is missing, the interface does not exist, we lack permission, or the filter is invalid. */
export class CaptureError extends ChokepointError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

const PCAP_ERRBUF_SIZE = 256;
const POLLIN = 1;

interface Lib {
  pcap_create: (dev: string, err: Buffer) => unknown;
  pcap_set_snaplen: (p: unknown, n: number) => number;
  pcap_set_promisc: (p: unknown, on: number) => number;
  pcap_set_timeout: (p: unknown, ms: number) => number;
  pcap_set_buffer_size: (p: unknown, n: number) => number;
  pcap_set_immediate_mode: (p: unknown, on: number) => number;
  pcap_activate: (p: unknown) => number;
  pcap_geterr: (p: unknown) => string;
  pcap_statustostr: (code: number) => string;
  pcap_compile: (p: unknown, prog: Buffer, expr: string, optimize: number, netmask: number) => number;
  pcap_setfilter: (p: unknown, prog: Buffer) => number;
  pcap_freecode: (prog: Buffer) => void;
  pcap_setnonblock: (p: unknown, nb: number, err: Buffer) => number;
  pcap_get_selectable_fd: (p: unknown) => number;
  pcap_next_ex: (p: unknown, hdr: Buffer, data: Buffer) => number;
  pcap_stats: (p: unknown, st: Buffer) => number;
  pcap_datalink: (p: unknown) => number;
  pcap_close: (p: unknown) => void;
  memcpy: (dst: Uint8Array, src: number, n: number) => void;
  poll: {
    (fds: Int32Array, n: number, timeout: number): number;
    async(fds: Int32Array, n: number, timeout: number, cb: (err: unknown, res: number) => void): void;
  };
}

let lib: Lib | null = null;

/** Load libpcap and libc once; a clear error when libpcap is not installed. */
export function loadPcap(): Lib {
  if (lib) return lib;
  let pc: ReturnType<typeof koffi.load>;
  try {
    pc = koffi.load('libpcap.so.0.8');
  } catch (e) {
    throw new CaptureError(
      'ERR_PCAP_LIBRARY',
      `cannot load libpcap.so.0.8 (install the Debian package libpcap0.8): ${(e as Error).message}`,
    );
  }
  const libc = koffi.load('libc.so.6');
  koffi.opaque('chokepoint_pcap_t');
  lib = {
    pcap_create: pc.func('chokepoint_pcap_t *pcap_create(const char *dev, _Out_ uint8_t *errbuf)'),
    pcap_set_snaplen: pc.func('int pcap_set_snaplen(chokepoint_pcap_t *p, int n)'),
    pcap_set_promisc: pc.func('int pcap_set_promisc(chokepoint_pcap_t *p, int on)'),
    pcap_set_timeout: pc.func('int pcap_set_timeout(chokepoint_pcap_t *p, int ms)'),
    pcap_set_buffer_size: pc.func('int pcap_set_buffer_size(chokepoint_pcap_t *p, int n)'),
    pcap_set_immediate_mode: pc.func('int pcap_set_immediate_mode(chokepoint_pcap_t *p, int on)'),
    pcap_activate: pc.func('int pcap_activate(chokepoint_pcap_t *p)'),
    pcap_geterr: pc.func('const char *pcap_geterr(chokepoint_pcap_t *p)'),
    pcap_statustostr: pc.func('const char *pcap_statustostr(int code)'),
    pcap_compile: pc.func(
      'int pcap_compile(chokepoint_pcap_t *p, _Inout_ uint8_t *prog, const char *expr, int optimize, uint32_t netmask)',
    ),
    pcap_setfilter: pc.func('int pcap_setfilter(chokepoint_pcap_t *p, uint8_t *prog)'),
    pcap_freecode: pc.func('void pcap_freecode(_Inout_ uint8_t *prog)'),
    pcap_setnonblock: pc.func('int pcap_setnonblock(chokepoint_pcap_t *p, int nb, _Out_ uint8_t *errbuf)'),
    pcap_get_selectable_fd: pc.func('int pcap_get_selectable_fd(chokepoint_pcap_t *p)'),
    pcap_next_ex: pc.func('int pcap_next_ex(chokepoint_pcap_t *p, _Out_ uint8_t *hdr, _Out_ uint8_t *data)'),
    pcap_stats: pc.func('int pcap_stats(chokepoint_pcap_t *p, _Out_ uint8_t *st)'),
    pcap_datalink: pc.func('int pcap_datalink(chokepoint_pcap_t *p)'),
    pcap_close: pc.func('void pcap_close(chokepoint_pcap_t *p)'),
    memcpy: libc.func('void memcpy(_Inout_ uint8_t *dst, uint64_t src, size_t n)'),
    poll: libc.func('int poll(_Inout_ int32_t *fds, unsigned long n, int timeout)'),
  } as unknown as Lib;
  return lib;
}

export interface LivePcapOptions {
  iface: string;
  /** BPF filter expression (tcpdump syntax); none = every packet. */
  filter?: string;
  /** Bytes kept per packet (default 65535; the engine needs only the first bytes of a flow). */
  snaplen?: number;
  /** Kernel ring size in bytes (default 32 MiB): what absorbs bursts before the kernel drops. */
  bufferBytes?: number;
  /** Promiscuous mode (default true: a mirror port receives frames not addressed to it). */
  promisc?: boolean;
  /** Ring block timeout in ms (default 100): the longest a packet waits in a partly filled block. */
  timeoutMs?: number;
}

export interface PcapCounters {
  /** Packets the kernel passed the filter (pcap_stat.ps_recv). */
  received: number;
  /** Packets the kernel dropped because the ring was full (ps_drop). */
  dropped: number;
  /** Packets the interface/driver dropped (ps_ifdrop). */
  ifDropped: number;
}

/** LINKTYPE_* for the file/decoder from libpcap's DLT_* (they differ only for a few; see pcap-linktype(7)). */
function dltToLinktype(dlt: number): number {
  if (dlt === 12 || dlt === 14) return 101; // DLT_RAW (Linux 12, OpenBSD 14) → LINKTYPE_RAW
  return dlt;
}

export class LivePcap {
  readonly linktype: number;
  readonly snaplen: number;
  private p: unknown;
  private readonly l: Lib;
  private readonly hdrPtr = Buffer.alloc(8);
  private readonly dataPtr = Buffer.alloc(8);
  private hdrAddr = -1;
  private hdrView: Buffer | null = null;
  /** Fallback copy target when the packet is not in the viewed ring. */
  private readonly data: Buffer;
  /** The current packet is bytes [0, caplen) of `buf`, valid until the next `next()`. */
  buf: Buffer;
  readonly off = 0;
  private dataAddr = -1;
  private lastData = -1;
  private dataView: Buffer | null = null;
  /** Current packet: capture length, wire length, time in ms since the epoch. */
  caplen = 0;
  wirelen = 0;
  tsMs = 0;
  private readonly pfd = new Int32Array(2);
  private readonly stat = Buffer.alloc(16);
  // pcap_stats' counters are 32-bit and wrap; keep 64-bit totals
  private last = { recv: 0, drop: 0, ifdrop: 0 };
  private tot: PcapCounters = { received: 0, dropped: 0, ifDropped: 0 };

  constructor(o: LivePcapOptions) {
    const l = (this.l = loadPcap());
    const err = Buffer.alloc(PCAP_ERRBUF_SIZE);
    const p = l.pcap_create(o.iface, err);
    if (!p) throw new CaptureError('ERR_PCAP_OPEN', `${o.iface}: ${cstr(err)}`);
    this.p = p;
    this.snaplen = o.snaplen ?? 65535;
    try {
      l.pcap_set_snaplen(p, this.snaplen);
      l.pcap_set_promisc(p, o.promisc === false ? 0 : 1);
      l.pcap_set_timeout(p, o.timeoutMs ?? 100);
      l.pcap_set_buffer_size(p, o.bufferBytes ?? 32 << 20);
      const rc = l.pcap_activate(p);
      if (rc < 0) {
        const detail = l.pcap_geterr(p) || l.pcap_statustostr(rc);
        const code = rc === -8 ? 'ERR_PCAP_PERM' : rc === -5 ? 'ERR_PCAP_NO_DEVICE' : 'ERR_PCAP_ACTIVATE';
        const hint = rc === -8 ? ' (live capture needs root or CAP_NET_RAW)' : '';
        throw new CaptureError(code, `${o.iface}: ${detail}${hint}`);
      }
      if (o.filter !== undefined && o.filter !== '') {
        const prog = Buffer.alloc(16);
        if (l.pcap_compile(p, prog, o.filter, 1, 0xffffffff) < 0)
          throw new CaptureError('ERR_PCAP_FILTER', `--filter '${o.filter}': ${l.pcap_geterr(p)}`);
        const r = l.pcap_setfilter(p, prog);
        l.pcap_freecode(prog);
        if (r < 0) throw new CaptureError('ERR_PCAP_FILTER', `--filter '${o.filter}': ${l.pcap_geterr(p)}`);
      }
      if (l.pcap_setnonblock(p, 1, err) < 0) throw new CaptureError('ERR_PCAP_OPEN', cstr(err));
      this.pfd[0] = l.pcap_get_selectable_fd(p);
      this.pfd[1] = POLLIN;
      this.linktype = dltToLinktype(l.pcap_datalink(p));
      this.data = Buffer.alloc(this.snaplen);
      this.buf = this.data;
    } catch (e) {
      l.pcap_close(p);
      this.p = null;
      throw e;
    }
  }

  /** Next packet into `data`/`caplen`/`wirelen`/`tsMs`; false when none is waiting. */
  next(): boolean {
    const l = this.l;
    const r = l.pcap_next_ex(this.p, this.hdrPtr, this.dataPtr);
    if (r === 0) return false;
    if (r < 0) throw new CaptureError('ERR_PCAP_READ', `capture failed: ${l.pcap_geterr(this.p)}`);
    const hp = this.hdrPtr;
    const hAddr = hp.readUInt32LE(0) + hp.readUInt32LE(4) * 4294967296;
    // libpcap hands out the same header struct every time (it lives in the pcap_t): view it once
    // instead of copying it per packet; another address gets a new view (rare, never per packet)
    if (hAddr !== this.hdrAddr) {
      this.hdrAddr = hAddr;
      this.hdrView = Buffer.from(koffi.view(hAddr, 24));
    }
    const h = this.hdrView!;
    // struct pcap_pkthdr on 64-bit Linux: timeval {int64 sec, int64 usec}, uint32 caplen, uint32 len
    const sec = h.readUInt32LE(0) + h.readInt32LE(4) * 4294967296;
    const usec = h.readUInt32LE(8);
    let cap = h.readUInt32LE(16);
    if (cap > this.data.length) cap = this.data.length;
    this.caplen = cap;
    this.wirelen = h.readUInt32LE(20);
    this.tsMs = sec * 1000 + usec / 1000;
    const dp = this.dataPtr;
    const dAddr = dp.readUInt32LE(0) + dp.readUInt32LE(4) * 4294967296;
    if (dAddr === this.dataAddr) {
      // libpcap's one-shot buffer (pcap_next_ex copies each packet out of the ring into one buffer of
      // snaplen bytes in the pcap_t): viewed once, read in place; only [0, caplen) is ever read
      this.buf = this.dataView!;
    } else {
      l.memcpy(this.data, dAddr, cap);
      this.buf = this.data;
      // an address seen twice in a row is that fixed buffer: view it from now on
      if (dAddr === this.lastData) {
        this.dataAddr = dAddr;
        this.dataView = Buffer.from(koffi.view(dAddr, this.snaplen));
      }
      this.lastData = dAddr;
    }
    return true;
  }

  /** Wait (off the event loop) until packets may be readable or `ms` pass. */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.pfd[1] = POLLIN;
      this.l.poll.async(this.pfd, 1, ms, () => resolve());
    });
  }

  /** Kernel counters since the capture started (64-bit, wrap-corrected). */
  counters(): PcapCounters {
    if (this.p && this.l.pcap_stats(this.p, this.stat) === 0) {
      const s = this.stat;
      const cur = { recv: s.readUInt32LE(0), drop: s.readUInt32LE(4), ifdrop: s.readUInt32LE(8) };
      const d = (a: number, b: number) => (a - b + 4294967296) % 4294967296;
      this.tot.received += d(cur.recv, this.last.recv);
      this.tot.dropped += d(cur.drop, this.last.drop);
      this.tot.ifDropped += d(cur.ifdrop, this.last.ifdrop);
      this.last = cur;
    }
    return { ...this.tot };
  }

  close(): void {
    if (this.p) this.l.pcap_close(this.p);
    this.p = null;
    this.hdrView = null;
    this.hdrAddr = -1;
    // pcap_close frees the buffer: never touch the view again
    this.dataView = null;
    this.dataAddr = this.lastData = -1;
    this.buf = this.data;
  }
}

function cstr(b: Buffer): string {
  const z = b.indexOf(0);
  return b.toString('utf8', 0, z < 0 ? b.length : z);
}
