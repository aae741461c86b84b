/**
 * @module policy/schema.test
 * The published JSON Schema compiles under ajv's strict mode, accepts the shipped profiles and the
 * documentation's example, and rejects what the loader rejects structurally.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import AjvModule from 'ajv';
import { parse } from 'yaml';
import { schemaPath } from './schema.js';
import { repoRoot } from './clitest.js';

const Ajv = ((AjvModule as unknown as { default?: unknown }).default ?? AjvModule) as new (o: object) => {
  compile(s: object): ((d: unknown) => boolean) & { errors?: unknown[] };
};

function validator() {
  const ajv = new Ajv({ strict: true, allErrors: true, allowUnionTypes: true });
  return ajv.compile(JSON.parse(readFileSync(schemaPath(), 'utf8')) as object);
}

test('schema compiles in strict mode and accepts the profiles and the documented example', () => {
  const v = validator();
  for (const f of ['tspu-2021-03-10.yaml', 'tspu-2021-04.yaml']) {
    assert.ok(
      v(parse(readFileSync(join(repoRoot(), 'profiles', f), 'utf8'))),
      `${f}: ${JSON.stringify(v.errors)}`,
    );
  }
  const doc = readFileSync(join(repoRoot(), 'docs', 'POLICY.md'), 'utf8');
  const example = /## Example\n\n```yaml\n([\s\S]*?)```/.exec(doc)![1];
  assert.ok(v(parse(example)), JSON.stringify(v.errors));
});

test('schema rejects unknown keys, bad actions and missing ids', () => {
  const v = validator();
  assert.equal(v({ rules: [{ id: 'a', action: 'deny' }] }), false);
  assert.equal(v({ rules: [{ action: 'block' }] }), false);
  assert.equal(v({ rules: [{ id: 'a', action: 'block', match: { host: { prefix: ['x'] } } }] }), false);
  assert.equal(v({ rulez: [] }), false);
  assert.equal(v({ rules: [] }), true);
});
