/**
 * @module probe/measure
 * One measurement run against a probe-server: opens the control session, then the test
 * connection (TCP) or test datagrams (UDP), sends the trigger, and records what happens — connect
 * time, time to first byte, cumulative bytes over time in each direction, resets, early FIN,
 * timeouts — together with what the server saw (did the trigger arrive, bytes sent, TCP
 * retransmissions). Pure measurement: the verdict is decided by probe/verdict.
 */
import net from 'node:net';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { MAGIC, type ResultMsg, type ServerMsg, type SessionRequest } from './protocol.js';
import type { Trigger } from './triggers.js';
import { installReorder, type Reorder } from './reorder.js';
import { buildHello } from './clienthello.js';
import { buildQuicInitials } from '../gen/quic-initial.js';

/** Cumulative bytes over time: [ms since the trigger was sent, bytes]. */
export type Timeline = [number, number][];

export interface DirectionSample {
  bytes: number;
  /** Bytes asked for (the run ends early when all arrived). */
  target: number;
  /** ms from the trigger to the last byte (or to the end of the window). */
  duration_ms: number;
  complete: boolean;
  timeline: Timeline;
}

export interface RunSample {
  proto: 'tcp' | 'udp';
  /** TCP handshake completed (UDP: always true). */
  connected: boolean;
  connect_ms: number | null;
  /** ms from the end of the trigger to the first downloaded byte. */
  ttfb_ms: number | null;
  /** ms from the end of the trigger to a reset (ECONNRESET), if one came. */
  reset_ms: number | null;
  /** The server's side closed (FIN) before the download completed. */
  early_fin: boolean;
  /** Local error class: refused, connect-timeout, unreachable, server (control channel), other. */
  error: string | null;
  error_detail?: string;
  window_ms: number;
  down: DirectionSample;
  up: DirectionSample | null;
  /** UDP: datagrams received and the highest sequence number seen (loss = 1 - received/(max+1)). */
  datagrams?: { received: number; max_seq: number };
  server: ResultMsg | null;
  /** Source address:port the server saw (NAT evidence). */
  peer?: string;
  /** Idle-timeout probe: the second download, after `idle_ms` of silence. */
  after?: DirectionSample;
  idle_ms?: number;
  note?: string;
}

export interface TcpRunOptions {
  host: string;
  port: number;
  trigger: Trigger;
  token: Uint8Array;
  down: number;
  up: number;
  windowMs: number;
  connectTimeoutMs?: number;
  /** Connect timeout of the control connection to the probe-server (default 5000 ms). */
  controlTimeoutMs?: number;
  /** Source port of the measured connection (default: the kernel's choice). */
  localPort?: number;
  /** Close with a reset instead of a FIN (the kernel then stops retransmitting an unacknowledged
   *  trigger, which would otherwise keep a censor's timers running). */
  resetOnClose?: boolean;
  /** Pause between trigger writes (ms, default 30). */
  gapMs?: number;
  /** Idle-timeout probe: after the download, stay silent this long, then download again on the
   *  same connection (result in `after`); no upload phase. */
  idleMs?: number;
}

const SAMPLE_MS = 50;

class Control {
  private buf = '';
  private waiters: ((m: ServerMsg) => void)[] = [];
  readonly msgs: ServerMsg[] = [];
  closed = false;
  constructor(readonly sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        let m: ServerMsg;
        try {
          m = JSON.parse(line) as ServerMsg;
        } catch {
          continue;
        }
        this.msgs.push(m);
        for (const w of this.waiters.splice(0)) w(m);
      }
    });
    sock.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w({ op: 'error', message: 'control connection closed' });
    });
    sock.on('error', () => {});
  }
  /** Wait for a message with `op` (already received ones count). */
  wait<T extends ServerMsg['op']>(op: T, timeoutMs: number): Promise<Extract<ServerMsg, { op: T }> | null> {
    const have = this.msgs.find((m) => m.op === op);
    if (have) return Promise.resolve(have as Extract<ServerMsg, { op: T }>);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== on);
        resolve(null);
      }, timeoutMs);
      const on = (m: ServerMsg) => {
        if (m.op === op) {
          clearTimeout(t);
          resolve(m as Extract<ServerMsg, { op: T }>);
        } else if (m.op === 'error' && this.closed) {
          clearTimeout(t);
          resolve(null);
        } else this.waiters.push(on);
      };
      this.waiters.push(on);
    });
  }
  send(obj: unknown): void {
    if (!this.sock.destroyed) this.sock.write(JSON.stringify(obj) + '\n');
  }
  close(): void {
    this.sock.destroy();
  }
}

