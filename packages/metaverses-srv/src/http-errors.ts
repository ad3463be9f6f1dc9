// JSON error answers for the service: one shape for every 4xx, and the mapping of body-parser errors.
import type { ErrorRequestHandler, Response } from 'express'

/** The body of every error answer; 429s add `retryAfter`. */
export interface ErrorBody {
  readonly success: false
  readonly error: string
  readonly code: string
}

export function sendError(res: Response, status: number, code: string, error: string): void {
  const body: ErrorBody = { success: false, error, code }
  res.status(status).json(body)
}

/** body-parser's error types and what the client is told. Anything else is a server fault. */
const BODY_ERRORS: Readonly<Record<string, readonly [number, string, string]>> = {
  'entity.parse.failed': [400, 'INVALID_JSON', 'The request body is not valid JSON'],
  'entity.too.large': [413, 'PAYLOAD_TOO_LARGE', 'The request body is larger than the limit'],
  'entity.verify.failed': [400, 'INVALID_BODY', 'The request body was refused'],
  'encoding.unsupported': [415, 'UNSUPPORTED_ENCODING', 'The request body encoding is not supported'],
  'charset.unsupported': [415, 'UNSUPPORTED_CHARSET', 'The request body charset is not supported'],
  'request.aborted': [400, 'REQUEST_ABORTED', 'The request was aborted before its body was read'],
  'request.size.invalid': [400, 'INVALID_BODY', 'The request body length does not match Content-Length'],
  'stream.encoding.set': [500, 'INTERNAL_ERROR', 'Internal server error'],
}

/** Turns body-parser failures into JSON 4xx answers; passes anything else on. */
export const bodyErrorHandler: ErrorRequestHandler = (error: unknown, _req, res, next) => {
  const type = (error as { type?: unknown }).type
  const known = typeof type === 'string' ? BODY_ERRORS[type] : undefined
  if (known === undefined || known[0] >= 500) {
    next(error)
    return
  }
  const [status, code, message] = known
  const limit = (error as { limit?: unknown }).limit
  sendError(res, status, code, status === 413 && typeof limit === 'number' ? `${message} (${limit} bytes)` : message)
}
