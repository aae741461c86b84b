/**
 * @module lab/manage.test
 * `lab up|down|status` on the real kernel: services reachable from the subscriber namespace with
 * real clients (curl verifies the HTTPS certificate against the lab CA for an arbitrary name; DNS
 * and UDP answered), `up` idempotent, a dead services process detected and repaired, `down` cleans
 * up even without state (after a crash). Root only.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labDown, labStatus, labUp, STATE_ROOT } from './manage.js';
import { probeLabPlugin } from '../probe/lab-service.js';
import { execIn, listNamespaces } from './ns.js';
import { isRoot, need } from '../testutil/require.js';

const root = isRoot();
const name = `mt${process.pid % 100000}`;
const plugDir = mkdtempSync(join(tmpdir(), 'cp-lab-plugin-'));
after(async () => {
  if (root) await labDown(name);
  rmSync(plugDir, { recursive: true, force: true });
});

test(
  'lab up / status / down with services',
  { skip: need(root, 'needs root (network namespaces)'), timeout: 180_000 },
  async () => {
    // a plug-in service (as `chokepoint lab up` passes the probe-server): a module the services
    // process imports by path, listening on the second address
    const plugin = join(plugDir, 'plugin.mjs');
    writeFileSync(
      plugin,
      `import net from 'node:net';
export async function startLabService(a) {
  const s = net.createServer((c) => c.end('plugin on ' + a.host2 + '\\n'));
  await new Promise((r) => s.listen(7007, a.host2, r));
  return { close: () => new Promise((r) => s.close(() => r())) };
}
`,
    );
    const plugins = [
      probeLabPlugin,
      { module: plugin, name: 'test plug-in', listen: (a: { host2: string }) => `${a.host2}:7007` },
    ];
    const { state, created } = await labUp({ name, index: 202, plugins });
    assert.equal(created, true);
    assert.equal(labStatus(name).healthy, true);
    assert.deepEqual(state.services.at(-1), { name: 'test plug-in', listen: `${state.addr.net2}:7007` });
    const sub = state.ns.sub;
    const pl = await execIn(
      sub,
      [
        process.execPath,
        '-e',
        `require('net').connect(7007, '${state.addr.net2}').on('data', (d) => process.stdout.write(d)).on('error', (e) => { console.error(e.message); process.exit(1); })`,
      ],
      { timeoutMs: 20_000 },
    );
    assert.equal(pl.stdout, `plugin on ${state.addr.net2}\n`, pl.stderr);
    assert.ok(
      state.services.some((x) => x.name === 'probe-server' && x.listen === `${state.addr.net2}:443 tcp+udp`),
    );
    const ps = await execIn(
      sub,
      [
        process.execPath,
        '-e',
        `require('net').connect(443, '${state.addr.net2}', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.error(e.message); process.exit(1); })`,
      ],
      { timeoutMs: 20_000 },
    );
    assert.equal(ps.stdout.trim(), 'connected', 'the probe-server plug-in listens: ' + ps.stderr);
    // HTTPS for any name, certificate verified by curl against the lab CA
    const h = await execIn(
      sub,
      [
        'curl',
        '-sS',
        '--max-time',
        '10',
        '--cacert',
        state.ca,
        '--resolve',
        `any-name.example:443:${state.addr.net}`,
        'https://any-name.example/',
      ],
      { timeoutMs: 20_000 },
    );
    assert.equal(h.code, 0, h.stderr);
    assert.equal(h.stdout, 'chokepoint lab: any-name.example /\n');
    const h6 = await execIn(
      sub,
      [
        'curl',
        '-sS',
        '--max-time',
        '10',
        '--cacert',
        state.ca,
        '--resolve',
        `v6.example:443:[${state.addr.net6}]`,
        'https://v6.example/bytes/100000',
        '-o',
        '/dev/null',
        '-w',
        '%{size_download}',
      ],
      { timeoutMs: 20_000 },
    );
    assert.equal(h6.stdout, '100000', h6.stderr);
    // DNS: A and AAAA for any name point at the server (Node's resolver, a real DNS client)
    const d = await execIn(
      sub,
      [
        process.execPath,
        '-e',
        `const r=new (require('dns').promises.Resolver)(); r.setServers(['${state.addr.net}']);
    Promise.all([r.resolve4('x.example'), r.resolve6('y.example')]).then((x)=>console.log(JSON.stringify(x)))`,
      ],
      { timeoutMs: 20_000 },
    );
    assert.deepEqual(JSON.parse(d.stdout), [[state.addr.net], [state.addr.net6]]);
    // UDP responder echoes
    const u = await execIn(
      sub,
      [
        process.execPath,
        '-e',
        `const s=require('dgram').createSocket('udp4'); s.on('message',(m)=>{console.log(m.toString()); process.exit(0)});
    s.send('ping-123', 443, '${state.addr.net}'); setTimeout(()=>process.exit(3), 5000)`,
      ],
      { timeoutMs: 20_000 },
    );
    assert.equal(u.stdout.trim(), 'ping-123');

    // up again: nothing to do
    assert.equal((await labUp({ name, index: 202 })).created, false);
    // the services die: status says broken, up repairs
    process.kill(state.servicesPid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(labStatus(name).healthy, false);
    const again = await labUp({ name, index: 202 });
    assert.equal(again.created, true);
    assert.equal(labStatus(name).healthy, true);

    // crash: state lost, namespaces left behind; down still removes them
    rmSync(join(STATE_ROOT, name), { recursive: true, force: true });
    assert.equal(await labDown(name), true);
    for (const n of Object.values(state.ns)) assert.ok(!listNamespaces().includes(n), `${n} left behind`);
    assert.equal(await labDown(name), false);
    assert.equal(labStatus(name).state, null);
  },
);
