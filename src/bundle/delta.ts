/**
 * @module bundle/delta
 * Deltas between two versions of a bundle's sorted list file (the controller writes every registry
 * list as its entries sorted and joined with `\n`, one trailing `\n`: the canonical entry list). A
 * delta names the SHA-256 of the file it applies to and of the file it produces, then the removed
 * (`-entry`) and added (`+entry`) lines in list order. Applying one merges it into the held file and
 * hashes the result: the result is used only when its SHA-256 equals the one the *signed* manifest of
 * the new bundle lists for that file (the caller checks with bundle/verify `verifyFile`), so a
 * tampered, foreign or stale delta can never yield content the controller did not sign; any mismatch
 * means "fetch the full file". Hashes are over the canonical file bytes, never over an in-memory
 * table. Pure: no storage, no network.
 */
import { createHash } from 'node:crypto';
import { ChokepointError } from '../util/errors.js';

export class DeltaError extends ChokepointError {}

export const DELTA_MAGIC = 'chokepoint-delta 1';

/** SHA-256 (hex) of a list file's bytes: the canonical hash a delta must reproduce. */
export function contentHash(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The canonical bytes of an entry list: unique entries sorted (UTF-16 order), `\n`-joined, trailing `\n`. */
export function canonicalList(entries: Iterable<string>): Buffer {
  const l = [...new Set(entries)].sort();
  return Buffer.from(l.length ? l.join('\n') + '\n' : '');
}

/** Lines of a canonical list file, or null when it is not one (unsorted, duplicate, CR, no trailing newline). */
function sortedLines(data: Buffer): string[] | null {
  const s = data.toString('utf8');
  if (s === '') return [];
  if (!s.endsWith('\n') || s.includes('\r')) return null;
  const l = s.slice(0, -1).split('\n');
  for (let i = 1; i < l.length; i++) if (!(l[i - 1]! < l[i]!)) return null;
  return l;
}

/** The delta from `from` to `to`, or null when either is not a canonical sorted list. */
export function makeDelta(from: Buffer, to: Buffer): Buffer | null {
  const a = sortedLines(from);
  const b = sortedLines(to);
  if (!a || !b) return null;
  const out: string[] = [`${DELTA_MAGIC} ${contentHash(from)} ${contentHash(to)}`];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i]! < b[j]!)) out.push('-' + a[i++]!);
    else if (i >= a.length || b[j]! < a[i]!) out.push('+' + b[j++]!);
    else {
      i++;
      j++;
    }
  }
  return Buffer.from(out.join('\n') + '\n');
}

/** The header of a delta: the hashes it goes from and to. Throws DeltaError when malformed. */
export function deltaHeader(delta: Buffer): { from: string; to: string } {
  const end = delta.indexOf(0x0a);
  const head = (end < 0 ? delta : delta.subarray(0, end)).toString('utf8');
  const m = /^chokepoint-delta 1 ([0-9a-f]{64}) ([0-9a-f]{64})$/.exec(head);
  if (!m) throw new DeltaError('ERR_DELTA_FORMAT', 'delta: line 1: not a chokepoint-delta 1 header');
  return { from: m[1]!, to: m[2]! };
}

/**
 * Apply `delta` to the held file `from`. Throws DeltaError (stable codes) when the delta is malformed,
 * is for other content, removes a line that is not there, adds one that is, is out of order, or when
 * the result's hash is not the one the delta names. The caller still checks the result against the
 * signed manifest.
 */
export function applyDelta(from: Buffer, delta: Buffer): Buffer {
  const h = deltaHeader(delta);
  if (contentHash(from) !== h.from)
    throw new DeltaError('ERR_DELTA_BASE', 'delta: it applies to other content than the held file');
  const a = sortedLines(from);
  if (!a) throw new DeltaError('ERR_DELTA_BASE', 'delta: the held file is not a sorted list');
  const s = delta.toString('utf8');
  if (!s.endsWith('\n')) throw new DeltaError('ERR_DELTA_FORMAT', 'delta: no trailing newline');
  const ops = s.slice(0, -1).split('\n');
  const out: string[] = [];
  let i = 0;
  let prev: string | null = null;
  for (let k = 1; k < ops.length; k++) {
    const op = ops[k]!;
    const v = op.slice(1);
    if ((op[0] !== '-' && op[0] !== '+') || (prev !== null && !(prev < v)))
      throw new DeltaError('ERR_DELTA_FORMAT', `delta: line ${k + 1}: bad or out-of-order operation`);
    prev = v;
    while (i < a.length && a[i]! < v) out.push(a[i++]!);
    const present = i < a.length && a[i] === v;
    if (op[0] === '-') {
      if (!present) throw new DeltaError('ERR_DELTA_APPLY', `delta: line ${k + 1}: removes an absent entry`);
      i++;
    } else {
      if (present) throw new DeltaError('ERR_DELTA_APPLY', `delta: line ${k + 1}: adds a present entry`);
      out.push(v);
    }
  }
  while (i < a.length) out.push(a[i++]!);
  const r = Buffer.from(out.length ? out.join('\n') + '\n' : '');
  if (contentHash(r) !== h.to)
    throw new DeltaError('ERR_DELTA_HASH', 'delta: the result does not have the hash the delta names');
  return r;
}
