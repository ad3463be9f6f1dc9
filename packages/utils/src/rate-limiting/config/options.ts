// Defaults, and the checks every option passes before a limiter exists (the options: schema.ts).
import { ERROR_CODES, RateLimitError } from '../errors.js'
import { defaultKeyGenerator, keyGeneratorWithSubnet, type KeyGenerator } from '../limiter/keys.js'
import { consoleLogger, type RateLimitLogger } from '../observability/logger.js'
import { shownValue } from '../observability/redact.js'
import { MAX_RECONNECT_DELAY_MS, OPTIONS, type DefaultedOption, type OptionName, type OptionSpec } from './schema.js'
import type { LimiterName, MaxFunction, RateLimitConfig, RateLimitType } from './types.js'

/** The defaults of the options that have plain ones (schema.ts). */
export const DEFAULT_RATE_LIMIT_CONFIG: Readonly<Required<Pick<RateLimitConfig, DefaultedOption>>> = Object.freeze(
  Object.fromEntries(
    Object.entries(OPTIONS).flatMap(([name, spec]) => (spec.default === undefined ? [] : [[name, spec.default]])),
  ) as Required<Pick<RateLimitConfig, DefaultedOption>>,
)

/** Options after defaults, checked: each given one, else its default. */
export type ResolvedRateLimitConfig = {
  readonly [K in Exclude<OptionName, 'redisRetryDelay' | Fallback>]: K extends DefaultedOption
    ? Required<RateLimitConfig>[K]
    : RateLimitConfig[K]
} & {
  readonly keyGenerator: KeyGenerator
  readonly logger: RateLimitLogger
  readonly metricsNamespace: string
}

/** Options whose default is not data: a function, an object, or another option's value. */
type Fallback = 'keyGenerator' | 'logger' | 'metricsNamespace'

export const RATE_LIMIT_TYPES: readonly RateLimitType[] = Object.freeze(['read', 'write', 'custom'])

function invalid(option: string, allowed: string, value: unknown): RateLimitError {
  return new RateLimitError(ERROR_CODES.INVALID_OPTION, `${option} must be ${allowed}, got ${shownValue(value)}`, {
    option,
  })
}

/** A limiter name's alphabet: nothing that Redis keys (`:`), hash tags (`{}`) or policy keys (`#`) use. */
const LIMITER_NAME = /^[A-Za-z0-9_.-]{1,32}$/

/** Checks a limiter's name (a runtime check for JavaScript callers too). */
export function checkName(name: unknown): LimiterName {
  if (typeof name !== 'string' || !LIMITER_NAME.test(name)) {
    throw new RateLimitError(
      ERROR_CODES.INVALID_TYPE,
      `name must be read, write, custom or another 1 to 32 letters, digits, '_', '-' or '.', got ${shownValue(name)}`,
      { option: 'name' },
    )
  }
  return name
}

/** The budget a limiter draws from: its own for read and write, custom's for every other name. */
export function budgetOf(name: LimiterName): RateLimitType {
  return RATE_LIMIT_TYPES.includes(name as RateLimitType) ? (name as RateLimitType) : 'custom'
}

/**
 * express-rate-limit's options that cannot mean the same thing here, and what to use instead
 * (docs/migrating-from-express-rate-limit.md): refused, never ignored.
 */
export const UNSUPPORTED_OPTIONS: Readonly<Record<string, string>> = Object.freeze({
  headers: "headers is express-rate-limit 6's name of legacyHeaders: use legacyHeaders",
  draft_polli_ratelimit_headers:
    "draft_polli_ratelimit_headers was removed in express-rate-limit 7: use standardHeaders: 'draft-6'",
  onLimitReached:
    'onLimitReached was removed in express-rate-limit 7: use handler, or the audit log (auditLog), which logs each client once a window',
  retryAfter:
    'retryAfter: Retry-After is the true time until a request could pass, for every algorithm, and is not set by hand; use handler to write another header',
  validate: "validate: this library's checks warn once each and never throw; leave validate out",
})

/** The object given, once it is one and holds only known options. */
function knownOptions(config: unknown): Readonly<Record<string, unknown>> {
  if (config === undefined || config === null) return {}
  if (typeof config !== 'object' || Array.isArray(config)) throw invalid('config', 'an object', config)
  for (const key of Object.keys(config)) {
    if (Object.hasOwn(UNSUPPORTED_OPTIONS, key)) {
      throw new RateLimitError(ERROR_CODES.UNSUPPORTED_OPTION, UNSUPPORTED_OPTIONS[key]!, { option: key })
    }
    if (!Object.hasOwn(OPTIONS, key)) {
      throw new RateLimitError(
        ERROR_CODES.UNKNOWN_OPTION,
        `Unknown option "${key}"; known options are ${Object.keys(OPTIONS).join(', ')}`,
        { option: key },
      )
    }
  }
  return config as Record<string, unknown>
}

