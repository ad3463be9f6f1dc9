// The layer in front of every limiter: skip, the client key, blocked clients, counting, near-limit.
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import type { RateLimitInfo } from 'express-rate-limit'

import type { BlockedKey, BlockedKeys } from './blocked-keys.js'
import type { Decide } from './decision.js'
import type { RateLimitHeaders } from './headers.js'
import { isNearLimit, type LimiterStats } from '../observability/stats.js'
import { IDENTIFIER } from '../config/schema.js'
import type { SkipFunction } from '../config/types.js'
import { ERROR_CODES, RateLimitError } from '../errors.js'
import { shownValue } from '../observability/redact.js'

type LimitedRequest = Request & { rateLimit?: RateLimitInfo }

export interface FrontOptions {
  /** The limiter proper: the store's count, or Redis's policy while Redis is away. */
  readonly decide: Decide
  readonly stats: LimiterStats
  readonly skip: SkipFunction | undefined
  /** The client key of a request: the key generator's, checked and bounded. */
  readonly keyOf: (request: Request, response: Response) => string | Promise<string>
  /** Also sets the decision on `req[property]` (requestPropertyName); undefined for rateLimit alone. */
  readonly property?: string | undefined
  /** Names each request's limit in the headers (an identifier function); undefined when not per request. */
  readonly identify?: ((request: Request, response: Response) => string | Promise<string>) | undefined
  /** Watches a request let through, to give it back by its response (skipSuccessfulRequests, skipFailedRequests). */
  readonly giveBack?: ((request: Request, response: Response, key: string, info: RateLimitInfo) => void) | undefined
  /** Clients known to be over their limit; undefined in shadow mode, which never blocks. */
  readonly blocked: BlockedKeys | undefined
  /** Answers 429 to a known-blocked client, exactly as the limiter would. */
  readonly answerBlocked: (request: Request, response: Response, block: BlockedKey, key: string) => void
  /** Writes the RateLimit headers of an allowed request. */
  readonly headers: RateLimitHeaders
}

/**
 * The middleware of a limiter. `skip`ped requests go on uncounted. The others are counted; a client
 * known to be over its limit is answered 429 at once; the rest go to the limiter, and those it
 * allows with less than a fifth of their budget left are counted as near the limit.
 */
export function limiterFront({
  decide,
  stats,
  skip,
  keyOf,
  giveBack,
  property,
  identify,
  blocked,
  answerBlocked,
  headers,
}: FrontOptions): RequestHandler {
  const withKey = (req: Request, res: Response, next: NextFunction, key: string): void => {
    if (blocked !== undefined && blocked.size > 0) {
      const block = blocked.get(key)
      if (block !== undefined) return answerBlocked(req, res, block, key)
    }
    // Another limiter earlier on the route may have set req.rateLimit: only a fresh one is ours.
    const before = (req as LimitedRequest).rateLimit
    decide(
      req,
      res,
      (error?: unknown) => {
        if (error === undefined) {
          const info = (req as LimitedRequest).rateLimit
          if (property !== undefined && info !== before) (req as unknown as Record<string, unknown>)[property] = info
          // Over the limit, shadow mode lets a request through: its handler has written the headers.
          if (info !== before && info !== undefined && info.used <= info.limit) {
            // Let through: a block remembered here has been lifted (a reset or reward elsewhere).
            if (blocked !== undefined && blocked.size > 0) blocked.delete(key)
            if (giveBack !== undefined) giveBack(req, res, key, info)
            headers.write(res, info)
            if (isNearLimit(info.remaining, info.limit)) stats.nearLimit++
          }
        }
        next(error)
      },
      key,
    )
  }

  const counted = (req: Request, res: Response, next: NextFunction): void => {
    stats.requests++
    let key: string | Promise<string>
    try {
      key = keyOf(req, res)
    } catch (error) {
      return next(error)
    }
    const decided = identify === undefined ? withKey : named
    if (typeof key === 'string') decided(req, res, next, key)
    else key.then((resolved) => decided(req, res, next, resolved), next)
  }

  /** `withKey` once the identifier function has named the request's limit. */
  const named = (req: Request, res: Response, next: NextFunction, key: string): void => {
    let name: string | Promise<string>
    try {
      name = identify!(req, res)
    } catch (error) {
      return next(error)
    }
    const go = (answer: string) => {
      if (typeof answer !== 'string' || !IDENTIFIER.test(answer)) {
        return next(
          new RateLimitError(
            ERROR_CODES.INVALID_OPTION,
            `identifier (a function of the request) must answer 1-64 printable characters with no " or \\, got ${shownValue(answer)}`,
            { option: 'identifier' },
          ),
        )
      }
      headers.name(res, answer)
      withKey(req, res, next, key)
    }
    if (typeof name === 'string') go(name)
    else Promise.resolve(name).then(go, next)
  }
  return skip === undefined ? counted : behindSkip(skip, stats, counted)
}

/** `counted` behind `skip`: a request it skips goes on uncounted, counted in `stats.skipped`. */
function behindSkip(
  skip: SkipFunction,
  stats: LimiterStats,
  counted: (req: Request, res: Response, next: NextFunction) => void,
): RequestHandler {
  const skipRequest = (next: NextFunction): void => {
    stats.skipped++
    next()
  }
  return (req, res, next) => {
    let verdict: ReturnType<SkipFunction>
    try {
      verdict = skip(req, res)
    } catch (error) {
      return next(error)
    }
    if (verdict instanceof Promise) {
      verdict.then((skipped) => (skipped ? skipRequest(next) : counted(req, res, next)), next)
    } else if (verdict) {
      skipRequest(next)
    } else {
      counted(req, res, next)
    }
  }
}
