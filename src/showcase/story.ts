/**
 * @module showcase/story
 * The 2021 story, played through the controller's real API (controller/client, one token per
 * person) so every step is in the dashboard and the audit log: the registry imported with
 * provenance; a good version submitted, approved by two approvers, published and applied by every
 * box; the `*t.co*` substring throttle added and submitted; lint objects (blast radius over the
 * reference names) and approval is refused; an admin records an override; two approvals; a rollout
 * (shadow on every box, then an enforcing canary) whose analysis sees reddit.com and microsoft.com
 * newly throttled on the canary and rolls back by itself; the fleet back on the good version.
 * One line per step names the dashboard page to look at.
 */
import { writeFile } from 'node:fs/promises';
import { Client, ClientError, type Json } from '../controller/client.js';
import { DEMO_DUMP, PLAN, TCO_ENTRY, TWITTER_ENTRIES } from './data.js';

export interface StoryOptions {
  url: string;
  /** Tokens of the story's people: editor `ed`, approvers `alice` and `bob`, admin `carol`. */
  tokens: { ed: string; alice: string; bob: string; carol: string };
  /** Node names of the demo fleet (all must take each version). */
  nodes: string[];
  /** Work directory (the registry dump is written there to be uploaded). */
  dir: string;
  /** Called with each story line. */
  say: (line: string) => void;
  /** Called after the good version is published (the caller starts the boxes then). */
  onPublished: (bundle: number) => Promise<void>;
  signal: AbortSignal;
  /** Longest wait for any one step (ms). */
  stepTimeoutMs?: number;
}

export interface StoryResult {
  goodVersion: number;
  badVersion: number;
  rollout: number;
  reason: string;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', stop);
      resolve();
    }, ms);
    const stop = () => {
      clearTimeout(t);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', stop, { once: true });
  });

