/**
 * @module bench/live
 * `npm run bench:live [-- --packets 50000]` (root): the per-packet cost of live capture. In a network
 * namespace it creates (loopback only), the bench opens libpcap on `lo`, sends a burst of UDP datagrams
 * while not reading (the ring holds them), then drains the ring: (a) `LivePcap.next()` alone, (b)
 * `next()` + `Engine.packet`, each timed; the anchor is the same packets read from a pcap file through
 * `capture/reader` + `Engine.packet` in the same run. Prints packets/s and the ratio to the anchor.
 * This process re-executes itself inside the namespace; the namespace is deleted at the end.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import dgram from 'node:dgram';
import { LivePcap } from '../src/capture/pcap-live.js';
import { readCaptureFile } from '../src/capture/reader.js';
import { Engine } from '../src/engine/engine.js';
import { PcapWriter } from '../src/gen/pcap-writer.js';

const { values } = parseArgs({
  options: { packets: { type: 'string', default: '50000' }, inner: { type: 'boolean' } },
});
const N = Number(values.packets);

async function inner(): Promise<void> {
  spawnSync('ip', ['link', 'set', 'lo', 'up']);
  const rounds: { live: number; liveEngine: number; file: number }[] = [];
  for (let round = 0; round < 5; round++) {
    for (const mode of ['next', 'engine'] as const) {
      const cap = new LivePcap({
        iface: 'lo',
        filter: 'udp dst port 9999',
        bufferBytes: 128 << 20,
        timeoutMs: 10,
      });
      const rx = dgram.createSocket('udp4');
      rx.on('message', () => {});
      await new Promise<void>((r) => rx.bind(9999, '127.0.0.1', () => r()));
      const tx = dgram.createSocket('udp4');
      const payload = Buffer.alloc(200, 0x61);
      for (let i = 0; i < N; i++) {
        await new Promise<void>((r) => tx.send(payload, 9999, '127.0.0.1', () => r()));
      }
      tx.close();
      rx.close();
      await new Promise((r) => setTimeout(r, 100)); // the last ring block retires
      const dir = mkdtempSync(join(tmpdir(), 'bench-live-'));
      const file = join(dir, 'burst.pcap');
      let got = 0;
      let secs: number;
      if (mode === 'next') {
        const t0 = process.hrtime.bigint();
        while (cap.next()) got++;
        secs = Number(process.hrtime.bigint() - t0) / 1e9;
      } else {
        const e = new Engine();
        const t0 = process.hrtime.bigint();
        while (cap.next()) {
          got++;
          e.packet(cap.buf, cap.linktype, cap.tsMs, cap.wirelen, cap.off, cap.off + cap.caplen);
        }
        secs = Number(process.hrtime.bigint() - t0) / 1e9;
        e.flush();
      }
      const k = cap.counters();
      cap.close();
      if (k.dropped > 0) console.error(`warning: ${k.dropped} dropped by the kernel`);
      if (mode === 'next') rounds.push({ live: got / secs, liveEngine: 0, file: 0 });
      else {
        rounds[rounds.length - 1].liveEngine = got / secs;
        // anchor: synthesize the same burst as a file (same sizes/link type) and read it back
        const fd = openSync(file, 'w');
        const w = new PcapWriter(fd, 1);
        const frame = Buffer.alloc(14 + 20 + 8 + 200);
        frame.writeUInt16BE(0x0800, 12);
        frame[14] = 0x45;
        frame.writeUInt16BE(228, 16);
        frame[22] = 64;
        frame[23] = 17;
        frame.set([127, 0, 0, 1, 127, 0, 0, 1], 26);
        frame.writeUInt16BE(40000, 34);
        frame.writeUInt16BE(9999, 36);
        frame.writeUInt16BE(208, 38);
        for (let i = 0; i < got; i++) w.write(frame, 1_700_000_000_000_000 + i);
        w.flush();
        closeSync(fd);
        const e = new Engine();
        const t0 = process.hrtime.bigint();
        const st = readCaptureFile(file, {
          packet: (b, off, end, lt, ts, orig) => void e.packet(b, lt, ts, orig, off, end),
        });
        const fsecs = Number(process.hrtime.bigint() - t0) / 1e9;
        rounds[rounds.length - 1].file = st.packets / fsecs;
      }
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const live = med(rounds.map((r) => r.live));
  const liveEngine = med(rounds.map((r) => r.liveEngine));
  const file = med(rounds.map((r) => r.file));
  // each round's live and file runs are back to back: the ratio per round, then its median, is what
  // survives a shared, loaded machine best
  const ratio = med(rounds.map((r) => r.liveEngine / r.file));
  const f = (x: number) => `${(x / 1000).toFixed(0)}k pkt/s`;
  console.log(`live capture, ${N} UDP datagrams of 200 bytes drained from the ring (medians of 5 rounds)`);
  console.log(`  libpcap next() only            ${f(live).padStart(14)}`);
  console.log(
    `  next() + Engine.packet         ${f(liveEngine).padStart(14)}   ${ratio.toFixed(2)}× the file path (median of per-round ratios)`,
  );
  console.log(`  anchor: file reader + Engine   ${f(file).padStart(14)}`);
  console.log(
    `  per round (live+engine / file): ${rounds.map((r) => (r.liveEngine / r.file).toFixed(2)).join(' ')}`,
  );
}

if (values.inner) {
  await inner();
} else {
  const ns = `cpbench${process.pid % 100000}`;
  spawnSync('ip', ['netns', 'add', ns], { stdio: 'inherit' });
  try {
    const r = spawnSync(
      'ip',
      ['netns', 'exec', ns, process.execPath, process.argv[1], '--inner', '--packets', String(N)],
      {
        stdio: 'inherit',
        timeout: 600_000,
      },
    );
    process.exitCode = r.status ?? 1;
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}
