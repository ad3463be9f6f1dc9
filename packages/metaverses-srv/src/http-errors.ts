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

/**
 * Turns client mistakes that surface as errors into JSON 4xx answers: body-parser failures, a
 * compressed body that does not inflate, a path that does not percent-decode. Passes anything
 * else on (a server fault).
 */
export const requestErrorHandler: ErrorRequestHandler = (error: unknown, _req, res, next) => {
  if (error instanceof URIError) {
    return sendError(res, 400, 'INVALID_PATH', 'The path is not valid percent-encoding')
  }
  const { type, status, expose, limit } = error as {
    type?: unknown
    status?: unknown
    expose?: unknown
    limit?: unknown
  }
  const known = typeof type === 'string' ? BODY_ERRORS[type] : undefined
  if (known !== undefined && known[0] < 500) {
    const [code, message] = [known[1], known[2]]
    const detail = known[0] === 413 && typeof limit === 'number' ? ` (${limit} bytes)` : ''
    return sendError(res, known[0], code, `${message}${detail}`)
  }
  // body-parser's other client errors (a corrupt gzip body, say) carry a 4xx status and expose.
  if (expose === true && typeof status === 'number' && status >= 400 && status < 500) {
    return sendError(res, status, 'INVALID_BODY', 'The request body could not be read')
  }
  next(error)
}
