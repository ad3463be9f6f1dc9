// Reads the rate-limit settings from the environment, with errors that name the variable.
import { envFlag, envValue, shownValue, type Env } from './env-values.js'
import { ERROR_CODES, RateLimitError } from '../errors.js'
import { MAX_INSTANCES, MAX_STORE_TIMEOUT_MS, MAX_WINDOW_MS, MIN_WINDOW_MS, STORE_ERROR_POLICIES } from './options.js'
import type { StoreErrorPolicy } from './types.js'
import { redisTargetFromEnv } from '../redis/topology.js'
import type { RateLimitConfig } from './types.js'

/** The variables rateLimitConfigFromEnv reads. */
export const RATE_LIMIT_ENV_VARS = Object.freeze([
  'REDIS_URL',
  'RATE_LIMIT_WINDOW_MS',
  'RATE_LIMIT_READ_MAX',
  'RATE_LIMIT_WRITE_MAX',
  'RATE_LIMIT_ON_STORE_ERROR',
  'RATE_LIMIT_INSTANCES',
  'RATE_LIMIT_REQUIRE_REDIS',
  'RATE_LIMIT_STORE_TIMEOUT_MS',
  'RATE_LIMIT_SHADOW',
  'REDIS_SENTINELS',
  'REDIS_SENTINEL_MASTER',
  'REDIS_SENTINEL_PASSWORD',
  'REDIS_CLUSTER_NODES',
  'REDIS_USERNAME',
  'REDIS_PASSWORD',
  'REDIS_TLS',
  'REDIS_TLS_CA',
  'REDIS_TLS_CERT',
  'REDIS_TLS_KEY',
  'REDIS_TLS_REJECT_UNAUTHORIZED',
] as const)

/** The settings the environment gives. Unset or blank variables are left out, so defaults apply. */
export type RateLimitEnvConfig = Pick<
  RateLimitConfig,
  | 'redisUrl'
  | 'windowMs'
  | 'maxRead'
  | 'maxWrite'
  | 'onStoreError'
  | 'instances'
  | 'requireRedis'
  | 'storeTimeoutMs'
  | 'shadow'
>

/**
 * The variables of RATE_LIMIT_ENV_VARS, checked. A bad
 * value throws a RateLimitError naming the variable, its value and what it accepts; a URL's
 * password is never shown.
 */
export function rateLimitConfigFromEnv(env: Env = process.env): RateLimitEnvConfig {
  const config: { -readonly [K in keyof RateLimitEnvConfig]: RateLimitEnvConfig[K] } = {}
  // Checks REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES, credentials and REDIS_TLS_* together.
  redisTargetFromEnv(env)
  const redisUrl = envValue(env, 'REDIS_URL')
  if (redisUrl !== undefined) config.redisUrl = redisUrl
  const windowMs = integer(env, 'RATE_LIMIT_WINDOW_MS', MIN_WINDOW_MS, MAX_WINDOW_MS)
  if (windowMs !== undefined) config.windowMs = windowMs
  const maxRead = integer(env, 'RATE_LIMIT_READ_MAX', 1, Number.MAX_SAFE_INTEGER)
  if (maxRead !== undefined) config.maxRead = maxRead
  const maxWrite = integer(env, 'RATE_LIMIT_WRITE_MAX', 1, Number.MAX_SAFE_INTEGER)
  if (maxWrite !== undefined) config.maxWrite = maxWrite
  const policy = envValue(env, 'RATE_LIMIT_ON_STORE_ERROR')
  if (policy !== undefined) {
    if (!STORE_ERROR_POLICIES.includes(policy as StoreErrorPolicy)) {
      throw invalidEnv('RATE_LIMIT_ON_STORE_ERROR', `one of ${STORE_ERROR_POLICIES.join(', ')}`, policy)
    }
    config.onStoreError = policy as StoreErrorPolicy
  }
  const instances = integer(env, 'RATE_LIMIT_INSTANCES', 1, MAX_INSTANCES)
  if (instances !== undefined) config.instances = instances
  const requireRedis = envFlag(env, 'RATE_LIMIT_REQUIRE_REDIS', ERROR_CODES.INVALID_ENV)
  if (requireRedis !== undefined) config.requireRedis = requireRedis
  const timeout = integer(env, 'RATE_LIMIT_STORE_TIMEOUT_MS', 1, MAX_STORE_TIMEOUT_MS)
  if (timeout !== undefined) config.storeTimeoutMs = timeout
  const shadow = envFlag(env, 'RATE_LIMIT_SHADOW', ERROR_CODES.INVALID_ENV)
  if (shadow !== undefined) config.shadow = shadow
  return config
}

function integer(env: Env, name: string, min: number, max: number): number | undefined {
  const raw = envValue(env, name)
  if (raw === undefined) return undefined
  const parsed = /^\d+$/.test(raw) ? Number(raw) : Number.NaN
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    const allowed =
      min === 1 && max === Number.MAX_SAFE_INTEGER ? 'a positive integer' : `an integer from ${min} to ${max}`
    throw invalidEnv(name, allowed, raw)
  }
  return parsed
}

function invalidEnv(name: string, allowed: string, raw: string): RateLimitError {
  return new RateLimitError(ERROR_CODES.INVALID_ENV, `${name} must be ${allowed}, got ${shownValue(raw)}`, {
    option: name,
  })
}
