/**
 * @module controller/tls.test
 * Optional TLS: the controller serves HTTPS with a certificate made here by `openssl` (Debian), and a
 * client that trusts that certificate gets answers; a plain-HTTP request to it gets none.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from './db.js';
import { startController } from './server.js';
import { DEFAULT_CONFIG } from './context.js';

test('--tls-cert/--tls-key: HTTPS with the given certificate', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctl-tls-'));
  const db = openDb({ dataDir: join(dir, 'data') });
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=controller.test',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const run = await startController(
      db,
      { ...DEFAULT_CONFIG, reference: { source: 'none', names: [] } },
      {
        host: '127.0.0.1',
        port: 0,
        tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') },
      },
    );
    try {
      assert.match(run.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const body = await new Promise<string>((resolve, reject) => {
        const req = request(run.url + '/v1/health', { ca: readFileSync(join(dir, 'cert.pem')) }, (res) => {
          let s = '';
          res.on('data', (d) => (s += d));
          res.on('end', () => resolve(s));
        });
        req.on('error', reject);
        req.end();
      });
      assert.deepEqual(JSON.parse(body), { ok: true, storage: 'sqlite' });
      await assert.rejects(fetch(run.url.replace('https:', 'http:') + '/v1/health'));
    } finally {
      await run.close();
    }
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
