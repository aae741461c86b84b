/**
 * @module probe/triggers
 * The bytes a test connection sends first: the plain ClientHello and one variant per evasion
 * technique of the matrix (docs/PROBE.md lists each with what it tests). A trigger is a list of
 * writes, sent with a pause between them so each leaves as its own TCP segment (Nagle off), and
 * an optional `reorder` flag: the first data segment is held back by the kernel (see
 * probe/reorder) so the second reaches the path first.
 */
import { randomBytes } from 'node:crypto';
import { buildHello, sniOffset, toRecords, toTwoRecords } from './clienthello.js';

export interface Trigger {
  /** Each element is written separately (its own segment). */
  writes: Uint8Array[];
  /** Hold back the first data segment so the segments arrive out of order. */
  reorder?: boolean;
  /** The SNI actually sent (null: none). */
  sni: string | null;
}

export interface Technique {
  id: string;
  description: string;
  build(
    name: string,
    token: Uint8Array,
    ctx: { control: string; serverHost: string; serverPort: number },
  ): Trigger;
}

const recordOffset = 5; // TLS record header before the handshake message

function plain(name: string | null, token: Uint8Array, padTo?: number): Uint8Array {
  return toRecords(buildHello({ sni: name, token, padTo }));
}

/** Split the record at byte `at` into two writes. */
function splitAt(rec: Uint8Array, at: number): Uint8Array[] {
  const cut = Math.max(1, Math.min(rec.length - 1, at));
  return [rec.subarray(0, cut), rec.subarray(cut)];
}

/** Record offset of the middle of the name (falls back to the middle of the record). */
function nameMiddle(rec: Uint8Array, name: string): number {
  const i = Buffer.from(rec).indexOf(Buffer.from(name, 'latin1'));
  return i >= 0 ? i + Math.max(1, Math.floor(name.length / 2)) : Math.floor(rec.length / 2);
}

function mixCase(name: string): string {
  let out = '';
  let up = true;
  for (const ch of name) {
    if (/[a-z]/i.test(ch)) {
      out += up ? ch.toUpperCase() : ch.toLowerCase();
      up = !up;
    } else out += ch;
  }
  return out;
}

/** A name of the same shape (length, dots) with scrambled letters: the "scrambled trigger". */
export function scrambleName(name: string): string {
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const rnd = randomBytes(name.length);
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    out += c === '.' || c === '-' ? c : letters[rnd[i] % 26];
  }
  if (out === name) return scrambleName(name);
  return out;
}

export const PLAIN: Technique = {
  id: 'plain',
  description: 'the ClientHello in one TLS record, one segment',
  build: (name, token) => ({ writes: [plain(name, token)], sni: name }),
};

export const TECHNIQUES: Technique[] = [
  {
    id: 'split-1',
    description: 'ClientHello split across two TCP segments after byte 1',
    build: (name, token) => ({ writes: splitAt(plain(name, token), 1), sni: name }),
  },
  {
    id: 'split-5',
    description: 'ClientHello split after the 5-byte record header',
    build: (name, token) => ({ writes: splitAt(plain(name, token), 5), sni: name }),
  },
  {
    id: 'split-name',
    description: 'ClientHello split across two TCP segments in the middle of the server name',
    build: (name, token) => {
      const rec = plain(name, token);
      return { writes: splitAt(rec, nameMiddle(rec, name)), sni: name };
    },
  },
  {
    id: 'split-out-of-order',
    description: 'split in the middle of the name, second segment sent first (needs reordering)',
    build: (name, token) => {
      const rec = plain(name, token);
      return { writes: splitAt(rec, nameMiddle(rec, name)), reorder: true, sni: name };
    },
  },
  {
    id: 'tls-record-frag',
    description: 'handshake fragmented into two TLS records (cut inside the name), one segment',
    build: (name, token) => {
      const hs = buildHello({ sni: name, token });
      const off = sniOffset(hs, name);
      const at = off >= 0 ? off + Math.max(1, Math.floor(name.length / 2)) : Math.floor(hs.length / 2);
      return { writes: [toTwoRecords(hs, at)], sni: name };
    },
  },
  {
    id: 'padding',
    description: 'ClientHello padded to 2000 bytes: one write, the record spans two segments',
    build: (name, token) => ({ writes: [plain(name, token, 2000)], sni: name }),
  },
  {
    id: 'junk-first',
    description: 'a 120-byte non-TLS junk packet first, then the ClientHello',
    build: (name, token) => {
      const junk = randomBytes(120);
      junk[0] = 0x99; // not a TLS/HTTP/SOCKS first byte
      Buffer.from(token).copy(junk, 40);
      return { writes: [junk, plain(name, token)], sni: name };
    },
  },
  {
    id: 'ccs-first',
    description: 'a ChangeCipherSpec record before the ClientHello in the same segment',
    build: (name, token) => {
      const ccs = Uint8Array.from([0x14, 0x03, 0x03, 0x00, 0x01, 0x01]);
      return { writes: [Buffer.concat([ccs, plain(name, token)])], sni: name };
    },
  },
  {
    id: 'fake-hello-first',
    description: 'one fake ClientHello (control name) first, then the real one',
    build: (name, token, ctx) => ({ writes: [plain(ctx.control, token), plain(name, token)], sni: name }),
  },
  {
    id: 'connect-preamble',
    description: 'an HTTP CONNECT preamble (to the server address) first, then the ClientHello',
    build: (name, token, ctx) => {
      const hp = ctx.serverHost.includes(':')
        ? `[${ctx.serverHost}]:${ctx.serverPort}`
        : `${ctx.serverHost}:${ctx.serverPort}`;
      const pre = Buffer.from(`CONNECT ${hp} HTTP/1.1\r\nHost: ${hp}\r\n\r\n`, 'latin1');
      return { writes: [pre, plain(name, token)], sni: name };
    },
  },
  {
    id: 'trailing-dot',
    description: 'server name with a trailing dot',
    build: (name, token) => ({ writes: [plain(name + '.', token)], sni: name + '.' }),
  },
  {
    id: 'case-change',
    description: 'server name in mixed case',
    build: (name, token) => {
      const n = mixCase(name);
      return { writes: [plain(n, token)], sni: n };
    },
  },
  {
    id: 'no-sni',
    description: 'ClientHello without the server_name extension',
    build: (_name, token) => ({ writes: [plain(null, token)], sni: null }),
  },
];

export function techniqueById(id: string): Technique | undefined {
  return id === 'plain' ? PLAIN : TECHNIQUES.find((t) => t.id === id);
}

export { recordOffset };
