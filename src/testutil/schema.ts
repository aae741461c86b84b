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
import { OUR_KEY, fromEve } from '../output/eve.js';
import type { FlowRecord } from '../record/record.js';

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

/** Suricata's published EVE schema in the shared corpus (test data, read from ../shared, never copied). */
export function suricataSchemaPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'schema', 'flow-record.schema.json')))
      return join(dir, '..', 'shared', 'corpus', 'suricata', 'eve-schema.json');
    dir = dirname(dir);
  }
  throw new Error('project root not found');
}

let suricata: ValidateFunction | null = null;

/**
 * Validator for Suricata's EVE schema with exactly one property added: our key (an object). The schema
 * already closes every object (`additionalProperties: false`, top level included); this asserts it
 * rather than trusting it, so a record with any other field of ours fails.
 */
export function suricataValidator(ourKey: string): ValidateFunction {
  if (!suricata) {
    const s = JSON.parse(readFileSync(suricataSchemaPath(), 'utf8')) as {
      additionalProperties?: unknown;
      properties: Record<string, unknown>;
    };
    if (ourKey in s.properties) throw new Error(`Suricata's schema already defines '${ourKey}'`);
    s.additionalProperties = false;
    s.properties[ourKey] = { type: 'object' };
    const Ajv = ((Ajv2020Module as unknown as { default?: unknown }).default ?? Ajv2020Module) as new (
      o: object,
    ) => {
      compile(s: object): ValidateFunction;
    };
    // strict off: the schema carries Suricata's own annotation keywords ("suricata", …)
    suricata = new Ajv({ allErrors: true, strict: false }).compile(s);
  }
  return suricata;
}

/** Errors of `rec` against Suricata's EVE schema (+ our key), as readable strings. */
export function suricataErrors(rec: unknown, ourKey: string): string[] {
  const v = suricataValidator(ourKey);
  if (v(rec)) return [];
  return (v.errors ?? []).map(
    (e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`,
  );
}

/**
 * Parse JSON-lines output of analyze/simulate/enforce: every line must pass Suricata's schema (+ our
 * key); flow records must pass ours too and read back (output/eve.ts); other lines (the simulate
 * summary) are returned by event type with their content (our key). Throws with the line on failure.
 */
export function readEveOutput(stdout: string): {
  records: FlowRecord[];
  others: Map<string, Record<string, unknown>>;
} {
  const records: FlowRecord[] = [];
  const others = new Map<string, Record<string, unknown>>();
  stdout
    .split('\n')
    .filter(Boolean)
    .forEach((line, i) => {
      const v = JSON.parse(line) as Record<string, unknown>;
      const se = suricataErrors(v, OUR_KEY);
      if (se.length) throw new Error(`line ${i + 1} fails Suricata's EVE schema: ${se.join('; ')}\n${line}`);
      const r = fromEve(v, `line ${i + 1}`);
      if (r) {
        const fe = flowRecordErrors(v);
        if (fe.length)
          throw new Error(`line ${i + 1} fails flow-record.schema.json: ${fe.join('; ')}\n${line}`);
        records.push(r);
      } else others.set(String(v.event_type), v[OUR_KEY] as Record<string, unknown>);
    });
  return { records, others };
}

/**
 * One line of enforce's EVE log for the inline tests: validated against Suricata's schema (+ our key)
 * and ours (throws otherwise), then read back — the in-memory names (`host` = the flow's name,
 * `tls.sni`, …) plus `event_type` as written, `policy`, `verdict` (with the action), and the raw `eve`.
 */
export function eveVerdictView(line: string): Record<string, unknown> {
  const v = JSON.parse(line) as Record<string, unknown>;
  const errs = [...suricataErrors(v, OUR_KEY), ...flowRecordErrors(v)];
  if (errs.length) throw new Error(`EVE line fails the schemas: ${errs.join('; ')}\n${line}`);
  const rec = fromEve(v, 'eve');
  if (!rec) throw new Error(`not a flow or verdict record: ${line}`);
  const ours = v[OUR_KEY] as { policy?: { action: string }; verdict?: Record<string, unknown> };
  return {
    ...rec,
    event_type: v.event_type,
    policy_version: (ours.policy as { version?: string } | undefined)?.version,
    verdict: { action: ours.policy?.action, ...ours.verdict },
    eve: v,
  };
}
