/**
 * @module enforce/nfq
 * NFQUEUE binding: `libnetfilter_queue.so.1` (Debian libnetfilter-queue1) and libc, called through
 * koffi. The library does the control plane (open, bind, create the queue, copy mode, fail-open flag,
 * queue length); the data path is two libc calls per batch. Packets are read with `recvmmsg(2)` into
 * one native block (koffi.alloc, seen from JS through koffi.view: RECV_BATCH slots of 68 KiB), every
 * packet that is ready in one call; a read that may wait does so in the call itself (SO_RCVTIMEO,
 * MSG_WAITFORONE), so there is no poll(2) before it and no empty read after a drain. The netlink
 * messages are parsed here, in place: no per-packet callback from C into JS and no per-packet
 * allocation; the payload is a `subarray` view of the receive block, valid until the next read.
 * (Without LP64 little-endian: poll(2) + recv(2) into one buffer.) Verdicts are batched: `verdict()`
 * appends an NFQNL_MSG_VERDICT message (verdict header + mark, what `nfq_set_verdict2` sends) to one
 * reused buffer, and `flush()` hands all of them to the kernel in one `send(2)` (nfnetlink processes
 * every message of the datagram in order). A read that may wait flushes first; so do
 * `verdictWith()` (arrival order), `close()` and a full buffer. A wakeup with k packets ready thus
 * costs one recvmmsg and one send, where it cost a poll, k + 1 recv and k sendmsg.
 *
 * One `NfQueue` per queue number; meant to be driven by one worker thread each (see enforce/worker),
 * which may block in `wait()` (poll(2)) without stalling the main event loop.
 */
import koffi from 'koffi';
import { ChokepointError } from '../util/errors.js';

export const NF_DROP = 0;
export const NF_ACCEPT = 1;
export const NF_REPEAT = 4;

const NFQNL_COPY_PACKET = 2;
const NFQA_CFG_F_FAIL_OPEN = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;
const EINTR = 4;
const ENOBUFS = 105;
const POLLIN = 1;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NFQNL_MSG_PACKET = (3 << 8) | 0;
const NFQA_PACKET_HDR = 1;
const NFQA_MARK = 3;
const NFQA_PAYLOAD = 10;
const SOL_SOCKET = 1;
const SO_RCVBUFFORCE = 33;
/** SO_RCVTIMEO (asm-generic and x86: 20), struct timeval of two longs. */
const SO_RCVTIMEO = 20;
const MSG_WAITFORONE = 0x10000;
/** Datagrams one recvmmsg(2) takes at most, and the room for each (copy range + headers). */
export const RECV_BATCH = 16;
const SLOT = 0x10000 + 4096;
/** struct mmsghdr (msghdr 56 + msg_len 4 + padding) and struct iovec on LP64. */
const MMSGHDR = 64;
const IOVEC = 16;
const DATA_OFF = 4096;
/** nfnetlink subsystem 3 (queue), message NFQNL_MSG_VERDICT; attributes of a verdict. */
const NFQNL_MSG_VERDICT = (3 << 8) | 1;
const NFQA_VERDICT_HDR = 2;
const NLM_F_REQUEST = 1;
/** One verdict message: nlmsghdr 16 + nfgenmsg 4 + verdict header attribute 12 + mark attribute 8. */
const VERDICT_MSG_LEN = 40;
/** Verdicts per send(2) at most (the buffer: 256 × 40 bytes). */
export const VERDICT_BATCH = 256;

/** The library or the kernel side is missing or refused us (not root, no NFQUEUE support). */
export class NfqError extends ChokepointError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

