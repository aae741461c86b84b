/**
 * @module gen/hostile
 * Hostile-input captures and their benign twins, for `npm run bench:hostile` and the engine's tests.
 * Each class is what an opponent sends to make a DPI engine slow, big or blind: ClientHellos in 1-, 3-
 * or 8-byte TCP segments (and a storm of tiny segments in reverse order), a ClientHello padded to the
 * 16 KiB record limit (RFC 7685), 5,000 cipher suites + 1,000 extensions in descending order, HTTP
 * heads with thousands of header lines, DNS names of maximal label count, QUIC Initials with hundreds
 * of tiny CRYPTO frames or many coalesced packets, IPv4 first-fragment floods and SYN floods.
 *
 * Every class has a benign twin with the same number of packets (the same flows, each carrying its
 * message the ordinary way, the rest of its packets as server data), so the bench can print the cost
 * ratio hostile / benign. Frames go to an `emit(frame, tsUs)` callback (a PcapWriter or an Engine).
 * Deterministic: no randomness but a counter.
 */
import { buildClientHello, wrapRecords } from './clienthello.js';
import { buildQuicInitials } from './quic-initial.js';
import { tcpFrame, udpFrame, type Endpoint } from './frames.js';
import { dnsQuery } from './synth.js';

export type Emit = (frame: Uint8Array, tsUs: number) => void;

export interface HostileClass {
  name: string;
  /** What the hostile capture is. */
  what: string;
  /** Write the hostile capture; returns the names a correct engine reports (one per named flow). */
  hostile(emit: Emit, scale: number): string[];
  /** Write the benign twin (same packet count); returns its names. */
  benign(emit: Emit, scale: number): string[];
}

const T0 = 1_700_000_000_000_000;
const MSS = 1448;

