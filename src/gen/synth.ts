/**
 * @module gen/synth
 * Synthetic captures with ground truth: many interleaved flows (TLS mostly, QUIC, DNS, HTTP), IPv4/IPv6,
 * VLAN/QinQ, heavy-tailed (Pareto) response sizes, and the hard cases of naming: ClientHellos split
 * across TCP segments, sent out of order, fragmented across TLS records, post-quantum hellos spanning two
 * segments, QUIC ClientHellos spanning two Initial packets (in either order). Deterministic per seed.
 */
import { buildClientHello, wrapRecords } from './clienthello.js';
import { buildQuicInitials } from './quic-initial.js';
import { tcpFrame, udpFrame, type Endpoint, type FrameOptions } from './frames.js';
import type { PcapWriter } from './pcap-writer.js';

export interface TruthRow {
  proto: 'TCP' | 'UDP';
  src_ip: string;
  src_port: number;
  dest_ip: string;
  dest_port: number;
  app_proto: string;
  host: string | null;
  scenario: string;
}

export interface SynthOptions {
  seed?: number;
  /** Number of flows (ignored when targetBytes is set). */
  flows?: number;
  /** Keep adding flows until this many capture bytes were written. */
  targetBytes?: number;
  /** Flows in progress at once (interleaving). */
  concurrency?: number;
  /** Share of TLS flows among all (default 0.75). */
  tlsShare?: number;
  /** Names to draw from first (e.g. policy targets); random names otherwise. */
  names?: string[];
  startUs?: number;
  /** Mean response size in bytes for the Pareto draw's scale (default 6000). */
  sizeScale?: number;
}

