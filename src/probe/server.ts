/**
 * @module probe/server
 * The cooperating measurement server (`chokepoint probe-server`). One port, TCP and UDP:
 * control connections (magic `CPPROBE1 `) register sessions; test connections and datagrams are
 * tied to a session by the token hidden in their trigger (see probe/protocol). After the match
 * the server sends the download (TCP: TLS application-data records of random bytes, with
 * backpressure; UDP: datagrams paced at the requested rate) and counts the upload with a
 * timeline. It never terminates TLS, so one server tests any name.
 */
import net from 'node:net';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { run } from '../util/run.js';
import {
  MAGIC,
  TOKEN_LEN,
  checkSessionRequest,
  type ResultMsg,
  type ServerMsg,
  type SessionRequest,
} from './protocol.js';

export interface ProbeServerOptions {
  host: string;
  port: number;
  /** Log lines to this function (default: none). */
  log?: (line: string) => void;
  /** Query `ss -ti` for TCP retransmissions at the end of a session (default true). */
  tcpInfo?: boolean;
}

export interface ProbeServer {
  /** Bound address (port resolved when 0 was asked). */
  address: { host: string; port: number };
  sessions(): number;
  close(): Promise<void>;
}

interface Session {
  req: SessionRequest;
  token: Buffer;
  ctl: net.Socket;
  matchedAt: number;
  /** When the first upload byte (after the trigger) arrived; the upload timeline counts from here. */
  upStartAt: number;
  test: net.Socket | null;
  udpPeer: dgram.RemoteInfo | null;
  udpScid: Buffer | null;
  downSent: number;
  downDatagrams: number;
  upBytes: number;
  upTimeline: [number, number][];
  end: ResultMsg['end'];
  timers: NodeJS.Timeout[];
  done: boolean;
}

const SAMPLE_MS = 50;
const MAX_SCAN = 65536;
const MAX_SESSIONS = 256;
const RECORD_PAYLOAD = 16384;

/** One TLS application-data record (header + random payload), reused for every write. */
const RECORD = (() => {
  const b = Buffer.alloc(5 + RECORD_PAYLOAD);
  b[0] = 0x17;
  b[1] = 3;
  b[2] = 3;
  b.writeUInt16BE(RECORD_PAYLOAD, 3);
  randomBytes(RECORD_PAYLOAD).copy(b, 5);
  return b;
})();

function send(sock: net.Socket, msg: ServerMsg): void {
  if (!sock.destroyed) sock.write(JSON.stringify(msg) + '\n');
}

/** Parse `ss -tin` output for retrans and segs_out of the single socket listed. */
export function parseSsInfo(out: string): { retrans: number | null; segs_out: number | null } {
  const r = /\bretrans:\d+\/(\d+)/.exec(out);
  const s = /\bsegs_out:(\d+)/.exec(out);
  return { retrans: r ? Number(r[1]) : s ? 0 : null, segs_out: s ? Number(s[1]) : null };
}

function ssInfo(sock: net.Socket): Promise<{ retrans: number | null; segs_out: number | null }> {
  const lp = sock.localPort;
  const rp = sock.remotePort;
  if (!lp || !rp) return Promise.resolve({ retrans: null, segs_out: null });
  return run(['ss', '-tinH', 'state', 'all', `( sport = :${lp} and dport = :${rp} )`], {
    timeoutMs: 2000,
  }).then(
    (r) => parseSsInfo(r.stdout),
    () => ({ retrans: null, segs_out: null }),
  );
}