interface Lib {
  nfq_open: () => unknown;
  nfq_close: (h: unknown) => number;
  nfq_unbind_pf: (h: unknown, pf: number) => number;
  nfq_bind_pf: (h: unknown, pf: number) => number;
  nfq_create_queue: (h: unknown, num: number, cb: unknown, data: unknown) => unknown;
  nfq_destroy_queue: (qh: unknown) => number;
  nfq_set_mode: (qh: unknown, mode: number, range: number) => number;
  nfq_set_queue_flags: (qh: unknown, mask: number, flags: number) => number;
  nfq_set_queue_maxlen: (qh: unknown, len: number) => number;
  nfq_fd: (h: unknown) => number;
  nfq_set_verdict2: (
    qh: unknown,
    id: number,
    verdict: number,
    mark: number,
    len: number,
    buf: unknown,
  ) => number;
  recv: (fd: number, buf: Uint8Array, len: number, flags: number) => number;
  send: (fd: number, buf: Uint8Array, len: number, flags: number) => number;
  recvmmsg: (fd: number, vec: unknown, vlen: number, flags: number, timeout: null) => number;
  setsockoptTv: (fd: number, level: number, name: number, val: Int32Array, len: number) => number;
  poll: (fds: Int32Array, n: number, timeout: number) => number;
  setsockopt: (fd: number, level: number, name: number, val: Int32Array, len: number) => number;
}

let lib: Lib | null = null;

/** Load libnetfilter_queue and libc once per thread; clear error when the library is missing. */
export function loadNfq(): Lib {
  if (lib) return lib;
  let nfq: ReturnType<typeof koffi.load>;
  try {
    nfq = koffi.load('libnetfilter_queue.so.1');
  } catch (e) {
    throw new NfqError(
      'ERR_NFQ_LIBRARY',
      `cannot load libnetfilter_queue.so.1 (install the Debian package libnetfilter-queue1): ${(e as Error).message}`,
    );
  }
  const libc = koffi.load('libc.so.6');
  koffi.opaque('nfq_handle');
  koffi.opaque('nfq_q_handle');
  const cbProto = koffi.proto('int nfq_cb_t(void *qh, void *nfmsg, void *nfad, void *data)');
  lib = {
    nfq_open: nfq.func('nfq_handle *nfq_open(void)'),
    nfq_close: nfq.func('int nfq_close(nfq_handle *h)'),
    nfq_unbind_pf: nfq.func('int nfq_unbind_pf(nfq_handle *h, uint16_t pf)'),
    nfq_bind_pf: nfq.func('int nfq_bind_pf(nfq_handle *h, uint16_t pf)'),
    nfq_create_queue: nfq.func('nfq_create_queue', 'nfq_q_handle *', [
      'nfq_handle *',
      'uint16_t',
      koffi.pointer(cbProto),
      'void *',
    ]),
    nfq_destroy_queue: nfq.func('int nfq_destroy_queue(nfq_q_handle *qh)'),
    nfq_set_mode: nfq.func('int nfq_set_mode(nfq_q_handle *qh, uint8_t mode, uint32_t range)'),
    nfq_set_queue_flags: nfq.func('int nfq_set_queue_flags(nfq_q_handle *qh, uint32_t mask, uint32_t flags)'),
    nfq_set_queue_maxlen: nfq.func('int nfq_set_queue_maxlen(nfq_q_handle *qh, uint32_t len)'),
    nfq_fd: nfq.func('int nfq_fd(nfq_handle *h)'),
    nfq_set_verdict2: nfq.func(
      'int nfq_set_verdict2(nfq_q_handle *qh, uint32_t id, uint32_t verdict, uint32_t mark, uint32_t len, const uint8_t *buf)',
    ),
    recv: libc.func('long recv(int fd, _Inout_ uint8_t *buf, size_t len, int flags)'),
    send: libc.func('long send(int fd, const uint8_t *buf, size_t len, int flags)'),
    recvmmsg: libc.func('int recvmmsg(int fd, void *vec, unsigned int vlen, int flags, void *timeout)'),
    setsockoptTv: libc.func('setsockopt', 'int', ['int', 'int', 'int', 'int32_t *', 'uint32_t']),
    poll: libc.func('int poll(_Inout_ int32_t *fds, unsigned long n, int timeout)'),
    setsockopt: libc.func('int setsockopt(int fd, int level, int name, const int32_t *val, uint32_t len)'),
  } as unknown as Lib;
  return lib;
}

