/**
 * @module util/epipe
 * A closed reader of our output (`chokepoint analyze big.pcap | head`) ends the process at once,
 * quietly, with status 0 — as a command killed by SIGPIPE would stop, without Node's stack trace
 * for an unhandled EPIPE and without working through the rest of the input for nobody.
 */

/** Whether `e` is the error of a write to a pipe whose reader has gone. */
export function isEpipe(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | null)?.code === 'EPIPE';
}

/** Stop now: the reader is gone, so there is nothing left to say and no one to say it to. */
export function outputClosed(): never {
  process.exit(0);
}

/** Route EPIPE on `stream` (default stdout) to {@link outputClosed}; other errors stay errors. */
export function exitQuietlyOnEpipe(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on('error', (e: Error) => {
    if (isEpipe(e)) outputClosed();
    throw e;
  });
}
