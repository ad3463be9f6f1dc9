// Defaults, and the checks every option passes before a limiter exists.
import { ERROR_CODES, RateLimitError } from '../errors.js'
import { consoleLogger, type RateLimitLogger } from '../observability/logger.js'
import { redactCredentials } from '../observability/redact.js'
import { parseRedisUrl } from '../redis/url.js'
import { defaultKeyGenerator, type KeyGenerator } from '../limiter/keys.js'
import type { StoreErrorPolicy } from './types.js'
import type { Request } from 'express'
import type { Registry } from 'prom-client'

import type { RateLimitConfig, RateLimitType, RedisCommandClient, SkipFunction } from './types.js'

/** The guide's defaults. */
export const DEFAULT_RATE_LIMIT_CONFIG = Object.freeze({
  windowMs: 15 * 60 * 1000,
  maxRead: 100,
  maxWrite: 60,
  maxCustom: 100,
  keyPrefix: 'rate-limit',
  message: 'Too many requests, please try again later.',
  redisRetries: 3,
  legacyHeaders: false,
  onStoreError: 'fallback',
  instances: 1,
  requireRedis: false,
  storeTimeoutMs: 100,
  shadow: false,
  auditLog: true,
} as const)

/** Options after defaults, checked. */
export interface ResolvedRateLimitConfig {
  readonly windowMs: number
  readonly maxRead: number
  readonly maxWrite: number
  readonly maxCustom: number
  readonly keyPrefix: string
  readonly message: string
  readonly redisUrl: string | undefined
  readonly redisClient: RedisCommandClient | undefined
  readonly redisRetries: number
  readonly keyGenerator: KeyGenerator
  readonly legacyHeaders: boolean
  readonly logger: RateLimitLogger
  readonly onStoreError: StoreErrorPolicy
  readonly instances: number
  readonly requireRedis: boolean
  readonly storeTimeoutMs: number
  readonly skip: SkipFunction | undefined
  readonly shadow: boolean
  readonly auditLog: boolean
  readonly auditRoute: ((request: Request) => string) | undefined
  readonly metricsRegistry: Registry | undefined
  readonly metricsNamespace: string
}

export const RATE_LIMIT_TYPES: readonly RateLimitType[] = Object.freeze(['read', 'write', 'custom'])

/** Every key RateLimitConfig accepts; anything else is a typo and is refused. */
const KNOWN_OPTIONS: ReadonlySet<string> = new Set<keyof RateLimitConfig>([
  'windowMs',
  'maxRead',
  'maxWrite',
  'maxCustom',
  'keyPrefix',
  'message',
  'redisUrl',
  'redisClient',
  'redisRetries',
  'redisRetryDelay',
  'keyGenerator',
  'legacyHeaders',
  'logger',
  'onStoreError',
  'instances',
  'requireRedis',
  'storeTimeoutMs',
  'skip',
  'shadow',
  'auditLog',
  'auditRoute',
  'metricsRegistry',
  'metricsNamespace',
])

export const STORE_ERROR_POLICIES: readonly StoreErrorPolicy[] = Object.freeze(['fallback', 'allow', 'deny'])
export const MAX_INSTANCES = 10_000
export const MAX_STORE_TIMEOUT_MS = 10_000

export const MIN_WINDOW_MS = 1000
/** The largest delay a Node timer takes; express-rate-limit's MemoryStore refuses more. */
export const MAX_WINDOW_MS = 2 ** 31 - 1
const KEY_PREFIX = /^[A-Za-z0-9._{}-]{1,64}$/
const METRICS_NAMESPACE = /^[A-Za-z0-9._-]{1,64}$/

function invalid(option: string, allowed: string, value: unknown): RateLimitError {
  return new RateLimitError(ERROR_CODES.INVALID_OPTION, `${option} must be ${allowed}, got ${show(value)}`, { option })
}