async function openControl(
  host: string,
  port: number,
  req: SessionRequest,
  timeoutMs = 5000,
): Promise<Control> {
  const sock = net.connect({ host, port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      sock.destroy();
      reject(new Error(`probe-server ${host}:${port}: control connection timed out`));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(t);
      resolve();
    });
    sock.once('error', (e) => {
      clearTimeout(t);
      reject(new Error(`probe-server ${host}:${port}: ${e.message}`));
    });
  });
  const ctl = new Control(sock);
  sock.write(MAGIC + JSON.stringify(req) + '\n');
  const ready = await Promise.race([ctl.wait('ready', 5000), ctl.wait('error', 5000)]);
  if (!ready || ready.op !== 'ready') {
    ctl.close();
    throw new Error(
      `probe-server ${host}:${port}: session refused${ready && ready.op === 'error' ? ': ' + ready.message : ''}`,
    );
  }
  return ctl;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Upload filler: TLS application-data records of random bytes. */
const UP_RECORD = (() => {
  const b = Buffer.alloc(5 + 8192);
  b[0] = 0x17;
  b[1] = 3;
  b[2] = 3;
  b.writeUInt16BE(8192, 3);
  randomBytes(8192).copy(b, 5);
  return b;
})();

function emptyDir(target: number): DirectionSample {
  return { bytes: 0, target, duration_ms: 0, complete: false, timeline: [] };
}

function failed(
  proto: 'tcp' | 'udp',
  windowMs: number,
  down: number,
  up: number,
  error: string,
  detail: string,
): RunSample {
  return {
    proto,
    connected: false,
    connect_ms: null,
    ttfb_ms: null,
    reset_ms: null,
    early_fin: false,
    error,
    error_detail: detail,
    window_ms: windowMs,
    down: emptyDir(down),
    up: up ? emptyDir(up) : null,
    server: null,
  };
}

/** One TCP run. Never throws for network outcomes; they are part of the sample. */
export async function measureTcp(o: TcpRunOptions): Promise<RunSample> {
  const req: SessionRequest = {
    op: 'session',
    token: Buffer.from(o.token).toString('hex'),
    proto: 'tcp',
    down: o.down,
    up: o.up,
    window_ms: o.windowMs,
    trigger_bytes: o.trigger.writes.reduce((n, w) => n + w.length, 0),
  };
  if (o.idleMs !== undefined) req.idle_ms = o.idleMs;
  let ctl: Control;
  try {
    ctl = await openControl(o.host, o.port, req, o.controlTimeoutMs);
  } catch (e) {
    return failed('tcp', o.windowMs, o.down, o.up, 'server', (e as Error).message);
  }
  let reorder: Reorder | null = null;
  let localPort: number | undefined = o.localPort;
  try {
    if (o.trigger.reorder) {
      localPort ??= 20000 + (randomBytes(2).readUInt16BE(0) % 40000);
      try {
        reorder = await installReorder({ dst: o.host, localPort, segmentBytes: o.trigger.writes[0].length });
      } catch (e) {
        ctl.close();
        const s = failed(
          'tcp',
          o.windowMs,
          o.down,
          o.up,
          'unsupported',
          `reordering needs root, tc and iptables: ${(e as Error).message}`,
        );
        return s;
      }
    }
    return await tcpRun(o, ctl, localPort, reorder);
  } finally {
    await reorder?.remove();
    ctl.close();
  }
}

