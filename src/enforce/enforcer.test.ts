/**
 * @module enforce/enforcer.test
 * The verdict logic with the real engine and a real compiled policy, packets built by hand around a
 * real ClientHello; the sink records verdicts as the kernel would receive them.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy, compilePolicy } from '../policy/index.js';
import { Enforcer, verdictEvent } from './enforcer.js';
import { Engine } from '../engine/engine.js';
import { NF_ACCEPT, NF_DROP, type NfPacket } from './nfq.js';
import { newCounters, C } from './counters.js';
import {
  MARK_ALLOW,
  MARK_CLASS_BASE,
  MARK_DROP,
  MARK_INSPECT,
  MARK_POLICE,
  MARK_RST,
  markValue,
} from './rules.js';
import { captureClientHello, twoRecords } from './testing/ch-client.js';
import { Conv, RST } from './testing/packets.js';
import type { CompiledPolicy } from '../policy/types.js';
import type { VerdictEvent } from './types.js';

const MASK = 0x00ff0000;
const mk = (v: number): number => markValue(MASK, v);

async function policy(extra = ''): Promise<CompiledPolicy> {
  const text = `version: 1
default: allow
inspection:
  mode: normal
  hold_ms: 500
${extra}
rules:
  - id: b
    action: block
    match:
      host:
        exact: [blocked.example]
  - id: t
    action: throttle
    rate: 8kbit
    burst: 3000
    match:
      host:
        exact: [slow.example]
`;
  return compilePolicy(await parsePolicy(text, 'test.yaml'));
}

class Rig {
  verdicts: [number, number, number][] = [];
  events: VerdictEvent[] = [];
  id = 0;
  counters = newCounters();
  enf: Enforcer;
  constructor(
    p: CompiledPolicy,
    throttle: 'kernel' | 'userspace' = 'userspace',
    classFor?: (r: number, b: number) => number,
  ) {
    this.enf = new Enforcer({
      queue: 0,
      sink: { verdict: (id, v, m) => this.verdicts.push([id, v, m]) },
      policy: p,
      markMask: MASK,
      throttle,
      classFor,
      counters: this.counters,
      onVerdict: (e) => this.events.push(e),
      rstToServer: false,
    });
  }
  feed(buf: Uint8Array, now = 0): number {
    const id = ++this.id;
    const p: NfPacket = { id, mark: 0, hwProtocol: 0x0800, hook: 2, payload: buf };
    this.enf.handle(p, now);
    return id;
  }
  handshake(c: Conv): void {
    this.feed(c.syn());
    this.feed(c.synAck());
    this.feed(c.ack());
  }
}

describe('enforcer', () => {
  let chBlocked: Buffer;
  let chSlow: Buffer;
  let chOk: Buffer;
  before(async () => {
    chBlocked = await captureClientHello('blocked.example');
    chSlow = await captureClientHello('slow.example');
    chOk = await captureClientHello('fine.example');
  });

  it('forwards every segment of a split ClientHello but the one that completes it, which gets the verdict', async () => {
    const r = new Rig(await policy());
    const c = new Conv();
    r.handshake(c);
    const I = mk(MARK_INSPECT);
    assert.deepEqual(r.verdicts, [
      [1, NF_ACCEPT, 0],
      [2, NF_ACCEPT, 0],
      [3, NF_ACCEPT, 0],
    ]);
    r.feed(c.c(chBlocked.subarray(0, 50)), 10);
    assert.deepEqual(r.verdicts[3], [4, NF_ACCEPT, I], 'first part forwarded, TLS known: inspect mark');
    r.feed(c.c(chBlocked.subarray(50)), 60);
    assert.deepEqual(r.verdicts[4], [5, NF_ACCEPT, mk(MARK_RST)]);
    assert.equal(r.verdicts.length, 5);
    assert.equal(r.events.length, 1);
    const e = r.events[0];
    assert.equal(e.host, 'blocked.example');
    assert.deepEqual(e.policy, { rule_id: 'b', action: 'block' });
    assert.equal(e.verdict.enforcement, 'reset');
    assert.equal(e.verdict.reason, 'named');
    assert.equal(e.verdict.held_packets, 1, 'only the completing segment');
    assert.equal(r.counters[C.verdictBlock], 1);
  });

  it('the verdict event carries every key of the flow record, in its order, values unchanged', async () => {
    const eng = new Engine();
    const c = new Conv();
    const f = eng.packet(c.syn(), 101, 0)!;
    eng.packet(c.synAck(), 101, 1);
    eng.packet(c.c(chOk), 101, 2);
    const rec = eng.record(f);
    assert.equal(rec.host, 'fine.example');
    const taken = {
      action: 'allow' as const,
      enforcement: 'accept' as const,
      reason: 'named' as const,
      queue: 0,
      held_packets: 1,
      held_ms: 0,
    };
    const ev = verdictEvent(rec, 'v1', { rule_id: null, action: 'allow' }, taken);
    // a key added to the record and not to the event (or put elsewhere) fails here
    assert.deepEqual(Object.keys(ev), [...Object.keys(rec), 'policy_version', 'verdict']);
    const e = ev as unknown as Record<string, unknown>;
    const r = rec as unknown as Record<string, unknown>;
    for (const k of Object.keys(rec)) if (k !== 'event_type' && k !== 'policy') assert.equal(e[k], r[k], k);
    assert.equal(ev.event_type, 'verdict');
    assert.deepEqual(ev.policy, { rule_id: null, action: 'allow' });
    assert.equal(ev.policy_version, 'v1');
    assert.equal(ev.verdict, taken);
  });

  it('what the kernel queues with the bare-ACK rules — the SYN and the data segments, no ACK — is named and decided', async () => {
    // rules.ts: SYN-ACKs and payload-less ACKs of undecided connections never reach the queue
    for (const [ch, name, mark] of [
      [chBlocked, 'blocked.example', mk(MARK_RST)],
      [chOk, 'fine.example', mk(MARK_ALLOW)],
    ] as const) {
      const r = new Rig(await policy());
      const c = new Conv();
      r.feed(c.syn());
      r.feed(c.c(ch.subarray(0, 50)), 10);
      r.feed(c.c(ch.subarray(50, 51)), 20);
      r.feed(c.c(ch.subarray(51)), 30);
      assert.deepEqual(r.verdicts, [
        [1, NF_ACCEPT, 0],
        [2, NF_ACCEPT, mk(MARK_INSPECT)],
        [3, NF_ACCEPT, mk(MARK_INSPECT)],
        [4, NF_ACCEPT, mark],
      ]);
      assert.equal(r.events.length, 1);
      assert.equal(r.events[0].host, name);
      assert.equal(r.events[0].verdict.reason, 'named');
      assert.equal(r.events[0].verdict.held_packets, 1);
    }
  });

  it('an out-of-order ClientHello: the later part passes, the one filling the gap gets the verdict; record fragmentation too', async () => {
    const r = new Rig(await policy());
    const c = new Conv();
    r.handshake(c);
    r.feed(c.c(chOk.subarray(100), undefined, 100));
    assert.deepEqual(r.verdicts[3], [4, NF_ACCEPT, 0], 'forwarded; the protocol is not known yet');
    r.feed(c.c(chOk.subarray(0, 100), undefined, 0));
    assert.deepEqual(r.verdicts[4], [5, NF_ACCEPT, mk(MARK_ALLOW)]);
    const r2 = new Rig(await policy());
    const c2 = new Conv();
    r2.handshake(c2);
    r2.feed(c2.c(twoRecords(chBlocked, 70)));
    assert.deepEqual(r2.verdicts[3], [4, NF_ACCEPT, mk(MARK_RST)]);
  });

  // The packet budget (inspection.max_packets, 8) applies only while the protocol is unknown: once the
  // first bytes say TLS the engine keeps reassembling by byte budget.
  it('ClientHellos in 1-, 3- and 8-byte segments are named with the default hold settings', async () => {
    for (const size of [1, 3, 8]) {
      const r = new Rig(await policy());
      const c = new Conv(41000 + size);
      r.handshake(c);
      const n = Math.ceil(chBlocked.length / size);
      for (let i = 0; i < n; i++) r.feed(c.c(chBlocked.subarray(i * size, (i + 1) * size)), 10);
      const marks = r.verdicts.slice(3).map((v) => v[2]);
      assert.equal(marks.length, n, `${size}-byte segments: one verdict per segment`);
      assert.ok(
        marks.slice(0, -1).every((m) => m === mk(MARK_INSPECT)),
        `${size}-byte segments: all but the last forwarded`,
      );
      assert.equal(marks[n - 1], mk(MARK_RST), `${size}-byte segments: the completing one is reset`);
      assert.equal(r.events[0]?.host, 'blocked.example');
    }
  });

  it('on hold timeout, on_timeout decides (allow by default; block drops) the packets that follow', async () => {
    const r = new Rig(await policy());
    const c = new Conv();
    r.handshake(c);
    r.feed(c.c(chBlocked.subarray(0, 50)), 1000);
    r.enf.tick(1499);
    assert.equal(r.events.length, 0);
    r.enf.tick(1500);
    assert.equal(r.events[0].verdict.reason, 'hold_timeout');
    assert.deepEqual(r.events[0].policy, { rule_id: null, action: 'allow' });
    assert.equal(r.counters[C.holdTimeouts], 1);
    assert.equal(r.counters[C.failOpenTimeout], 1, 'counted as a fail-open');
    r.feed(c.c(chBlocked.subarray(50)), 1501);
    assert.deepEqual(r.verdicts[4], [5, NF_ACCEPT, mk(MARK_ALLOW)]);
    const r2 = new Rig(await policy('  on_timeout: block'));
    const c2 = new Conv();
    r2.handshake(c2);
    r2.feed(c2.c(chBlocked.subarray(0, 50)), 0);
    r2.enf.tick(600);
    r2.feed(c2.c(chBlocked.subarray(50)), 601);
    assert.deepEqual(r2.verdicts[4], [5, NF_ACCEPT, mk(MARK_DROP)]);
    assert.equal(r2.counters[C.failOpenTimeout], 0);
  });

  it('hold_ms 0: no time bound, the verdict applies from the packet that completes the name', async () => {
    const text = (await policy()).inspection;
    assert.equal(text.hold_ms, 500);
    const p = compilePolicy(
      await parsePolicy(
        'version: 1\ndefault: allow\ninspection:\n  mode: normal\n  hold_ms: 0\nrules:\n  - id: b\n    action: block\n    match:\n      host:\n        exact: [blocked.example]\n',
        'h0.yaml',
      ),
    );
    const r = new Rig(p);
    const c = new Conv();
    r.handshake(c);
    r.feed(c.c(chBlocked.subarray(0, 50)));
    assert.deepEqual(r.verdicts[3], [4, NF_ACCEPT, mk(MARK_INSPECT)], 'first part passes at once');
    r.enf.tick(3_600_000);
    assert.equal(r.events.length, 0, 'no timeout');
    r.feed(c.c(chBlocked.subarray(50)));
    assert.deepEqual(r.verdicts[4], [5, NF_ACCEPT, mk(MARK_RST)]);
  });

  it('server data passes while the client side is still being inspected', async () => {
    const r = new Rig(await policy());
    const c = new Conv();
    r.handshake(c);
    r.feed(c.s(Buffer.from('SSH-2.0-banner\r\n')));
    assert.deepEqual(r.verdicts[3], [4, NF_ACCEPT, 0]);
  });

  it('a connection let through because the inspection budget ran out is counted as a fail-open', async () => {
    // a known protocol (TLS) is bounded by bytes, not packets: a ClientHello that claims 60,000 bytes
    // runs past the byte budget (one full 16 KiB record at least) before it completes
    const r = new Rig(await policy());
    const c = new Conv();
    r.handshake(c);
    const big = new Uint8Array(24000);
    big.set(chOk.subarray(0, 200));
    big.set([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0xea, 0x60], 0);
    big.set([0x16, 0x03, 0x01, 0x40, 0x00], 5 + 16384); // the hello goes on in a second full record
    for (let i = 0; i < 24; i++) r.feed(c.c(big.subarray(i * 1000, (i + 1) * 1000)), 10);
    assert.equal(r.events[0].verdict.reason, 'gave_up');
    assert.ok(r.events[0].anomalies.includes('inspect_budget_exhausted'), r.events[0].anomalies.join());
    assert.equal(r.counters[C.failOpenExhausted], 1);
    const r2 = new Rig(await policy());
    const c2 = new Conv();
    r2.handshake(c2);
    r2.feed(c2.c(Buffer.from('SSH-2.0-OpenSSH_9.2\r\n')), 10);
    assert.equal(r2.events[0].verdict.reason, 'gave_up', 'not a known protocol');
    assert.equal(r2.counters[C.failOpenExhausted], 0, 'an unknown protocol is no fail-open');
  });

  it('a connection that ends before its verdict is logged (flow_end) and counted as a fail-open', async () => {
    const r = new Rig(await policy());
    const c = new Conv();
    r.handshake(c);
    r.feed(c.c(chBlocked.subarray(0, 50)), 10);
    r.feed(c.c(new Uint8Array(0), RST), 20);
    assert.equal(r.events.length, 0);
    // another flow's packet 2 s later makes the engine expire the closed one (1 s after the RST)
    const other = new Conv(42000);
    r.feed(other.syn(), 2100);
    assert.equal(r.events.length, 1);
    assert.equal(r.events[0].verdict.reason, 'flow_end');
    assert.equal(r.events[0].host, null);
    assert.equal(r.counters[C.failOpenFlowEnd], 1);
  });

  it('a new connection on the 5-tuple of a decided one is classified afresh (port reuse)', async () => {
    const r = new Rig(await policy());
    const c = new Conv(43000);
    r.handshake(c);
    r.feed(c.c(chOk), 10);
    assert.deepEqual(r.verdicts[3], [4, NF_ACCEPT, mk(MARK_ALLOW)]);
    // the old connection's close went through the kernel unqueued (it was marked); same ports again
    const c2 = new Conv(43000);
    r.handshake(c2);
    r.feed(c2.c(chBlocked), 20);
    assert.deepEqual(r.verdicts[7], [8, NF_ACCEPT, mk(MARK_RST)], 'not the stale allow');
    assert.deepEqual(
      r.events.map((e) => e.host),
      ['fine.example', 'blocked.example'],
    );
  });

  it('every verdict event carries the policy version id', async () => {
    const r = new Rig(await policy());
    r.enf.setPolicy(await policy(), 'v-test-1');
    const c = new Conv();
    r.handshake(c);
    r.feed(c.c(chOk));
    assert.equal(r.events[0].policy_version, 'v-test-1');
  });

  it('throttle in userspace: the bucket passes the burst, then drops; marked for policing', async () => {
    const r = new Rig(await policy());
    const c = new Conv();
    r.handshake(c);
    r.feed(c.c(chSlow), 0);
    assert.deepEqual(r.verdicts[3], [4, NF_ACCEPT, mk(MARK_POLICE)]);
    // 8 kbit/s = 1 byte/ms, bucket 3000 B per direction (the ClientHello was charged to the other one):
    // 1240-byte server packets: 3000 → 1760 → 520, the third does not fit at the same instant.
    const big = Buffer.alloc(1200, 0x17);
    r.feed(c.s(big), 0);
    r.feed(c.s(big), 0);
    r.feed(c.s(big), 0);
    assert.deepEqual(
      r.verdicts.slice(4).map((v) => v[1]),
      [NF_ACCEPT, NF_ACCEPT, NF_DROP],
    );
    r.feed(c.s(big), 1240);
    assert.equal(r.verdicts[7][1], NF_ACCEPT, 'refilled after 1.24 s');
    assert.equal(r.counters[C.policeDrop], 1);
  });

  it('throttle in the kernel: held until the class rule exists, then marked with the class', async () => {
    const classes = new Map<string, number>();
    const asked: string[] = [];
    const r = new Rig(await policy(), 'kernel', (rate, burst) => {
      const k = `${rate}:${burst}`;
      if (!classes.has(k)) asked.push(k);
      return classes.get(k) ?? -1;
    });
    const c = new Conv();
    r.handshake(c);
    r.feed(c.c(chSlow), 0);
    assert.equal(r.verdicts.length, 3, 'held while the class is installed');
    assert.deepEqual(asked, ['8000:3000']);
    r.feed(c.s(Buffer.alloc(100, 0x17)), 1);
    r.enf.tick(10_000);
    assert.equal(
      r.verdicts.length,
      3,
      'still held: the hold timeout does not apply while the class is installed',
    );
    assert.equal(r.events.length, 1, 'one verdict event');
    classes.set('8000:3000', 7);
    r.enf.classReady(8000, 3000, 7, 5);
    assert.deepEqual(r.verdicts.slice(3), [
      [4, NF_ACCEPT, mk(MARK_CLASS_BASE + 7)],
      [5, NF_ACCEPT, mk(MARK_CLASS_BASE + 7)],
    ]);
    assert.equal(r.events.length, 1);
  });
});