export async function playStory(o: StoryOptions): Promise<StoryResult> {
  const as = (who: keyof StoryOptions['tokens']) => new Client(o.url, o.tokens[who]);
  const ed = as('ed');
  const alice = as('alice');
  const bob = as('bob');
  const carol = as('carol');
  const page = (hash: string) => `${o.url}/#${hash}`;
  const say = (text: string, hash: string) => o.say(`${text}\n    → ${page(hash)}`);
  const limit = o.stepTimeoutMs ?? 120_000;
  /** Poll `get` until `done` holds for its value (bounded by the step timeout). */
  async function until<T>(what: string, get: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
    const end = Date.now() + limit;
    for (;;) {
      const v = await get();
      if (done(v)) return v;
      if (Date.now() > end) throw new Error(`showcase: gave up waiting for ${what} after ${limit / 1000} s`);
      await sleep(250, o.signal);
    }
  }
  const nodesOn = (bundle: number) =>
    until(
      `every box on bundle ${bundle}`,
      () => ed.call('GET', '/v1/nodes') as Promise<Json>,
      (r) =>
        o.nodes.every((n) => r.nodes.some((x: Json) => x.name === n && Number(x.active_version) >= bundle)),
    );

  // 1. the registry, with provenance
  const dump = `${o.dir}/registry-dump.csv`;
  await writeFile(dump, DEMO_DUMP);
  const imp = await ed.upload(
    '/v1/registry/import?format=zi-csv&source=demo-dump&filename=registry-dump.csv&action=block',
    dump,
  );
  for (const e of TWITTER_ENTRIES) await ed.call('POST', '/v1/registry/entries', e);
  say(
    `1. Registry: ${imp.added} entries imported from a registry dump (zi-csv: authority, decision number, date) and ${TWITTER_ENTRIES.length} twitter throttle entries (suffix twitter.com, exact t.co, subdomains twimg.com) — each with its provenance`,
    'registry?q=twitter.com',
  );

  // 2. a good version: submitted, two approvals, published
  const good = await ed.call('POST', '/v1/versions', {
    from_registry: true,
    note: 'twitter throttle + dump',
  });
  await alice.call('POST', `/v1/versions/${good.id}/approve`);
  await bob.call('POST', `/v1/versions/${good.id}/approve`);
  const pub = await alice.call('POST', `/v1/versions/${good.id}/publish`);
  const goodBundle = Number(pub.bundle_version);
  say(
    `2. Version #${good.id} (the registry): lint ${good.errors} error(s), ${good.warnings} warning(s); approved by alice and bob; published as signed bundle ${goodBundle}`,
    `versions?id=${good.id}`,
  );
  await o.onPublished(goodBundle);
  await nodesOn(goodBundle);
  say(
    `3. Fleet: ${o.nodes.length} replay boxes (${o.nodes.join(', ')}) verified and applied bundle ${goodBundle} and report their traffic`,
    'nodes',
  );

  // 3. the 2021 rule
  await ed.call('POST', '/v1/registry/entries', TCO_ENTRY);
  const bad = await ed.call('POST', '/v1/versions', {
    from_registry: true,
    note: 'throttle *t.co* (as deployed on 10 March 2021)',
  });
  const sub = bad.findings?.find((f: Json) => f.code === 'emulation-substring');
  const diffNames = (bad.diff?.groups ?? [])
    .filter((g: Json) => g.to.action === 'throttle' && g.from.action !== 'throttle')
    .flatMap((g: Json) => g.names as string[]);
  say(
    `4. The *t.co* substring throttle is added to the registry and submitted as version #${bad.id}`,
    `versions?id=${bad.id}`,
  );
  say(
    `5. Lint objects: ${bad.errors} error(s)${sub ? ` — ${sub.message}; e.g. ${(sub.examples as string[]).slice(0, 5).join(', ')}` : ''}; the diff against #${good.id}: ${diffNames.length} reference name(s) newly throttled (${diffNames.slice(0, 5).join(', ')})`,
    `versions?id=${bad.id}`,
  );
  let refused = '';
  try {
    await alice.call('POST', `/v1/versions/${bad.id}/approve`);
  } catch (e) {
    if (!(e instanceof ClientError)) throw e;
    refused = e.message;
  }
  if (!refused) throw new Error(`showcase: version ${bad.id} was approvable without an override`);
  say(`6. alice tries to approve #${bad.id}: refused — ${refused}`, `versions?id=${bad.id}`);
  const reason = 'ordered to throttle t.co today; collateral accepted (2021 re-enactment)';
  await carol.call('POST', `/v1/versions/${bad.id}/override`, { reason });
  say(`7. carol (admin) records an override: "${reason}" — an override is not an approval`, `audit`);
  await alice.call('POST', `/v1/versions/${bad.id}/approve`);
  const ap = await bob.call('POST', `/v1/versions/${bad.id}/approve`);
  say(`8. alice and bob approve: version #${bad.id} is ${ap.status}`, `versions?id=${bad.id}`);

  // 4. the rollout: shadow, then canary
  const ro = await alice.call('POST', '/v1/rollouts', { version_id: bad.id, plan: PLAN });
  say(
    `9. alice starts rollout #${ro.id}: shadow on every box (observes, 1 s samples) → canary (tier=canary, enforced, judged) → all`,
    `rollouts?id=${ro.id}`,
  );
  // while the shadow stage runs, the boxes evaluate the version beside the active one
  let seen: string[] = [];
  const afterShadow = await until(
    `rollout ${ro.id} past its shadow stage`,
    async () => {
      const r = await ed.call('GET', `/v1/rollouts/${ro.id}`);
      if (r.stage === 0 && r.state === 'running') {
        const sh = await ed.call('GET', `/v1/versions/${bad.id}/shadow`);
        const names = (sh.changed ?? [])
          .filter((c: Json) => c.to === 'throttle')
          .flatMap((c: Json) => (c.top as { name: string }[]).map((t) => t.name));
        if (names.length > seen.length) seen = names;
      }
      return r;
    },
    (r) => r.state !== 'running' || (r.stage > 0 && r.stages[r.stage]?.started !== null),
  );
  say(
    `10. Shadow stage: the boxes evaluated #${bad.id} beside #${good.id} without enforcing it; it would newly throttle ${seen.length ? seen.join(', ') : '(no report yet)'}`,
    `versions?id=${bad.id}`,
  );
  if (afterShadow.state === 'running')
    say(
      `11. Canary stage: ${afterShadow.stages[1]?.nodes?.join(', ') || 'the canary'} now enforces #${bad.id}; the analysis compares each sample with the box's own baseline`,
      `rollouts?id=${ro.id}`,
    );
  const end = await until(
    `rollout ${ro.id} to end`,
    () => ed.call('GET', `/v1/rollouts/${ro.id}`) as Promise<Json>,
    (r) => r.state !== 'running' && r.state !== 'paused',
  );
  if (end.state !== 'rolled_back')
    throw new Error(`showcase: rollout ${ro.id} ended ${end.state} (${end.reason ?? 'no reason'})`);
  const evidence = [
    ...new Set(
      (end.samples ?? [])
        .filter((x: Json) => !x.pass && x.metric === 'pattern_flows')
        .flatMap((x: Json) => (x.names ?? []) as string[]),
    ),
  ];
  say(
    `12. Rolled back automatically: ${end.reason}${evidence.length ? `; newly throttled through the pattern: ${evidence.join(', ')}` : ''}; bundle ${end.bundle_version} gives the boxes #${good.id}'s content back`,
    `rollouts?id=${ro.id}`,
  );
  await nodesOn(Number(end.bundle_version));
  const v = await ed.call('GET', `/v1/versions/${bad.id}`);
  const audit = await ed.call('GET', '/v1/audit/verify');
  say(
    `13. Fleet: every box is back on #${good.id} (bundle ${end.bundle_version}); version #${bad.id} is ${v.status}; audit chain ${audit.ok ? 'verified' : 'NOT verified'}`,
    'nodes',
  );
  return { goodVersion: good.id, badVersion: bad.id, rollout: ro.id, reason: String(end.reason) };
}
