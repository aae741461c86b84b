/**
 * @module engine/conformance.test
 * Robustness and conformance on nDPI's 544 test captures (../shared/corpus/ndpi, not part of the
 * repository): no capture may crash or hang the engine, and names must agree with nDPI's for ≥ 97% of
 * the flows it names. Skips, saying so, when the corpus is absent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { conformance, CORPUS } from '../../bench/conformance.js';
import { need } from '../testutil/require.js';

const present = existsSync(join(CORPUS, 'names.tsv'));

test(
  'nDPI corpus: no crash or hang, ≥ 97% name agreement',
  { skip: need(present, `nDPI corpus absent at ${CORPUS}`), timeout: 900_000 },
  async () => {
    const rep = await conformance({ jobs: 2, timeoutMs: 120_000 });
    assert.ok(rep.files >= 500, `captures found: ${rep.files}`);
    assert.deepEqual(
      rep.crashes.map(
        (c) => `${c.file}: code=${c.code} signal=${c.signal} timeout=${c.timedOut} ${c.stderr.slice(0, 300)}`,
      ),
      [],
    );
    const pct = (100 * rep.agree) / rep.rows;
    assert.ok(rep.rows >= 2400, `names.tsv rows: ${rep.rows}`);
    assert.ok(pct >= 97, `agreement ${pct.toFixed(2)}% (${rep.agree}/${rep.rows})`);
  },
);
