/**
 * @module policy/schema-validator.test
 * The committed validator (`schema-validator.gen.ts`) is exactly what scripts/gen-policy-validator
 * writes from schema/policy.schema.json today (so a schema change without `npm run gen:validator`
 * fails here), and it decides like ajv compiling the schema at run time on valid and broken policies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import AjvModule from 'ajv';
import type { ValidateFunction } from 'ajv';
import { validate } from './schema-validator.gen.js';

const root = new URL('../../../', import.meta.url); // dist/src/policy -> the project root

test('the committed validator is what the generator writes from the schema now', async () => {
  const gen = (await import(new URL('scripts/policy-validator-source.mjs', root).href)) as {
    validatorSource(): string;
  };
  const committed = readFileSync(fileURLToPath(new URL('src/policy/schema-validator.gen.ts', root)), 'utf8');
  assert.ok(
    committed === gen.validatorSource(),
    'src/policy/schema-validator.gen.ts is stale: run `npm run gen:validator`',
  );
});

test('the generated validator decides and reports like ajv compiling the schema at run time', () => {
  const Ajv = ((AjvModule as unknown as { default?: unknown }).default ?? AjvModule) as new (o: object) => {
    compile(s: object): ValidateFunction;
  };
  const schema = JSON.parse(readFileSync(fileURLToPath(new URL('schema/policy.schema.json', root)), 'utf8'));
  const runtime = new Ajv({ allErrors: true, verbose: true, strict: false }).compile(schema);
  const v = validate as unknown as ValidateFunction;
  const rule = { id: 'r', action: 'block', match: { host: { suffix: ['x.example'] } } };
  const cases: unknown[] = [
    { rules: [rule] },
    { version: 1, default: 'allow', rules: [rule] },
    { rules: [{ ...rule, action: 'explode' }] },
    { rules: [{ ...rule, colour: 'red' }] },
    { rules: 'none' },
    {},
    { version: 2, rules: [] },
    { rules: [{ id: 'r', action: 'throttle', rate: 128, match: { host: { substring: ['t.co'] } } }] },
    { rules: [{ id: '', action: 'block', match: {} }] },
    null,
    [],
  ];
  for (const c of cases) {
    const a = runtime(c);
    const b = v(c);
    assert.equal(b, a, JSON.stringify(c));
    const strip = (es: typeof runtime.errors) =>
      (es ?? []).map((e) => [e.keyword, e.instancePath, e.schemaPath, JSON.stringify(e.params)]);
    assert.deepEqual(strip(v.errors), strip(runtime.errors), JSON.stringify(c));
  }
});
