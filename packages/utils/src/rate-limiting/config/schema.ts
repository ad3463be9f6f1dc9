// Every option of RateLimitConfig, said once: what it is for, what it accepts, its default, and the
// environment variable that sets it. resolveConfig, rateLimitConfigFromEnv, DEFAULT_RATE_LIMIT_CONFIG
// and the checks of the docs' tables and JSDoc (test/unit/option-docs.test.ts) all read this table.
import type { Request } from 'express'
import type { Store } from 'express-rate-limit'

import type { KeyGenerator } from '../limiter/keys.js'
import { ERROR_CODES, RateLimitError } from '../errors.js'
import type { RateLimitLogger } from '../observability/logger.js'
import { shownValue } from '../observability/redact.js'
import { ALGORITHMS, type Algorithm, type Limit } from '../policies/limits.js'
import { checkTemplates, type MaxFunction, type PolicySelector } from '../policies/plans.js'
import { limitsText } from '../policies/limits-text.js'
import { parseRedisUrl } from '../redis/url.js'
import { flagValue } from './env-values.js'
import type {
  CostFunction,
  ExceededHandlerFunction,
  IdentifierFunction,
  MetricsRegistry,
  MessageFunction,
  RequestWasSuccessful,
  StandardHeaders,
  PolicyLimits,
  RateLimitConfig,
  RedisCommandClient,
  SkipFunction,
  StoreErrorPolicy,
} from './types.js'

/** One option. */
export interface OptionSpec<T> {
  /** What it is for, in one sentence: RateLimitConfig's JSDoc of it opens with this. */
  readonly doc: string
  /** What a valid value is, as the error says it: `instances must be <allowed>, got 0`. */
  readonly allowed: string
  /** True for a value the option accepts. */
  readonly accepts: (value: unknown) => value is T
  /** The default, where it is plain data (DEFAULT_RATE_LIMIT_CONFIG shows it); else undefined. */
  readonly default: T | undefined
  /**
   * The variable rateLimitConfigFromEnv reads, how its text becomes a value to check, and what its
   * error says is allowed where that differs from `allowed`.
   */
  readonly env?: {
    readonly name: string
    readonly read: (text: string) => unknown
    readonly allowed?: string
    /** Text the variable accepts, for the checks of the docs: for an option without a default. */
    readonly example?: string
  }
  /** A check beyond the type, which throws an error of its own (a URL's, say). */
  readonly verify?: (value: T) => void
}

/** An option whose default's type is known to the compiler (`undefined` for one without), before its doc line. */
type Spec<T, D extends T | undefined> = Omit<OptionSpec<T>, 'doc'> & { readonly default: D }

/** The option `spec`, with its doc line. */
const documented = <S extends { readonly allowed: string }>(doc: string, spec: S): S & { readonly doc: string } => ({
  doc,
  ...spec,
})

export const STORE_ERROR_POLICIES: readonly StoreErrorPolicy[] = Object.freeze(['fallback', 'allow', 'deny'])
export const MAX_INSTANCES = 10_000
export const MAX_STORE_TIMEOUT_MS = 10_000
export const MIN_WINDOW_MS = 1000
/** The largest delay a Node timer takes; express-rate-limit's MemoryStore refuses more. */
export const MAX_WINDOW_MS = 2 ** 31 - 1
const MAX_REDIS_RETRIES = 20
/**
 * Reconnects back off by 100 ms an attempt, up to this (redis/connection.ts). The guide caps the
 * back-off at 3 s; 1 s lets a fleet be back on the shared budget within 2 s of Redis returning, for
 * one connection attempt per second per process during an outage.
 */
export const MAX_RECONNECT_DELAY_MS = 1000
const MAX_RETRY_DELAY_MS = 60_000

/** Digits only, as a variable must spell an integer (no sign, exponent, hex or fraction). */
const integerText = (text: string): number => (/^\d+$/.test(text) ? Number(text) : Number.NaN)

/** A flag's text as a boolean; any other text is left as it is, and refused. */
const flagText = (text: string): unknown => flagValue(text) ?? text

interface IntegerOptions {
  readonly min: number
  readonly max: number
  readonly unit?: 'ms'
  readonly env?: string
}

