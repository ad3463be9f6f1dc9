// The limiter options the server boots with: the environment's, its logger and metrics, and admin skip.
import type { ServiceRateLimitOptions } from '@universo/metaverses-srv'
import type { RateLimitLogger } from '@universo/utils/rate-limiting'
import type { Registry } from 'prom-client'

import { isAdmin } from './auth.js'
import type { ServerConfig } from './config.js'

/** What initializeRateLimiters gets from the server. */
export function serverRateLimitOptions(
  config: Pick<ServerConfig, 'rateLimit' | 'skipAdmins'>,
  logger: RateLimitLogger,
  metricsRegistry?: Registry,
): ServiceRateLimitOptions {
  return {
    ...config.rateLimit,
    logger,
    ...(metricsRegistry === undefined ? {} : { metricsRegistry }),
    ...(config.skipAdmins ? { skip: isAdmin } : {}),
  }
}
