/**
 * @module probe/lab-service
 * The probe-server as a lab plug-in: `chokepoint lab up` passes {@link probeLabPlugin} to the lab,
 * whose services process imports this module by path and calls {@link startLabService} (port 443,
 * TCP and UDP, on the second address of `net`). The lab itself has no import of the probe.
 */
import { fileURLToPath } from 'node:url';
import { startProbeServer } from './server.js';

/** Called inside the lab's services process. */
export async function startLabService(a: { host2: string }): Promise<{ close(): Promise<void> }> {
  const s = await startProbeServer({ host: a.host2, port: 443 });
  return { close: () => s.close() };
}

/** The plug-in description for lab/manage's `labUp({ plugins })`. */
export const probeLabPlugin = {
  module: fileURLToPath(import.meta.url),
  name: 'probe-server',
  listen: (a: { host2: string }) => `${a.host2}:443 tcp+udp`,
};
