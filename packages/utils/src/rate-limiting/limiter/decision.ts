// A limiter's decision on a request: express-rate-limit's, made without its middleware after the first.
import type { NextFunction, Request, Response } from 'express'
import type {
  ClientRateLimitInfo,
  Options,
  RateLimitInfo,
  RateLimitRequestHandler as LimiterHandler,
  Store,
} from 'express-rate-limit'

import { keyFromFront } from './front.js'
import type { ExceededHandler } from './response.js'

/**
 * `req.rateLimit` as express-rate-limit builds it. Its deprecated `current` (the same as `used`)
 * is a getter here: read the same, and left out of keys and JSON as there, without redefining a
 * property on every request.
 */
class LimitInfo implements RateLimitInfo {
  constructor(
    readonly limit: number,
    readonly used: number,
    readonly remaining: number,
    readonly resetTime: Date | undefined,
    readonly key: string,
  ) {}

  get current(): number {
    return this.used
  }
}

/**
 * express-rate-limit's middleware, with every request after its first decided here. Its
 * validations run on a limiter's first request and then turn themselves off, each one, for good;
 * after that, with the options we give it (limiter/variants.ts), its middleware does what this
 * does: the store's increment for the key, `req.rateLimit`, then next() or the handler. On its way
 * it awaits five times and builds debug lines even with debugging off: in the user-key setup of
 * `pnpm bench`, deciding here took the server's CPU over bare Express from +11.5 to +6.1 µs per
 * allowed request and its allocations down by 2.7 KB (docs/performance.md).
 */
export function decidedDirectly(
  limiter: LimiterHandler,
  store: Store,
  limit: number,
  windowMs: number,
  exceeded: ExceededHandler,
): LimiterHandler {
  // What express-rate-limit passes its handler; ours reads statusCode only (limiter/response.ts).
  const options = { statusCode: 429, windowMs } as Options
  let validated = false
  const decided = (
    request: Request,
    response: Response,
    next: NextFunction,
    key: string,
    hits: ClientRateLimitInfo,
  ) => {
    const info = new LimitInfo(limit, hits.totalHits, Math.max(limit - hits.totalHits, 0), hits.resetTime, key)
    ;(request as Request & { rateLimit?: RateLimitInfo }).rateLimit = info
    if (hits.totalHits > limit) return exceeded(request, response, next, options)
    next()
  }
  const middleware = (request: Request, response: Response, next: NextFunction): void => {
    if (!validated) {
      validated = true
      return void limiter(request, response, next)
    }
    const key = keyFromFront(request)
    let hits: Promise<ClientRateLimitInfo> | ClientRateLimitInfo
    try {
      hits = store.increment(key)
    } catch (error) {
      return next(error)
    }
    // The memory store answers at once: no promise to wait for.
    if (!(hits instanceof Promise)) return decided(request, response, next, key, hits)
    // A rejection, or a throw on the way, goes to next() as express-rate-limit's middleware sends it.
    hits.then((answer) => decided(request, response, next, key, answer)).catch(next)
  }
  return Object.assign(middleware, { resetKey: limiter.resetKey, getKey: limiter.getKey })
}