export interface NfQueueOptions {
  queue: number;
  /** Kernel queue length (packets) before fail-open (or drop). Default 4096. */
  maxlen?: number;
  /** NFQA_CFG_F_FAIL_OPEN: accept instead of drop when the queue is full. Default true. */
  failOpen?: boolean;
  /** Socket receive buffer in bytes. Default 8 MiB. */
  rcvbuf?: number;
  /** Bytes copied per packet. Default 0xffff. */
  copyRange?: number;
}

/** A packet as read from the queue: views into the receive buffer, valid until the next receive(). */
export interface NfPacket {
  id: number;
  /** skb mark as it entered the queue (0 when absent). */
  mark: number;
  hwProtocol: number;
  hook: number;
  /** Raw IP packet (linktype 101). */
  payload: Uint8Array;
}

/**
 * Verdict messages for one queue, encoded into one reused buffer (no allocation per verdict): each
 * an NFQNL_MSG_VERDICT request (nlmsghdr in host order; nfgenmsg AF_UNSPEC, version 0, res_id the
 * queue number; NFQA_VERDICT_HDR {verdict, id} and NFQA_MARK, big-endian), the bytes
 * `nfq_set_verdict2` sends, back to back as nfnetlink reads a datagram.
 */
export class VerdictBatch {
  readonly bytes = new Uint8Array(VERDICT_BATCH * VERDICT_MSG_LEN);
  private readonly dv = new DataView(this.bytes.buffer);
  private n = 0;
  private seq = 0;

  constructor(readonly queue: number) {}

  get count(): number {
    return this.n;
  }
  /** Bytes of the messages queued. */
  get length(): number {
    return this.n * VERDICT_MSG_LEN;
  }
  get full(): boolean {
    return this.n === VERDICT_BATCH;
  }
  clear(): void {
    this.n = 0;
  }

  /** Append one verdict (the caller sends and clears before it is full). */
  add(id: number, verdict: number, mark: number): void {
    if (this.n === VERDICT_BATCH) throw new NfqError('ERR_NFQ_BATCH', 'verdict batch full');
    const dv = this.dv;
    const o = this.n * VERDICT_MSG_LEN;
    dv.setUint32(o, VERDICT_MSG_LEN, true);
    dv.setUint16(o + 4, NFQNL_MSG_VERDICT, true);
    dv.setUint16(o + 6, NLM_F_REQUEST, true);
    this.seq = (this.seq + 1) >>> 0;
    dv.setUint32(o + 8, this.seq, true);
    dv.setUint32(o + 12, 0, true);
    dv.setUint16(o + 16, 0, true); // AF_UNSPEC, NFNETLINK_V0
    dv.setUint16(o + 18, this.queue, false);
    dv.setUint16(o + 20, 12, true);
    dv.setUint16(o + 22, NFQA_VERDICT_HDR, true);
    dv.setUint32(o + 24, verdict >>> 0, false);
    dv.setUint32(o + 28, id >>> 0, false);
    dv.setUint16(o + 32, 8, true);
    dv.setUint16(o + 34, NFQA_MARK, true);
    dv.setUint32(o + 36, mark >>> 0, false);
    this.n++;
  }
}

