/**
 * @module util/errors
 * Error classes with a stable `code`, so callers branch on codes, never on messages.
 */

export class ChokepointError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A bounded read went past the end of the available bytes. The reader did not advance. */
export class TruncatedError extends ChokepointError {
  constructor(
    readonly need: number,
    readonly have: number,
  ) {
    super('ERR_TRUNCATED', `truncated: need ${need} byte(s), have ${have}`);
  }
}

/** Bytes were present but do not follow the protocol. */
export class MalformedError extends ChokepointError {
  constructor(message: string) {
    super('ERR_MALFORMED', message);
  }
}

/** Command-line misuse: exit status 2. */
export class UsageError extends ChokepointError {
  constructor(message: string) {
    super('ERR_USAGE', message);
  }
}

/** Input (file, capture, rule file) cannot be read or is invalid as a whole. */
export class InputError extends ChokepointError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INPUT', message, options);
  }
}
