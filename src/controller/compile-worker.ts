/**
 * @module controller/compile-worker
 * Worker-thread entry of controller/compiled's off-thread compile: compiles the policy version's
 * files (given as [path, text]) into compiled-registry bytes and sends them back, transferred. A
 * 10^6-name registry takes seconds of CPU; here it does not stall the controller's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { compileFiles } from '../policy/compiled.js';
import type { CompileJob, CompileReply } from './compiled.js';

const job = workerData as CompileJob;
const port = parentPort!;
try {
  let bytes = await compileFiles(job.files, job.opts);
  // transfer needs the bytes to own their buffer
  if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) bytes = bytes.slice();
  const reply: CompileReply = { ok: true, bytes };
  port.postMessage(reply, [bytes.buffer as ArrayBuffer]);
} catch (e) {
  const reply: CompileReply = { ok: false, message: (e as Error).message };
  port.postMessage(reply);
}