async function tcpRun(
  o: TcpRunOptions,
  ctl: Control,
  localPort: number | undefined,
  reorder: Reorder | null,
): Promise<RunSample> {
  const sample: RunSample = failed('tcp', o.windowMs, o.down, o.up, '', '');
  sample.error = null;
  delete sample.error_detail;
  const t0 = performance.now();
  const sock = net.connect({ host: o.host, port: o.port, noDelay: true, localPort, allowHalfOpen: true });
  let connected = false;
  let err: NodeJS.ErrnoException | null = null;
  let ended = false;
  sock.on('error', (e: NodeJS.ErrnoException) => {
    err ??= e;
  });
  const connectTimeout = o.connectTimeoutMs ?? 3000;
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, connectTimeout);
    sock.once('connect', () => {
      connected = true;
      clearTimeout(t);
      resolve();
    });
    sock.once('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
  if (!connected) {
    sock.destroy();
    const e = err as NodeJS.ErrnoException | null;
    if (!e) {
      sample.error = 'connect-timeout';
      sample.error_detail = `no TCP handshake within ${connectTimeout} ms`;
    } else if (e.code === 'ECONNREFUSED') {
      sample.error = 'refused';
      sample.error_detail = e.message;
    } else if (e.code === 'ECONNRESET') {
      sample.reset_ms = 0;
      sample.error_detail = e.message;
    } else {
      sample.error = e.code === 'EHOSTUNREACH' || e.code === 'ENETUNREACH' ? 'unreachable' : 'other';
      sample.error_detail = e.message;
    }
    return sample;
  }
  sample.connected = true;
  sample.connect_ms = Math.round(performance.now() - t0);

  // data arrival
  let downBytes = 0;
  let tTrig = 0;
  let lastByte = 0;
  const down = sample.down;
  sock.on('data', (d: Buffer) => {
    const now = performance.now();
    if (downBytes === 0) sample.ttfb_ms = Math.round(now - tTrig);
    downBytes += d.length;
    lastByte = now;
  });
  let closedResolve: () => void = () => {};
  const closed = new Promise<void>((r) => (closedResolve = r));
  sock.on('end', () => {
    ended = true;
  });
  sock.on('close', () => closedResolve());

  // trigger
  const gap = o.gapMs ?? 30;
  for (let i = 0; i < o.trigger.writes.length; i++) {
    if (i > 0) await sleep(gap);
    if (sock.destroyed) break;
    sock.write(o.trigger.writes[i]);
  }
  tTrig = performance.now();
  if (reorder) {
    // the held-back segment has left once the server saw the token: take the qdisc away now so it
    // cannot shape the rest of the run
    await ctl.wait('matched', 1000);
    await reorder.remove();
  }

  // phase 1: download, until complete, closed, or the window ends
  const deadline = tTrig + o.windowMs;
  let last = -1;
  let sockClosed = false;
  void closed.then(() => (sockClosed = true));
  while (true) {
    const now = performance.now();
    const t = Math.round(now - tTrig);
    if (
      downBytes !== last ||
      down.timeline.length === 0 ||
      t - down.timeline[down.timeline.length - 1][0] >= 250
    ) {
      down.timeline.push([t, downBytes]);
      last = downBytes;
    }
    if (downBytes >= o.down || sockClosed || now >= deadline) break;
    await sleep(SAMPLE_MS);
  }
  const tEnd = performance.now();
  down.bytes = downBytes;
  down.complete = downBytes >= o.down;
  down.duration_ms = Math.round((down.complete ? lastByte : tEnd) - tTrig);
  if (down.timeline[down.timeline.length - 1]?.[1] !== downBytes || down.complete) {
    down.timeline.push([down.complete ? down.duration_ms : Math.round(tEnd - tTrig), downBytes]);
  }
  const e = err as NodeJS.ErrnoException | null;
  if (e && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) {
    sample.reset_ms = Math.round(Math.max(0, performance.now() - tTrig));
  } else if (e) {
    sample.error = 'other';
    sample.error_detail = e.message;
  }
  if (ended && !down.complete) sample.early_fin = true;

  // idle-timeout probe: silence, then the same download again on the same connection
  if (o.idleMs !== undefined && !sockClosed && !sock.destroyed) {
    sample.idle_ms = o.idleMs;
    const idleEnd = performance.now() + o.idleMs;
    while (!sockClosed && performance.now() < idleEnd)
      await sleep(Math.min(200, Math.max(1, idleEnd - performance.now())));
    const after: DirectionSample = {
      bytes: 0,
      target: o.down,
      duration_ms: 0,
      complete: false,
      timeline: [],
    };
    sample.after = after;
    if (!sockClosed) {
      const base = downBytes;
      const t1 = performance.now();
      lastByte = t1;
      ctl.send({ op: 'again' });
      const end1 = t1 + o.windowMs;
      let prev = -1;
      while (true) {
        const now = performance.now();
        const got = downBytes - base;
        const t = Math.round(now - t1);
        if (
          got !== prev ||
          after.timeline.length === 0 ||
          t - after.timeline[after.timeline.length - 1][0] >= 250
        ) {
          after.timeline.push([t, got]);
          prev = got;
        }
        if (got >= o.down || sockClosed || now >= end1) break;
        await sleep(SAMPLE_MS);
      }
      after.bytes = downBytes - base;
      after.complete = after.bytes >= o.down;
      after.duration_ms = Math.round((after.complete ? lastByte : performance.now()) - t1);
      after.timeline.push([after.duration_ms, after.bytes]);
    }
  }

  // phase 2: upload (its own window), measured by the server; sequential so that one direction's
  // policing (dropped ACKs) does not distort the other's measurement
  if (o.up && o.idleMs === undefined && !sockClosed && !sock.destroyed) {
    let upWritten = 0;
    const upDoneP = ctl.wait('up_done', o.windowMs + 1000);
    const pumpUp = () => {
      while (upWritten < o.up && !sock.destroyed && sock.writable) {
        const n = Math.min(UP_RECORD.length, o.up - upWritten);
        upWritten += n;
        if (!sock.write(n === UP_RECORD.length ? UP_RECORD : UP_RECORD.subarray(0, n))) return;
      }
    };
    sock.on('drain', pumpUp);
    pumpUp();
    await Promise.race([upDoneP, closed, sleep(o.windowMs)]);
    const e2 = err as NodeJS.ErrnoException | null;
    if (e2 && (e2.code === 'ECONNRESET' || e2.code === 'EPIPE') && sample.reset_ms === null) {
      sample.reset_ms = Math.round(performance.now() - tTrig);
    }
  }

  // server's view
  ctl.send({ op: 'end' });
  const res = await ctl.wait('result', 4000);
  sample.server = res;
  const matched = ctl.msgs.find((m) => m.op === 'matched');
  if (matched && matched.op === 'matched') sample.peer = matched.peer;
  // a reset leaves nothing behind: no retransmission of an unacknowledged trigger for minutes after
  if (o.resetOnClose && !sock.destroyed) sock.resetAndDestroy();
  else sock.destroy();
  if (o.up && sample.up) {
    const upTl: Timeline = (res?.up_timeline ?? []).map(([ms, b]) => [ms, b]);
    const upB = res?.up_bytes ?? 0;
    sample.up.bytes = upB;
    sample.up.complete = upB >= o.up;
    const doneMsg = ctl.msgs.find((m) => m.op === 'up_done');
    sample.up.duration_ms =
      doneMsg && doneMsg.op === 'up_done'
        ? doneMsg.ms
        : upTl.length
          ? Math.min(o.windowMs, upTl[upTl.length - 1][0])
          : o.windowMs;
    sample.up.timeline = upTl.filter(([ms]) => ms <= o.windowMs + 100);
  }
  return sample;
}

