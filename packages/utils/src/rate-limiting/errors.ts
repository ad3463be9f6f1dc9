// The one error class the library throws, with a stable `code` per failure (see docs/errors.md).

/**
 * Every code the library can throw. Codes are stable: a retired code is never reused.
 * `docs/errors.md` lists each one as code | meaning | fix.
 */
export const ERROR_CODES = Object.freeze({
  /** An option key that createRateLimiter(s) does not know (usually a typo). */
  UNKNOWN_OPTION: 'ERR_RATE_LIMIT_UNKNOWN_OPTION',
  /** An option with a value outside its allowed range or of the wrong type. */
  INVALID_OPTION: 'ERR_RATE_LIMIT_INVALID_OPTION',
  /** An environment variable read by rateLimitConfigFromEnv has a value it does not accept. */
  INVALID_ENV: 'ERR_RATE_LIMIT_INVALID_ENV',
  /** A limiter type other than read, write or custom. */
  INVALID_TYPE: 'ERR_RATE_LIMIT_INVALID_TYPE',
  /** A second limiter for the same keyPrefix and type in one process (it would double count). */
  DUPLICATE_PREFIX: 'ERR_RATE_LIMIT_DUPLICATE_PREFIX',
  /** Redis was asked for, but neither an argument nor REDIS_URL gives a URL. */
  REDIS_URL_MISSING: 'ERR_REDIS_URL_MISSING',
  /** REDIS_URL (or the redisUrl option) is not a valid redis:// or rediss:// URL. */
  REDIS_URL_INVALID: 'ERR_REDIS_URL_INVALID',
  /** More than one of REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES is set. */
  REDIS_TOPOLOGY_CONFLICT: 'ERR_REDIS_TOPOLOGY_CONFLICT',
  /** REDIS_SENTINELS, REDIS_CLUSTER_NODES or REDIS_SENTINEL_MASTER is malformed. */
  REDIS_NODES_INVALID: 'ERR_REDIS_NODES_INVALID',
  /** A REDIS_TLS_* setting is wrong: an unreadable file, a certificate without its key, TLS settings without TLS. */
  REDIS_TLS_INVALID: 'ERR_REDIS_TLS_INVALID',
  /** The first connection to Redis did not succeed within its retries or its timeout. */
  REDIS_CONNECT_TIMEOUT: 'ERR_REDIS_CONNECT_TIMEOUT',
  /** getClient() asked for a different Redis than the one this process already holds. */
  REDIS_CLIENT_CONFLICT: 'ERR_REDIS_CLIENT_CONFLICT',
  /** The connection was closed by RedisClientManager.close() while a caller waited for it. */
  REDIS_CLOSED: 'ERR_REDIS_CLOSED',
  /** metricsRegistry already holds a metric with one of the limiters' names, registered by someone else. */
  METRICS_CONFLICT: 'ERR_RATE_LIMIT_METRICS_CONFLICT',
  /** metricsRegistry was given, but the prom-client package cannot be loaded. */
  METRICS_UNAVAILABLE: 'ERR_RATE_LIMIT_METRICS_UNAVAILABLE',
  /** A request's cost is not a positive safe integer, or is more than a limit of its policy can ever allow. */
  INVALID_COST: 'ERR_RATE_LIMIT_INVALID_COST',
  /** A limit's max function answered something other than a positive safe integer (or one too large for its window). */
  INVALID_LIMIT: 'ERR_RATE_LIMIT_INVALID_LIMIT',
  /** The policy function answered a name that is not one of the declared policies. */
  INVALID_POLICY: 'ERR_RATE_LIMIT_INVALID_POLICY',
  /** An operator control (get, penalty, reward, block, reset) was called with a bad key, amount or time. */
  INVALID_ARGUMENT: 'ERR_RATE_LIMIT_INVALID_ARGUMENT',
  /** An express-rate-limit option that cannot mean the same thing here; the message says what to use instead. */
  UNSUPPORTED_OPTION: 'ERR_RATE_LIMIT_UNSUPPORTED_OPTION',
} as const)

export type RateLimitErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES]

export interface RateLimitErrorDetails {
  /** The option or environment variable at fault, when there is one. */
  readonly option?: string
  /** The original error, for wrapped Redis failures. */
  readonly cause?: unknown
}

/** An error from `@universo/utils/rate-limiting`. Branch on `code`, never on the message. */
export class RateLimitError extends Error {
  readonly code: RateLimitErrorCode
  readonly option: string | undefined

  constructor(code: RateLimitErrorCode, message: string, details: RateLimitErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.name = new.target.name
    this.code = code
    this.option = details.option
  }
}
