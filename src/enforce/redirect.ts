/**
 * @module enforce/redirect
 * The HTTP response of block method `redirect` (docs/POLICY.md "Block methods"): a 307 to the
 * configured block page, `Connection: close`, no body. The location was validated by the policy
 * loader (absolute http/https URL, printable ASCII: no header injection); responses are cached per
 * location so a redirect allocates nothing after the first.
 */

const cache = new Map<string, Uint8Array>();

/** The bytes of the 307 response pointing to `location`. */
export function redirectResponse(location: string): Uint8Array {
  let r = cache.get(location);
  if (r) return r;
  if (!/^[!-~]+$/.test(location))
    throw new Error(`redirect location is not printable ASCII: ${JSON.stringify(location)}`);
  r = new TextEncoder().encode(
    `HTTP/1.1 307 Temporary Redirect\r\nLocation: ${location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
  );
  if (cache.size < 64) cache.set(location, r);
  return r;
}