export interface QuicRunOptions {
  host: string;
  port: number;
  sni: string | null;
  token: Uint8Array;
  down: number;
  windowMs: number;
  /** Initial packets for the ClientHello (default 1; 2 = split like a post-quantum browser hello). */
  packets?: number;
  /** Server pacing of the download (bit/s, default 2 Mbit/s: 2× the `ok` threshold, a mild overload for a policer). */
  rateBps?: number;
  /** Hop location: send the name's Initial with this IP TTL (and a DCID the server ignores), then
   *  a small benign long-header datagram carrying the session token at full TTL; the answer to the
   *  benign datagram is what is measured. 0 = benign datagram only (the baseline). */
  locateTtl?: number;
}

/** One QUIC run: Initial datagram(s) carrying the ClientHello, then count the paced answer. */
export async function measureQuic(o: QuicRunOptions): Promise<RunSample> {
  const req: SessionRequest = {
    op: 'session',
    token: Buffer.from(o.token).toString('hex'),
    proto: 'udp',
    down: o.down,
    up: 0,
    window_ms: o.windowMs,
    udp_rate_bps: o.rateBps ?? 2_000_000,
    udp_size: 1200,
  };
  let ctl: Control;
  try {
    ctl = await openControl(o.host, o.port, req);
  } catch (e) {
    return failed('udp', o.windowMs, o.down, 0, 'server', (e as Error).message);
  }
  const sample = failed('udp', o.windowMs, o.down, 0, '', '');
  sample.error = null;
  delete sample.error_detail;
  sample.connected = true;
  const sock = dgram.createSocket(o.host.includes(':') ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.connect(o.port, o.host, () => resolve());
    });
    sock.on('error', () => {});
    const scid = randomBytes(8);
    let initials: Uint8Array[];
    if (o.locateTtl === undefined) {
      const hello = buildHello({ sni: o.sni, token: o.token, quic: { scid } });
      initials = buildQuicInitials({
        version: 1,
        dcid: o.token,
        scid,
        clientHello: hello,
        packets: o.packets ?? 1,
      });
    } else {
      if (o.locateTtl > 0) {
        // the TTL-limited trigger: a real Initial for the name under a DCID the server does not know
        const dcid = randomBytes(16);
        const hello = buildHello({ sni: o.sni, token: dcid, quic: { scid } });
        sock.setTTL(o.locateTtl);
        for (const d of buildQuicInitials({
          version: 1,
          dcid,
          scid,
          clientHello: hello,
          packets: o.packets ?? 1,
        }))
          sock.send(d);
        await sleep(30);
        sock.setTTL(64);
      }
      // benign: long header, version 1, the token as DCID, 64 bytes (no Initial, nothing to match)
      const benign = Buffer.alloc(64);
      benign[0] = 0xc0;
      benign.writeUInt32BE(1, 1);
      benign[5] = 16;
      Buffer.from(o.token).copy(benign, 6);
      benign[22] = scid.length;
      scid.copy(benign, 23);
      initials = [benign];
    }
    let bytes = 0;
    let received = 0;
    let maxSeq = -1;
    let tTrig = 0;
    let lastByte = 0;
    const down = sample.down;
    sock.on('message', (m: Buffer) => {
      const now = performance.now();
      if (bytes === 0) sample.ttfb_ms = Math.round(now - tTrig);
      bytes += m.length;
      received++;
      if (m.length >= 13) maxSeq = Math.max(maxSeq, m.readUInt32BE(1 + scid.length));
      lastByte = now;
    });
    for (let i = 0; i < initials.length; i++) {
      if (i > 0) await sleep(5);
      sock.send(initials[i]);
    }
    tTrig = performance.now();
    const deadline = tTrig + o.windowMs;
    let last = -1;
    while (true) {
      const now = performance.now();
      const t = Math.round(now - tTrig);
      if (
        bytes !== last ||
        down.timeline.length === 0 ||
        t - down.timeline[down.timeline.length - 1][0] >= 250
      ) {
        down.timeline.push([t, bytes]);
        last = bytes;
      }
      if (bytes >= o.down || now >= deadline) break;
      await sleep(SAMPLE_MS);
    }
    const tEnd = performance.now();
    down.bytes = bytes;
    down.complete = bytes >= o.down;
    down.duration_ms = Math.round((down.complete ? lastByte : tEnd) - tTrig);
    sample.datagrams = { received, max_seq: maxSeq };
    ctl.send({ op: 'end' });
    sample.server = await ctl.wait('result', 4000);
    const matched = ctl.msgs.find((m) => m.op === 'matched');
    if (matched && matched.op === 'matched') sample.peer = matched.peer;
  } catch (e) {
    sample.error = 'other';
    sample.error_detail = (e as Error).message;
  } finally {
    sock.close();
    ctl.close();
  }
  return sample;
}