/** One bound NFQUEUE. */
export class NfQueue {
  readonly queue: number;
  private readonly lib: Lib;
  private h: unknown;
  private qh: unknown;
  readonly fd: number;
  private readonly buf: Uint8Array;
  private readonly dv: DataView;
  private readonly pollfd = new Int32Array(2);
  /** Offset of the next unread netlink message in buf, and the end of the datagram it is in. */
  private off = 0;
  private end = 0;
  /**
   * recvmmsg(2) path (LP64 little-endian): one native block (koffi.alloc) holding the mmsghdr and
   * iovec arrays and RECV_BATCH receive slots, seen from JS through `buf` (koffi.view); the datagram
   * being parsed and the count the last call returned. Null: the plain recv(2) path.
   */
  private readonly nat: unknown = null;
  private mmIdx = 0;
  private mmCount = 0;
  /** SO_RCVTIMEO in force (ms; -1 none). */
  private rcvtimeo = -1;
  private readonly tv = new Int32Array(4);
  /** recvmmsg / recv calls that returned packets, and the datagrams they returned. */
  reads = 0;
  datagrams = 0;
  /** recv() failures with ENOBUFS: the kernel dropped notifications (or failed open). */
  enobufs = 0;
  private closed = false;
  /** Reused packet object (no per-packet allocation). */
  private readonly pkt: NfPacket;
  /** Verdict messages not sent yet. */
  private readonly batch: VerdictBatch;
  /** send(2) calls that carried verdicts, and the verdicts sent (batching: sends ≤ verdicts). */
  sends = 0;
  verdicts = 0;
  /** send(2) failures (errno kept in `lastSendErrno`): the kernel did not take a batch. */
  sendErrors = 0;
  lastSendErrno = 0;

  constructor(opts: NfQueueOptions) {
    this.lib = loadNfq();
    this.queue = opts.queue;
    const L = this.lib;
    this.h = L.nfq_open();
    if (!this.h) {
      throw new NfqError(
        'ERR_NFQ_OPEN',
        'nfq_open failed: NFQUEUE needs root (CAP_NET_ADMIN) and kernel nfnetlink_queue support',
      );
    }
    // Obsolete on kernels >= 3.8 but harmless; errors ignored.
    L.nfq_unbind_pf(this.h, AF_INET);
    L.nfq_bind_pf(this.h, AF_INET);
    L.nfq_unbind_pf(this.h, AF_INET6);
    L.nfq_bind_pf(this.h, AF_INET6);
    this.qh = L.nfq_create_queue(this.h, opts.queue, null, null);
    if (!this.qh) {
      L.nfq_close(this.h);
      throw new NfqError(
        'ERR_NFQ_BIND',
        `cannot bind NFQUEUE ${opts.queue} (another process holds it, or not root)`,
      );
    }
    if (L.nfq_set_mode(this.qh, NFQNL_COPY_PACKET, opts.copyRange ?? 0xffff) < 0) {
      this.close();
      throw new NfqError('ERR_NFQ_MODE', 'nfq_set_mode(COPY_PACKET) failed');
    }
    const fo = opts.failOpen ?? true;
    if (L.nfq_set_queue_flags(this.qh, NFQA_CFG_F_FAIL_OPEN, fo ? NFQA_CFG_F_FAIL_OPEN : 0) < 0) {
      this.close();
      throw new NfqError('ERR_NFQ_FLAGS', 'nfq_set_queue_flags(FAIL_OPEN) failed (kernel < 3.6?)');
    }
    L.nfq_set_queue_maxlen(this.qh, opts.maxlen ?? 4096);
    this.fd = L.nfq_fd(this.h);
    const rb = new Int32Array([opts.rcvbuf ?? 8 << 20]);
    L.setsockopt(this.fd, SOL_SOCKET, SO_RCVBUFFORCE, rb, 4);
    if (koffi.sizeof('void *') === 8 && new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) {
      const total = DATA_OFF + RECV_BATCH * SLOT;
      const nat = koffi.alloc('uint8_t', total);
      this.nat = nat;
      this.buf = new Uint8Array(koffi.view(nat, total));
      this.dv = new DataView(this.buf.buffer);
      const base = BigInt(koffi.address(nat));
      const dv = this.dv;
      for (let i = 0; i < RECV_BATCH; i++) {
        const m = i * MMSGHDR;
        const io = RECV_BATCH * MMSGHDR + i * IOVEC;
        dv.setBigUint64(io, base + BigInt(DATA_OFF + i * SLOT), true); // iov_base
        dv.setBigUint64(io + 8, BigInt(SLOT), true); // iov_len
        dv.setBigUint64(m, 0n, true); // msg_name
        dv.setUint32(m + 8, 0, true); // msg_namelen
        dv.setBigUint64(m + 16, base + BigInt(io), true); // msg_iov
        dv.setBigUint64(m + 24, 1n, true); // msg_iovlen
        dv.setBigUint64(m + 32, 0n, true); // msg_control
        dv.setBigUint64(m + 40, 0n, true); // msg_controllen
      }
    } else {
      this.buf = new Uint8Array(SLOT);
      this.dv = new DataView(this.buf.buffer);
    }
    this.pkt = { id: 0, mark: 0, hwProtocol: 0, hook: 0, payload: this.buf.subarray(0, 0) };
    this.batch = new VerdictBatch(opts.queue);
  }

