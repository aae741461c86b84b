/**
 * @module policy/errors
 * {@link PolicyError}: a policy (or one of its list files) is invalid. The whole file is rejected;
 * the error names the exact place (`file:line:column`, 1-based) and says what is wrong there.
 */
import { ChokepointError } from '../util/errors.js';

export class PolicyError extends ChokepointError {
  /** The bare message, without the `file:line:column: ` prefix. */
  readonly detail: string;
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('ERR_POLICY', `${file}:${line}:${column}: ${detail}`, options);
    this.detail = detail;
  }
}
