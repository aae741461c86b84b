/**
 * @module testutil/schema
 * Validates objects against schema/flow-record.schema.json (JSON Schema draft 2020-12) with ajv, for
 * tests. The schema is found by walking up from this module (works from src/ and from dist/src/).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020Module from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';

export function flowSchemaPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'schema', 'flow-record.schema.json');
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  throw new Error('schema/flow-record.schema.json not found');
}

export function loadFlowSchema(): Record<string, unknown> {
  return JSON.parse(readFileSync(flowSchemaPath(), 'utf8')) as Record<string, unknown>;
}

let validator: ValidateFunction | null = null;

/** Compile once (strict mode: unknown keywords or formats are schema errors). */
export function flowValidator(): ValidateFunction {
  if (!validator) {
    const Ajv = ((Ajv2020Module as unknown as { default?: unknown }).default ?? Ajv2020Module) as new (
      o: object,
    ) => {
      compile(s: object): ValidateFunction;
    };
    validator = new Ajv({ allErrors: true, strict: true, strictTypes: false }).compile(loadFlowSchema());
  }
  return validator;
}

/** Validation errors as readable strings (empty when valid). */
export function flowRecordErrors(rec: unknown): string[] {
  const v = flowValidator();
  if (v(rec)) return [];
  return (v.errors ?? []).map(
    (e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`,
  );
}
