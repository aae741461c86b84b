/**
 * @module bench/match-payload
 * Matcher cost of a payload rule (the 2022 QUIC rule: proto, port, payload_len, payload bytes,
 * except_dest_ip) against an anchor measured in the same run (a policy with one host rule only), on
 * a QUIC v1 flow input. Prints ns/match and the ratio. `npx tsx bench/match-payload.ts`
 */
import { parsePolicy, compilePolicy } from '../src/policy/index.js';
const base = `version: 1\ndefault: allow\nrules:\n  - {id: h, action: block, match: {host: {suffix: [twitter.com]}}}\n`;
const quic =
  base +
  `  - {id: q, action: block, match: {proto: udp, dest_port: 443, payload_len: ">=1001", payload: [{offset: 1, hex: "00000001"}], except_dest_ip: [203.0.113.0/24]}}\n`;
const a = compilePolicy(await parsePolicy(base, 'a.yaml'));
const b = compilePolicy(await parsePolicy(quic, 'b.yaml'));
const inp = {
  host: 'www.example.com',
  proto: 'UDP' as const,
  src_ip: '10.0.0.1',
  dest_ip: '198.51.100.7',
  dest_port: 443,
  app_proto: 'quic',
  payload_len: 1200,
  payload_head: 'c000000001088394c8f03e5157080000',
};
const N = 2_000_000;
const t = (m: typeof a) => {
  const s = process.hrtime.bigint();
  let x = 0;
  for (let i = 0; i < N; i++) if (m.match(inp).rule_id) x++;
  return [Number(process.hrtime.bigint() - s) / N, x] as const;
};
t(a);
t(b);
const [ta] = t(a);
const [tb, hits] = t(b);
console.log(
  `anchor (host rule only) ${ta.toFixed(0)} ns/match; + QUIC payload rule ${tb.toFixed(0)} ns/match (hits ${hits}/${N}); ratio ${(tb / ta).toFixed(2)}`,
);
