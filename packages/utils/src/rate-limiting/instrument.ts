// The layer around every limiter: skip, then count the request and notice when it is near the limit.
import type { Request, RequestHandler } from 'express'
import type { RateLimitInfo } from 'express-rate-limit'

import { isNearLimit, type LimiterStats } from './stats.js'
import type { SkipFunction } from './types.js'

type LimitedRequest = Request & { rateLimit?: RateLimitInfo }

/**
 * Wraps a limiter's deciding middleware. `skip`ped requests go on uncounted; the others are counted,
 * and those allowed with less than a fifth of their budget left are counted as near the limit.
 */
export function instrument(
  decide: RequestHandler,
  stats: LimiterStats,
  skip: SkipFunction | undefined,
): RequestHandler {
  const counted: RequestHandler = (req, res, next) => {
    stats.requests++
    // Another limiter earlier on the route may have set req.rateLimit: only a fresh one is ours.
    const before = (req as LimitedRequest).rateLimit
    decide(req, res, (error?: unknown) => {
      if (error === undefined) {
        const info = (req as LimitedRequest).rateLimit
        // Over the limit (shadow mode lets those through) is not "near" it.
        if (
          info !== before &&
          info !== undefined &&
          info.used <= info.limit &&
          isNearLimit(info.remaining, info.limit)
        ) {
          stats.nearLimit++
        }
      }
      next(error)
    })
  }
  if (skip === undefined) return counted

  return (req, res, next) => {
    let verdict: ReturnType<SkipFunction>
    try {
      verdict = skip(req)
    } catch (error) {
      return next(error)
    }
    const decideOn = (skipped: unknown): void => {
      if (skipped) {
        stats.skipped++
        next()
      } else {
        void counted(req, res, next)
      }
    }
    if (verdict instanceof Promise) verdict.then(decideOn, next)
    else decideOn(verdict)
  }
}
