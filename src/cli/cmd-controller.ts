/**
 * @module cli/cmd-controller
 * `chokepoint controller …` — run and bootstrap the fleet controller on its host:
 * `serve` (the HTTP API), `token create` (a first admin token, straight into the database),
 * `root-key create` (the offline root key pair), `signing-key rotate|revoke` (a new root-signed trust
 * document), `migrate`. Storage: SQLite in `--data DIR` (default ./chokepoint-data) or PostgreSQL with
 * `--database URL` / `DATABASE_URL`. See docs/CONTROLLER.md.
 */
import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import { UsageError } from '../util/errors.js';
import { openDb, type Db } from '../controller/db.js';
import { migrate } from '../controller/schema.js';
import { createToken, isRole } from '../controller/auth.js';
import { createRootKey, rotateSigningKey } from '../controller/keys.js';
import { DEFAULT_CONFIG } from '../controller/context.js';
import { startController } from '../controller/server.js';
import { readNamesFile } from '../policy/reference.js';
import { parseDuration } from './duration.js';

const HELP = `usage: chokepoint controller <command> [options]

  serve [--data DIR | --database URL] [--listen HOST:PORT] --reference NAMES
        [--tls-cert FILE --tls-key FILE] [--bundle-ttl 7d] [--body-limit BYTES] [--import-limit BYTES]
      run the API (default listen 127.0.0.1:8443; plain HTTP unless --tls-cert/--tls-key)
  token create [--data DIR | --database URL] --role ROLE --name NAME [--label TEXT]
      create a user (viewer|editor|approver|admin|node) if new and print a new token for it
  root-key create --out DIR
      write DIR/root.key (keep it offline) and DIR/root.pub (give it to the boxes: --trust)
  signing-key rotate [--data DIR | --database URL] --root ROOT.key
      make a new online signing key, certified by the root in a new trust document
  signing-key revoke [--data DIR | --database URL] --root ROOT.key KEYID
      revoke a signing key (a new key is made when it was the active one)
  migrate [--data DIR | --database URL]
      bring the database to the current schema

  Storage: SQLite in --data DIR (default ./chokepoint-data), or PostgreSQL with --database postgres://…
  or DATABASE_URL.
`;

const STORE = {
  data: { type: 'string' as const },
  database: { type: 'string' as const },
  help: { type: 'boolean' as const, short: 'h' },
};

