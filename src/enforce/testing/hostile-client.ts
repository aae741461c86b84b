/**
 * @module enforce/testing/hostile-client
 * Hostile load for `npm run bench:hostile-inline`: `node hostile-client.js HOST PORT RATE DURATION_MS
 * CIPHERS EXTENSIONS SNI` opens RATE connections per second (paced, not bursts), each sends one crafted
 * ClientHello — CIPHERS cipher suites and EXTENSIONS empty extensions, both in descending order (the
 * worst case of an insertion sort, e.g. JA4's), plus server_name — and closes it after 300 ms
 * (reading whatever comes back). Prints JSON {sent, failed, chLen}.
 */
import net from 'node:net';

/** A ClientHello record (byte layout from RFC 8446 §4.1.2), with attacker-sized lists. */
export function craftedClientHello(sni: string, ciphers: number, extensions: number): Buffer {
  const name = Buffer.from(sni);
  const body: number[] = [];
  const u16 = (v: number): void => void body.push((v >> 8) & 255, v & 255);
  u16(0x0303); // legacy_version
  for (let i = 0; i < 32; i++) body.push((i * 53 + 7) & 255); // random
  body.push(0); // legacy_session_id
  u16(ciphers * 2);
  for (let i = 0; i < ciphers; i++) u16(0xfefe - i); // descending
  body.push(1, 0); // compression: null
  const extLenAt = body.length;
  u16(0);
  // server_name
  u16(0);
  u16(name.length + 5);
  u16(name.length + 3);
  body.push(0);
  u16(name.length);
  for (const b of name) body.push(b);
  // supported_versions: TLS 1.3, 1.2
  u16(0x002b);
  u16(5);
  body.push(4);
  u16(0x0304);
  u16(0x0303);
  for (let i = 0; i < extensions; i++) {
    u16(0xfdff - i); // unassigned types, descending
    u16(0);
  }
  const extLen = body.length - extLenAt - 2;
  body[extLenAt] = extLen >> 8;
  body[extLenAt + 1] = extLen & 255;
  const hs = [1, (body.length >> 16) & 255, (body.length >> 8) & 255, body.length & 255, ...body];
  return Buffer.from([22, 3, 1, hs.length >> 8, hs.length & 255, ...hs]);
}

async function main(): Promise<void> {
  const [host, portS, rateS, durS, ciphersS, extsS, sni] = process.argv.slice(2);
  const ch = craftedClientHello(sni, Number(ciphersS), Number(extsS));
  const rate = Number(rateS);
  const end = Date.now() + Number(durS);
  let sent = 0;
  let failed = 0;
  const open = new Set<Promise<void>>();
  const t0 = Date.now();
  for (let i = 0; Date.now() < end; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const p = new Promise<void>((resolve) => {
      const s = net.connect({ host, port: Number(portS), noDelay: true });
      const done = (): void => {
        clearTimeout(t);
        s.destroy();
        resolve();
      };
      const t = setTimeout(done, 300);
      s.once('connect', () => {
        s.write(ch);
        sent++;
        if (process.env.HOSTILE_PORTS) process.stderr.write(`${s.localPort}\n`);
      });
      s.on('data', () => {}); // the whole ClientHello is sent: closing early would spare the box its parse
      s.once('error', () => {
        failed++;
        done();
      });
    });
    open.add(p);
    void p.then(() => open.delete(p));
  }
  await Promise.all(open);
  process.stdout.write(JSON.stringify({ sent, failed, chLen: ch.length }) + '\n');
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  main().catch((e: Error) => {
    process.stderr.write(String(e.stack ?? e) + '\n');
    process.exitCode = 1;
  });
}
