/**
 * @module cli/options
 * Option value parsers shared by commands: positive integers and sizes (`64KiB`, `16MiB`, as the
 * policy's units), each failing with a UsageError that names the option.
 */
import { UsageError } from '../util/errors.js';
import { parseSize } from '../policy/units.js';

/** A positive integer option, or undefined when not given. */
export function optInt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} must be a positive integer, not '${v}'`);
  return n;
}

/** A size option (`65536`, `64KiB`, `16MiB`), or undefined when not given. */
export function optSize(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = parseSize(v);
  if (typeof n === 'string') throw new UsageError(`${name}: ${n.slice(1)}`);
  return n;
}
