/**
 * @module controller/errors
 * {@link ApiError}: a refused request, with its HTTP status, a stable `code`, and the field (or
 * `file:line:column`) it is about. The server turns it into `{error: {code, message, field}}`.
 */
import { ChokepointError } from '../util/errors.js';

export class ApiError extends ChokepointError {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 500 | 503,
    code: string,
    message: string,
    readonly field?: string,
  ) {
    super(code, message);
  }
}

export const badRequest = (field: string, message: string): ApiError =>
  new ApiError(400, 'ERR_BAD_REQUEST', `${field}: ${message}`, field);
export const notFound = (what: string): ApiError => new ApiError(404, 'ERR_NOT_FOUND', `${what} not found`);
export const conflict = (code: string, message: string): ApiError => new ApiError(409, code, message);
