/**
 * @module enforce/enforcer.test
 * The verdict logic with the real engine and a real compiled policy, packets built by hand around a
 * real ClientHello; the sink records verdicts as the kernel would receive them.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy, compilePolicy } from '../policy/index.js';
import { Enforcer } from './enforcer.js';
import { NF_ACCEPT, NF_DROP, type NfPacket } from './nfq.js';
import { newCounters, C } from './counters.js';
import { MARK_ALLOW, MARK_CLASS_BASE, MARK_DROP, MARK_POLICE, MARK_RST, markValue } from './rules.js';
import { captureClientHello, twoRecords } from './testing/ch-client.js';
import { Conv } from './testing/packets.js';
import type { PolicyLike, VerdictEvent } from './types.js';

const MASK = 0x00ff0000;
const mk = (v: number): number => markValue(MASK, v);

async function policy(extra = ''): Promise<PolicyLike> {
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
  return compilePolicy(await parsePolicy(text, 'test.yaml')) as unknown as PolicyLike;
}

class Rig {
  verdicts: [number, number, number][] = [];
  events: VerdictEvent[] = [];
  id = 0;
  counters = newCounters();
  enf: Enforcer;
  constructor(
    p: PolicyLike,
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

  it('passes the handshake unmarked and holds a split ClientHello, then releases it in order with the verdict', async () => {
    const r = new Rig(await policy());
    const c = new Conv();
    r.handshake(c);
    assert.deepEqual(r.verdicts, [
      [1, NF_ACCEPT, 0],
      [2, NF_ACCEPT, 0],
      [3, NF_ACCEPT, 0],
    ]);
    r.feed(c.c(chBlocked.subarray(0, 50)), 10);
    assert.equal(r.verdicts.length, 3, 'first part held');
    r.feed(c.c(chBlocked.subarray(50)), 60);
    assert.deepEqual(r.verdicts.slice(3), [
      [4, NF_ACCEPT, mk(MARK_RST)],
      [5, NF_ACCEPT, mk(MARK_RST)],
    ]);
    assert.equal(r.events.length, 1);
    const e = r.events[0];
    assert.equal(e.host, 'blocked.example');
    assert.deepEqual(e.policy, { rule_id: 'b', action: 'block' });
    assert.equal(e.verdict.enforcement, 'reset');
    assert.equal(e.verdict.held_packets, 2);
    assert.equal(e.verdict.held_ms, 50);
    assert.equal(r.counters[C.verdictBlock], 1);
  });

  it('an out-of-order ClientHello is held until complete; record fragmentation too', async () => {
    const r = new Rig(await policy());
    const c = new Conv();
    r.handshake(c);
    r.feed(c.c(chOk.subarray(100), undefined, 100));
    assert.equal(r.verdicts.length, 3);
    r.feed(c.c(chOk.subarray(0, 100), undefined, 0));
    assert.deepEqual(r.verdicts.slice(3), [
      [4, NF_ACCEPT, mk(MARK_ALLOW)],
      [5, NF_ACCEPT, mk(MARK_ALLOW)],
    ]);
    const r2 = new Rig(await policy());
    const c2 = new Conv();
    r2.handshake(c2);
    r2.feed(c2.c(twoRecords(chBlocked, 70)));
    assert.deepEqual(r2.verdicts[3], [4, NF_ACCEPT, mk(MARK_RST)]);
  });

  it('on hold timeout, on_timeout decides (allow by default; block drops)', async () => {
    const r = new Rig(await policy());
    const c = new Conv();
    r.handshake(c);
    r.feed(c.c(chBlocked.subarray(0, 50)), 1000);
    r.enf.tick(1499);
    assert.equal(r.verdicts.length, 3);
    r.enf.tick(1500);
    assert.deepEqual(r.verdicts[3], [4, NF_ACCEPT, mk(MARK_ALLOW)]);
    assert.equal(r.events[0].verdict.reason, 'hold_timeout');
    assert.equal(r.counters[C.holdTimeouts], 1);
    const r2 = new Rig(await policy('  on_timeout: block'));
    const c2 = new Conv();
    r2.handshake(c2);
    r2.feed(c2.c(chBlocked.subarray(0, 50)), 0);
    r2.enf.tick(600);
    assert.deepEqual(r2.verdicts[3], [4, NF_ACCEPT, mk(MARK_DROP)]);
  });

  it('hold_ms 0 holds nothing: the verdict applies from the packet that completes the name', async () => {
    const text = (await policy()).inspection;
    assert.equal(text.hold_ms, 500);
    const p = compilePolicy(
      await parsePolicy(
        'version: 1\ndefault: allow\ninspection:\n  mode: normal\n  hold_ms: 0\nrules:\n  - id: b\n    action: block\n    match:\n      host:\n        exact: [blocked.example]\n',
        'h0.yaml',
      ),
    ) as unknown as PolicyLike;
    const r = new Rig(p);
    const c = new Conv();
    r.handshake(c);
    r.feed(c.c(chBlocked.subarray(0, 50)));
    assert.deepEqual(r.verdicts[3], [4, NF_ACCEPT, 0], 'first part passes at once');
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
