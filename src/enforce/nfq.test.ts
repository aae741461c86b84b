/**
 * @module enforce/nfq.test
 * The batched verdict messages, byte by byte, against the kernel's structures (linux/netlink.h
 * nlmsghdr, linux/netfilter/nfnetlink.h nfgenmsg, linux/netfilter/nfnetlink_queue.h
 * NFQNL_MSG_VERDICT, NFQA_VERDICT_HDR = 2 {__be32 verdict; __be32 id}, NFQA_MARK = 3 __be32). The
 * kernel taking them is what the lab tests show (every connection there passes through them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NF_ACCEPT, NF_DROP, VERDICT_BATCH, VerdictBatch } from './nfq.js';

test('verdict messages: one NFQNL_MSG_VERDICT per verdict, back to back, in order', () => {
  const b = new VerdictBatch(0x1234);
  b.add(7, NF_ACCEPT, 0x00050000);
  b.add(0x01020304, NF_DROP, 0);
  assert.equal(b.count, 2);
  assert.equal(b.length, 80);
  // prettier-ignore
  const first = [
    40, 0, 0, 0,             // nlmsg_len (host order, little-endian here)
    0x01, 0x03,              // nlmsg_type: NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_VERDICT
    0x01, 0x00,              // NLM_F_REQUEST
    1, 0, 0, 0,              // seq
    0, 0, 0, 0,              // pid (the kernel)
    0, 0,                    // nfgen_family AF_UNSPEC, version NFNETLINK_V0
    0x12, 0x34,              // res_id: the queue number, big-endian
    12, 0, 2, 0,             // NFQA_VERDICT_HDR, 12 bytes
    0, 0, 0, 1,              // verdict NF_ACCEPT
    0, 0, 0, 7,              // packet id
    8, 0, 3, 0,              // NFQA_MARK, 8 bytes
    0x00, 0x05, 0x00, 0x00,  // mark
  ];
  assert.deepEqual([...b.bytes.subarray(0, 40)], first);
  const second = [...b.bytes.subarray(40, 80)];
  assert.deepEqual(second.slice(8, 12), [2, 0, 0, 0], 'seq increments');
  assert.deepEqual(second.slice(24, 32), [0, 0, 0, 0, 1, 2, 3, 4], 'NF_DROP, id');
  assert.deepEqual(second.slice(36, 40), [0, 0, 0, 0], 'mark 0 is sent too (as nfq_set_verdict2)');
});

test('the batch is bounded and reused: full after VERDICT_BATCH, empty after clear', () => {
  const b = new VerdictBatch(1);
  for (let i = 0; i < VERDICT_BATCH; i++) b.add(i, NF_ACCEPT, 0);
  assert.ok(b.full);
  assert.throws(() => b.add(1, NF_ACCEPT, 0), /batch full/);
  const buf = b.bytes;
  b.clear();
  assert.equal(b.count, 0);
  b.add(9, NF_ACCEPT, 0);
  assert.equal(b.bytes, buf, 'same buffer');
  assert.equal(new DataView(buf.buffer).getUint32(28, false), 9, 'written from the start again');
});