// Overloads, so that an option without a default says so in its type: inferred from `satisfies`
// alone, a missing default would widen to `number | undefined` and look like one.
function integer(options: IntegerOptions): Spec<number, undefined>
function integer<D extends number>(options: IntegerOptions & { readonly default: D }): Spec<number, D>
function integer(options: IntegerOptions & { readonly default?: number }): Spec<number, number | undefined> {
  const { min, max, unit } = options
  const range = min === 1 && max === Number.MAX_SAFE_INTEGER ? 'a positive integer' : `an integer from ${min} to ${max}`
  return {
    allowed: unit === undefined ? range : `${range} (${unit})`,
    accepts: (value): value is number =>
      Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max,
    default: options.default,
    // A variable's error has always given the range alone.
    env: options.env === undefined ? undefined : { name: options.env, read: integerText, allowed: range },
  }
}

const positive = <D extends number>(defaultValue: D, variable: { env?: string } = {}): Spec<number, D> =>
  integer({ min: 1, max: Number.MAX_SAFE_INTEGER, default: defaultValue, env: variable.env })

/** A limit's max: a positive safe integer (its variable: digits), or a function of the request. */
const maxSpec = <D extends number>(defaultValue: D, variable: { env?: string } = {}): Spec<number | MaxFunction, D> => {
  const number = positive(defaultValue, variable)
  return {
    allowed: `${number.allowed}, or a function (request) => number`,
    accepts: (value): value is number | MaxFunction => typeof value === 'function' || number.accepts(value),
    default: number.default,
    env: number.env,
  }
}

const flag = <D extends boolean>(defaultValue: D, variable: { env?: string } = {}): Spec<boolean, D> => ({
  allowed: 'true or false',
  accepts: (value): value is boolean => typeof value === 'boolean',
  default: defaultValue,
  env: variable.env === undefined ? undefined : { name: variable.env, read: flagText },
})

function choice<T extends string, D extends T>(
  values: readonly T[],
  defaultValue: D,
  variable: { env: string },
): Spec<T, D> {
  return {
    allowed: `one of ${values.join(', ')}`,
    accepts: (value): value is T => values.includes(value as T),
    default: defaultValue,
    env: { name: variable.env, read: (text) => text },
  }
}

function text(allowed: string, pattern: RegExp): Spec<string, undefined>
function text<D extends string>(allowed: string, pattern: RegExp, defaultValue: D): Spec<string, D>
function text(allowed: string, pattern: RegExp, defaultValue?: string): Spec<string, string | undefined> {
  return {
    allowed,
    accepts: (value): value is string => typeof value === 'string' && pattern.test(value),
    default: defaultValue,
  }
}

const fn = <T>(allowed: string): Spec<T, undefined> => ({
  allowed,
  accepts: (value): value is T => typeof value === 'function',
  default: undefined,
})

/**
 * A list of limits (policies/limits.ts checks each entry, naming it); its variable spells them as
 * limits-text.ts reads them: `burst=10/1s,hourly=1000/1h`.
 */
const limitList = (option: string, variable: { env?: string } = {}): Spec<readonly Limit[], undefined> => ({
  allowed: 'a list of 1 to 8 { name?, max, windowMs } limits',
  accepts: (value): value is readonly Limit[] => Array.isArray(value),
  default: undefined,
  verify: (limits) => void checkTemplates(limits, option),
  env:
    variable.env === undefined
      ? undefined
      : {
          name: variable.env,
          read: limitsText,
          allowed:
            'a list like burst=10/1s,hourly=1000/1h (max/window, the window in ms, s, m, h or d; name= optional)',
          example: 'burst=10/1s,hourly=1000/1h',
        },
})

/** A max with no default of its own (`limit`, `max`): a positive safe integer, or a function of the request. */
const aliasMax: Spec<number | MaxFunction, undefined> = {
  allowed: 'a positive integer, or a function (request) => number',
  accepts: (value): value is number | MaxFunction =>
    typeof value === 'function' || (Number.isSafeInteger(value) && (value as number) >= 1),
  default: undefined,
}

/** The 429's body: a string, an object, or a function of the request. */
const messageSpec: Spec<string | Readonly<Record<string, unknown>> | MessageFunction, string> = {
  allowed: 'a non-empty string, an object (the body), or a function (request, response) => string | object',
  accepts: (value): value is string | Readonly<Record<string, unknown>> | MessageFunction =>
    (typeof value === 'string' && /\S/.test(value)) ||
    typeof value === 'function' ||
    (typeof value === 'object' && value !== null && !Array.isArray(value)),
  default: 'Too many requests, please try again later.',
}

const STANDARD_HEADERS = ['draft-6', 'draft-7', 'draft-8'] as const

