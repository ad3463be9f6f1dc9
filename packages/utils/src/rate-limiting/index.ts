// Public surface of @universo/utils/rate-limiting. Re-exports only.
export { createRateLimiter, createRateLimiters } from './create-rate-limiters.js'
export { RedisClientManager } from './redis/client-manager.js'
export { ERROR_CODES, RateLimitError } from './errors.js'
export type { RateLimitErrorCode } from './errors.js'
export { DEFAULT_RATE_LIMIT_CONFIG } from './config/options.js'
export { RATE_LIMIT_ENV_VARS, rateLimitConfigFromEnv } from './config/env.js'
export type { RateLimitEnvConfig } from './config/env.js'
export { defaultKeyGenerator, MAX_CLIENT_KEY_BYTES } from './limiter/keys.js'
export { RATE_LIMIT_EXCEEDED } from './limiter/response.js'
export { MAX_CONTROL_KEY_LENGTH } from './limiter/controls.js'
export type { ControlOptions, OperatorControls } from './limiter/controls.js'
export type { RateLimitClientState } from './limiter/variants.js'
export { RATE_LIMIT_UNAVAILABLE } from './resilience/degraded.js'
export { redactCredentials } from './observability/redact.js'
export { RATE_LIMIT_METRICS } from './observability/metric-families.js'
export { STORE_DURATION_BUCKETS } from './observability/store-duration.js'
export { MAX_AUDITED_KEYS } from './observability/audit.js'
export type { RateLimitAuditRecord } from './observability/audit.js'
export { NEAR_LIMIT_SHARE } from './observability/stats.js'
export type { StoreKind } from './observability/stats.js'
export { consoleLogger } from './observability/logger.js'
export { redisConfiguredInEnv } from './redis/connection.js'
export type { RedisConnectOptions } from './redis/connection.js'
export type { RedisClient } from './redis/client-factory.js'
export { redisTargetFromEnv } from './redis/topology.js'
export type { RedisTarget, Topology, TlsSettings } from './redis/topology.js'
export type {
  Algorithm,
  CostFunction,
  KeyGenerator,
  Limit,
  MaxFunction,
  MetricsRegistry,
  PolicyLimits,
  PolicySelector,
  RateLimitConfig,
  RateLimiters,
  RateLimitExceededBody,
  RateLimitLogger,
  RateLimitRequestHandler,
  RateLimitStoreStatus,
  RateLimitType,
  LimiterName,
  RedisCommandClient,
  SkipFunction,
} from './config/types.js'
