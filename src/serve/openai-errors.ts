/**
 * Errors in the OpenAI API's shape: `{ error: { message, type, param, code } }` with the HTTP
 * status a client of that API expects (400 bad request, 401 key, 404 model, 429/503 busy).
 */
export type OpenAiErrorType = 'invalid_request_error' | 'authentication_error' | 'not_found_error' | 'rate_limit_error' | 'server_error';

export class OpenAiError extends Error {
  constructor(
    readonly status: number,
    readonly type: OpenAiErrorType,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** seconds, sent as Retry-After (429 / 503). */
    readonly retryAfter?: number,
  ) {
    super(message);
  }

  body(): { error: { message: string; type: OpenAiErrorType; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new OpenAiError(400, 'invalid_request_error', message, param, code);
