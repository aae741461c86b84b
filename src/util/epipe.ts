/**
 * @module util/epipe
 * A closed reader of our output (`chokepoint analyze big.pcap | head`) ends the process at once,
 * quietly, with status 0 — as a command killed by SIGPIPE would stop, without Node's stack trace
 * for an unhandled EPIPE and without working through the rest of the input for nobody. A command
 * that must clean up first (a daemon writing its log to stdout) sets its own handler.
 */

/** Whether `e` is the error of a write to a pipe whose reader has gone. */
export function isEpipe(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | null)?.code === 'EPIPE';
}

let handler: () => void = () => process.exit(0);
let closed = false;

/** Replace what a closed output does (default: exit 0 now). Called at most once per process. */
export function setOutputClosedHandler(h: () => void): void {
  handler = h;
}

/** The reader is gone: run the handler (once). Writers stop writing after calling this. */
export function outputClosed(): void {
  if (closed) return;
  closed = true;
  handler();
}

/** Route EPIPE on `stream` (default stdout) to {@link outputClosed}; other errors stay errors. */
export function exitQuietlyOnEpipe(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on('error', (e: Error) => {
    if (isEpipe(e)) return outputClosed();
    throw e;
  });
}
