// What a limiter does while Redis cannot be used: the onStoreError policy as a decision.

import type { StoreErrorPolicy } from '../config/types.js'
import type { Decide } from '../limiter/decision.js'
import type { LimiterStats } from '../observability/stats.js'
import { StoreUnavailableError } from '../stores/deadlines.js'
import type { Breakers } from './breakers.js'

/** The code of a 503 answered under onStoreError 'deny'. */
export const RATE_LIMIT_UNAVAILABLE = 'RATE_LIMIT_UNAVAILABLE'

/** The per-instance limit during a fallback: the shared limit split across the fleet, at least 1. */
export const fallbackMax = (max: number, instances: number): number => Math.max(1, Math.floor(max / instances))

/** What a limiter set does while Redis cannot be used. */
export interface DegradedPolicy {
  readonly onStoreError: StoreErrorPolicy
  readonly shadow: boolean
  readonly instances: number
}

/** The warning a breaker logs as it opens: what requests get until Redis is back. */
export function degradedLine(
  { onStoreError, shadow, instances }: DegradedPolicy,
  /** Each limit the line shows: its limiter's type (and a policy's limit name), and its max. */
  limits: readonly { readonly type: string; readonly max: number | string }[],
): string {
  switch (onStoreError) {
    case 'allow':
      return 'failing open (onStoreError allow): requests pass without a limit until Redis is back'
    case 'deny':
      return shadow
        ? 'onStoreError deny, not enforced in shadow mode: requests pass without a limit until Redis is back'
        : 'failing closed (onStoreError deny): requests get 503 until Redis is back'
    case 'fallback': {
      const shown = limits.map(({ type, max }) =>
        typeof max === 'number'
          ? `${type} ${max} -> ${fallbackMax(max, instances)}`
          : `${type} ${max} -> / ${instances}`,
      )
      return `fallback on: in-memory limits per instance, ${shown.join(', ')} (instances ${instances})`
    }
  }
}

/** Seconds a denied client is asked to wait: 1-5, spread so that clients do not all come back at once. */
const retryAfterSeconds = (): number => 1 + Math.floor(Math.random() * 5)

/**
 * The decision of a degraded limiter. `makeFallback` builds the in-memory limiter of the
 * fallback policy (only that policy needs one). In shadow mode `deny` lets requests through.
 * Answers say nothing about Redis: a client only needs to know when to retry.
 */
export function degradedHandler(policy: StoreErrorPolicy, shadow: boolean, makeFallback: () => Decide): Decide {
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

/**
 * `primary` while the store can be used; `policy`, counted in `stats.degraded`, while the store's
 * only circuit is open or when a call finds the store unavailable (StoreUnavailableError).
 */
export function unlessUnavailable(primary: Decide, policy: Decide, breakers: Breakers, stats: LimiterStats): Decide {
  const degraded: Decide = (req, res, next, key) => {
    stats.degraded++
    policy(req, res, next, key)
  }
  return (req, res, next, key) => {
    if (breakers.single && !breakers.healthy) return degraded(req, res, next, key)
    primary(
      req,
      res,
      (error?: unknown) => {
        if (error instanceof StoreUnavailableError) return degraded(req, res, next, key)
        next(error)
      },
      key,
    )
  }
}