  /**
   * Next queued packet. When none is left of what was read: `waitMs` > 0 flushes the verdicts and
   * waits up to `waitMs` in the read itself (no poll) for at least one packet, taking every one
   * ready (up to RECV_BATCH per recvmmsg); 0 reads without waiting; < 0 returns null (no syscall).
   * Null when nothing came. The returned object and its payload view are reused by the next call.
   */
  receive(waitMs = 0): NfPacket | null {
    for (;;) {
      if (this.off >= this.end) {
        if (this.nat !== null && this.mmIdx + 1 < this.mmCount) {
          this.mmIdx++;
          this.off = DATA_OFF + this.mmIdx * SLOT;
          this.end = this.off + this.dv.getUint32(this.mmIdx * MMSGHDR + 56, true);
          continue;
        }
        if (this.closed || waitMs < 0) return null;
        if (waitMs > 0) this.flush();
        const n = this.read(waitMs);
        if (n < 0) {
          const err = koffi.errno();
          if (err === ENOBUFS) {
            this.enobufs++;
            continue;
          }
          if (err === EINTR) continue;
          if (err !== EAGAIN) {
            throw new NfqError('ERR_NFQ_RECV', `recv on NFQUEUE ${this.queue} failed: errno ${err}`);
          }
          return null;
        }
        if (n === 0) return null;
      }
      const p = this.parseOne();
      if (p) return p;
    }
  }

  /** One read: datagrams (recvmmsg) or bytes (recv) in buf, off/end set to the first; < 0: errno. */
  private read(waitMs: number): number {
    const L = this.lib;
    if (this.nat !== null) {
      if (waitMs > 0 && waitMs !== this.rcvtimeo) {
        // struct timeval on LP64: tv_sec, tv_usec as two little-endian longs
        const tv = this.tv;
        tv[0] = Math.floor(waitMs / 1000);
        tv[1] = 0;
        tv[2] = (waitMs % 1000) * 1000;
        tv[3] = 0;
        L.setsockoptTv(this.fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16);
        this.rcvtimeo = waitMs;
      }
      const n = L.recvmmsg(this.fd, this.nat, RECV_BATCH, waitMs > 0 ? MSG_WAITFORONE : MSG_DONTWAIT, null);
      if (n <= 0) return n;
      this.reads++;
      this.datagrams += n;
      this.mmCount = n;
      this.mmIdx = 0;
      this.off = DATA_OFF;
      this.end = DATA_OFF + this.dv.getUint32(56, true);
      return n;
    }
    if (waitMs > 0) {
      this.pollfd[0] = this.fd;
      this.pollfd[1] = POLLIN;
      if (L.poll(this.pollfd, 1, waitMs) <= 0) return 0;
    }
    const n = L.recv(this.fd, this.buf, this.buf.length, MSG_DONTWAIT);
    if (n <= 0) return n;
    this.reads++;
    this.datagrams++;
    this.off = 0;
    this.end = n;
    return n;
  }

