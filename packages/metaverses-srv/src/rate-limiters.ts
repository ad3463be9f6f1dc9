// The service's read and write limiters: created once at boot, shared by every router it builds.
import {
  createRateLimiters,
  rateLimitConfigFromEnv,
  type RateLimitConfig,
  type RateLimiters,
} from '@universo/utils/rate-limiting'

/** The keyPrefix of this service's counters in Redis. */
export const SERVICE_KEY_PREFIX = 'metaverses-srv'

/** The service's limits; RATE_LIMIT_WINDOW_MS, RATE_LIMIT_READ_MAX and RATE_LIMIT_WRITE_MAX override them. */
export const SERVICE_RATE_LIMITS = Object.freeze({ maxRead: 100, maxWrite: 60, windowMs: 15 * 60 * 1000 })

export const NOT_INITIALIZED_MESSAGE = 'Rate limiters not initialized. Call initializeRateLimiters() first.'

/** Thrown when routes are built before initializeRateLimiters() has finished. */
export class RateLimitersNotInitializedError extends Error {
  readonly code = 'ERR_RATE_LIMITERS_NOT_INITIALIZED'
  constructor() {
    super(NOT_INITIALIZED_MESSAGE)
    this.name = new.target.name
  }
}

/** Options of initializeRateLimiters: any limiter option but the service's fixed keyPrefix. */
export type ServiceRateLimitOptions = Omit<RateLimitConfig, 'keyPrefix'>

let limiters: RateLimiters | undefined
let initializing: Promise<RateLimiters> | undefined

/**
 * Creates the service's limiters: the service's limits, then the environment, then `options`.
 * Safe to call again: later and concurrent calls share the first initialisation. A failed one
 * (Redis unreachable, a bad value) can be retried.
 */
export function initializeRateLimiters(options: ServiceRateLimitOptions = {}): Promise<RateLimiters> {
  if (limiters !== undefined) return Promise.resolve(limiters)
  initializing ??= create(options).finally(() => {
    initializing = undefined
  })
  return initializing
}

async function create(options: ServiceRateLimitOptions): Promise<RateLimiters> {
  const config = { ...SERVICE_RATE_LIMITS, ...rateLimitConfigFromEnv(), ...options, keyPrefix: SERVICE_KEY_PREFIX }
  limiters = await createRateLimiters(config)
  return limiters
}

/** The limiters, once initializeRateLimiters() has finished. */
export function getRateLimiters(): RateLimiters {
  if (limiters === undefined) throw new RateLimitersNotInitializedError()
  return limiters
}

/** Forgets the limiters and frees their keyPrefix (shutdown, tests). The shared Redis client stays open. */
export async function disposeRateLimiters(): Promise<void> {
  await initializing?.catch(() => undefined)
  limiters?.dispose()
  limiters = undefined
}
