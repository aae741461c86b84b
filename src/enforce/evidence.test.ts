/**
 * @module enforce/evidence.test
 * `enforce --evidence DIR` in a lab (root, real kernel, real curl): with a policy blocking one name by
 * RST and throttling another, over two queues, the evidence directory holds per-queue pcap files
 * (`q<queue>-NNNNNN.pcap`) that tshark reads; they contain the blocked and the throttled flows'
 * ClientHellos (tshark's own TLS dissector finds the SNI), nothing of the allowed flow, and each
 * index line's `flow_id`/`community_id` is that of the flow's EVE verdict line, while tshark's own
 * Community ID computation finds exactly the index line's packet count in its file. Also: with
 * `--eve -`, a reader of stdout that goes away makes the daemon remove its rules and exit 0; a full
 * evidence disk (a 16 KiB tmpfs) turns evidence off and changes no verdict; in `tspu-2021` mode a
 * triggered connection's ClientHello is in the evidence too.
 * Without root: the per-queue share of the bounds, and usage errors of the options.
 */
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  chClient,
  curl,
  MAIN_JS,
  policedGoodput,
  readEve,
  setupInlineLab,
  sleep,
  waitEve,
  type InlineLab,
} from './testing/harness.js';
import { evidenceShare } from './daemon.js';
import { haveTool, isRoot, need } from '../testutil/require.js';

const POLICY = `version: 1
default: allow
inspection:
  mode: normal
  hold_ms: 1000
rules:
  - id: block-it
    action: block
    method: rst
    match:
      host:
        exact: [blocked.example]
  - id: slow-it
    action: throttle
    rate: 256kbit
    burst: 8KB
    match:
      host:
        exact: [throttled.example]
`;

const SKIP =
  need(isRoot(), 'needs root (network namespaces, iptables, NFQUEUE)') ||
  need(haveTool('tshark'), 'tshark missing (Debian package tshark)');

interface IndexLine {
  file: string;
  flow_id: number;
  community_id: string;
  src_port: number;
  dest_port: number;
  host: string | null;
  action: string;
  rule_id: string | null;
  packets: number;
  bytes: number;
}

