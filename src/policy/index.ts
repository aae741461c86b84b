/**
 * @module policy/index
 * Public API of the policy engine: load a policy file, compile it, match flows, hold and swap the
 * current compiled policy. See docs/POLICY.md for the language.
 */
export { loadPolicyFile, parsePolicy, INSPECTION_DEFAULTS } from './load.js';
export { compilePolicy, Matcher, type CompileOptions } from './compile.js';
export { PolicyHolder } from './holder.js';
export { PolicyError } from './errors.js';
export { PROTECTED_RULE_ID } from './types.js';
export { lintPolicy, formatFindings, type Finding, type LintOptions, type Severity } from './lint.js';
export {
  Simulation,
  inputFromRecord,
  renderSummary,
  policedSeconds,
  type SimulationSummary,
} from './simulate.js';
export { readNamesFile, namesFromHosts, type Reference } from './reference.js';
export type {
  Action,
  BlockMethod,
  CompiledPolicy,
  Decision,
  DefaultAction,
  HostMatch,
  Inspection,
  InspectionMode,
  MatchInput,
  OnTimeout,
  Policy,
  PortRange,
  ProtectedSet,
  Rule,
  RuleMatch,
  SourcePos,
} from './types.js';
