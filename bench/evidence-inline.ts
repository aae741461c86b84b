/**
 * @module bench/evidence-inline
 * `npm run bench:evidence-inline`: the box's decision core (enforce/enforcer, real engine, real
 * compiled policy, real ClientHellos from Node's TLS client) fed the same prebuilt packets with and
 * without an evidence writer (`enforce --evidence`), alternating, in one run. Prints packets/s of
 * each and the ratio (evidence / none). A third of the connections is blocked, a third throttled
 * (20 more client packets each, policed), a third allowed.
 *
 * Options: --conns N (default 20000), --rounds R (3), --allowed-only (every connection allowed: the
 * cost of holding packets until a verdict that frees them).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { compilePolicy, parsePolicy } from '../src/policy/index.js';
import { Enforcer } from '../src/enforce/enforcer.js';
import { newCounters } from '../src/enforce/counters.js';
import type { NfPacket } from '../src/enforce/nfq.js';
import { captureClientHello } from '../src/enforce/testing/ch-client.js';
import { Conv } from '../src/enforce/testing/packets.js';
import { EvidenceWriter } from '../src/output/evidence.js';
import type { Flow } from '../src/flow/flow.js';

const { values } = parseArgs({
  options: {
    conns: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '3' },
    'allowed-only': { type: 'boolean', default: false },
  },
});
const CONNS = Number(values.conns);
const ROUNDS = Number(values.rounds);
/** Every connection allowed: what evidence costs when there is nothing to write (held, then freed). */
const ALLOWED_ONLY = values['allowed-only'];

const POLICY = `version: 1
default: allow
rules:
  - id: b
    action: block
    match: { host: { exact: [blocked.example] } }
  - id: t
    action: throttle
    rate: 8kbit
    burst: 3000
    match: { host: { exact: [slow.example] } }
`;

async function main(): Promise<void> {
  const policy = compilePolicy(await parsePolicy(POLICY, 'bench.yaml'));
  const ch = [
    await captureClientHello('blocked.example'),
    await captureClientHello('slow.example'),
    await captureClientHello('fine.example'),
  ];
  const data = new Uint8Array(100).fill(0x61);
  const pkts: Uint8Array[] = [];
  for (let i = 0; i < CONNS; i++) {
    const kind = ALLOWED_ONLY ? 2 : i % 3;
    const c = new Conv(1024 + (i % 60000), [10, 1 + ((i / 60000) | 0), (i >> 8) & 255, i & 255] as [
      number,
      number,
      number,
      number,
    ]);
    pkts.push(c.syn(), c.synAck(), c.ack(), c.c(ch[kind]));
    if (kind === 1) for (let k = 0; k < 20; k++) pkts.push(c.c(data));
  }
  const run = (withEvidence: boolean): { pps: number; files: number } => {
    const dir = mkdtempSync(join(tmpdir(), 'cp-bench-ev-'));
    const ev = withEvidence ? new EvidenceWriter<Flow>({ dir, prefix: 'q0-' }) : null;
    const enf = new Enforcer({
      queue: 0,
      sink: { verdict: () => {} },
      policy,
      markMask: 0x00ff0000,
      throttle: 'userspace',
      counters: newCounters(),
      rstToServer: false,
      evidence: ev,
    });
    const p: NfPacket = { id: 0, mark: 0, hwProtocol: 0x0800, hook: 2, payload: pkts[0] };
    const t0 = process.hrtime.bigint();
    let now = 1_700_000_000_000;
    for (let i = 0; i < pkts.length; i++) {
      p.id = i + 1;
      p.payload = pkts[i];
      enf.handle(p, now);
      if ((i & 255) === 0) now++;
    }
    ev?.close();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const files = ev?.stats.files ?? 0;
    rmSync(dir, { recursive: true, force: true });
    return { pps: pkts.length / s, files };
  };
  run(false); // warm-up
  run(true);
  const none: number[] = [];
  const withEv: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    none.push(run(false).pps);
    withEv.push(run(true).pps);
  }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
  const a = med(none);
  const b = med(withEv);
  console.log(
    `${pkts.length} packets, ${CONNS} connections (${ALLOWED_ONLY ? 'all allowed' : '1/3 blocked, 1/3 throttled, 1/3 allowed'}), median of ${ROUNDS}`,
  );
  console.log(`no evidence:   ${(a / 1e3).toFixed(0)} kpkt/s`);
  console.log(`--evidence:    ${(b / 1e3).toFixed(0)} kpkt/s   ratio ${(b / a).toFixed(2)}`);
}

await main();