function openStore(v: { data?: string; database?: string }): Db {
  const url = v.database ?? process.env.DATABASE_URL ?? null;
  if (url && !/^postgres(ql)?:\/\//.test(url)) throw new UsageError('--database must be a postgres:// URL');
  return openDb({ databaseUrl: url, dataDir: v.data ?? './chokepoint-data' });
}

export async function run(argv: string[]): Promise<number> {
  const [sub, sub2, ...rest0] = argv;
  if (!sub || sub === '--help' || sub === '-h') {
    process.stdout.write(HELP);
    return sub ? 0 : 2;
  }
  if (sub === 'serve') return serve([sub2, ...rest0].filter((x) => x !== undefined));
  if (sub === 'migrate') {
    const { values } = parseArgs({ args: [sub2, ...rest0].filter((x) => x !== undefined), options: STORE });
    const db = openStore(values);
    try {
      const applied = await migrate(db);
      process.stderr.write(
        applied.length ? `applied migration(s) ${applied.join(', ')}\n` : 'schema is current\n',
      );
      return 0;
    } finally {
      await db.close();
    }
  }
  const rest = rest0;
  if (sub === 'token' && sub2 === 'create') {
    const { values } = parseArgs({
      args: rest,
      options: { ...STORE, role: { type: 'string' }, name: { type: 'string' }, label: { type: 'string' } },
    });
    if (!values.role || !isRole(values.role))
      throw new UsageError('--role must be viewer, editor, approver, admin or node');
    if (!values.name || !/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(values.name))
      throw new UsageError('--name NAME is required (letters, digits, . _ @ -)');
    const db = openStore(values);
    try {
      await migrate(db);
      const t = await createToken(db, {
        name: values.name,
        role: values.role,
        label: values.label,
        actor: `host:${values.name}`,
      });
      process.stdout.write(t.token + '\n');
      process.stderr.write(`token ${t.id} for ${t.user} (${t.role}); it is shown only now\n`);
      return 0;
    } finally {
      await db.close();
    }
  }
  if (sub === 'root-key' && sub2 === 'create') {
    const { values } = parseArgs({ args: rest, options: { out: { type: 'string' } } });
    if (!values.out) throw new UsageError('--out DIR is required');
    try {
      const k = await createRootKey(values.out);
      process.stdout.write(`${k.keyid}\n`);
      process.stderr.write(
        `wrote ${k.privateFile} (keep offline) and ${k.publicFile} (for the boxes' --trust)\n`,
      );
      return 0;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
        process.stderr.write(
          `chokepoint controller root-key create: ${values.out} already holds a root key; not overwritten\n`,
        );
        return 1;
      }
      throw e;
    }
  }
  if (sub === 'signing-key' && (sub2 === 'rotate' || sub2 === 'revoke')) {
    const { values, positionals } = parseArgs({
      args: rest,
      allowPositionals: true,
      options: { ...STORE, root: { type: 'string' } },
    });
    if (!values.root) throw new UsageError('--root ROOT.key is required');
    if (sub2 === 'revoke' && positionals.length !== 1)
      throw new UsageError('signing-key revoke needs the KEYID (or a unique prefix)');
    if (sub2 === 'rotate' && positionals.length)
      throw new UsageError('signing-key rotate takes no arguments');
    const rootPrivatePem = await readFile(values.root, 'utf8');
    const db = openStore(values);
    try {
      await migrate(db);
      let newKey = true;
      if (sub2 === 'revoke') {
        const k = await db.get<{ status: string }>(
          'SELECT status FROM signing_keys WHERE keyid = $1 OR keyid LIKE $2',
          [positionals[0], positionals[0] + '%'],
        );
        newKey = k?.status === 'active';
      }
      const r = await rotateSigningKey(db, {
        rootPrivatePem,
        actor: 'host:root-key',
        revoke: sub2 === 'revoke' ? positionals : [],
        newKey,
      });
      process.stdout.write(`${r.keyid ?? ''}\n`);
      process.stderr.write(
        `trust document ${r.trustVersion} signed${r.keyid ? `; new signing key ${r.keyid}` : ''}; the controller re-signs the current bundle with it\n`,
      );
      return 0;
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_KEYS') {
        process.stderr.write(`chokepoint controller signing-key: ${(e as Error).message}\n`);
        return 1;
      }
      throw e;
    } finally {
      await db.close();
    }
  }
  throw new UsageError(`unknown command '${argv.join(' ')}'\n\n${HELP}`);
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...STORE,
      listen: { type: 'string', default: '127.0.0.1:8443' },
      reference: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'bundle-ttl': { type: 'string', default: '7d' },
      'body-limit': { type: 'string' },
      'import-limit': { type: 'string' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const m = /^(.*):(\d{1,5})$/.exec(values.listen);
  if (!m) throw new UsageError('--listen HOST:PORT');
  if (!values.reference)
    throw new UsageError(
      '--reference NAMES is required (e.g. ../shared/corpus/reference/top10k.txt): lint, blast radius and diffs are computed against it',
    );
  if (!!values['tls-cert'] !== !!values['tls-key'])
    throw new UsageError('--tls-cert and --tls-key go together');
  const ttl = parseDuration(values['bundle-ttl']);
  if (ttl === null || ttl < 60_000)
    throw new UsageError('--bundle-ttl: a duration of at least 1m (e.g. 7d, 12h)');
  const num = (s: string | undefined, d: number, name: string) => {
    if (s === undefined) return d;
    if (!/^\d+$/.test(s)) throw new UsageError(`${name}: a number of bytes`);
    return Number(s);
  };
  const reference = await readNamesFile(values.reference);
  const db = openStore(values);
  const run = await startController(
    db,
    {
      ...DEFAULT_CONFIG,
      reference,
      bundleTtlMs: ttl,
      bodyLimit: num(values['body-limit'], DEFAULT_CONFIG.bodyLimit, '--body-limit'),
      importLimit: num(values['import-limit'], DEFAULT_CONFIG.importLimit, '--import-limit'),
    },
    {
      host: m[1].replace(/^\[|\]$/g, ''),
      port: Number(m[2]),
      tls: values['tls-cert'] ? { cert: values['tls-cert'], key: values['tls-key']! } : null,
      log: (s) => process.stderr.write(s + '\n'),
    },
  );
  process.stderr.write(
    `controller listening on ${run.url} (storage: ${db.kind}; reference: ${reference.names.length} names from ${values.reference})\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await run.close();
  await db.close();
  return 0;
}
