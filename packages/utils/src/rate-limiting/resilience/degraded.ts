// What a limiter does while Redis cannot be used: the onStoreError policy as a middleware.
import type { RequestHandler } from 'express'

import type { StoreErrorPolicy } from '../config/types.js'

/** The code of a 503 answered under onStoreError 'deny'. */
export const RATE_LIMIT_UNAVAILABLE = 'RATE_LIMIT_UNAVAILABLE'

/** Seconds a denied client is asked to wait: 1-5, spread so that clients do not all come back at once. */
const retryAfterSeconds = (): number => 1 + Math.floor(Math.random() * 5)

/**
 * The middleware for a degraded limiter. `makeFallback` builds the in-memory limiter of the
 * fallback policy (only that policy needs one). In shadow mode `deny` lets requests through.
 * Answers say nothing about Redis: a client only needs to know when to retry.
 */
export function degradedHandler(
  policy: StoreErrorPolicy,
  shadow: boolean,
  makeFallback: () => RequestHandler,
): RequestHandler {
  switch (policy) {
    case 'fallback':
      return makeFallback()
    case 'allow':
      return (_req, _res, next) => next()
    case 'deny':
      // Shadow mode never blocks, not even while Redis is away.
      if (shadow) return (_req, _res, next) => next()
      return (_req, res) => {
        const retryAfter = retryAfterSeconds()
        res.setHeader('Retry-After', String(retryAfter))
        res.status(503).json({
          success: false,
          error: 'Service temporarily unavailable, please try again later.',
          code: RATE_LIMIT_UNAVAILABLE,
          retryAfter,
        })
      }
  }
}
