/**
 * @module probe/protocol
 * The side channel between `chokepoint probe` and `chokepoint probe-server` (docs/PROBE.md).
 *
 * The probe and the server share one port. A control connection starts with the magic line
 * `CPPROBE1 ` followed by a JSON {@link SessionRequest} and `\n`; the server answers with JSON
 * lines. A test connection (TCP) or test datagram (UDP) carries only the trigger the case needs;
 * the server ties it to its session by a 16-byte token the probe hides in the trigger: inside the
 * ClientHello (`random` and `legacy_session_id`, written four times), in junk bytes, or as the QUIC
 * Destination Connection ID. The server never sends before it has seen the token, so the first
 * byte on the wire in the download direction is always the server's answer to the trigger.
 *
 * Lifecycle: probe → `CPPROBE1 {"op":"session",...}`; server → `{"op":"ready"}`; the probe opens
 * the test connection and sends the trigger; server → `{"op":"matched",...}` when it sees the token;
 * once the whole trigger (`trigger_bytes`) has arrived it starts the download (TLS application-data records of random bytes, or UDP datagrams paced at
 * `udp_rate_bps`); server → `{"op":"up_done"}` once the requested upload arrived; probe → `{"op":"end"}` when its window is over; server → `{"op":"result",...}`
 * (what it saw: upload timeline, bytes sent, TCP retransmissions) and closes both connections.
 * Idle-timeout probes add `idle_ms` to the session and, after staying silent that long, send
 * `{"op":"again"}`: the server then sends `down` bytes once more on the same test connection.
 */

export const MAGIC = 'CPPROBE1 ';
export const TOKEN_LEN = 16;

export interface SessionRequest {
  op: 'session';
  /** 32 hex digits. */
  token: string;
  proto: 'tcp' | 'udp';
  /** Bytes the server sends after the trigger (cap). */
  down: number;
  /** Upload bytes the probe will send after the trigger (0: none); the server says `up_done` when all arrived. */
  up: number;
  /** TCP: total bytes of the trigger (all its writes); the server starts the download only once it
   *  has received that many bytes on the test connection, so a multi-write trigger is complete
   *  before any answer flows (0 = start at the match). */
  trigger_bytes?: number;
  /** Idle-timeout probes: the probe will stay silent this long, then send `{"op":"again"}` to get a
   *  second download on the same connection (extends the session's life accordingly). */
  idle_ms?: number;
  /** Server-side limit on the session's life (ms) after the match. */
  window_ms: number;
  /** UDP only: pacing of the server's datagrams (bit/s) and their size (bytes). */
  udp_rate_bps?: number;
  udp_size?: number;
}

export interface MatchedMsg {
  op: 'matched';
  /** How the server found the session: the token in the stream, or in the QUIC DCID. */
  by: 'token' | 'dcid';
  /** Source address:port of the test connection as the server saw it (NAT evidence). */
  peer: string;
  /** Bytes the server had received on the test connection when the token matched. */
  offset: number;
}

export interface ResultMsg {
  op: 'result';
  trigger_seen: boolean;
  /** Bytes (TCP) or datagram payload bytes (UDP) the server sent in the download direction. */
  down_sent: number;
  /** UDP: datagrams sent. */
  down_datagrams?: number;
  /** Bytes received after the match (upload), and the cumulative timeline [ms since match, bytes]. */
  up_bytes: number;
  up_timeline: [number, number][];
  /** TCP: retransmitted segments / segments sent by the server (from `ss -ti`), null when unknown. */
  retrans: number | null;
  segs_out: number | null;
  /** How the test connection ended on the server side. */
  end: 'open' | 'fin' | 'reset' | 'error' | 'none';
}

export interface ErrorMsg {
  op: 'error';
  message: string;
}

/** All `up` bytes arrived; `ms` since the match. */
export interface UpDoneMsg {
  op: 'up_done';
  ms: number;
}

export type ServerMsg = { op: 'ready' } | MatchedMsg | UpDoneMsg | ResultMsg | ErrorMsg;

/** Validate a session request from the wire; returns an error string or null. */
export function checkSessionRequest(x: unknown): string | null {
  if (typeof x !== 'object' || x === null) return 'not an object';
  const r = x as Record<string, unknown>;
  if (r.op !== 'session') return 'op must be "session"';
  if (typeof r.token !== 'string' || !/^[0-9a-f]{32}$/.test(r.token)) return 'token must be 32 hex digits';
  if (r.proto !== 'tcp' && r.proto !== 'udp') return 'proto must be tcp or udp';
  if (!Number.isInteger(r.down) || (r.down as number) < 0 || (r.down as number) > 1 << 30) return 'bad down';
  if (!Number.isInteger(r.up) || (r.up as number) < 0 || (r.up as number) > 1 << 30) return 'bad up';
  if (!Number.isInteger(r.window_ms) || (r.window_ms as number) < 100 || (r.window_ms as number) > 600_000)
    return 'window_ms must be 100..600000';
  if (
    r.trigger_bytes !== undefined &&
    (!Number.isInteger(r.trigger_bytes) ||
      (r.trigger_bytes as number) < 0 ||
      (r.trigger_bytes as number) > 65536)
  )
    return 'bad trigger_bytes';
  if (
    r.idle_ms !== undefined &&
    (!Number.isInteger(r.idle_ms) || (r.idle_ms as number) < 0 || (r.idle_ms as number) > 3_600_000)
  )
    return 'idle_ms must be 0..3600000';
  if (
    r.udp_rate_bps !== undefined &&
    (!Number.isFinite(r.udp_rate_bps) || (r.udp_rate_bps as number) <= 0 || (r.udp_rate_bps as number) > 1e9)
  )
    return 'bad udp_rate_bps';
  if (
    r.udp_size !== undefined &&
    (!Number.isInteger(r.udp_size) || (r.udp_size as number) < 64 || (r.udp_size as number) > 1452)
  )
    return 'bad udp_size';
  return null;
}
