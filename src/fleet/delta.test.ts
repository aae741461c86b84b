/**
 * Deltas end to end: a box holding bundle N gets N+1 through `GET /v1/deltas/…` and arrives at the
 * exact files of the full bundle N+1 (compared with the blobs downloaded here directly, by their
 * SHA-256 computed here); with a hostile cache in front of the controller that corrupts or swaps the
 * deltas, the box falls back to the full files and still lands on N+1. Real controller (SQLite, real
 * sockets on 127.0.0.1); the proxy is a plain HTTP server on 127.0.0.1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import client from 'prom-client';
import { FleetAgent } from './agent.js';
import { BUNDLE_ROOT } from './version.js';
import { agentOptions, CompilingTarget, nextEvent, startRig, type Rig } from './testing/rig.js';
import type { Manifest } from '../bundle/verify.js';

type Mangle = (path: string, body: Buffer) => Buffer;

/** An HTTP cache in front of the controller that may rewrite delta answers. */
async function proxy(
  rig: Rig,
  mangle: Mangle | null,
): Promise<{ url: string; server: Server; deltas: number }> {
  const st = { url: '', server: null as unknown as Server, deltas: 0 };
  st.server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const headers: Record<string, string> = {};
      for (const h of ['authorization', 'if-none-match', 'content-type'])
        if (req.headers[h]) headers[h] = String(req.headers[h]);
      const r = await fetch(rig.url + req.url, {
        method: req.method,
        headers,
        body: req.method === 'POST' ? Buffer.concat(chunks) : undefined,
      });
      let body: Buffer = Buffer.from(await r.arrayBuffer());
      if (req.url!.startsWith('/v1/deltas/') && r.status === 200) {
        st.deltas++;
        if (mangle) body = mangle(req.url!, body);
      }
      const out: Record<string, string> = {};
      for (const h of ['etag', 'content-type', 'cache-control'])
        if (r.headers.get(h)) out[h] = r.headers.get(h)!;
      res.writeHead(r.status, out).end(body);
    })().catch(() => res.destroy());
  });
  await new Promise<void>((ok) => st.server.listen(0, '127.0.0.1', ok));
  const a = st.server.address() as { port: number };
  st.url = `http://127.0.0.1:${a.port}`;
  return st;
}

async function blobs(rig: Rig, version: number): Promise<Map<string, string>> {
  const row = await rig.db.get<{ manifest: string }>('SELECT manifest FROM bundles WHERE version = $1', [
    version,
  ]);
  const m = JSON.parse(row!.manifest) as Manifest;
  const out = new Map<string, string>();
  for (const f of m.files) {
    const r = await fetch(`${rig.url}/v1/blobs/${f.sha256}`, {
      headers: { authorization: `Bearer ${rig.tokens.box}` },
    });
    const b = Buffer.from(await r.arrayBuffer());
    assert.equal(createHash('sha256').update(b).digest('hex'), f.sha256);
    out.set(posix.join(BUNDLE_ROOT, f.name), b.toString('utf8'));
  }
  return out;
}

async function scenario(mangle: Mangle | null) {
  const rig = await startRig();
  const state = mkdtempSync(join(tmpdir(), 'cp-delta-state-'));
  const px = await proxy(rig, mangle);
  const agent = new FleetAgent(
    agentOptions(rig, {
      controller: px.url,
      node: 'box-d',
      stateDir: state,
      registry: new client.Registry(),
      log: () => undefined,
    }),
  );
  try {
    for (let i = 0; i < 40; i++) await rig.approve(`seed${i}.example`); // a list of some size
    const b1 = await rig.publish('bad.example');
    const target = await CompilingTarget.start(await agent.bootstrap());
    agent.run(target);
    const activated = nextEvent(agent, 'activated', (v) => v === b1 + 1);
    const b2 = await rig.publish('worse.example');
    await activated;
    const full = await blobs(rig, b2);
    assert.deepEqual(
      new Map(target.active.files),
      full,
      'the box holds exactly the files of full bundle N+1',
    );
    assert.equal(target.verdict('a.worse.example'), 'block');
    assert.equal(target.verdict('seed3.example'), 'block');
    assert.equal(target.verdict('good.example'), 'allow');
    return { counters: { ...agent.counters }, deltas: px.deltas };
  } finally {
    await agent.stop();
    await new Promise((ok) => px.server.close(ok));
    await rig.close();
    rmSync(state, { recursive: true, force: true });
  }
}

test('delta N → N+1 applied: the box arrives at the exact files of the full bundle, with fewer bytes', async () => {
  const r = await scenario(null);
  assert.ok(r.deltas >= 1, 'a delta was fetched');
  assert.ok(r.counters.deltas_applied >= 1, JSON.stringify(r.counters));
  assert.equal(r.counters.delta_fallbacks, 0);
});

test('a corrupted delta (an entry changed in transit) falls back to the full file', async () => {
  const r = await scenario((_p, b) => Buffer.from(b.toString().replace('+worse.example', '+wors3.example')));
  assert.ok(r.deltas >= 1);
  assert.equal(r.counters.deltas_applied, 0, JSON.stringify(r.counters));
  assert.ok(r.counters.delta_fallbacks >= 1);
});

test('a foreign delta (for other content, with its own consistent hashes) falls back to the full file', async () => {
  const foreign = 'chokepoint-delta 1 ' + 'a'.repeat(64) + ' ' + 'b'.repeat(64) + '\n+worse.example\n';
  const r = await scenario(() => Buffer.from(foreign));
  assert.equal(r.counters.deltas_applied, 0, JSON.stringify(r.counters));
  assert.ok(r.counters.delta_fallbacks >= 1);
});
