// Reads the rate-limit settings from the environment, with errors that name the variable.
import { shownValue } from '../observability/redact.js'
import { envValue, type Env } from './env-values.js'
import { ERROR_CODES, RateLimitError } from '../errors.js'
import { redisTargetFromEnv } from '../redis/topology.js'
import { OPTIONS, type OptionSpec } from './schema.js'
import type { RateLimitConfig } from './types.js'

/** The variables rateLimitConfigFromEnv reads. */
export const RATE_LIMIT_ENV_VARS = Object.freeze([
  'REDIS_URL',
  'RATE_LIMIT_WINDOW_MS',
  'RATE_LIMIT_READ_MAX',
  'RATE_LIMIT_WRITE_MAX',
  'RATE_LIMIT_ALGORITHM',
  'RATE_LIMIT_READ_LIMITS',
  'RATE_LIMIT_WRITE_LIMITS',
  'RATE_LIMIT_ON_STORE_ERROR',
  'RATE_LIMIT_INSTANCES',
  'RATE_LIMIT_REQUIRE_REDIS',
  'RATE_LIMIT_STORE_TIMEOUT_MS',
  'RATE_LIMIT_SHADOW',
  'RATE_LIMIT_PROBLEM_DETAILS',
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

/**
 * The settings the environment gives: REDIS_URL and the options schema.ts gives a variable (a test
 * holds this list to it). Unset or blank variables are left out, so defaults apply.
 */
export type RateLimitEnvConfig = Pick<
  RateLimitConfig,
  | 'redisUrl'
  | 'windowMs'
  | 'maxRead'
  | 'maxWrite'
  | 'algorithm'
  | 'limitsRead'
  | 'limitsWrite'
  | 'onStoreError'
  | 'instances'
  | 'requireRedis'
  | 'storeTimeoutMs'
  | 'shadow'
  | 'problemDetails'
>

/**
 * The variables of RATE_LIMIT_ENV_VARS, checked. A bad
 * value throws a RateLimitError naming the variable, its value and what it accepts; a URL's
 * password is never shown.
 */
export function rateLimitConfigFromEnv(env: Env = process.env): RateLimitEnvConfig {
  // Checks REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES, credentials and REDIS_TLS_* together.
  redisTargetFromEnv(env)
  const config: Record<string, unknown> = {}
  const redisUrl = envValue(env, 'REDIS_URL')
  if (redisUrl !== undefined) config.redisUrl = redisUrl
  for (const [option, spec] of Object.entries(OPTIONS) as [string, OptionSpec<unknown>][]) {
    if (spec.env === undefined) continue
    const raw = envValue(env, spec.env.name)
    if (raw === undefined) continue
    const value = spec.env.read(raw)
    if (!spec.accepts(value)) {
      throw new RateLimitError(
        ERROR_CODES.INVALID_ENV,
        `${spec.env.name} must be ${spec.env.allowed ?? spec.allowed}, got ${shownValue(raw)}`,
        { option: spec.env.name },
      )
    }
    config[option] = value
  }
  return config
}
