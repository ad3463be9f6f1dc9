// The 429 answer: express-rate-limit has set the headers; this writes the JSON body.
import type { Request, Response } from 'express'
import type { Options } from 'express-rate-limit'

import type { RateLimitExceededBody } from './types.js'

/** The code in every 429 body, for clients to branch on. */
export const RATE_LIMIT_EXCEEDED = 'RATE_LIMIT_EXCEEDED'

/** An express-rate-limit handler that answers `{ success, error, code, retryAfter }`. */
export function rateLimitExceededHandler(message: string) {
  return (_request: Request, response: Response, _next: unknown, options: Options): void => {
    // express-rate-limit sets Retry-After before calling the handler; the body repeats it.
    const header = Number(response.getHeader('Retry-After'))
    const retryAfter = Number.isFinite(header) ? header : Math.ceil(options.windowMs / 1000)
    const body: RateLimitExceededBody = { success: false, error: message, code: RATE_LIMIT_EXCEEDED, retryAfter }
    response.status(options.statusCode).json(body)
  }
}