/**
 * Applies defaults and checks every option against schema.ts (undefined counts as not given).
 * Throws a RateLimitError that names the option, the bad value and what is allowed.
 */
export function resolveConfig(config: RateLimitConfig | undefined): ResolvedRateLimitConfig {
  const given = knownOptions(config)
  const resolved: Record<string, unknown> = {}
  for (const [name, spec] of Object.entries(OPTIONS) as [OptionName, OptionSpec<unknown>][]) {
    const value = given[name] === undefined ? spec.default : given[name]
    if (value === undefined) continue
    if (!spec.accepts(value)) throw invalid(name, spec.allowed, value)
    spec.verify?.(value)
    resolved[name] = value
  }
  // express-rate-limit's names: `limit` (or `max`) for every limiter's max not given its own, and
  // passOnStoreError for the outage policy.
  if (given.limit !== undefined && given.max !== undefined) {
    throw invalid('max', 'left out when limit is given (max is its older name)', given.max)
  }
  const alias = given.limit !== undefined ? 'limit' : given.max !== undefined ? 'max' : undefined
  if (alias !== undefined) {
    for (const own of ['maxRead', 'maxWrite', 'maxCustom'] as const)
      if (given[own] === undefined) resolved[own] = resolved[alias]
  }
  if (given.passOnStoreError !== undefined) {
    if (given.onStoreError !== undefined) {
      throw invalid(
        'passOnStoreError',
        'left out when onStoreError is given (it is its express-rate-limit name)',
        given.passOnStoreError,
      )
    }
    resolved.onStoreError = given.passOnStoreError === true ? 'allow' : 'deny'
  }
  if (resolved.problemDetails === true && typeof resolved.message !== 'string') {
    throw invalid('message', 'a string with problemDetails (it is the detail)', resolved.message)
  }
  if (resolved.ipv6Subnet !== undefined) {
    if (resolved.keyGenerator !== undefined) {
      throw invalid(
        'ipv6Subnet',
        "left out with keyGenerator (it groups the default key generator's addresses; call ipKeyGenerator(ip, subnet) in yours)",
        resolved.ipv6Subnet,
      )
    }
    resolved.keyGenerator = keyGeneratorWithSubnet(resolved.ipv6Subnet as number | false)
  }
  if (resolved.identifier !== undefined) {
    const beside = ['limits', 'limitsRead', 'limitsWrite', 'limitsCustom', 'policies'].find(
      (option) => resolved[option] !== undefined,
    )
    if (beside !== undefined) {
      throw invalid(
        'identifier',
        `used without ${beside}: name each limit there ({ name, max, windowMs })`,
        resolved.identifier,
      )
    }
  }
  if ((resolved.policies === undefined) !== (resolved.policy === undefined)) {
    throw resolved.policy === undefined
      ? invalid('policy', 'a function (request) => policy name, given with policies', undefined)
      : invalid('policies', 'the named policies the policy function picks from, given with policy', undefined)
  }
  if (resolved.store !== undefined) {
    const beside = [
      'redisUrl',
      'redisClient',
      'limits',
      'limitsRead',
      'limitsWrite',
      'limitsCustom',
      'cost',
      'policies',
    ].find((option) => resolved[option] !== undefined)
    const functionMax = ['maxRead', 'maxWrite', 'maxCustom'].find((option) => typeof resolved[option] === 'function')
    const other = beside ?? functionMax ?? (resolved.algorithm !== 'fixed-window' ? 'algorithm' : undefined)
    if (other !== undefined) {
      throw invalid(
        'store',
        `used without ${other}: an express-rate-limit Store counts one fixed window a hit at a time; for ${other}, count in Redis (redisUrl) or memory`,
        'a Store',
      )
    }
  }
  if (resolved.redisClient !== undefined && resolved.redisUrl !== undefined) {
    throw invalid('redisClient', 'used without redisUrl (the client already says where Redis is)', 'a client')
  }
  const logger = (resolved.logger as RateLimitLogger | undefined) ?? consoleLogger
  if (resolved.redisRetryDelay !== undefined) {
    logger.warn(
      `[RateLimit] redisRetryDelay is deprecated and ignored: reconnect delays are min(attempt * 100, ${MAX_RECONNECT_DELAY_MS}) ms`,
    )
    delete resolved.redisRetryDelay
  }
  return Object.freeze({
    ...resolved,
    keyGenerator: resolved.keyGenerator ?? defaultKeyGenerator,
    logger,
    metricsNamespace: resolved.metricsNamespace ?? resolved.keyPrefix,
  }) as ResolvedRateLimitConfig
}

/** The max of one type: a number, or a function of the request. */
export function maxFor(config: ResolvedRateLimitConfig, name: LimiterName): number | MaxFunction {
  switch (budgetOf(name)) {
    case 'read':
      return config.maxRead
    case 'write':
      return config.maxWrite
    case 'custom':
      return config.maxCustom
  }
}
