/**
 * @module lab/manage.test
 * `lab up|down|status` on the real kernel: services reachable from the subscriber namespace with
 * real clients (curl verifies the HTTPS certificate against the lab CA for an arbitrary name; DNS
 * and UDP answered), `up` idempotent, a dead services process detected and repaired, `down` cleans
 * up even without state (after a crash). Root only.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { labDown, labStatus, labUp, STATE_ROOT } from './manage.js';
import { execIn, listNamespaces } from './netns.js';
import { isRoot, need } from '../testutil/require.js';

const root = isRoot();
const name = `mt${process.pid % 100000}`;
after(async () => {
  if (root) await labDown(name);
});

test(
  'lab up / status / down with services',
  { skip: need(root, 'needs root (network namespaces)'), timeout: 180_000 },
  async () => {
    const { state, created } = await labUp({ name, index: 202 });
    assert.equal(created, true);
    assert.equal(labStatus(name).healthy, true);
    const sub = state.ns.sub;
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
