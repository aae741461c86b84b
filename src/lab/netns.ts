/**
 * @module lab/netns
 * The lab's public entry: the namespace primitives (lab/ns), the three-namespace lab (lab/lab) and
 * the process runner (util/run), for code outside src/lab/. Nothing inside src/lab/ imports this
 * module, so it closes no cycle.
 */
export * from './ns.js';
export { createLab, destroyLabByName, labAddrs, labNamespaces } from './lab.js';
export type { Lab, LabOptions, LabNs, LabAddrs } from './lab.js';
export { run, CommandError, type ExecOptions, type ExecResult } from '../util/run.js';