/** A bad value as the operator typed it, short and with credentials removed. */
function show(value: unknown): string {
  if (typeof value === 'string') {
    const text = JSON.stringify(redactCredentials(value))
    return text.length > 80 ? `${text.slice(0, 77)}..."` : text
  }
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'bigint') return `${value}n`
  if (value === null || typeof value !== 'object') return String(value)
  return Array.isArray(value) ? 'an array' : 'an object'
}

function integer(option: string, value: unknown, min: number, max: number, allowed: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(option, allowed, value)
  }
  return value
}

const positiveMax = (option: string, value: unknown): number =>
  integer(option, value, 1, Number.MAX_SAFE_INTEGER, 'a positive integer')

/** Checks the limiter type (a runtime check for JavaScript callers). */
export function checkType(type: unknown): RateLimitType {
  if (!RATE_LIMIT_TYPES.includes(type as RateLimitType)) {
    throw new RateLimitError(
      ERROR_CODES.INVALID_TYPE,
      `type must be one of ${RATE_LIMIT_TYPES.join(', ')}, got ${show(type)}`,
      { option: 'type' },
    )
  }
  return type as RateLimitType
}

/**
 * Drops undefined values, applies defaults and checks every option. Throws a RateLimitError that
 * names the option, the bad value and what is allowed.
 */
