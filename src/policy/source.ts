/**
 * @module policy/source
 * Where a policy's parsed value came from, as the loader needs it: the value, the position of a path
 * in it (`['rules', 3, 'match', 'host', 'exact', 2]` → line and column) and an error at a path.
 * {@link YamlSource} (policy/yamlpos) is the text parsed with the `yaml` package; {@link ParsedSource}
 * is a value already parsed once and stored with its rules' positions — the compiled registry file
 * keeps one, so loading it does not load the `yaml` package at all (~40 ms of every `simulate`).
 */
import { isDeepStrictEqual } from 'node:util';
import { PolicyError } from './errors.js';

export type Path = (string | number)[];

/** What the policy loader reads a policy from. */
export interface PolicySource {
  readonly file: string;
  toJS(): unknown;
  /** Position of the value at `path` (or of its key with `key`), as [line, column], 1-based. */
  pos(path: Path, key?: boolean): [number, number];
  error(path: Path, message: string, key?: boolean): PolicyError;
}

/** `rules[3].match.host.exact[2]` */
export function pathText(path: Path): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${p}` : p;
  return s || '(top level)';
}

/** A policy value parsed earlier, with the [line, column] of each rule (`rules[i]`) in its text. */
export interface ParsedPolicy {
  value: unknown;
  rules: [number, number][];
}

/**
 * The stored form of a loaded policy's `value`: the value and each rule's position (rules by
 * `order`); undefined when JSON cannot carry the value unchanged (a `.inf`, `-0` or any non-JSON
 * scalar), so that a reader parses the text instead.
 */
export function storedPolicy(
  value: unknown,
  rules: readonly { order: number; pos: { line: number; column: number } | null }[],
): ParsedPolicy | undefined {
  if (!isDeepStrictEqual(JSON.parse(JSON.stringify(value)) as unknown, value)) return undefined;
  const pos: [number, number][] = [];
  for (const r of rules) pos[r.order] = [r.pos?.line ?? 1, r.pos?.column ?? 1];
  for (let i = 0; i < pos.length; i++) if (pos[i] === undefined) return undefined;
  return { value, rules: pos };
}

/** Whether `v` has the shape of a {@link ParsedPolicy} (read back from a file). */
export function isParsedPolicy(v: unknown): v is ParsedPolicy {
  if (typeof v !== 'object' || v === null) return false;
  const p = v as { value?: unknown; rules?: unknown };
  return (
    'value' in p &&
    Array.isArray(p.rules) &&
    p.rules.every(
      (r) =>
        Array.isArray(r) &&
        r.length === 2 &&
        Number.isInteger(r[0]) &&
        Number.isInteger(r[1]) &&
        (r[0] as number) >= 1 &&
        (r[1] as number) >= 1,
    )
  );
}

/**
 * A source over a value parsed once before. Positions are kept per rule only (what a loaded rule
 * records); a path inside rule `i` reports rule `i`'s position, any other path line 1, column 1. It is
 * used only for a policy that loaded without error when it was stored, so errors are not expected.
 */
export class ParsedSource implements PolicySource {
  constructor(
    readonly file: string,
    private readonly parsed: ParsedPolicy,
  ) {}

  /** The stored value itself, not a copy: the source owns it, and the loaded policy may share its
   *  arrays (as with the fresh value {@link YamlSource} parses). */
  toJS(): unknown {
    return this.parsed.value;
  }

  pos(path: Path): [number, number] {
    const i = path[0] === 'rules' && typeof path[1] === 'number' ? path[1] : -1;
    const p = i >= 0 ? this.parsed.rules[i] : undefined;
    return p ? [p[0], p[1]] : [1, 1];
  }

  error(path: Path, message: string): PolicyError {
    const [line, col] = this.pos(path);
    return new PolicyError(this.file, line, col, message);
  }
}
