/**
 * @module enforce/policy-source
 * Loads a policy file into something the enforcer can use, through the policy module
 * (`loadPolicyFile` + `compilePolicy`). Imported lazily so `--no-install` printing and the error
 * paths work even when the policy module fails to load.
 */
import { InputError } from '../util/errors.js';
import type { PolicyLike } from './types.js';

interface PolicyModule {
  loadPolicyFile(path: string): unknown;
  compilePolicy(p: unknown): PolicyLike;
}

let mod: PolicyModule | null = null;

export async function policyModule(): Promise<PolicyModule> {
  if (!mod) mod = (await import('../policy/index.js')) as unknown as PolicyModule;
  return mod;
}

/** Load and compile; throws InputError (the policy module's message, with file:line:col) on failure. */
export async function loadPolicy(path: string): Promise<PolicyLike> {
  const m = await policyModule();
  try {
    const raw = await m.loadPolicyFile(path);
    const compiled = m.compilePolicy(raw);
    if (!compiled.inspection) {
      (compiled as { inspection: PolicyLike['inspection'] }).inspection = {
        mode: 'normal',
        on_timeout: 'match',
        hold_ms: 1000,
        budget_bytes: 16384,
      };
    }
    return compiled;
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`policy ${path}: ${(e as Error).message}`, { cause: e });
  }
}
