// A limiter's decision on a request: express-rate-limit's, made without its middleware after the first.
import type { NextFunction, Request, Response } from 'express'
import type {
  ClientRateLimitInfo,
  RateLimitInfo,
  RateLimitRequestHandler as LimiterHandler,
  Store,
} from 'express-rate-limit'

import { handlerOptions, LimitInfo, type ExceededHandler } from './response.js'

/** A limiter's decision on a request whose client key the front layer has computed (limiter/front.ts). */
export type Decide = (request: Request, response: Response, next: NextFunction, key: string) => void

/** A decision, with express-rate-limit's handle on the store's keys. */
export type Decider = Decide & Pick<LimiterHandler, 'resetKey' | 'getKey'>

/**
 * The client key of a request that goes through express-rate-limit's middleware, for its
 * keyGenerator to return. Not a property of the request: in the allocation profile
 * (bench/profile.mjs with PROFILE=heap) each own property added to an Express request allocated
 * about 1.4 KB.
 */
const clientKeys = new WeakMap<Request, string>()

/** express-rate-limit's keyGenerator: the key the front layer computed. */
export const keyFromFront = (request: Request): string => clientKeys.get(request) ?? ''

/**
 * express-rate-limit's middleware, with every request after its first decided here. Its
 * validations run on a limiter's first request and then turn themselves off, each one, for good;
 * after that, with the options we give it (limiter/variants.ts), its middleware does what this
 * does: the store's increment for the key, `req.rateLimit`, then next() or the handler. On its way
 * it awaits five times and builds debug lines even with debugging off; what deciding here saves is
 * measured in docs/performance.md ("Deciding after the first request ourselves").
 */
export function decidedDirectly(
  limiter: LimiterHandler,
  store: Store,
  limit: number,
  windowMs: number,
  exceeded: ExceededHandler,
): Decider {
  const options = handlerOptions(windowMs)
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
  const decide: Decide = (request, response, next, key) => {
    if (!validated) {
      validated = true
      clientKeys.set(request, key)
      return void limiter(request, response, next)
    }
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
  return Object.assign(decide, { resetKey: limiter.resetKey, getKey: limiter.getKey })
}