/** A name the RateLimit headers can quote as it is: printable, no `"` or `\`. */
export const IDENTIFIER = /^[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}$/

const standardHeadersSpec: Spec<StandardHeaders, 'draft-8'> = {
  allowed: "'draft-8', 'draft-7', 'draft-6', true (draft-6) or false (none)",
  accepts: (value): value is StandardHeaders =>
    typeof value === 'boolean' || (STANDARD_HEADERS as readonly unknown[]).includes(value),
  default: 'draft-8',
}

const passOnStoreErrorSpec: Spec<boolean, undefined> = {
  allowed: 'true (onStoreError allow) or false (deny)',
  accepts: (value): value is boolean => typeof value === 'boolean',
  default: undefined,
}

/** A request's cost: a positive safe integer, or a function that answers one per request. */
const costSpec: Spec<number | CostFunction, undefined> = {
  allowed: 'a positive safe integer, or a function (request) => number',
  accepts: (value): value is number | CostFunction =>
    typeof value === 'function' || (Number.isSafeInteger(value) && (value as number) >= 1),
  default: undefined,
}

/** A policy's name: it heads its limits' names in the RateLimit headers. */
const POLICY_NAME = /^[A-Za-z0-9_.-]{1,32}$/

/** The options a policy may give (PolicyLimits): each is checked as the set's option of that name. */
export const POLICY_OPTIONS = [
  'windowMs',
  'maxRead',
  'maxWrite',
  'maxCustom',
  'limits',
  'limitsRead',
  'limitsWrite',
  'limitsCustom',
] as const satisfies readonly (keyof PolicyLimits)[]

/** Named policies: each name, and each of its options as the set's option of that name checks it. */
const policiesSpec: Spec<Readonly<Record<string, PolicyLimits>>, undefined> = {
  allowed: `an object of named policies, each { ${POLICY_OPTIONS.join(', ')} }`,
  accepts: (value): value is Readonly<Record<string, PolicyLimits>> =>
    typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length > 0,
  default: undefined,
  verify(policies) {
    for (const [name, given] of Object.entries(policies)) {
      const at = `policies.${name}`
      if (!POLICY_NAME.test(name)) {
        throw invalidOption(
          'policies',
          `policies' names must be 1-32 of A-Z a-z 0-9 _ . -, got ${JSON.stringify(name)}`,
        )
      }
      if (typeof given !== 'object' || given === null || Array.isArray(given)) {
        throw invalidOption(at, `${at} must be an object of ${POLICY_OPTIONS.join(', ')}, got ${shownValue(given)}`)
      }
      for (const [key, value] of Object.entries(given)) {
        if (!(POLICY_OPTIONS as readonly string[]).includes(key)) {
          throw invalidOption(`${at}.${key}`, `${at} may give ${POLICY_OPTIONS.join(', ')}, not "${key}"`)
        }
        if (value === undefined) continue
        const spec = OPTIONS[key as (typeof POLICY_OPTIONS)[number]] as OptionSpec<unknown>
        if (!spec.accepts(value))
          throw invalidOption(`${at}.${key}`, `${at}.${key} must be ${spec.allowed}, got ${shownValue(value)}`)
        if (key.startsWith('limits')) checkTemplates(value, `${at}.${key}`)
      }
    }
  },
}

const invalidOption = (option: string, message: string): RateLimitError =>
  new RateLimitError(ERROR_CODES.INVALID_OPTION, message, { option })

/** An object with these methods. */
const withMethods = <T>(allowed: string, methods: readonly string[]): Spec<T, undefined> => ({
  allowed,
  default: undefined,
  accepts: (value): value is T =>
    typeof value === 'object' &&
    value !== null &&
    methods.every((method) => typeof (value as Record<string, unknown>)[method] === 'function'),
})

