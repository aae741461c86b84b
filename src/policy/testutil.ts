/**
 * @module policy/testutil
 * Helpers for the policy tests: build a policy from YAML text in a temporary directory (with list
 * files), and a flow input with defaults.
 */
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePolicy } from './load.js';
import { compilePolicy, type Matcher } from './compile.js';
import type { MatchInput, Policy } from './types.js';

export function tempDir(prefix = 'chokepoint-policy-test-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Write `files` (name → content) and policy.yaml into a temp dir; load it. */
export async function policyFrom(yaml: string, files: Record<string, string> = {}): Promise<Policy> {
  const t = tempDir();
  try {
    for (const [k, v] of Object.entries(files)) writeFileSync(join(t.dir, k), v);
    const file = join(t.dir, 'policy.yaml');
    writeFileSync(file, yaml);
    return await parsePolicy(yaml, file);
  } finally {
    t.cleanup();
  }
}

export async function compiledFrom(
  yaml: string,
  files: Record<string, string> = {},
  now?: number,
): Promise<Matcher> {
  return compilePolicy(await policyFrom(yaml, files), now === undefined ? {} : { now });
}

export function flow(over: Partial<MatchInput> = {}): MatchInput {
  return {
    host: null,
    proto: 'TCP',
    src_ip: '192.0.2.10',
    dest_ip: '198.51.100.20',
    dest_port: 443,
    app_proto: 'tls',
    ...over,
  };
}
