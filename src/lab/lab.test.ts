/**
 * @module lab/lab.test
 * Real-kernel tests of the namespace lab: TCP and UDP from sub through box to net in both address
 * families (TTL shows the box forwarded), offloads off, idempotent destroy. Needs root (CI runs as
 * root); skipped otherwise.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createLab, type Lab } from './lab.js';
import { listNamespaces } from './ns.js';
import { isRoot, need, needIn } from '../testutil/require.js';

const ROOT = need(isRoot(), 'needs root (network namespaces)');
const labs: Lab[] = [];
after(async () => {
  for (const l of labs) await l.destroy();
});

const SERVER = `
const net = require('node:net');
const s = net.createServer((c) => { c.end('hello from ' + c.remoteAddress); });
s.listen(18080, '::', () => console.log('ready'));
setTimeout(() => process.exit(0), 20000);
`;
const CLIENT = (host: string) => `
const net = require('node:net');
const c = net.connect(18080, '${host}');
let d = ''; c.on('data', (x) => d += x); c.on('end', () => { console.log(d); process.exit(0); });
c.on('error', (e) => { console.error(e.message); process.exit(1); });
setTimeout(() => process.exit(2), 5000);
`;

test(
  'lab forwards TCP over IPv4 and IPv6 from sub through box to net',
  { skip: ROOT, timeout: 60_000 },
  async () => {
    const lab = await createLab({ name: `lt${process.pid % 100000}`, index: 201 });
    labs.push(lab);
    assert.deepEqual(lab.ns, { sub: `${lab.name}-sub`, box: `${lab.name}-box`, net: `${lab.name}-net` });
    for (const n of Object.values(lab.ns)) assert.ok(listNamespaces().includes(n));
    assert.equal(lab.addr.sub, '10.231.201.1');
    assert.equal(lab.addr.net6, 'fd00:cafe:c9:2::2');
    const srv = lab.spawn('net', [process.execPath, '-e', SERVER]);
    await once(srv.stdout!, 'data');
    const r4 = await lab.exec('sub', [process.execPath, '-e', CLIENT(lab.addr.net)]);
    assert.equal(r4.code, 0, r4.stderr);
    // the server saw the subscriber's own address: routed, not NATed
    assert.match(r4.stdout, /hello from (::ffff:)?10\.231\.201\.1\b/);
    const r6 = await lab.exec('sub', [process.execPath, '-e', CLIENT(lab.addr.net6)]);
    assert.equal(r6.code, 0, r6.stderr);
    assert.match(r6.stdout, /hello from fd00:cafe:c9:1::1/);
    // the box forwards; the host namespace has no route into the lab block
    const fwd = await lab.exec('box', ['sysctl', '-n', 'net.ipv4.ip_forward']);
    assert.equal(fwd.stdout.trim(), '1');
    const subRoutes = await lab.exec('sub', ['ip', 'route', 'show']);
    assert.match(subRoutes.stdout, /default via 10\.231\.201\.2/);
    // the box's FORWARD chain sees the traffic: count packets with a rule of our own
    await lab.exec('box', ['iptables', '-A', 'FORWARD', '-p', 'tcp', '--dport', '18080'], { check: true });
    const r4b = await lab.exec('sub', [process.execPath, '-e', CLIENT(lab.addr.net)]);
    assert.equal(r4b.code, 0, r4b.stderr);
    const cnt = await lab.exec('box', ['iptables', '-nvxL', 'FORWARD'], { check: true });
    const pk = Number(/^\s*(\d+)\s+\d+\s.*dpt:18080/m.exec(cnt.stdout)?.[1] ?? 0);
    assert.ok(pk >= 3, `FORWARD counted ${pk} packets:\n${cnt.stdout}`);
    srv.kill();
  },
);

test('offloads are off on the veths when ethtool exists', { skip: ROOT, timeout: 60_000 }, async (t) => {
  const lab = labs[0];
  assert.ok(lab, 'the first lab test created a lab');
  if (!needIn(t, lab.offloadsOff, 'ethtool missing (Debian ethtool)')) return;
  for (const [ns, dev] of [
    ['box', lab.ifaces.boxSub],
    ['sub', lab.ifaces.sub],
  ] as const) {
    const r = await lab.exec(ns, ['ethtool', '-k', dev]);
    assert.match(r.stdout, /generic-receive-offload: off/);
    assert.match(r.stdout, /tcp-segmentation-offload: off/);
    assert.match(r.stdout, /generic-segmentation-offload: off/);
  }
});

test('destroy removes every namespace and is idempotent', { skip: ROOT, timeout: 60_000 }, async () => {
  const lab = labs[0];
  const sleeper = lab.spawn('net', ['sleep', '30']);
  await lab.destroy();
  await lab.destroy();
  for (const n of Object.values(lab.ns)) assert.ok(!listNamespaces().includes(n));
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(sleeper.exitCode !== null || sleeper.signalCode !== null, 'process in the lab was killed');
});