/** The options, in the order the docs list them. The compiler holds this to RateLimitConfig's keys. */
export const OPTIONS = {
  windowMs: documented(
    'Length of one window, in ms.',
    integer({
      min: MIN_WINDOW_MS,
      max: MAX_WINDOW_MS,
      unit: 'ms',
      default: 15 * 60 * 1000,
      env: 'RATE_LIMIT_WINDOW_MS',
    }),
  ),
  maxRead: documented(
    'Requests per window and client for the read limiter.',
    maxSpec(100, { env: 'RATE_LIMIT_READ_MAX' }),
  ),
  maxWrite: documented(
    'Requests per window and client for the write limiter.',
    maxSpec(60, { env: 'RATE_LIMIT_WRITE_MAX' }),
  ),
  maxCustom: documented('Requests per window and client for a custom limiter.', maxSpec(100)),
  algorithm: documented(
    'How every limit of the set counts (docs/algorithms.md).',
    choice<Algorithm, 'fixed-window'>(ALGORITHMS, 'fixed-window', { env: 'RATE_LIMIT_ALGORITHM' }),
  ),
  limits: documented(
    'Several limits, all checked and spent together, for every limiter of the set that has none of its own: they replace its max and windowMs.',
    limitList('limits'),
  ),
  limitsRead: documented(
    "The read limiter's own limits, in place of maxRead and windowMs.",
    limitList('limitsRead', { env: 'RATE_LIMIT_READ_LIMITS' }),
  ),
  limitsWrite: documented(
    "The write limiter's own limits, in place of maxWrite and windowMs.",
    limitList('limitsWrite', { env: 'RATE_LIMIT_WRITE_LIMITS' }),
  ),
  limitsCustom: documented(
    "A custom limiter's own limits, in place of maxCustom and windowMs.",
    limitList('limitsCustom'),
  ),
  cost: documented('What one request spends of every limit: a number, or a function of the request.', costSpec),
  policies: documented(
    'Named policies, each with limits of its own (PolicyLimits), one of which `policy` picks per request.',
    policiesSpec,
  ),
  policy: documented(
    "Picks a request's policy: the name of one of `policies`, or undefined for the set's own limits.",
    fn<PolicySelector>('a function (request) => string | undefined'),
  ),
  keyPrefix: documented(
    "Namespace of this service's counters: keys are `{keyPrefix}:{name}:{client key}`.",
    text('1-64 characters from A-Z a-z 0-9 . _ - { } (no spaces or colons)', /^[A-Za-z0-9._{}-]{1,64}$/, 'rate-limit'),
  ),
  message: documented(
    "The 429's body: a string is the `error` of our JSON body; an object is sent as the body.",
    messageSpec,
  ),
  statusCode: documented('The status of a refused request.', integer({ min: 400, max: 599, default: 429 })),
  handler: documented(
    "Answers a refused request in place of our 429 (express-rate-limit's `handler`).",
    fn<ExceededHandlerFunction>('a function (request, response, next, options)'),
  ),
  standardHeaders: documented('Which RateLimit headers to send.', standardHeadersSpec),
  requestPropertyName: documented(
    "The property of the request the decision is set on, as well as `rateLimit` (express-rate-limit's requestPropertyName).",
    text('1-64 letters, digits, _ and $, not starting with a digit', /^[A-Za-z_$][A-Za-z0-9_$]{0,63}$/),
  ),
  identifier: documented(
    'The name of the one limit in the draft-8 RateLimit headers, for a limiter without a policy.',
    {
      allowed: 'a string of 1-64 printable characters with no " or \\, or a function (request, response) => string',
      accepts: (value): value is string | IdentifierFunction =>
        typeof value === 'function' || (typeof value === 'string' && IDENTIFIER.test(value)),
      default: undefined,
    } satisfies Spec<string | IdentifierFunction, undefined>,
  ),
  skipSuccessfulRequests: documented('Give a request back once its response says it succeeded.', flag(false)),
  skipFailedRequests: documented(
    'Give a request back once its response says it failed, or the client went away first.',
    flag(false),
  ),
  requestWasSuccessful: documented(
    'Whether a request succeeded, for skipSuccessfulRequests and skipFailedRequests.',
    fn<RequestWasSuccessful>('a function (request, response) => boolean'),
  ),
  passOnStoreError: documented("The outage policy, by express-rate-limit's name.", passOnStoreErrorSpec),
  ipv6Subnet: documented(
    "The prefix length IPv6 clients are grouped by in the default key generator (express-rate-limit's `ipv6Subnet`).",
    {
      allowed: 'an integer from 1 to 128, or false (each address on its own)',
      accepts: (value): value is number | false =>
        value === false || (Number.isSafeInteger(value) && (value as number) >= 1 && (value as number) <= 128),
      default: undefined,
    } satisfies Spec<number | false, undefined>,
  ),
  limit: documented(
    "The max of every limiter this call makes, unless its own max is given (express-rate-limit's `limit`).",
    aliasMax,
  ),
  max: documented('The older name of `limit`, as express-rate-limit has it.', aliasMax),
  redisUrl: documented('Redis to share the budget through.', {
    ...text('a redis:// or rediss:// URL', /\S/),
    verify: (url: string) => void parseRedisUrl(url, 'redisUrl'),
  }),
  store: documented(
    "An express-rate-limit Store of the user's to count in (Memcached, Postgres, ...), behind the same timeouts, circuit and fallback as Redis.",
    withMethods<Store>('an express-rate-limit Store: an object with increment(key), decrement(key) and resetKey(key)', [
      'increment',
      'decrement',
      'resetKey',
    ]),
  ),
  redisClient: documented(
    "A client to use instead of the process's shared connection (tests, custom set-ups).",
    withMethods<RedisCommandClient>('a client with a call(command, ...args) method, such as ioredis', ['call']),
  ),
  redisRetries: documented(
    'Connection attempts retried before the first connection fails the call.',
    integer({ min: 0, max: MAX_REDIS_RETRIES, default: 3 }),
  ),
  redisRetryDelay: documented(
    'Kept so that code written against the first implementation still compiles.',
    integer({ min: 0, max: MAX_RETRY_DELAY_MS }),
  ),
  legacyHeaders: documented('Also send the legacy `X-RateLimit-*` headers.', flag(false)),
  problemDetails: documented(
    'Answer 429 as an RFC 9457 `application/problem+json` body, with the limits that refused.',
    flag(false, { env: 'RATE_LIMIT_PROBLEM_DETAILS' }),
  ),
  logger: documented(
    'Where operator lines go.',
    withMethods<RateLimitLogger>('an object with info, warn and error functions', ['info', 'warn', 'error']),
  ),
  keyGenerator: documented(
    'The client key a request is counted under.',
    fn<KeyGenerator>('a function (request) => string'),
  ),
  onStoreError: documented(
    'What the limiters do while Redis cannot be used (down, hung, or failing over).',
    choice(STORE_ERROR_POLICIES, 'fallback', { env: 'RATE_LIMIT_ON_STORE_ERROR' }),
  ),
  instances: documented(
    'How many processes share the Redis budget.',
    integer({ min: 1, max: MAX_INSTANCES, default: 1, env: 'RATE_LIMIT_INSTANCES' }),
  ),
  requireRedis: documented(
    'Refuse to create the limiters when Redis cannot be reached at first, instead of starting in the onStoreError policy and switching to Redis when it appears.',
    flag(false, { env: 'RATE_LIMIT_REQUIRE_REDIS' }),
  ),
  storeTimeoutMs: documented(
    "How long (ms) Redis may leave a call's write unanswered before the request is decided by the policy.",
    integer({
      min: 1,
      max: MAX_STORE_TIMEOUT_MS,
      unit: 'ms',
      default: 100,
      env: 'RATE_LIMIT_STORE_TIMEOUT_MS',
    }),
  ),
  skip: documented(
    "Requests to let through without counting them, such as admins'.",
    fn<SkipFunction>('a function (request) => boolean'),
  ),
  shadow: documented(
    'Shadow mode: count, send the RateLimit headers, report metrics and write the audit log, but never block.',
    flag(false, { env: 'RATE_LIMIT_SHADOW' }),
  ),
  auditLog: documented(
    'Write `[RateLimit:<type>] Rate limit exceeded` with a RateLimitAuditRecord through `logger.warn`, once per client key and window.',
    flag(true),
  ),
  auditRoute: documented(
    "How the audit log names a request's route.",
    fn<(request: Request) => string>('a function (request) => string'),
  ),
  metricsRegistry: documented(
    "A prom-client Registry to report the limiters' metrics on (see docs/observability.md).",
    withMethods<MetricsRegistry>('a prom-client Registry', ['registerMetric', 'getSingleMetric', 'metrics']),
  ),
  metricsNamespace: documented(
    'The `namespace` label of the metrics and audit records, usually the service name.',
    text('1-64 characters from A-Z a-z 0-9 . _ -', /^[A-Za-z0-9._-]{1,64}$/),
  ),
} satisfies { readonly [K in keyof Required<RateLimitConfig>]: OptionSpec<Required<RateLimitConfig>[K]> }

export type OptionName = keyof typeof OPTIONS

/** The options with a plain default. */
export type DefaultedOption = {
  [K in OptionName]: (typeof OPTIONS)[K]['default'] extends undefined ? never : K
}[OptionName]
