/**
 * @module output/community-id
 * Community ID flow hash, spec v1 (Corelight): base64(SHA-1(seed, ordered addresses, proto, 0, ordered
 * ports)) prefixed with "1:". Computed once per flow record.
 */
import * as crypto from 'node:crypto';

// One-shot crypto.hash (Node >= 20.12) is several times faster than createHash for short input.
const oneShot = (crypto as { hash?: (alg: string, data: Uint8Array, enc: 'base64') => string }).hash;

/** The hash input of an IPv4 / IPv6 flow, reused (every byte is written before each hash). */
const SCRATCH4 = Buffer.alloc(2 + 4 * 2 + 2 + 4);
const SCRATCH16 = Buffer.alloc(2 + 16 * 2 + 2 + 4);

/** `src`/`dst` are 4 or 16 address bytes. */
export function communityId(
  src: Uint8Array,
  sport: number,
  dst: Uint8Array,
  dport: number,
  proto: number,
  seed = 0,
): string {
  let swap = false;
  for (let i = 0; i < src.length; i++) {
    if (src[i] !== dst[i]) {
      swap = src[i] > dst[i];
      break;
    }
    if (i === src.length - 1) swap = sport > dport;
  }
  const a = swap ? dst : src;
  const b = swap ? src : dst;
  const pa = swap ? dport : sport;
  const pb = swap ? sport : dport;
  const buf =
    a.length === 4 ? SCRATCH4 : a.length === 16 ? SCRATCH16 : Buffer.alloc(2 + a.length * 2 + 2 + 4);
  let o = buf.writeUInt16BE(seed, 0);
  buf.set(a, o);
  o += a.length;
  buf.set(b, o);
  o += b.length;
  buf[o++] = proto;
  buf[o++] = 0;
  o = buf.writeUInt16BE(pa, o);
  buf.writeUInt16BE(pb, o);
  return (
    '1:' + (oneShot ? oneShot('sha1', buf, 'base64') : crypto.createHash('sha1').update(buf).digest('base64'))
  );
}
