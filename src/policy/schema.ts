/**
 * @module policy/schema
 * Structural validation of a policy against the published JSON Schema
 * (`schema/policy.schema.json`, found by walking up from this module). The validator is ajv's
 * standalone code for that schema, generated ahead of time (`policy/schema-validator.gen.ts`,
 * `npm run gen:validator`; a test holds it to the schema): compiling the schema with ajv at run time
 * cost ~0.1 s of every command that reads a policy. The first error is turned into a
 * {@link PolicyError} at the offending key or value.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { validate as generated } from './schema-validator.gen.js';
import { pathText, type Path, type PolicySource } from './source.js';
import type { PolicyError } from './errors.js';

/** Absolute path of schema/policy.schema.json in this installation. */
export function schemaPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'schema', 'policy.schema.json');
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  throw new Error('schema/policy.schema.json not found above ' + fileURLToPath(import.meta.url));
}

/** The generated validator, typed as ajv's (it is ajv's code: same call, same `errors`). */
const validator = generated as unknown as ValidateFunction;

function toPath(instancePath: string): Path {
  if (!instancePath) return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function describe(e: ErrorObject, path: Path): { message: string; path: Path; key: boolean } {
  const where = pathText(path);
  switch (e.keyword) {
    case 'additionalProperties': {
      const prop = (e.params as { additionalProperty: string }).additionalProperty;
      const props = Object.keys((e.parentSchema as { properties?: object })?.properties ?? {});
      return {
        message: `${where}: unknown key '${prop}'${props.length ? ` (expected one of: ${props.join(', ')})` : ''}`,
        path: [...path, prop],
        key: true,
      };
    }
    case 'required':
      return {
        message: `${where}: missing required key '${(e.params as { missingProperty: string }).missingProperty}'`,
        path,
        key: false,
      };
    case 'enum':
      return {
        message: `${where}: ${JSON.stringify(e.data)} is not one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`,
        path,
        key: false,
      };
    case 'const':
      return {
        message: `${where}: must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`,
        path,
        key: false,
      };
    case 'type':
      return {
        message: `${where}: must be ${String((e.params as { type: unknown }).type).replace(',', ' or ')}, got ${Array.isArray(e.data) ? 'a list' : e.data === null ? 'nothing (null)' : typeof e.data}`,
        path,
        key: false,
      };
    case 'pattern':
      return {
        message: `${where}: ${JSON.stringify(e.data)} has the wrong form${(e.parentSchema as { description?: string })?.description ? ` (${(e.parentSchema as { description: string }).description})` : ` (pattern ${(e.params as { pattern: string }).pattern})`}`,
        path,
        key: false,
      };
    default:
      return { message: `${where}: ${e.message ?? e.keyword}`, path, key: false };
  }
}

/** Validate `value` (parsed from `src`); throws the PolicyError of the most useful error. */
export function validateStructure(value: unknown, src: PolicySource): void {
  if (validator(value)) return;
  const errors = validator.errors ?? [];
  // Prefer concrete errors over the combinators that wrap them, deepest path first.
  const concrete = errors.filter((e) => !['anyOf', 'oneOf', 'if', 'then'].includes(e.keyword));
  const pool = concrete.length ? concrete : errors;
  let best = pool[0];
  for (const e of pool) if (toPath(e.instancePath).length > toPath(best.instancePath).length) best = e;
  // For anyOf unions (e.g. default: string | object), report the anyOf itself when its branches disagree.
  const path = toPath(best.instancePath);
  const d = describe(best, path);
  const err: PolicyError = src.error(d.path, d.message, d.key);
  throw err;
}
