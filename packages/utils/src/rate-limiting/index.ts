// Public surface of @universo/utils/rate-limiting. Re-exports only.
export { createRateLimiter, createRateLimiters } from './create-rate-limiters.js'
export { RedisClientManager } from './redis-client-manager.js'
export { ERROR_CODES, RateLimitError } from './errors.js'
export type { RateLimitErrorCode } from './errors.js'
export { DEFAULT_RATE_LIMIT_CONFIG } from './options.js'
export { RATE_LIMIT_ENV_VARS, rateLimitConfigFromEnv } from './env.js'
export type { RateLimitEnvConfig } from './env.js'
export { defaultKeyGenerator, MAX_CLIENT_KEY_BYTES } from './keys.js'
export { RATE_LIMIT_EXCEEDED } from './response.js'
export { RATE_LIMIT_UNAVAILABLE } from './degraded.js'
export { redactCredentials } from './redact.js'
export { RATE_LIMIT_METRICS, STORE_DURATION_BUCKETS } from './metrics.js'
export { MAX_AUDITED_KEYS } from './audit.js'
export type { RateLimitAuditRecord } from './audit.js'
export { NEAR_LIMIT_SHARE } from './stats.js'
export type { StoreKind } from './stats.js'
export { consoleLogger } from './logger.js'
export { redisConfiguredInEnv } from './redis-connection.js'
export type { RedisConnectOptions } from './redis-connection.js'
export type { RedisClient } from './redis-client-factory.js'
export { redisTargetFromEnv } from './redis-topology.js'
export type { RedisTarget, Topology, TlsSettings } from './redis-topology.js'
export type {
  KeyGenerator,
  RateLimitConfig,
  RateLimiters,
  RateLimitExceededBody,
  RateLimitLogger,
  RateLimitRequestHandler,
  RateLimitStoreStatus,
  RateLimitType,
  RedisCommandClient,
  SkipFunction,
} from './types.js'
