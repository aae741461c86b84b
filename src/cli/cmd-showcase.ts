/**
 * @module cli/cmd-showcase
 * `chokepoint showcase` (what `npm start` runs): on one machine, without root or any external
 * server, a fleet controller on embedded SQLite in a fresh temporary state directory, a demo fleet of
 * replay boxes (showcase/fleet) and the 2021 story played through the API (showcase/story); prints
 * the dashboard URL and sign-in tokens first, then one line per story step with the page to look at.
 * The dashboard stays up after the story; Ctrl-C or SIGTERM stops the boxes and the controller,
 * removes the state directory and exits 0.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from '../util/errors.js';
import { openDb } from '../controller/db.js';
import { migrate } from '../controller/schema.js';
import { createToken, type Role } from '../controller/auth.js';
import { createRootKey, rotateSigningKey } from '../controller/keys.js';
import { DEFAULT_CONFIG } from '../controller/context.js';
import { startController, type RunningController } from '../controller/server.js';
import { showcaseReference } from '../showcase/reference.js';
import { BOXES, writeCapture } from '../showcase/data.js';
import { startFleet, type BoxSpec, type DemoFleet } from '../showcase/fleet.js';
import { playStory } from '../showcase/story.js';

export const summary = 'controller + demo fleet + the 2021 story in the dashboard (what npm start runs)';

const HELP = `usage: chokepoint showcase [--listen HOST:PORT] [--reference NAMES] [--rate PPS] [--verbose]

Starts a fleet controller on embedded SQLite in a new temporary directory (removed on exit), three
replay boxes in this process (box-canary with tier=canary, box-north, box-south), prints the
dashboard URL and sign-in tokens, and plays the 2021 *t.co* story through the API. No root, no
external server. Ctrl-C stops everything.

  --listen HOST:PORT   controller address (default 127.0.0.1:8443; when that port is taken, a free one)
  --reference NAMES    reference names for lint and blast radius (default: ../shared/corpus/reference/
                       top10k.txt next to the repository when present, else a bundled list)
  --rate PPS           packets per second each replay box replays (default 400)
  --verbose            the boxes' and the controller's log on stderr
`;

const PEOPLE: { name: string; role: Role }[] = [
  { name: 'ed', role: 'editor' },
  { name: 'alice', role: 'approver' },
  { name: 'bob', role: 'approver' },
  { name: 'carol', role: 'admin' },
  { name: 'visitor', role: 'admin' },
  { name: 'viewer', role: 'viewer' },
];

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: 'string' },
      reference: { type: 'string' },
      rate: { type: 'string', default: '400' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const m = /^(.*):(\d{1,5})$/.exec(values.listen ?? '127.0.0.1:8443');
  if (!m) throw new UsageError('--listen HOST:PORT');
  const pps = Number(values.rate);
  if (!(pps >= 10 && pps <= 100_000)) throw new UsageError('--rate: 10..100000 packets per second');
  const out = (s: string) => process.stdout.write(s + '\n');
  const log = values.verbose ? (s: string) => process.stderr.write(s + '\n') : () => {};

  const dir = mkdtempSync(join(tmpdir(), 'chokepoint-showcase-'));
  const stop = new AbortController();
  let ctl: RunningController | null = null;
  let fleet: DemoFleet | null = null;
  const db = openDb({ dataDir: join(dir, 'data') });
  let story: Promise<unknown> = Promise.resolve();
  let failed = false;
  const shutdown = async (): Promise<number> => {
    stop.abort(new Error('stopped'));
    await story.catch(() => {});
    await fleet?.stop().catch((e: Error) => process.stderr.write(`showcase: fleet stop: ${e.message}\n`));
    await ctl?.close().catch(() => {}); // returns after the request handlers (long-polls cut by it)
    await db.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    return failed ? 1 : 0;
  };
  // `on`, not `once`: a second signal must find this handler too, or Node's default action kills the
  // process before the directory is removed (`npm start` under a process-group kill delivers SIGTERM
  // twice: once from the kill, once forwarded by npm)
  let signalled = false;
  const stopped = new Promise<string>((resolve) => {
    const on = (sig: string) => () => {
      if (signalled) {
        // a second signal while cleaning up: leave now, without the state directory
        rmSync(dir, { recursive: true, force: true });
        process.exit(1);
      }
      signalled = true;
      resolve(sig);
    };
    process.on('SIGINT', on('SIGINT'));
    process.on('SIGTERM', on('SIGTERM'));
  });
  try {
    const reference = await showcaseReference(values.reference);
    await migrate(db);
    const tokens: Record<string, string> = {};
    for (const p of PEOPLE) tokens[p.name] = (await createToken(db, { ...p, actor: 'showcase' })).token;
    const rk = await createRootKey(join(dir, 'keys'));
    await rotateSigningKey(db, { rootPrivatePem: readFileSync(rk.privateFile, 'utf8'), actor: 'showcase' });
    const config = { ...DEFAULT_CONFIG, reference };
    const serve = { log, rolloutTickMs: 500 };
    const host = m[1].replace(/^\[|\]$/g, '');
    try {
      ctl = await startController(db, config, { ...serve, host, port: Number(m[2]) });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || values.listen) throw e;
      ctl = await startController(db, config, { ...serve, host, port: 0 });
    }
    out(`Chokepoint showcase — controller on embedded SQLite in ${dir} (removed on exit)`);
    out(`Reference names for lint and blast radius: ${reference.names.length} from ${reference.source}`);
    out(`Dashboard: ${ctl.url}/`);
    out(`Sign-in token (role admin: approve, override, start/roll back rollouts): ${tokens.visitor}`);
    out(`Sign-in token (role viewer: read only): ${tokens.viewer}`);
    out(`The story (one line per step, with the page to open):`);
    const capture = join(dir, 'demo.pcap');
    writeCapture(capture);
    const specs: BoxSpec[] = [];
    for (const b of BOXES)
      specs.push({
        ...b,
        token: (await createToken(db, { name: b.node, role: 'node', actor: 'showcase' })).token,
      });
    const url = ctl.url;
    story = playStory({
      url,
      tokens: { ed: tokens.ed, alice: tokens.alice, bob: tokens.bob, carol: tokens.carol },
      nodes: BOXES.map((b) => b.node),
      dir,
      say: out,
      signal: stop.signal,
      onPublished: async () => {
        fleet = await startFleet({
          controller: url,
          rootPublicPem: readFileSync(rk.publicFile, 'utf8'),
          capture,
          stateDir: join(dir, 'boxes'),
          specs,
          pps,
          statusEveryMs: 2000,
          log,
        });
      },
    }).then(
      (r) =>
        out(
          `Story done: rollout #${r.rollout} of version #${r.badVersion} rolled back; the fleet runs version #${r.goodVersion}. The dashboard stays up; Ctrl-C stops everything.`,
        ),
      (e: Error) => {
        if (stop.signal.aborted) return;
        failed = true;
        out(`Story failed: ${e.message}. The dashboard stays up; Ctrl-C stops everything.`);
      },
    );
  } catch (e) {
    await shutdown();
    throw e;
  }
  const sig = await stopped;
  process.stderr.write(`showcase: ${sig}, stopping the boxes and the controller\n`);
  return shutdown();
}
