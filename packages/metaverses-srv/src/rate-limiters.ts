// The service's read and write limiters: created once at boot, shared by every router it builds.
import type { Request } from 'express'

import {
  consoleLogger,
  createRateLimiters,
  rateLimitConfigFromEnv,
  type RateLimitConfig,
  type RateLimiters,
} from '@universo/utils/rate-limiting'

/** The keyPrefix of this service's counters in Redis. */
export const SERVICE_KEY_PREFIX = 'metaverses-srv'

/** The `namespace` label of the service's metrics and audit records, as the guide names it. */
export const SERVICE_METRICS_NAMESPACE = 'metaverses'

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

/** Options of initializeRateLimiters: any limiter option but the service's fixed keyPrefix, namespace and audit routes. */
export type ServiceRateLimitOptions = Omit<RateLimitConfig, 'keyPrefix' | 'metricsNamespace' | 'auditRoute'>

let limiters: RateLimiters | undefined
let initializing: Promise<RateLimiters> | undefined
/** Bumped by disposeRateLimiters, so an initialisation it overtook cannot install its limiters. */
let generation = 0
let firstOptions: ServiceRateLimitOptions | undefined

/**
 * Creates the service's limiters: the service's limits, then the environment, then `options`.
 * Safe to call again: later and concurrent calls share the first initialisation (and a warning
 * says so when they ask for other limits). A failed one (a bad value, say) can be retried.
 */
export function initializeRateLimiters(options: ServiceRateLimitOptions = {}): Promise<RateLimiters> {
  if (firstOptions !== undefined && differ(firstOptions, options)) {
    ;(options.logger ?? firstOptions.logger ?? consoleLogger).warn(
      "[RateLimit] initializeRateLimiters() was called again with other options; the first call's limiters stay",
    )
  }
  firstOptions ??= options
  if (limiters !== undefined) return Promise.resolve(limiters)
  if (initializing === undefined) {
    const mine = generation
    const attempt = create(options).then((created) => {
      if (mine !== generation) {
        created.dispose()
        throw new RateLimitersNotInitializedError()
      }
      limiters = created
      return created
    })
    initializing = attempt
    void attempt
      .catch(() => {
        if (initializing === attempt) firstOptions = undefined
      })
      .finally(() => {
        if (initializing === attempt) initializing = undefined
      })
  }
  return initializing
}

/**
 * The route pattern of a request as the limiter sees it (mounted on /metaverses, before routing):
 * `/api/v1/metaverses` or `/api/v1/metaverses/:id`, never the id itself.
 */
export function serviceAuditRoute(req: Request): string {
  const segments = req.path.split('/').filter((segment) => segment !== '').length
  return req.baseUrl + (segments === 0 ? '' : segments === 1 ? '/:id' : '/:id/*')
}

function create(options: ServiceRateLimitOptions): Promise<RateLimiters> {
  const config = {
    ...SERVICE_RATE_LIMITS,
    ...rateLimitConfigFromEnv(),
    ...options,
    keyPrefix: SERVICE_KEY_PREFIX,
    metricsNamespace: SERVICE_METRICS_NAMESPACE,
    auditRoute: serviceAuditRoute,
  }
  return createRateLimiters(config)
}

/** Options that change the limits; the logger may differ between callers. */
function differ(a: ServiceRateLimitOptions, b: ServiceRateLimitOptions): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)].filter((key) => key !== 'logger'))
  return [...keys].some((key) => a[key as keyof ServiceRateLimitOptions] !== b[key as keyof ServiceRateLimitOptions])
}

/** The limiters, once initializeRateLimiters() has finished. */
export function getRateLimiters(): RateLimiters {
  if (limiters === undefined) throw new RateLimitersNotInitializedError()
  return limiters
}

/**
 * Forgets the limiters and frees their keyPrefix (shutdown, tests). An initialisation still
 * running is abandoned. The shared Redis client stays open: close it with RedisClientManager.close().
 */
export async function disposeRateLimiters(): Promise<void> {
  generation++
  const pending = initializing
  initializing = undefined
  firstOptions = undefined
  limiters?.dispose()
  limiters = undefined
  await pending?.catch(() => undefined)
}