function tshark(args: string[]): string {
  return execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

const MiB = 1 << 20;

test('each queue gets an equal share of the total cap; a share below the file size is refused', () => {
  assert.deepEqual(evidenceShare({ dir: 'd' }, 2), { dir: 'd', fileBytes: 16 * MiB, totalBytes: 128 * MiB });
  // the default file size shrinks to the share
  assert.deepEqual(evidenceShare({ dir: 'd', totalBytes: 24 * MiB }, 3), {
    dir: 'd',
    fileBytes: 8 * MiB,
    totalBytes: 8 * MiB,
  });
  assert.equal(evidenceShare({ dir: 'd', totalBytes: 100 * MiB + 1 }, 4).totalBytes, 25 * MiB);
  assert.throws(
    () => evidenceShare({ dir: 'd', totalBytes: 8 * MiB, fileBytes: 4 * MiB }, 4),
    /total size 8388608 over 4 queues is 2097152 bytes per queue, below the file size 4194304/,
  );
  assert.throws(() => evidenceShare({ dir: 'd', totalBytes: 8000 }, 4), /at least 4096/);
});

test('enforce: --evidence-* without --evidence and bad values are usage errors (exit 2)', () => {
  const run = (args: string[]) => {
    try {
      execFileSync(process.execPath, [MAIN_JS, 'enforce', '--policy', 'p.yaml', ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      return { code: 0, stderr: '' };
    } catch (e) {
      const x = e as { status: number; stderr: string };
      return { code: x.status, stderr: x.stderr };
    }
  };
  let r = run(['--evidence-max-size', '1MiB']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--evidence-max-size needs --evidence DIR/);
  r = run(['--evidence', 'ev', '--evidence-flow-packets', '0']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--evidence-flow-packets must be a positive integer, not '0'/);
  r = run(['--evidence', 'ev', '--evidence-file-size', 'lots']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--evidence-file-size: /);
});

describe('enforce --evidence (lab)', { skip: SKIP, timeout: 180_000 }, () => {
  let il: InlineLab;

  before(async () => {
    il = await setupInlineLab(`cpe${process.pid % 100000}`, POLICY);
  });
  after(async () => {
    await il?.close();
  });

  it('writes the blocked and throttled flows (not the allowed one) to per-queue pcaps matching the EVE log', async () => {
    const dir = join(il.dir, 'evidence');
    const enf = await il.startEnforce([
      '--queues',
      `${il.queue}-${il.queue + 1}`,
      '--evidence',
      dir,
      '--evidence-max-size',
      '64MiB',
    ]);
    let stopped = false;
    try {
      const blocked = await curl(il, 'blocked.example', 1000, { maxTime: 10 });
      assert.notEqual(blocked.code, 0, 'the blocked transfer fails');
      const slow = await curl(il, 'throttled.example', 20_000);
      assert.equal(slow.code, 0, 'the throttled transfer completes');
      const ok = await curl(il, 'allowed.example', 200_000);
      assert.equal(ok.code, 0);
      assert.equal(ok.size, 200_000);
      const names = ['blocked.example', 'throttled.example', 'allowed.example'];
      await waitEve(il, (l) => names.every((n) => l.some((e) => e.host === n)));
      // the index lines of flows still open are written when the writers close (SIGTERM)
      assert.equal(await enf.stop(), 0, enf.stderr());
      stopped = true;

      const eve = readEve(il) as Array<{
        host: string;
        flow_id: number;
        community_id: string;
        src_port: number;
        verdict: { queue: number; action: string };
      }>;
      const verdictOf = (host: string, port: number) => {
        const v = eve.find((e) => e.host === host && e.src_port === port);
        assert.ok(v, `EVE verdict for ${host} from port ${port}`);
        return v;
      };
      const vb = verdictOf('blocked.example', blocked.localPort);
      const vt = verdictOf('throttled.example', slow.localPort);
      const va = verdictOf('allowed.example', ok.localPort);
      assert.equal(vb.verdict.action, 'block');
      assert.equal(vt.verdict.action, 'throttle');
      assert.equal(va.verdict.action, 'allow');

      const files = readdirSync(dir).sort();
      const pcaps = files.filter((f) => f.endsWith('.pcap'));
      assert.ok(pcaps.length >= 1, `pcap files in ${dir}: ${files.join(' ')}`);
      for (const f of files) assert.match(f, /^q\d+-\d{6}\.(pcap|jsonl)$/, 'per-queue prefix q<queue>-');
      const index: IndexLine[] = files
        .filter((f) => f.endsWith('.jsonl'))
        .flatMap((f) =>
          readFileSync(join(dir, f), 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as IndexLine),
        );

      for (const [v, port, host, action, rule] of [
        [vb, blocked.localPort, 'blocked.example', 'block', 'block-it'],
        [vt, slow.localPort, 'throttled.example', 'throttle', 'slow-it'],
      ] as const) {
        const lines = index.filter((x) => x.src_port === port && x.host === host);
        assert.ok(lines.length >= 1, `index line for ${host}: ${JSON.stringify(index)}`);
        for (const x of lines) {
          assert.equal(x.community_id, v.community_id, `${host}: community_id as in the EVE verdict`);
          assert.equal(x.flow_id, v.flow_id, `${host}: flow_id as in the EVE verdict`);
          assert.equal(x.action, action);
          assert.equal(x.rule_id, rule);
          assert.ok(
            x.file.startsWith(`q${v.verdict.queue}-`),
            `${host}: in its queue's file (${x.file}, queue ${v.verdict.queue})`,
          );
          // tshark's own Community ID computation finds the flow's packets in the file
          const n =
            tshark(['-r', join(dir, x.file), '--enable-protocol', 'communityid',
            '-Y', `communityid == "${x.community_id}"`, '-T', 'fields', '-e', 'frame.number']) // prettier-ignore
              .split('\n')
              .filter(Boolean).length;
          assert.equal(n, x.packets, `${host}: packets in ${x.file} with its community_id`);
        }
      }

      // every packet in every file, decoded by tshark: client ports and ClientHello SNIs
      const ports = new Set<number>();
      const snis: string[] = [];
      for (const f of pcaps) {
        const out = tshark(['-r', join(dir, f), '-T', 'fields', '-e', 'tcp.srcport', '-e', 'tcp.dstport']);
        for (const l of out.split('\n').filter(Boolean)) for (const p of l.split('\t')) ports.add(Number(p));
        const sn = tshark(['-r', join(dir, f), '-Y', 'tls.handshake.extensions_server_name', '-T', 'fields',
          '-e', 'tcp.srcport', '-e', 'tls.handshake.extensions_server_name']); // prettier-ignore
        for (const l of sn.split('\n').filter(Boolean)) snis.push(l);
      }
      assert.ok(
        snis.includes(`${blocked.localPort}\tblocked.example`),
        `blocked ClientHello: ${snis.join('; ')}`,
      );
      assert.ok(
        snis.includes(`${slow.localPort}\tthrottled.example`),
        `throttled ClientHello: ${snis.join('; ')}`,
      );
      assert.ok(!snis.some((l) => l.endsWith('allowed.example')), 'no ClientHello of the allowed name');
      assert.ok(!ports.has(ok.localPort), 'no packet of the allowed flow');
      assert.ok(!index.some((x) => x.host === 'allowed.example'), 'no index line for the allowed flow');
    } finally {
      if (!stopped) await enf.stop();
    }
  });

  it('a full evidence disk turns evidence off for the queue; enforcement goes on unchanged', async () => {
    const full = join(il.dir, 'full');
    mkdirSync(full);
    // mounted here (ip netns exec gives each command its own mount namespace), visible to the daemon
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', full]);
    try {
      const enf = await il.startEnforce(['--evidence', full, '--evidence-file-size', '4096']);
      try {
        // the throttled connection's 32 packets (~30 KB) do not fit in 16 KiB
        const slow = await curl(il, 'throttled.example', 20_000);
        assert.equal(slow.code, 0, 'the throttled transfer completes');
        for (let i = 0; i < 50 && !/evidence off/.test(enf.stderr()); i++) await sleep(100);
        assert.match(enf.stderr(), /queue \d+: evidence off for this queue: .*ENOSPC/);
        assert.equal((await chClient(il, 'blocked.example', 'whole')).result, 'reset', 'still blocking');
        assert.equal((await chClient(il, 'allowed.example', 'whole')).result, 'data', 'still allowing');
        const again = await curl(il, 'throttled.example', 20_000);
        assert.equal(again.code, 0);
        assert.ok(policedGoodput(again, 8000) <= 1.05 * 256_000, 'still throttling');
      } finally {
        assert.equal(await enf.stop(), 0, enf.stderr());
      }
    } finally {
      execFileSync('umount', [full]);
    }
  });

  it('tspu-2021 mode: a triggered (throttled) connection has its ClientHello in the evidence', async () => {
    const dir = join(il.dir, 'evidence-tspu');
    writeFileSync(il.policy, POLICY.replace('mode: normal', 'mode: tspu-2021'));
    const enf = await il.startEnforce(['--evidence', dir]);
    let slow: Awaited<ReturnType<typeof curl>>;
    let ok: Awaited<ReturnType<typeof curl>>;
    try {
      slow = await curl(il, 'throttled.example', 20_000);
      assert.equal(slow.code, 0);
      ok = await curl(il, 'allowed.example', 100_000);
      assert.equal(ok.code, 0);
      await waitEve(il, (l) =>
        l.some((e) => e.host === 'throttled.example' && e.src_port === slow.localPort),
      );
    } finally {
      assert.equal(await enf.stop(), 0, enf.stderr());
      writeFileSync(il.policy, POLICY);
    }
    const snis: string[] = [];
    const ports = new Set<number>();
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.pcap'))) {
      const sn = tshark(['-r', join(dir, f), '-Y', 'tls.handshake.extensions_server_name', '-T', 'fields',
        '-e', 'tcp.srcport', '-e', 'tls.handshake.extensions_server_name']); // prettier-ignore
      snis.push(...sn.split('\n').filter(Boolean));
      for (const l of tshark(['-r', join(dir, f), '-T', 'fields', '-e', 'tcp.srcport']).split('\n'))
        if (l) ports.add(Number(l));
    }
    assert.ok(
      snis.includes(`${slow.localPort}\tthrottled.example`),
      `throttled ClientHello: ${snis.join('; ')}`,
    );
    assert.ok(!ports.has(ok.localPort), 'no packet of the allowed (never triggered) connection');
  });

  it('--eve -: a closed stdout makes the daemon remove its rules and exit 0', async () => {
    const enf = await il.startEnforce(['--eve', '-']);
    assert.match(await il.iptablesSave(), new RegExp(`-A FORWARD -j ${il.chain}`), 'rules installed');
    const exited = new Promise<number | null>((r) => enf.child.once('exit', (c) => r(c)));
    enf.child.stdout!.destroy(); // the reader goes away
    // a verdict makes the daemon write its EVE line to the closed pipe (EPIPE)
    assert.equal((await chClient(il, 'allowed.example', 'whole')).result, 'data');
    const t = setTimeout(() => enf.child.kill('SIGKILL'), 15_000);
    const code = await exited;
    clearTimeout(t);
    assert.equal(code, 0, enf.stderr());
    assert.match(enf.stderr(), /stdout closed, removing rules/);
    assert.doesNotMatch(await il.iptablesSave(), new RegExp(il.chain), 'no rules left');
  });
});
