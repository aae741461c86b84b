/**
 * Hostile controller answers for the box's client (a real HTTP server on 127.0.0.1): a blob far
 * larger than its manifest entry is cut off at the cap (not buffered), and the verifier then refuses
 * it by size; a bundle answer that is not an envelope is a clear format error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { asEnvelope, verifyFile, type Manifest } from '../bundle/verify.js';
import { ControllerClient } from './client.js';

test('an endless blob is read only up to its manifest size (+1 chunk), then refused by size', async () => {
  let sent = 0;
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const srv = createServer((req, res) => {
    if (req.url?.startsWith('/v1/blobs/')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      // up to 256 MiB unless the client hangs up
      const push = (): void => {
        while (sent < 256 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', push);
        }
        res.end();
      };
      push();
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ manifest: 1 }));
    }
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  try {
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    const c = new ControllerClient(url, 'tok');
    const hash = 'a'.repeat(64);
    const data = await c.blob(hash, 1000);
    assert.ok(data.length > 1000, 'more than the manifest size is noticed');
    assert.ok(data.length <= 1000 + 2 * chunk.length, `read ${data.length} bytes`);
    const m = { files: [{ name: 'lists/x.txt', sha256: hash, size: 1000 }] } as unknown as Manifest;
    assert.throws(() => verifyFile(m, 'lists/x.txt', data), /bytes, manifest says 1000/);
    assert.ok(sent < 64 * 1024 * 1024, `the server was cut off early (${sent} bytes written)`);
    const b = await c.bundle(null, 0);
    assert.throws(
      () => asEnvelope(b.body),
      (e: Error & { code?: string }) => e.code === 'ERR_BUNDLE_FORMAT',
    );
  } finally {
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

test('an endless bundle answer or error answer is cut off at its cap, not buffered', async () => {
  let sent = 0;
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const srv = createServer((req, res) => {
    res.writeHead(req.url?.includes('wait=1') ? 500 : 200, { 'content-type': 'application/json' });
    res.write('{"error": {"code": "X", "message": "');
    const push = (): void => {
      while (sent < 512 * 1024 * 1024) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', push);
      }
      res.end('"}}');
    };
    push();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  try {
    const c = new ControllerClient(`http://127.0.0.1:${(srv.address() as AddressInfo).port}`, 'tok');
    await assert.rejects(c.bundle(null, 0), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_FLEET_HTTP');
      assert.match(e.message, /larger than 8388608 bytes/);
      return true;
    });
    assert.ok(sent < 64 * 1024 * 1024, `the server was cut off early (${sent} bytes written)`);
    sent = 0;
    await assert.rejects(c.bundle(null, 1), /GET \/v1\/bundle: HTTP 500$/);
    assert.ok(sent < 64 * 1024 * 1024, `the error answer was cut off early (${sent} bytes written)`);
  } finally {
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
  }
});
