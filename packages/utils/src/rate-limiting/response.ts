// The 429 answer, or in shadow mode the request let through: express-rate-limit has set the headers.
import type { NextFunction, Request, Response } from 'express'
import type { Options, RateLimitInfo } from 'express-rate-limit'

import type { AuditLog } from './audit.js'
import type { LimiterStats, StoreKind } from './stats.js'
import type { RateLimitExceededBody } from './types.js'

/** The code in every 429 body, for clients to branch on. */
export const RATE_LIMIT_EXCEEDED = 'RATE_LIMIT_EXCEEDED'

export interface ExceededOptions {
  readonly message: string
  /** Let the request through instead of answering 429 (it is still counted, reported and logged). */
  readonly shadow: boolean
  readonly stats: LimiterStats
  readonly audit: AuditLog | undefined
  readonly store: StoreKind
}

/**
 * An express-rate-limit handler for a request over the limit: counts it, writes the audit line,
 * then answers `{ success, error, code, retryAfter }` with 429 (or lets it through in shadow mode).
 */
export function rateLimitExceededHandler({ message, shadow, stats, audit, store }: ExceededOptions) {
  return (request: Request, response: Response, next: NextFunction, options: Options): void => {
    const info = (request as Request & { rateLimit?: RateLimitInfo }).rateLimit
    if (audit !== undefined && info !== undefined) audit.exceeded(request, info, shadow, store)
    if (shadow) {
      stats.shadowRejections++
      // The RateLimit headers stay, showing the client it is out of budget; Retry-After belongs to a 429.
      response.removeHeader('Retry-After')
      return next()
    }
    stats.rejections++
    // express-rate-limit sets Retry-After before calling the handler; the body repeats it.
    const header = Number(response.getHeader('Retry-After'))
    const retryAfter = Number.isFinite(header) ? header : Math.ceil(options.windowMs / 1000)
    const body: RateLimitExceededBody = { success: false, error: message, code: RATE_LIMIT_EXCEEDED, retryAfter }
    response.status(options.statusCode).json(body)
  }
}