  /** Parse the netlink message at `off`, advance; the packet or null (not a packet message). */
  private parseOne(): NfPacket | null {
    const dv = this.dv;
    const start = this.off;
    if (this.end - start < 16) {
      this.off = this.end;
      return null;
    }
    const len = dv.getUint32(start, true);
    const type = dv.getUint16(start + 4, true);
    if (len < 16 || start + len > this.end) {
      this.off = this.end;
      return null;
    }
    this.off = start + ((len + 3) & ~3);
    if (type === NLMSG_ERROR || type === NLMSG_DONE || type !== NFQNL_MSG_PACKET) return null;
    // nlmsghdr (16) + nfgenmsg (4), then attributes.
    let a = start + 20;
    const mEnd = start + len;
    const pkt = this.pkt;
    pkt.mark = 0;
    let gotHdr = false;
    let gotPayload = false;
    while (a + 4 <= mEnd) {
      const alen = dv.getUint16(a, true);
      const atype = dv.getUint16(a + 2, true) & 0x3fff;
      if (alen < 4 || a + alen > mEnd) break;
      if (atype === NFQA_PACKET_HDR && alen >= 11) {
        pkt.id = dv.getUint32(a + 4, false);
        pkt.hwProtocol = dv.getUint16(a + 8, false);
        pkt.hook = this.buf[a + 10];
        gotHdr = true;
      } else if (atype === NFQA_MARK && alen >= 8) {
        pkt.mark = dv.getUint32(a + 4, false);
      } else if (atype === NFQA_PAYLOAD) {
        pkt.payload = this.buf.subarray(a + 4, a + alen);
        gotPayload = true;
      }
      a += (alen + 3) & ~3;
    }
    if (!gotHdr) return null;
    if (!gotPayload) pkt.payload = this.buf.subarray(0, 0);
    return pkt;
  }

  /**
   * Queue a verdict (NF_ACCEPT / NF_DROP / NF_REPEAT) for the next `flush()`; `mark` sets the skb
   * mark (as `nfq_set_verdict2`: always sent, 0 included).
   */
  verdict(id: number, verdict: number, mark: number): void {
    if (this.closed) return;
    if (this.batch.full) this.flush();
    this.batch.add(id, verdict, mark);
  }

  /** Verdicts queued and not yet sent. */
  get pending(): number {
    return this.batch.count;
  }

  /** Send every queued verdict in one send(2). */
  flush(): void {
    const b = this.batch;
    const n = b.count;
    if (n === 0) return;
    if (this.closed) {
      b.clear();
      return;
    }
    const len = b.length;
    let r = this.lib.send(this.fd, b.bytes, len, 0);
    if (r < 0 && koffi.errno() === EINTR) r = this.lib.send(this.fd, b.bytes, len, 0);
    b.clear();
    this.sends++;
    this.verdicts += n;
    if (r < 0) {
      // the packets stay queued in the kernel (never lost: fail-open covers a full queue)
      this.sendErrors++;
      this.lastSendErrno = koffi.errno();
    }
  }

  /** A verdict that replaces the packet with `buf` (the kernel takes the new bytes as the packet). */
  verdictWith(id: number, verdict: number, mark: number, buf: Uint8Array): void {
    if (this.closed) return;
    this.flush(); // the packets before it leave first
    this.lib.nfq_set_verdict2(this.qh, id, verdict, mark >>> 0, buf.length, buf);
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.qh) this.lib.nfq_destroy_queue(this.qh);
    if (this.h) this.lib.nfq_close(this.h);
    this.qh = null;
    this.h = null;
    this.off = this.end = 0;
    this.mmCount = this.mmIdx = 0;
    if (this.nat !== null) koffi.free(this.nat); // after close nothing reads a packet view
  }
}