function cli(i: number): Endpoint {
  return { ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${(i & 255) | 1}`, port: 1024 + (i % 60000) };
}
function srv(port: number): Endpoint {
  return { ip: '192.168.200.1', port };
}

/** A clock that advances 10 µs per frame. */
function clock(): () => number {
  let t = T0;
  return () => (t += 10);
}

/**
 * One TCP flow: handshake, the client's `pieces` (offsets into `msg`, in the given order), then
 * `serverSegs` server data segments of `serverLen` bytes, then FIN/ACK both ways.
 */
function tcpFlow(
  emit: Emit,
  now: () => number,
  c: Endpoint,
  s: Endpoint,
  msg: Uint8Array,
  pieces: [number, number][],
  serverSegs: number,
  serverLen: number,
  close = true,
): void {
  const ci = 1000;
  const si = 5000;
  emit(tcpFrame(c, s, { seq: ci, ack: 0, flags: 0x02 }, true), now());
  emit(tcpFrame(s, c, { seq: si, ack: ci + 1, flags: 0x12 }, false), now());
  emit(tcpFrame(c, s, { seq: ci + 1, ack: si + 1, flags: 0x10 }, true), now());
  for (const [a, b] of pieces) {
    emit(
      tcpFrame(c, s, { seq: ci + 1 + a, ack: si + 1, flags: 0x18, payload: msg.subarray(a, b) }, true),
      now(),
    );
  }
  const body = new Uint8Array(serverLen).fill(0x5a);
  for (let k = 0; k < serverSegs; k++) {
    emit(
      tcpFrame(
        s,
        c,
        { seq: si + 1 + k * serverLen, ack: ci + 1 + msg.length, flags: 0x10, payload: body },
        false,
      ),
      now(),
    );
  }
  if (!close) return;
  emit(tcpFrame(c, s, { seq: ci + 1 + msg.length, ack: si + 1, flags: 0x11 }, true), now());
  emit(
    tcpFrame(s, c, { seq: si + 1 + serverSegs * serverLen, ack: ci + 2 + msg.length, flags: 0x11 }, false),
    now(),
  );
}

/** Pieces of `len` bytes in `size`-byte segments, in order (or reversed). */
function split(len: number, size: number, reverse = false): [number, number][] {
  const out: [number, number][] = [];
  for (let a = 0; a < len; a += size) out.push([a, Math.min(a + size, len)]);
  if (reverse) out.reverse();
  return out;
}

/**
 * A class of TCP flows: each carries `msg(i)` split by `seg` bytes (hostile) or in MSS segments with
 * the packet difference made up by server data segments of the same size (benign).
 */
function tcpClass(
  name: string,
  what: string,
  flows: number,
  port: number,
  msg: (i: number, hostile: boolean) => { bytes: Uint8Array; name: string },
  seg: number,
  reverse = false,
  close = true,
): HostileClass {
  const run = (hostile: boolean) => (emit: Emit, scale: number) => {
    const now = clock();
    const names: string[] = [];
    const n = Math.max(1, Math.round(flows * scale));
    for (let i = 0; i < n; i++) {
      const m = msg(i, hostile);
      const hp = split(hostile ? m.bytes.length : msg(i, true).bytes.length, seg, reverse);
      const bp = split(m.bytes.length, MSS);
      const pieces = hostile ? hp : bp;
      const extra = hostile ? 0 : Math.max(0, hp.length - bp.length);
      tcpFlow(emit, now, cli(i), srv(port), m.bytes, pieces, extra, Math.min(seg, MSS), close);
      names.push(m.name);
    }
    return names;
  };
  return { name, what, hostile: run(true), benign: run(false) };
}

function hello(i: number, extra: Parameters<typeof buildClientHello>[0] = {}): Uint8Array {
  return wrapRecords(
    buildClientHello({ sni: `h${i}.example.com`, alpn: ['h2', 'http/1.1'], grease: true, ...extra }),
  );
}

/** 5,000 cipher suites and 1,000 extensions, both in descending order (JA4's worst case for insertion). */
function bigLists(): { cipherSuites: number[]; extraExtensions: number[] } {
  const cipherSuites: number[] = [];
  for (let k = 0; k < 5000; k++) cipherSuites.push(0xfff0 - k * 3);
  const extraExtensions: number[] = [];
  for (let k = 0; k < 1000; k++) extraExtensions.push(0xfe00 - k * 7);
  return { cipherSuites, extraExtensions };
}

/**
 * The lists of {@link bigLists}, different in every hello: rotated by `i` (another wire order) and one
 * value made unique (another sorted set), so no memo of list hashes ever hits — the attacker who varies
 * the lists pays the full parse, sort and hash each time, and so do we.
 */
function variedLists(
  base: { cipherSuites: number[]; extraExtensions: number[] },
  i: number,
): { cipherSuites: number[]; extraExtensions: number[] } {
  const rot = <T>(l: T[], k: number): T[] => [...l.slice(k % l.length), ...l.slice(0, k % l.length)];
  const cipherSuites = rot(base.cipherSuites, i);
  cipherSuites[0] = 0x0100 + (i % 0xd000);
  const extraExtensions = rot(base.extraExtensions, i);
  extraExtensions[0] = 0x1000 + (i % 0xd000); // below the list's own range: never a duplicate type
  return { cipherSuites, extraExtensions };
}

/** An ALPN list of `n` three-character protocol names, all different (≈ 4 wire bytes each). */
function alpnList(n: number, i: number): string[] {
  const out: string[] = [];
  for (let k = 0; k < n; k++) out.push(`${(k % 1296).toString(36).padStart(2, '0')}${i % 10}`);
  return out;
}

function httpHead(i: number, headers: number): Uint8Array {
  let s = `GET /item/${i} HTTP/1.1\r\n`;
  for (let k = 0; k < headers; k++) s += `X-H${k}: v\r\n`;
  s += `Host: w${i}.example.org\r\nAccept: */*\r\n\r\n`;
  return Uint8Array.from(s, (ch) => ch.charCodeAt(0));
}

/** A DNS query for a name of near-maximal label count (121 labels, ≤ 255 wire bytes), escaped bytes in it. */
function longDnsName(i: number): { msg: Uint8Array; name: string } {
  const msg = new Uint8Array(12 + 300 + 4);
  msg[0] = i >> 8;
  msg[1] = i & 255;
  msg[2] = 0x01;
  msg[5] = 1;
  let o = 12;
  const labels: string[] = [];
  for (let k = 0; k < 120; k++) {
    const b = k % 5 === 0 ? 0x07 : 0x61 + (k % 26); // a control byte every 5th label: \007
    msg[o++] = 1;
    msg[o++] = b;
    labels.push(b === 0x07 ? '\\007' : String.fromCharCode(b));
  }
  const last = `n${i}`;
  msg[o++] = last.length;
  for (let k = 0; k < last.length; k++) msg[o++] = last.charCodeAt(k);
  labels.push(last);
  msg[o++] = 0;
  msg[o++] = 0;
  msg[o++] = 1;
  msg[o++] = 0;
  msg[o++] = 1;
  return { msg: msg.subarray(0, o), name: labels.join('.') };
}

function dnsClass(): HostileClass {
  const run = (hostile: boolean) => (emit: Emit, scale: number) => {
    const now = clock();
    const names: string[] = [];
    const n = Math.max(1, Math.round(20000 * scale));
    for (let i = 0; i < n; i++) {
      const c = cli(i);
      const s = srv(53);
      if (hostile) {
        const q = longDnsName(i);
        emit(udpFrame(c, s, q.msg, true), now());
        names.push(q.name);
      } else {
        const name = `q${i}.example.net`;
        emit(udpFrame(c, s, dnsQuery(name, 1, i & 0xffff), true), now());
        names.push(name);
      }
    }
    return names;
  };
  return {
    name: 'dns-long-names',
    what: 'DNS queries for ~250-byte names of 121 labels with escaped bytes (vs ordinary queries)',
    hostile: run(true),
    benign: run(false),
  };
}

function dcidOf(i: number): Uint8Array {
  return Uint8Array.of(0x83, 0x94, 0xc8, 0xf0, (i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255);
}

/** QUIC: hundreds of tiny CRYPTO frames in reverse order (hostile) vs one frame per packet (benign). */
function quicFramesClass(): HostileClass {
  const run = (hostile: boolean) => (emit: Emit, scale: number) => {
    const now = clock();
    const names: string[] = [];
    const n = Math.max(1, Math.round(2000 * scale));
    for (let i = 0; i < n; i++) {
      const name = `q${i}.example.com`;
      const ch = buildClientHello({ sni: name, alpn: ['h3'], grease: true });
      const dg = buildQuicInitials({
        dcid: dcidOf(i),
        clientHello: ch,
        packets: 2,
        cryptoFrameBytes: hostile ? 2 : undefined,
      });
      const c = cli(i);
      const s = srv(443);
      for (const d of dg) emit(udpFrame(c, s, d, true), now());
      names.push(name);
      // the benign twin's packet count is made up by server datagrams (same count as the hostile one's)
      if (!hostile) {
        const h = buildQuicInitials({ dcid: dcidOf(i), clientHello: ch, packets: 2, cryptoFrameBytes: 2 });
        for (let k = dg.length; k < h.length; k++)
          emit(udpFrame(s, c, new Uint8Array(1200).fill(0x40), false), now());
      }
    }
    return names;
  };
  return {
    name: 'quic-tiny-crypto',
    what: 'QUIC Initials whose ClientHello comes in 2-byte CRYPTO frames, last offset first (hundreds per packet)',
    hostile: run(true),
    benign: run(false),
  };
}

/** QUIC: datagrams of 8+ coalesced small Initial packets (hostile) vs one Initial per datagram. */
function quicCoalescedClass(): HostileClass {
  const run = (hostile: boolean) => (emit: Emit, scale: number) => {
    const now = clock();
    const names: string[] = [];
    const n = Math.max(1, Math.round(2000 * scale));
    for (let i = 0; i < n; i++) {
      const name = `c${i}.example.com`;
      const ch = buildClientHello({ sni: name, alpn: ['h3'], grease: true });
      const c = cli(i);
      const s = srv(443);
      if (hostile) {
        // the hello in 150-byte Initial packets, coalesced 8 per datagram, then 8 more bogus ones
        const pk = buildQuicInitials({ dcid: dcidOf(i), clientHello: ch, datagramSize: 150 });
        const bogus = buildQuicInitials({ dcid: dcidOf(i ^ 0x5555), clientHello: ch, datagramSize: 150 });
        for (let a = 0; a < pk.length; a += 8) {
          const parts = pk.slice(a, a + 8);
          const all = [...parts, ...bogus.slice(0, 16 - parts.length)];
          let len = 0;
          for (const p of all) len += p.length;
          const d = new Uint8Array(Math.max(1200, len));
          let o = 0;
          for (const p of all) {
            d.set(p, o);
            o += p.length;
          }
          emit(udpFrame(c, s, d, true), now());
        }
      } else {
        const dg = buildQuicInitials({ dcid: dcidOf(i), clientHello: ch });
        for (const d of dg) emit(udpFrame(c, s, d, true), now());
        const hp = Math.ceil(
          buildQuicInitials({ dcid: dcidOf(i), clientHello: ch, datagramSize: 150 }).length / 8,
        );
        for (let k = dg.length; k < hp; k++)
          emit(udpFrame(s, c, new Uint8Array(1200).fill(0x40), false), now());
      }
      names.push(name);
    }
    return names;
  };
  return {
    name: 'quic-coalesced',
    what: 'QUIC datagrams of 16 coalesced 150-byte Initial packets (8 carry the hello, 8 do not open)',
    hostile: run(true),
    benign: run(false),
  };
}

/** IPv4 first fragments with fresh IDs (hostile) vs as many whole UDP datagrams on one flow. */
function fragClass(): HostileClass {
  const run = (hostile: boolean) => (emit: Emit, scale: number) => {
    const now = clock();
    const n = Math.max(1, Math.round(200_000 * scale));
    const c: Endpoint = { ip: '10.9.0.1', port: 40000 };
    const s: Endpoint = { ip: '192.168.200.9', port: 9999 };
    const whole = udpFrame(c, s, new Uint8Array(64).fill(0x33), true);
    for (let i = 0; i < n; i++) {
      if (!hostile) {
        emit(whole, now());
        continue;
      }
      const f = whole.slice();
      // IPv4 header at 14: id = i, MF set, offset 0 (checksum is not checked by the engine)
      f[18] = (i >> 8) & 255;
      f[19] = i & 255;
      f[20] = 0x20;
      f[21] = 0;
      f[14 + 12] = 10;
      f[14 + 13] = 9;
      f[14 + 14] = (i >> 16) & 255; // fresh source too, like a spoofed flood
      emit(f, now());
    }
    return [];
  };
  return {
    name: 'frag-flood',
    what: '200,000 IPv4 first fragments (MF=1), each with a fresh ID, never completed (vs whole datagrams)',
    hostile: run(true),
    benign: run(false),
  };
}

/** SYNs from distinct source ports (hostile) vs the same number of packets in 1,000 ordinary flows. */
function synClass(): HostileClass {
  const run = (hostile: boolean) => (emit: Emit, scale: number) => {
    const now = clock();
    const n = Math.max(1, Math.round(500_000 * scale));
    const s = srv(443);
    if (hostile) {
      for (let i = 0; i < n; i++) {
        const c: Endpoint = { ip: `10.8.${(i >> 16) & 255}.1`, port: 1024 + ((i & 0xffff) % 64000) };
        emit(tcpFrame(c, s, { seq: i, ack: 0, flags: 0x02 }, true), now());
      }
      return [];
    }
    // the same packet count in ordinary short TLS connections (handshake, hello, one server segment, FINs)
    const names: string[] = [];
    const flows = Math.floor(n / 7);
    for (let i = 0; i < flows; i++) {
      const h = hello(i);
      tcpFlow(emit, now, cli(i), s, h, split(h.length, MSS), 1, 1000);
      names.push(`h${i}.example.com`);
    }
    const c = cli(flows + 1);
    for (let sent = flows * 7; sent < n; sent++)
      emit(tcpFrame(s, c, { seq: sent, ack: 1, flags: 0x10 }, false), now());
    return names;
  };
  return {
    name: 'syn-flood',
    what: '500,000 SYNs from distinct source ports (vs the same packet count in ~71,000 short TLS connections)',
    hostile: run(true),
    benign: run(false),
  };
}

/** Every hostile class of the bench, in table order. */
export function hostileClasses(): HostileClass[] {
  const lists = bigLists();
  return [
    tcpClass(
      'tls-seg-1',
      'ClientHello in 1-byte TCP segments',
      300,
      443,
      (i) => ({ bytes: hello(i), name: `h${i}.example.com` }),
      1,
    ),
    tcpClass(
      'tls-seg-3',
      'ClientHello in 3-byte TCP segments',
      600,
      443,
      (i) => ({ bytes: hello(i), name: `h${i}.example.com` }),
      3,
    ),
    tcpClass(
      'tls-seg-8',
      'ClientHello in 8-byte TCP segments',
      1500,
      443,
      (i) => ({ bytes: hello(i), name: `h${i}.example.com` }),
      8,
    ),
    tcpClass(
      'tls-ooo-storm',
      'ClientHello in 1-byte TCP segments, last byte first',
      300,
      443,
      (i) => ({ bytes: hello(i), name: `h${i}.example.com` }),
      1,
      true,
    ),
    tcpClass(
      'tls-padded-16k',
      'ClientHello padded to 16,000 bytes (RFC 7685) in 1448-byte segments (vs a plain hello)',
      3000,
      443,
      (i, hostile) => ({ bytes: hostile ? hello(i, { padTo: 16000 }) : hello(i), name: `h${i}.example.com` }),
      MSS,
    ),
    tcpClass(
      'tls-5000-ciphers',
      '5,000 cipher suites + 1,000 extensions, descending (vs a hello padded to the same size)',
      2000,
      443,
      (i, hostile) => {
        const h = hello(i, lists);
        return { bytes: hostile ? h : hello(i, { padTo: h.length - 5 }), name: `h${i}.example.com` };
      },
      MSS,
    ),
    tcpClass(
      'tls-5000-ciphers-varied',
      'the same, each hello with its own lists (rotated, one value unique): no memo helps',
      2000,
      443,
      (i, hostile) => {
        const h = hello(i, variedLists(lists, i));
        return { bytes: hostile ? h : hello(i, { padTo: h.length - 5 }), name: `h${i}.example.com` };
      },
      MSS,
    ),
    tcpClass(
      'http-many-headers',
      'HTTP request with 1,000 header lines (12 KB) before Host (vs a short request)',
      2000,
      80,
      (i, hostile) => ({ bytes: httpHead(i, hostile ? 1000 : 2), name: `w${i}.example.org` }),
      MSS,
    ),
    tcpClass(
      'tls-alpn-flood',
      'connections left open, each ClientHello with an ALPN list of 3,900 names (what a flow keeps; vs a hello padded to the same size)',
      3000,
      443,
      (i, hostile) => {
        const h = hello(i, { alpn: alpnList(3900, i) });
        return { bytes: hostile ? h : hello(i, { padTo: h.length - 5 }), name: `h${i}.example.com` };
      },
      MSS,
      false,
      false,
    ),
    dnsClass(),
    quicFramesClass(),
    quicCoalescedClass(),
    fragClass(),
    synClass(),
  ];
}
