/**
 * @module enforce/bareack.test
 * The bare-ACK skip in the lab (root, real kernel, real ClientHellos), IPv4 and IPv6: a TCP segment
 * without payload of a connection still undecided (the handshake's third packet; the server's ACK
 * of the first part of a split ClientHello) is carried by the kernel (`<chain>-U`'s `u32` RETURN
 * rules count it) and never reaches userspace (the queue's packet counter grows by the SYN and the
 * ClientHello segments only), while the connection is still named and enforced (EVE verdict with
 * its name; reset for a blocked name, data for an allowed one). And the batched data path
 * (enforce/nfq): packets waiting together are taken by one read and their verdicts leave in one send.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  chClient,
  waitEve,
  setupInlineLab,
  type Enforce,
  type InlineLab,
  BLOCK_RST_POLICY,
} from './testing/harness.js';
import { undecidedChain } from './rules.js';
import { isRoot, need } from '../testutil/require.js';

const POLICY = BLOCK_RST_POLICY;

const SKIP = need(isRoot(), 'needs root (network namespaces, iptables, NFQUEUE)');

describe(
  'bare ACKs of undecided connections stay in the kernel (lab)',
  { skip: SKIP, timeout: 120_000 },
  () => {
    let il: InlineLab;
    let enf: Enforce;
    let metricsPort = 0;

    before(async () => {
      il = await setupInlineLab(`cpk${process.pid % 100000}`, POLICY);
      metricsPort = 20000 + ((process.pid + 7) % 20000);
      enf = await il.startEnforce(['--metrics', `127.0.0.1:${metricsPort}`]);
    });
    after(async () => {
      await enf?.stop();
      await il?.close();
    });

    /** Packets the queue's worker has seen (its shared counter, through /metrics). */
    /** A per-queue counter of the worker (shared memory, through /metrics). */
    async function metric(name: string): Promise<number> {
      const m = await il.lab.exec('box', ['curl', '-s', `http://127.0.0.1:${metricsPort}/metrics`]);
      const v = new RegExp(`${name}\\{queue="\\d+"\\} (\\d+)`).exec(m.stdout);
      assert.ok(v, `${name} in /metrics`);
      return Number(v[1]);
    }
    const queued = (): Promise<number> => metric('chokepoint_packets_total');

    /** Packets the bare-ACK RETURN rules of the undecided sub-chain matched (one family). */
    async function skipped(v6: boolean): Promise<number> {
      const bin = v6 ? 'ip6tables' : 'iptables';
      const r = await il.lab.exec(
        'box',
        [bin, '-w', '-t', 'mangle', '-L', undecidedChain(il.chain), '-v', '-x', '-n'],
        {
          check: true,
        },
      );
      let n = 0;
      for (const line of r.stdout.split('\n')) {
        const f = line.trim().split(/\s+/);
        if (f[2] === 'RETURN' && line.includes('u32')) n += Number(f[0]);
      }
      return n;
    }

    for (const v6 of [false, true]) {
      const fam = v6 ? 'IPv6' : 'IPv4';
      const host = (): string => (v6 ? il.lab.addr.net6 : il.server);

      it(`${fam}: the handshake ACK does not reach userspace; allowed and blocked names still decided`, async () => {
        for (const [sni, want, action] of [
          ['allowed.example', 'data', 'allow'],
          ['blocked-rst.example', 'reset', 'block'],
        ] as const) {
          const q0 = await queued();
          const a0 = await skipped(v6);
          const r = await chClient(il, sni, 'whole', undefined, 443, host());
          assert.equal(r.result, want, `${sni} over ${fam}`);
          const q1 = await queued();
          const a1 = await skipped(v6);
          // SYN (queued) + SYN-ACK (skipped) + ACK (skipped) + ClientHello (queued, decides)
          assert.equal(q1 - q0, 2, `${sni}: only the SYN and the ClientHello reached userspace`);
          assert.ok(a1 - a0 >= 1, `${sni}: the bare-ACK rule carried the handshake ACK (${a1 - a0})`);
          const ev = await waitEve(il, (l) => l.some((e) => e.host === sni && e.src_port === r.localPort));
          const e = ev.find((x) => x.host === sni && x.src_port === r.localPort) as
            { policy: { action: string }; dest_ip: string } | undefined;
          assert.ok(e, `EVE verdict names ${sni}`);
          assert.equal(e.policy.action, action);
          assert.equal(e.dest_ip.includes(':'), v6, `the ${fam} connection`);
        }
      });

      it(`${fam}: a split ClientHello — the server's ACK of the first part stays in the kernel too`, async () => {
        const q0 = await queued();
        const a0 = await skipped(v6);
        const r = await chClient(il, 'blocked-rst.example', 'split', '50', 443, host());
        assert.equal(r.result, 'reset');
        const q1 = await queued();
        const a1 = await skipped(v6);
        // SYN + first part (inspect mark) + second part (completes the name, gets the verdict)
        assert.equal(q1 - q0, 3, 'SYN and the two ClientHello segments only');
        assert.ok(a1 - a0 >= 2, `handshake ACK and the server's ACK of the first part (${a1 - a0})`);
        const ev = await waitEve(il, (l) => l.some((e) => e.src_port === r.localPort));
        const e = ev.find((x) => x.src_port === r.localPort) as
          { host: string; policy: { action: string }; verdict: { reason: string } } | undefined;
        assert.ok(e);
        assert.equal(e.host, 'blocked-rst.example');
        assert.equal(e.policy.action, 'block');
        assert.equal(e.verdict.reason, 'named');
      });
    }

    it('packets waiting together: one read takes them, their verdicts leave in one send', async () => {
      const n = 8;
      const p0 = await queued();
      const r0 = await metric('chokepoint_queue_reads_total');
      const s0 = await metric('chokepoint_queue_verdict_sends_total');
      const pid = enf.child.pid!;
      process.kill(pid, 'SIGSTOP');
      let clients: Promise<Array<{ result: string }>>;
      try {
        clients = Promise.all(Array.from({ length: n }, () => chClient(il, 'allowed.example', 'whole')));
        // until the kernel holds every SYN in the queue (the stopped worker reads nothing)
        let waiting = 0;
        for (let i = 0; i < 100 && waiting < n; i++) {
          const q = await il.lab.exec('box', ['cat', '/proc/net/netfilter/nfnetlink_queue']);
          const line = q.stdout.split('\n').find((l) => l.trim().split(/\s+/)[0] === String(il.queue));
          waiting = Number(line?.trim().split(/\s+/)[2] ?? 0);
        }
        assert.ok(waiting >= n, `${waiting} packets waiting in the queue`);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      const res = await clients;
      assert.deepEqual(
        res.map((x) => x.result),
        Array.from({ length: n }, () => 'data'),
      );
      const packets = (await queued()) - p0;
      const reads = (await metric('chokepoint_queue_reads_total')) - r0;
      const sends = (await metric('chokepoint_queue_verdict_sends_total')) - s0;
      assert.ok(packets >= 2 * n, `${packets} packets`);
      // the n SYNs came in one read and left in one send: at least n − 1 fewer than one per packet
      assert.ok(reads <= packets - (n - 1), `${reads} reads for ${packets} packets`);
      assert.ok(sends <= packets - (n - 1), `${sends} verdict sends for ${packets} packets`);
    });
  },
);
