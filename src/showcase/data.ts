/**
 * @module showcase/data
 * What the showcase plays with: the demo capture (from the generator, with the names of the 2021
 * story), the demo registry as a registry dump in the zapret-info CSV layout (imported through the
 * controller's registry import, so every entry carries the dump's authority, decision number and
 * date), the twitter throttle entries, the 2021 `*t.co*` entry, and the rollout plan (a shadow stage
 * that only records, then an enforcing canary; short bakes, 1 s samples).
 */
import { closeSync, openSync } from 'node:fs';
import { PcapWriter } from '../gen/pcap-writer.js';
import { generate, type TruthRow } from '../gen/synth.js';

/** Names in the demo traffic: the throttle targets, the 2021 collateral, blocked and neutral sites. */
export const TRAFFIC_NAMES = [
  'twitter.com',
  't.co',
  'abs.twimg.com',
  'pbs.twimg.com',
  'reddit.com',
  'www.reddit.com',
  'microsoft.com',
  'www.microsoft.com',
  'example.org',
  'www.gosuslugi.ru',
  'forbidden-news.example',
  'bet-now.example',
];

/** The names the `*t.co*` rule throttles although nobody meant them. */
export const COLLATERAL = ['reddit.com', 'microsoft.com'];

/** Write the demo capture; returns its ground truth. Throws when the collateral names are missing. */
export function writeCapture(path: string): TruthRow[] {
  const fd = openSync(path, 'w');
  let truth: TruthRow[];
  try {
    truth = generate(new PcapWriter(fd), { seed: 2021, flows: 200, names: TRAFFIC_NAMES, sizeScale: 500 });
  } finally {
    closeSync(fd);
  }
  for (const n of COLLATERAL)
    if (!truth.some((t) => t.host === n || t.host?.endsWith('.' + n)))
      throw new Error(`showcase capture ${path}: no flow to ${n}`);
  return truth;
}

/** A registry dump (zi-csv layout: IP;domain;URL;authority;decision;date) of the names to block. */
export const DEMO_DUMP = `Updated: 2021-03-09 18:00:00 +0000
;forbidden-news.example;;Example Regulator;27-31-2021/Id101-21;2021-01-15
;*.forbidden-news.example;;Example Regulator;27-31-2021/Id101-21;2021-01-15
;bet-now.example;https://bet-now.example/live;Example Gambling Authority;2-1544/2021;2021-02-02
203.0.113.0/24;;;Example Court of Appeal;33a-512/2021;2021-02-20
`;

const PROVENANCE = {
  authority: 'Example Regulator',
  legal_basis: 'Order 12/2021 (demo)',
  decided: '2021-03-10',
  requested_by: 'showcase',
};

/** The deliberate throttle: twitter's names, with explicit match types. */
export const TWITTER_ENTRIES = [
  { kind: 'suffix', value: 'twitter.com' },
  { kind: 'exact', value: 't.co' },
  { kind: 'subdomains', value: 'twimg.com' },
].map((e) => ({ ...e, action: 'throttle', rate: '128kbit', ...PROVENANCE, reference: 'Order 12/2021' }));

/** The rule as deployed on 10 March 2021: every name containing "t.co". */
export const TCO_ENTRY = {
  kind: 'substring',
  value: 't.co',
  action: 'throttle',
  rate: '128kbit',
  ...PROVENANCE,
  reference: 'Order 12/2021, as deployed on 10 March 2021',
};

/**
 * The rollout: a shadow stage on every box that records what the version would change (its limits
 * are open: it observes, it does not judge), then an enforcing canary judged with the default limits.
 */
export const PLAN = `stages:
  - name: shadow
    mode: shadow
    select: all
    bake_s: 4
    analysis: {interval_s: 1, threshold: 2, limits: {blocked_share_pp: 100, pattern_flows: 1000000000}}
  - name: canary
    select: {labels: {tier: canary}}
    bake_s: 20
    analysis: {interval_s: 1, threshold: 2}
  - name: all
    select: all
    bake_s: 10
    analysis: {interval_s: 1, threshold: 2}
`;

/** The demo fleet: name and labels of each replay box. */
export const BOXES: { node: string; labels: Record<string, string> }[] = [
  { node: 'box-canary', labels: { tier: 'canary', region: 'north' } },
  { node: 'box-north', labels: { tier: 'main', region: 'north' } },
  { node: 'box-south', labels: { tier: 'main', region: 'south' } },
];
