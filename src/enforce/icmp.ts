/**
 * @module enforce/icmp
 * Address blocking that covers ICMP (docs/POLICY.md "Block methods"): a block rule whose conditions
 * are addresses only (`dest_ip`/`src_ip`, optionally `except_dest_ip`; no name, protocol, port or
 * payload condition) blocks ICMP between those addresses too. The decision comes from the one
 * decision core (`policy.match`), so precedence is the policy's; the packet is looked at in both
 * directions (a subscriber's echo request to a blocked server, and the server's ICMP toward it).
 * IPv4 ICMP and ICMPv6 (next header 58 right after the fixed header); neighbour discovery (ICMPv6
 * types 133–137) is never blocked, or the box would cut the hosts' address resolution. ICMP is not a
 * hot path: only evaluated while the policy has such a rule.
 */
import type { CompiledPolicy, Decision, MatchInput, Rule } from '../policy/types.js';
import { ipv6ToString } from '../output/address.js';

/** Ids of the enabled block rules that condition on addresses only. */
export function addressRuleIds(p: CompiledPolicy): Set<string> {
  const ids = new Set<string>();
  for (const r of p.policy.rules) if (isAddressOnly(r)) ids.add(r.id);
  return ids;
}

function isAddressOnly(r: Rule): boolean {
  const m = r.match;
  if (!r.enabled || r.action !== 'block' || (!m.dest_ip && !m.src_ip)) return false;
  return (
    !m.host && !m.dest_port && !m.proto && !m.app_proto && !m.alpn && !m.ja4 && !m.quic_version &&
    m.ech === null && !m.payload_len && !m.payload
  ); // prettier-ignore
}

const v4 = (b: Uint8Array, o: number): string => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
function v6(b: Uint8Array, o: number): string {
  const dv = new DataView(b.buffer, b.byteOffset + o, 16);
  return ipv6ToString([dv.getUint32(0), dv.getUint32(4), dv.getUint32(8), dv.getUint32(12)]);
}

/** ICMPv6 neighbour discovery: router solicitation/advertisement, neighbour solicitation/advertisement, redirect. */
const isNdp = (type: number) => type >= 133 && type <= 137;

/**
 * The address rule that blocks this raw IP packet if it is ICMP or ICMPv6 (either direction), else
 * null. `ids`: from {@link addressRuleIds} for `p`.
 */
export function icmpBlock(b: Uint8Array, p: CompiledPolicy, ids: Set<string>): Decision | null {
  if (ids.size === 0 || b.length < 20) return null;
  let a: string;
  let z: string;
  if (b[0] >> 4 === 4 && b[9] === 1) {
    a = v4(b, 12);
    z = v4(b, 16);
  } else if (b[0] >> 4 === 6 && b.length >= 44 && b[6] === 58 && !isNdp(b[40])) {
    a = v6(b, 8);
    z = v6(b, 24);
  } else return null;
  for (const [src, dst] of [
    [a, z],
    [z, a],
  ]) {
    const input: MatchInput = {
      host: null,
      proto: 'TCP',
      src_ip: src,
      dest_ip: dst,
      dest_port: 0,
      app_proto: null,
    };
    const d = p.match(input);
    if (d.action === 'block' && d.rule_id !== null && ids.has(d.rule_id)) return d;
  }
  return null;
}