export function resolveConfig(config: RateLimitConfig | undefined): ResolvedRateLimitConfig {
  if (config === undefined || config === null) config = {}
  if (typeof config !== 'object' || Array.isArray(config)) {
    throw invalid('config', 'an object', config)
  }
  for (const key of Object.keys(config)) {
    if (!KNOWN_OPTIONS.has(key)) {
      throw new RateLimitError(
        ERROR_CODES.UNKNOWN_OPTION,
        `Unknown option "${key}"; known options are ${[...KNOWN_OPTIONS].join(', ')}`,
        { option: key },
      )
    }
  }
  const given = Object.fromEntries(Object.entries(config).filter(([, value]) => value !== undefined))
  const merged = { ...DEFAULT_RATE_LIMIT_CONFIG, ...given } as RateLimitConfig & typeof DEFAULT_RATE_LIMIT_CONFIG

  const keyPrefix = merged.keyPrefix
  if (typeof keyPrefix !== 'string' || !KEY_PREFIX.test(keyPrefix)) {
    throw invalid('keyPrefix', '1-64 characters from A-Z a-z 0-9 . _ - { } (no spaces or colons)', keyPrefix)
  }
  if (typeof merged.message !== 'string' || merged.message.trim() === '') {
    throw invalid('message', 'a non-empty string', merged.message)
  }
  if (merged.redisUrl !== undefined) {
    if (typeof merged.redisUrl !== 'string' || merged.redisUrl.trim() === '') {
      throw invalid('redisUrl', 'a redis:// or rediss:// URL', merged.redisUrl)
    }
    parseRedisUrl(merged.redisUrl, 'redisUrl')
  }
  const client = merged.redisClient
  if (client !== undefined && merged.redisUrl !== undefined) {
    throw invalid('redisClient', 'used without redisUrl (the client already says where Redis is)', 'a client')
  }
  if (client !== undefined && (typeof client !== 'object' || client === null || typeof client.call !== 'function')) {
    throw invalid('redisClient', 'a client with a call(command, ...args) method, such as ioredis', client)
  }
  const keyGenerator = merged.keyGenerator ?? defaultKeyGenerator
  if (typeof keyGenerator !== 'function') {
    throw invalid('keyGenerator', 'a function (request) => string', keyGenerator)
  }
  if (typeof merged.legacyHeaders !== 'boolean') {
    throw invalid('legacyHeaders', 'true or false', merged.legacyHeaders)
  }
  const logger = merged.logger ?? consoleLogger
  if (
    typeof logger !== 'object' ||
    !['info', 'warn', 'error'].every((m) => typeof (logger as never)[m] === 'function')
  ) {
    throw invalid('logger', 'an object with info, warn and error functions', logger)
  }
  if (merged.redisRetryDelay !== undefined) {
    integer('redisRetryDelay', merged.redisRetryDelay, 0, 60_000, 'an integer from 0 to 60000')
    logger.warn(
      '[RateLimit] redisRetryDelay is deprecated and ignored: reconnect delays are min(attempt * 100, 1000) ms',
    )
  }

  if (!STORE_ERROR_POLICIES.includes(merged.onStoreError)) {
    throw invalid('onStoreError', `one of ${STORE_ERROR_POLICIES.join(', ')}`, merged.onStoreError)
  }
  if (typeof merged.requireRedis !== 'boolean') throw invalid('requireRedis', 'true or false', merged.requireRedis)
  if (merged.skip !== undefined && typeof merged.skip !== 'function') {
    throw invalid('skip', 'a function (request) => boolean', merged.skip)
  }
  if (typeof merged.shadow !== 'boolean') throw invalid('shadow', 'true or false', merged.shadow)
  if (typeof merged.auditLog !== 'boolean') throw invalid('auditLog', 'true or false', merged.auditLog)
  if (merged.auditRoute !== undefined && typeof merged.auditRoute !== 'function') {
    throw invalid('auditRoute', 'a function (request) => string', merged.auditRoute)
  }
  const registry = merged.metricsRegistry
  if (
    registry !== undefined &&
    (typeof registry !== 'object' ||
      registry === null ||
      !['registerMetric', 'getSingleMetric', 'metrics'].every((m) => typeof (registry as never)[m] === 'function'))
  ) {
    throw invalid('metricsRegistry', 'a prom-client Registry', registry)
  }
  const metricsNamespace = merged.metricsNamespace ?? keyPrefix
  const namespace: unknown = merged.metricsNamespace
  if (namespace !== undefined && (typeof namespace !== 'string' || !METRICS_NAMESPACE.test(namespace))) {
    throw invalid('metricsNamespace', '1-64 characters from A-Z a-z 0-9 . _ -', namespace)
  }

  return Object.freeze({
    onStoreError: merged.onStoreError,
    instances: integer('instances', merged.instances, 1, MAX_INSTANCES, `an integer from 1 to ${MAX_INSTANCES}`),
    requireRedis: merged.requireRedis,
    storeTimeoutMs: integer(
      'storeTimeoutMs',
      merged.storeTimeoutMs,
      1,
      MAX_STORE_TIMEOUT_MS,
      `an integer from 1 to ${MAX_STORE_TIMEOUT_MS} (ms)`,
    ),
    windowMs: integer(
      'windowMs',
      merged.windowMs,
      MIN_WINDOW_MS,
      MAX_WINDOW_MS,
      `an integer from ${MIN_WINDOW_MS} to ${MAX_WINDOW_MS} (ms)`,
    ),
    maxRead: positiveMax('maxRead', merged.maxRead),
    maxWrite: positiveMax('maxWrite', merged.maxWrite),
    maxCustom: positiveMax('maxCustom', merged.maxCustom),
    keyPrefix,
    message: merged.message,
    redisUrl: merged.redisUrl,
    redisClient: client,
    redisRetries: integer('redisRetries', merged.redisRetries, 0, 20, 'an integer from 0 to 20'),
    keyGenerator,
    legacyHeaders: merged.legacyHeaders,
    logger,
    skip: merged.skip,
    shadow: merged.shadow,
    auditLog: merged.auditLog,
    auditRoute: merged.auditRoute,
    metricsRegistry: registry,
    metricsNamespace,
  })
}

/** The limit of one type. */
export function maxFor(config: ResolvedRateLimitConfig, type: RateLimitType): number {
  switch (type) {
    case 'read':
      return config.maxRead
    case 'write':
      return config.maxWrite
    case 'custom':
      return config.maxCustom
  }
}