export function rng(seed: number): () => number {
  let a = seed >>> 0 || 0x9e3779b9;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Random DNS-shaped names drawn from `rnd`: `label(min, max)` is one label (a letter, then letters
 * and digits), `randomName()` is one or two labels of 4–14 characters under a common TLD. Used by
 * the policy and controller benchmarks; the same seed gives the same names.
 */
export function nameGen(rnd: () => number): {
  label(min: number, max: number): string;
  randomName(): string;
} {
  const ALPHA = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const TLDS = ['com', 'ru', 'net', 'org', 'info', 'xyz', 'io', 'de', 'su', 'online'];
  function label(min: number, max: number): string {
    const n = min + Math.floor(rnd() * (max - min + 1));
    let s = '';
    for (let i = 0; i < n; i++) s += ALPHA[Math.floor(rnd() * (i === 0 ? 26 : 36))];
    return s;
  }
  function randomName(): string {
    const parts = 1 + Math.floor(rnd() * 2);
    let s = TLDS[Math.floor(rnd() * TLDS.length)];
    for (let i = 0; i < parts; i++) s = `${label(4, 14)}.${s}`;
    return s;
  }
  return { label, randomName };
}

const WORDS = [
  'alpha',
  'media',
  'cdn',
  'shop',
  'news',
  'mail',
  'cloud',
  'static',
  'api',
  'img',
  'video',
  'chat',
  'maps',
  'docs',
  'play',
];
const TLDS = ['com', 'net', 'org', 'ru', 'io', 'de', 'co.uk'];
const MSS = 1448;
const FILL = (() => {
  const b = new Uint8Array(65536);
  let x = 12345;
  for (let i = 0; i < b.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
})();

type Frame = { frame: Uint8Array; dtUs: number };

interface Ctx {
  r: () => number;
  cli: Endpoint;
  srv: Endpoint;
  fo: FrameOptions;
  size: number;
}

const ACK = 0x10,
  SYN = 0x02,
  FIN = 0x01,
  PSH = 0x08;

function* tcpFlow(
  c: Ctx,
  clientPayloads: { seqOff: number; data: Uint8Array }[],
  clientTotal: number,
): Generator<Frame> {
  const { cli, srv, fo, r } = c;
  const cisn = (r() * 0xffffffff) >>> 0;
  const sisn = (r() * 0xffffffff) >>> 0;
  yield { frame: tcpFrame(cli, srv, { seq: cisn, ack: 0, flags: SYN }, true, fo), dtUs: 200 };
  yield { frame: tcpFrame(srv, cli, { seq: sisn, ack: cisn + 1, flags: SYN | ACK }, false, fo), dtUs: 20000 };
  yield { frame: tcpFrame(cli, srv, { seq: cisn + 1, ack: sisn + 1, flags: ACK }, true, fo), dtUs: 20000 };
  for (const p of clientPayloads) {
    yield {
      frame: tcpFrame(
        cli,
        srv,
        { seq: cisn + 1 + p.seqOff, ack: sisn + 1, flags: ACK | PSH, payload: p.data },
        true,
        fo,
      ),
      dtUs: 50,
    };
  }
  const cseq = cisn + 1 + clientTotal;
  let sent = 0;
  while (sent < c.size) {
    const n = Math.min(MSS, c.size - sent);
    const off = (sent * 7) & 0x7fff;
    yield {
      frame: tcpFrame(
        srv,
        cli,
        { seq: sisn + 1 + sent, ack: cseq, flags: ACK, payload: FILL.subarray(off, off + n) },
        false,
        fo,
      ),
      dtUs: 120,
    };
    sent += n;
    yield { frame: tcpFrame(cli, srv, { seq: cseq, ack: sisn + 1 + sent, flags: ACK }, true, fo), dtUs: 40 };
  }
  yield {
    frame: tcpFrame(cli, srv, { seq: cseq, ack: sisn + 1 + sent, flags: FIN | ACK }, true, fo),
    dtUs: 100,
  };
  yield {
    frame: tcpFrame(srv, cli, { seq: sisn + 1 + sent, ack: cseq + 1, flags: FIN | ACK }, false, fo),
    dtUs: 100,
  };
  yield {
    frame: tcpFrame(cli, srv, { seq: cseq + 1, ack: sisn + 2 + sent, flags: ACK }, true, fo),
    dtUs: 100,
  };
}

/** Cut `data` into segments at `cuts` (sorted offsets), optionally reordered. */
function segments(
  data: Uint8Array,
  cuts: number[],
  order: 'forward' | 'reverse' | 'shuffle',
  r: () => number,
) {
  const segs: { seqOff: number; data: Uint8Array }[] = [];
  let prev = 0;
  for (const c of [...cuts, data.length]) {
    if (c > prev) segs.push({ seqOff: prev, data: data.subarray(prev, c) });
    prev = c;
  }
  if (order === 'reverse') segs.reverse();
  else if (order === 'shuffle') {
    for (let i = segs.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [segs[i], segs[j]] = [segs[j], segs[i]];
    }
    if (segs.length > 1 && segs[0].seqOff === 0) segs.push(segs.shift()!);
  }
  return segs;
}

function mssCuts(len: number): number[] {
  const cuts: number[] = [];
  for (let o = MSS; o < len; o += MSS) cuts.push(o);
  return cuts;
}

function randomName(r: () => number): string {
  const w = WORDS[Math.floor(r() * WORDS.length)];
  const sub = r() < 0.5 ? WORDS[Math.floor(r() * WORDS.length)] + '.' : '';
  return `${sub}${w}${Math.floor(r() * 5000)}.${TLDS[Math.floor(r() * TLDS.length)]}`;
}

function pareto(r: () => number, scale: number, alpha = 1.2, cap = 8 << 20): number {
  const u = 1 - r();
  return Math.min(cap, Math.floor(scale / Math.pow(u, 1 / alpha)));
}

interface Made {
  truth: TruthRow;
  frames: Generator<Frame>;
}

function makeFlow(
  i: number,
  r: () => number,
  o: Required<Pick<SynthOptions, 'tlsShare' | 'sizeScale'>> & SynthOptions,
): Made {
  const v6 = r() < 0.25;
  const vr = r();
  const fo: FrameOptions = { vlan: vr < 0.05 ? [100 + (i % 50), 10] : vr < 0.2 ? [10 + (i % 100)] : [] };
  const cport = 1024 + ((i * 7919) % 60000);
  const cli: Endpoint = {
    ip: v6
      ? `2001:db8:1::${((i % 65000) + 1).toString(16)}`
      : `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${(i & 255) | 1}`,
    port: cport,
  };
  const sIdx = Math.floor(r() * 4000);
  const srvIp = v6 ? `2001:db8:ffff::${(sIdx + 1).toString(16)}` : `198.18.${sIdx >> 8}.${sIdx & 255}`;
  const name =
    o.names && o.names.length && r() < 0.5 ? o.names[Math.floor(r() * o.names.length)] : randomName(r);
  const size = pareto(r, o.sizeScale);
  const k = r();
  const tls = o.tlsShare;
  const rest = (1 - tls) / 3;
  if (k < tls) {
    const srv: Endpoint = { ip: srvIp, port: 443 };
    const variant = r();
    let scenario: string;
    let payload: Uint8Array;
    let segs: { seqOff: number; data: Uint8Array }[];
    let host: string | null = name;
    const alpn = ['h2', 'http/1.1'];
    if (variant < 0.45) {
      scenario = 'tls';
      payload = wrapRecords(buildClientHello({ sni: name, alpn }));
      segs = segments(payload, mssCuts(payload.length), 'forward', r);
    } else if (variant < 0.6) {
      scenario = 'tls-pq';
      payload = wrapRecords(buildClientHello({ sni: name, alpn, pqKeyShare: true, grease: true }));
      segs = segments(payload, mssCuts(payload.length), 'forward', r);
    } else if (variant < 0.72) {
      scenario = 'tls-split';
      payload = wrapRecords(buildClientHello({ sni: name, alpn }));
      const n = 1 + Math.floor(r() * 3);
      const cuts = [
        ...new Set(Array.from({ length: n }, () => 1 + Math.floor(r() * (payload.length - 1)))),
      ].sort((a, b) => a - b);
      segs = segments(payload, cuts, 'forward', r);
    } else if (variant < 0.84) {
      scenario = 'tls-ooo';
      payload = wrapRecords(buildClientHello({ sni: name, alpn, pqKeyShare: r() < 0.5 }));
      const cuts = [Math.floor(payload.length / 3), Math.floor((2 * payload.length) / 3)];
      segs = segments(payload, cuts, r() < 0.5 ? 'reverse' : 'shuffle', r);
    } else if (variant < 0.96) {
      scenario = 'tls-records';
      const frag = 16 + Math.floor(r() * 200);
      payload = wrapRecords(buildClientHello({ sni: name, alpn }), frag);
      segs = segments(payload, mssCuts(payload.length), 'forward', r);
    } else {
      scenario = 'tls-nosni';
      host = null;
      payload = wrapRecords(buildClientHello({ sni: null, alpn }));
      segs = segments(payload, mssCuts(payload.length), 'forward', r);
    }
    return {
      truth: {
        proto: 'TCP',
        src_ip: cli.ip,
        src_port: cport,
        dest_ip: srv.ip,
        dest_port: 443,
        app_proto: 'tls',
        host,
        scenario,
      },
      frames: tcpFlow({ r, cli, srv, fo, size }, segs, payload.length),
    };
  }
  if (k < tls + rest) {
    const srv: Endpoint = { ip: srvIp, port: 443 };
    const variant = r();
    const scenario = variant < 0.4 ? 'quic' : variant < 0.7 ? 'quic-2pkt' : 'quic-2pkt-rev';
    const hello = buildClientHello({ sni: name, alpn: ['h3'], pqKeyShare: scenario !== 'quic' });
    const dcid = Uint8Array.from({ length: 8 }, () => Math.floor(r() * 256));
    const scid = Uint8Array.from({ length: 8 }, () => Math.floor(r() * 256));
    const inits = buildQuicInitials({
      version: 1,
      dcid,
      scid,
      clientHello: hello,
      packets: scenario === 'quic' ? 1 : 2,
      reverse: scenario === 'quic-2pkt-rev',
    });
    function* q(): Generator<Frame> {
      for (const d of inits) yield { frame: udpFrame(cli, srv, d, true, fo), dtUs: 100 };
      let sent = 0;
      const total = Math.min(size, 2 << 20);
      while (sent < total) {
        const n = Math.min(1200, total - sent);
        const pl = FILL.subarray(sent & 0x7fff, (sent & 0x7fff) + n).slice();
        pl[0] = 0x40 | (pl[0] & 0x3f); // short header
        yield { frame: udpFrame(srv, cli, pl, false, fo), dtUs: 150 };
        sent += n;
        if ((sent / 1200) % 4 === 0) {
          const a = FILL.subarray(100, 140).slice();
          a[0] = 0x40 | (a[0] & 0x3f);
          yield { frame: udpFrame(cli, srv, a, true, fo), dtUs: 40 };
        }
      }
    }
    return {
      truth: {
        proto: 'UDP',
        src_ip: cli.ip,
        src_port: cport,
        dest_ip: srv.ip,
        dest_port: 443,
        app_proto: 'quic',
        host: name,
        scenario,
      },
      frames: q(),
    };
  }
  if (k < tls + 2 * rest) {
    const srv: Endpoint = { ip: v6 ? '2001:db8:53::53' : '198.18.53.53', port: 53 };
    const qtype = r() < 0.5 ? 1 : r() < 0.5 ? 28 : 65;
    const query = dnsQuery(name, qtype, Math.floor(r() * 65536));
    const resp = query.slice();
    resp[2] |= 0x80;
    function* d(): Generator<Frame> {
      yield { frame: udpFrame(cli, srv, query, true, fo), dtUs: 100 };
      yield { frame: udpFrame(srv, cli, resp, false, fo), dtUs: 5000 };
    }
    return {
      truth: {
        proto: 'UDP',
        src_ip: cli.ip,
        src_port: cport,
        dest_ip: srv.ip,
        dest_port: 53,
        app_proto: 'dns',
        host: name,
        scenario: 'dns',
      },
      frames: d(),
    };
  }
  const srv: Endpoint = { ip: srvIp, port: 80 };
  const req = new TextEncoder().encode(
    `GET /${Math.floor(r() * 1e6)} HTTP/1.1\r\nHost: ${name}\r\nUser-Agent: chokepoint-gen\r\nAccept: */*\r\n\r\n`,
  );
  return {
    truth: {
      proto: 'TCP',
      src_ip: cli.ip,
      src_port: cport,
      dest_ip: srv.ip,
      dest_port: 80,
      app_proto: 'http',
      host: name,
      scenario: 'http',
    },
    frames: tcpFlow({ r, cli, srv, fo, size }, [{ seqOff: 0, data: req }], req.length),
  };
}

/** A DNS query message (RD set, one question). */
export function dnsQuery(name: string, qtype: number, id: number): Uint8Array {
  const labels = name.split('.').filter(Boolean);
  const qlen = labels.reduce((a, l) => a + 1 + l.length, 1);
  const out = new Uint8Array(12 + qlen + 4);
  out[0] = id >> 8;
  out[1] = id & 255;
  out[2] = 0x01;
  out[5] = 1;
  let o = 12;
  for (const l of labels) {
    out[o++] = l.length;
    for (let i = 0; i < l.length; i++) out[o++] = l.charCodeAt(i);
  }
  out[o++] = 0;
  out[o++] = qtype >> 8;
  out[o++] = qtype & 255;
  out[o++] = 0;
  out[o] = 1;
  return out;
}

/** Generate a capture into `w`; returns the ground truth, one row per flow. */
export function generate(w: PcapWriter, opts: SynthOptions = {}): TruthRow[] {
  const o = { ...opts, tlsShare: opts.tlsShare ?? 0.75, sizeScale: opts.sizeScale ?? 6000 };
  const r = rng(o.seed ?? 1);
  const conc = o.concurrency ?? 32;
  const truth: TruthRow[] = [];
  const active: Generator<Frame>[] = [];
  let ts = o.startUs ?? 1_700_000_000_000_000;
  let made = 0;
  const more = () => (o.targetBytes !== undefined ? w.bytes < o.targetBytes : made < (o.flows ?? 100));
  for (;;) {
    while (active.length < conc && more()) {
      const m = makeFlow(made++, r, o);
      truth.push(m.truth);
      active.push(m.frames);
    }
    if (active.length === 0) break;
    const idx = Math.floor(r() * active.length);
    const it = active[idx].next();
    if (it.done) {
      active[idx] = active[active.length - 1];
      active.pop();
      continue;
    }
    ts += Math.max(1, Math.floor(it.value.dtUs / conc));
    w.write(it.value.frame, ts);
  }
  w.flush();
  return truth;
}