export async function startProbeServer(opts: ProbeServerOptions): Promise<ProbeServer> {
  const log = opts.log ?? (() => {});
  const sessions = new Map<string, Session>();
  const sockets = new Set<net.Socket>();

  const finish = async (s: Session, why: string): Promise<void> => {
    if (s.done) return;
    s.done = true;
    for (const t of s.timers) {
      clearTimeout(t);
      clearInterval(t);
    }
    sessions.delete(s.token.toString('hex'));
    let info: { retrans: number | null; segs_out: number | null } = { retrans: null, segs_out: null };
    if (s.test && !s.test.destroyed && opts.tcpInfo !== false) info = await ssInfo(s.test);
    if (s.test && s.end === 'open') s.end = 'none';
    if (s.upStartAt) s.upTimeline.push([Date.now() - s.upStartAt, s.upBytes]);
    const res: ResultMsg = {
      op: 'result',
      trigger_seen: s.matchedAt > 0,
      down_sent: s.downSent,
      up_bytes: s.upBytes,
      up_timeline: s.upTimeline,
      retrans: info.retrans,
      segs_out: info.segs_out,
      end: s.matchedAt ? s.end : 'none',
    };
    if (s.req.proto === 'udp') res.down_datagrams = s.downDatagrams;
    send(s.ctl, res);
    s.ctl.end();
    s.test?.destroy();
    log(
      `session ${s.token.toString('hex').slice(0, 8)} done (${why}): sent ${s.downSent} B, got ${s.upBytes} B`,
    );
  };

  const startSampling = (s: Session) => {
    const iv = setInterval(() => {
      if (!s.upStartAt) return;
      const t = Date.now() - s.upStartAt;
      const last = s.upTimeline[s.upTimeline.length - 1];
      if (!last || last[1] !== s.upBytes || t - last[0] >= 500) s.upTimeline.push([t, s.upBytes]);
    }, SAMPLE_MS);
    s.timers.push(iv);
    // download window, then upload window, then slack
    s.timers.push(
      setTimeout(() => void finish(s, 'window'), 2 * s.req.window_ms + (s.req.idle_ms ?? 0) + 3000),
    );
  };

  const onControl = (sock: net.Socket, first: Buffer) => {
    let buf = first.subarray(MAGIC.length).toString('utf8');
    let session: Session | null = null;
    const onLine = (line: string) => {
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        send(sock, { op: 'error', message: 'bad JSON' });
        sock.end();
        return;
      }
      const op = (msg as { op?: unknown }).op;
      if (!session) {
        const err = checkSessionRequest(msg);
        if (err) {
          send(sock, { op: 'error', message: err });
          sock.end();
          return;
        }
        if (sessions.size >= MAX_SESSIONS) {
          send(sock, { op: 'error', message: 'too many sessions' });
          sock.end();
          return;
        }
        const req = msg as SessionRequest;
        session = {
          req,
          token: Buffer.from(req.token, 'hex'),
          ctl: sock,
          matchedAt: 0,
          upStartAt: 0,
          test: null,
          udpPeer: null,
          udpScid: null,
          downSent: 0,
          downDatagrams: 0,
          upBytes: 0,
          upTimeline: [],
          end: 'open',
          timers: [],
          done: false,
        };
        sessions.set(req.token, session);
        // an unmatched session lives at most window + 10 s
        session.timers.push(
          setTimeout(
            () => session && void finish(session, 'expired'),
            2 * req.window_ms + (req.idle_ms ?? 0) + 10_000,
          ),
        );
        send(sock, { op: 'ready' });
      } else if (op === 'again' && session.test && !session.test.destroyed && session.req.proto === 'tcp') {
        session.downSent = 0;
        startTcpDownload(session, session.test);
      } else if (op === 'end') {
        void finish(session, 'end');
      }
    };
    const drain = () => {
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.trim()) onLine(line);
      }
      if (buf.length > 4096) sock.destroy();
    };
    sock.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      drain();
    });
    sock.on('close', () => {
      if (session && !session.done) void finish(session, 'control closed');
    });
    drain();
  };

  const startTcpDownload = (s: Session, sock: net.Socket) => {
    const pump = () => {
      while (!sock.destroyed && s.downSent < s.req.down && !s.done) {
        const n = Math.min(RECORD.length, s.req.down - s.downSent);
        s.downSent += n;
        const more = sock.write(n === RECORD.length ? RECORD : RECORD.subarray(0, n));
        if (!more) return;
      }
      // idle-timeout probes keep the connection open for the next download
      if (s.downSent >= s.req.down && !sock.destroyed && sock.writable && !s.req.idle_ms) sock.end();
    };
    sock.removeAllListeners('drain');
    sock.on('drain', pump);
    pump();
  };

  const onTest = (sock: net.Socket, acc: Buffer) => {
    // look for any pending TCP session's token in what we have so far
    let hit: Session | null = null;
    let at = -1;
    for (const s of sessions.values()) {
      if (s.req.proto !== 'tcp' || s.matchedAt) continue;
      const i = acc.indexOf(s.token);
      if (i >= 0) {
        hit = s;
        at = i;
        break;
      }
    }
    if (!hit) return false;
    const s = hit;
    s.matchedAt = Date.now();
    s.test = sock;
    // bytes of the trigger after the token are not upload
    s.upBytes = 0;
    void at;
    send(s.ctl, {
      op: 'matched',
      by: 'token',
      peer: `${sock.remoteAddress}:${sock.remotePort}`,
      offset: acc.length,
    });
    sock.removeAllListeners('data');
    let upDone = false;
    const checkUp = () => {
      if (!upDone && s.req.up > 0 && s.upBytes >= s.req.up) {
        upDone = true;
        s.upTimeline.push([Date.now() - s.upStartAt, s.upBytes]);
        send(s.ctl, { op: 'up_done', ms: Date.now() - s.upStartAt });
      }
    };
    // bytes received so far on this connection; the trigger ends at trigger_bytes
    let received = acc.length;
    const need = s.req.trigger_bytes ?? 0;
    let started = false;
    const maybeStart = () => {
      if (!started && received >= need) {
        started = true;
        startTcpDownload(s, sock);
      }
    };
    sock.on('data', (d: Buffer) => {
      const before = received;
      received += d.length;
      const extra = before >= need ? d.length : Math.max(0, received - need);
      if (extra > 0) {
        if (!s.upStartAt) {
          s.upStartAt = Date.now();
          s.upTimeline.push([0, 0]);
        }
        s.upBytes += extra;
        checkUp();
      }
      maybeStart();
    });
    sock.on('end', () => {
      if (s.end === 'open') s.end = 'fin';
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (s.end === 'open') s.end = e.code === 'ECONNRESET' ? 'reset' : 'error';
    });
    startSampling(s);
    maybeStart();
    return true;
  };

  const tcp = net.createServer({ noDelay: true, allowHalfOpen: true }, (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let acc: Buffer = Buffer.alloc(0);
    const idle = setTimeout(() => sock.destroy(), 120_000);
    sock.on('close', () => clearTimeout(idle));
    sock.on('data', (d: Buffer) => {
      acc = acc.length ? Buffer.concat([acc, d]) : d;
      if (acc.length >= MAGIC.length || !Buffer.from(MAGIC).subarray(0, acc.length).equals(acc)) {
        if (acc.subarray(0, MAGIC.length).toString('latin1') === MAGIC) {
          clearTimeout(idle);
          sock.removeAllListeners('data');
          onControl(sock, acc);
          return;
        }
      } else return; // could still become the magic
      if (onTest(sock, acc)) {
        clearTimeout(idle);
        return;
      }
      if (acc.length > MAX_SCAN) sock.destroy();
    });
  });

  // ---- UDP (QUIC) ----
  const udp = dgram.createSocket({ type: opts.host.includes(':') ? 'udp6' : 'udp4' });
  const onDatagram = (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    // match an existing session by peer first
    for (const s of sessions.values()) {
      if (
        s.req.proto === 'udp' &&
        s.udpPeer &&
        s.udpPeer.address === rinfo.address &&
        s.udpPeer.port === rinfo.port
      ) {
        s.upBytes += msg.length;
        return;
      }
    }
    // QUIC long header: flags(1) version(4) dcil(1) dcid scil(1) scid
    if (msg.length < 7 || (msg[0] & 0x80) === 0) return;
    const dcil = msg[5];
    if (dcil !== TOKEN_LEN || msg.length < 6 + dcil + 1) return;
    const dcid = msg.subarray(6, 6 + dcil).toString('hex');
    const s = sessions.get(dcid);
    if (!s || s.req.proto !== 'udp' || s.matchedAt) return;
    const scil = msg[6 + dcil];
    s.udpScid = Buffer.from(msg.subarray(7 + dcil, 7 + dcil + Math.min(scil, 20)));
    s.matchedAt = Date.now();
    s.udpPeer = rinfo;
    s.upBytes = msg.length;
    send(s.ctl, { op: 'matched', by: 'dcid', peer: `${rinfo.address}:${rinfo.port}`, offset: msg.length });
    startSampling(s);
    // paced download: short-header look-alike datagrams carrying a sequence number
    const size = s.req.udp_size ?? 1200;
    const rate = s.req.udp_rate_bps ?? 2_000_000;
    const tickMs = 5;
    // credit from elapsed time, not per tick, so a busy event loop does not lower the rate
    let credit = size;
    let last = performance.now();
    let seq = 0;
    const dg = Buffer.alloc(size);
    randomBytes(size).copy(dg);
    const iv = setInterval(() => {
      if (s.done || s.downSent >= s.req.down || Date.now() - s.matchedAt > s.req.window_ms) {
        clearInterval(iv);
        return;
      }
      const now = performance.now();
      credit = Math.min(credit + ((rate / 8) * (now - last)) / 1000, 16 * size);
      last = now;
      while (credit >= size && s.downSent < s.req.down) {
        credit -= size;
        dg[0] = 0x40 | (seq & 0x3f);
        (s.udpScid ?? Buffer.alloc(0)).copy(dg, 1);
        dg.writeUInt32BE(seq >>> 0, 1 + (s.udpScid?.length ?? 0));
        seq++;
        s.downSent += size;
        s.downDatagrams++;
        udp.send(dg, rinfo.port, rinfo.address);
      }
    }, tickMs);
    s.timers.push(iv);
  };
  udp.on('message', onDatagram);
  udp.on('error', (e) => log(`udp error: ${e.message}`));

  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(opts.port, opts.host, () => resolve());
  });
  const port = (tcp.address() as net.AddressInfo).port;
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(port, opts.host, () => resolve());
  });
  log(`probe-server listening on ${opts.host}:${port} (tcp+udp)`);

  return {
    address: { host: opts.host, port },
    sessions: () => sessions.size,
    close: async () => {
      for (const s of [...sessions.values()]) await finish(s, 'shutdown');
      for (const sock of sockets) sock.destroy();
      await new Promise<void>((r) => tcp.close(() => r()));
      await new Promise<void>((r) => udp.close(() => r()));
    },
  };
}
