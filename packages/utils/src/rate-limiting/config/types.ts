// Public types of @universo/utils/rate-limiting: options, limiter handles and the Redis seam.
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import type { RateLimitRequestHandler as ExpressRateLimitHandler, Store } from 'express-rate-limit'

import type { OperatorControls } from '../limiter/controls.js'
import type { KeyGenerator } from '../limiter/keys.js'
import type { Algorithm, Limit } from '../policies/limits.js'
import type { MaxFunction, PolicySelector } from '../policies/plans.js'
import type { RateLimitLogger } from '../observability/logger.js'
import type { Topology } from '../redis/topology.js'

/** What a limiter set does while Redis cannot be used. */
export type StoreErrorPolicy = 'fallback' | 'allow' | 'deny'

export type { KeyGenerator } from '../limiter/keys.js'

export type { RateLimitLogger } from '../observability/logger.js'

/**
 * The three budgets a limiter can draw from: `read` (maxRead, limitsRead), `write` (maxWrite,
 * limitsWrite), and `custom` (maxCustom, limitsCustom), which every other name draws from too.
 */
export type RateLimitType = 'read' | 'write' | 'custom'

/**
 * A limiter's name: `read`, `write`, `custom`, or any other of 1 to 32 letters, digits, `_`, `-`
 * and `.` (no `:`, no braces). Each name of one keyPrefix has its own counters, in Redis under
 * `{keyPrefix}:{name}:{client key}`.
 */
export type LimiterName = RateLimitType | (string & {})

/**
 * A prom-client `Registry`, as the limiters see one. Said here rather than imported, so that a
 * project without prom-client (an optional peer) still typechecks against these types, with
 * skipLibCheck off; a prom-client 15 Registry fits it as it is.
 */
export interface MetricsRegistry {
  registerMetric(metric: never): void
  getSingleMetric(name: string): unknown
  metrics(): Promise<string>
}

/**
 * The smallest Redis client the limiters need: something that sends one raw command.
 * ioredis's `Redis` fits as is; `createIoredisMockAdapter` makes ioredis-mock fit.
 */
export interface RedisCommandClient {
  call(command: string, ...args: string[]): Promise<unknown>
}

/**
 * Whether a request bypasses the limiter: true lets it through without counting it (it is counted
 * in rate_limit_skipped_total instead). Truthy values count as true.
 */
export type SkipFunction = (request: Request, response: Response) => boolean | undefined | Promise<boolean | undefined>

/** A 429's body from the request, as express-rate-limit's `message` function: a string (our body's `error`) or an object (the body). */
export type MessageFunction = (
  request: Request,
  response: Response,
) => string | Readonly<Record<string, unknown>> | Promise<string | Readonly<Record<string, unknown>>>

/**
 * Answers a request over the limit in place of our 429, as express-rate-limit's `handler`: the
 * headers (and Retry-After) are written, the request is counted, audited and remembered as blocked.
 */
export type ExceededHandlerFunction = (
  request: Request,
  response: Response,
  next: NextFunction,
  options: { readonly statusCode: number; readonly windowMs: number; readonly message: unknown },
) => void

/** The RateLimit headers' name of a request's limit, from the request (express-rate-limit's identifier). */
export type IdentifierFunction = (request: Request, response: Response) => string | Promise<string>

/** Whether a request succeeded, for skipSuccessfulRequests and skipFailedRequests. @default status < 400 */
export type RequestWasSuccessful = (request: Request, response: Response) => boolean | Promise<boolean>

/** The RateLimit headers' version: draft-8 (ours), draft-7, draft-6 (true, as in express-rate-limit), or none. */
export type StandardHeaders = 'draft-6' | 'draft-7' | 'draft-8' | boolean

/** What a request costs, from the request: a positive safe integer, at once or as a promise. */
export type CostFunction = (request: Request) => number | Promise<number>

export type { Algorithm, Limit } from '../policies/limits.js'

export type { MaxFunction, PolicySelector } from '../policies/plans.js'

/**
 * The limits a named policy gives (`policies`): the set's options of the same names, for the
 * limiters it gives limits to. For a limiter's budget, the policy's own list (limitsRead, say)
 * comes first, then its `limits`, then its max (maxRead) per its windowMs (else the set's); a
 * budget the policy gives none of keeps the set's limits, over the policy's windowMs if it has one.
 */
export interface PolicyLimits {
  readonly windowMs?: number
  readonly maxRead?: number | MaxFunction
  readonly maxWrite?: number | MaxFunction
  readonly maxCustom?: number | MaxFunction
  readonly limits?: readonly Limit[]
  readonly limitsRead?: readonly Limit[]
  readonly limitsWrite?: readonly Limit[]
  readonly limitsCustom?: readonly Limit[]
}

/** Options of createRateLimiter and createRateLimiters. Unknown keys are rejected. */
export interface RateLimitConfig {
  /**
   * Length of one window, in ms. An integer from 1000 (1 s) to 2147483647 (about 24.8 days).
   * @default 900000 (15 minutes)
   */
  windowMs?: number
  /**
   * Requests per window and client for the read limiter. A positive safe integer, or a function of
   * the request that answers one (sync or async), such as a plan's limit. @default 100
   */
  maxRead?: number | MaxFunction
  /**
   * Requests per window and client for the write limiter. A positive safe integer, or a function of
   * the request that answers one (sync or async). @default 60
   */
  maxWrite?: number | MaxFunction
  /**
   * Requests per window and client for a custom limiter. A positive safe integer, or a function of
   * the request that answers one (sync or async). @default 100
   */
  maxCustom?: number | MaxFunction
  /**
   * How every limit of the set counts (docs/algorithms.md). `fixed-window`: express-rate-limit's
   * window, from a client's first hit. `sliding-window`: aligned windows, the previous one weighted
   * by how much of it still overlaps, so there is no 2x burst at an edge. `token-bucket` (GCRA):
   * `max` is the burst, refilled at `max` per `windowMs`. In the last two a refused request spends
   * nothing. @default 'fixed-window' (RATE_LIMIT_ALGORITHM)
   */
  algorithm?: Algorithm
  /**
   * Several limits, all checked and spent together, for every limiter of the set that has none of
   * its own: they replace its max and windowMs. A request passes only if every limit allows it,
   * and when one refuses, none is spent. 1 to 8 `{ name?, max, windowMs }`; a name (1-32 of
   * `A-Z a-z 0-9 _ . -`) shows in the RateLimit headers. @default none (one limit: max per windowMs)
   */
  limits?: readonly Limit[]
  /** The read limiter's own limits, in place of maxRead and windowMs. As `limits`: 1 to 8 of them. @default none (RATE_LIMIT_READ_LIMITS) */
  limitsRead?: readonly Limit[]
  /** The write limiter's own limits, in place of maxWrite and windowMs. As `limits`: 1 to 8 of them. @default none (RATE_LIMIT_WRITE_LIMITS) */
  limitsWrite?: readonly Limit[]
  /** A custom limiter's own limits, in place of maxCustom and windowMs. As `limits`: 1 to 8 of them. @default none */
  limitsCustom?: readonly Limit[]
  /**
   * What one request spends of every limit: a number, or a function of the request. The function
   * may be sync or async. A request whose cost is not a positive safe integer, or more than a limit can ever
   * allow, goes to Express's error handler with ERR_RATE_LIMIT_INVALID_COST. @default 1
   */
  cost?: number | CostFunction
  /**
   * Named policies, each with limits of its own (PolicyLimits), one of which `policy` picks per
   * request. For example `{ free: { maxRead: 100 }, pro: { maxRead: 1000 } }`. Names are 1-32 of
   * `A-Z a-z 0-9 _ . -`, and head the names of their limits in the RateLimit headers (`pro.read`).
   * A client's counters are kept across a change of policy (docs/rate-limiting.md). @default none
   */
  policies?: Readonly<Record<string, PolicyLimits>>
  /**
   * Picks a request's policy: the name of one of `policies`, or undefined for the set's own limits.
   * Sync or async. Any other answer goes to Express's error handler with ERR_RATE_LIMIT_INVALID_POLICY.
   * @default none (required with policies)
   */
  policy?: PolicySelector
  /**
   * Namespace of this service's counters: keys are `{keyPrefix}:{name}:{client key}`.
   * 1-64 characters from `A-Z a-z 0-9 . _ - { }` (no colon, so prefixes can never overlap).
   * Two limiters with the same prefix and type in one process are refused: they would double count.
   * @default 'rate-limit'
   */
  keyPrefix?: string
  /**
   * The 429's body: a string is the `error` of our JSON body; an object is sent as the body. A
   * function of the request (sync or async) answers either. @default 'Too many requests, please try again later.'
   */
  message?: string | Readonly<Record<string, unknown>> | MessageFunction
  /** The status of a refused request. An integer from 400 to 599. @default 429 */
  statusCode?: number
  /** Answers a refused request in place of our 429 (express-rate-limit's `handler`). @default our 429 */
  handler?: ExceededHandlerFunction
  /**
   * Which RateLimit headers to send. 'draft-8' (`RateLimit` and `RateLimit-Policy` with names),
   * 'draft-7', 'draft-6' (or true, as express-rate-limit reads it), or false for none. @default 'draft-8'
   */
  standardHeaders?: StandardHeaders
  /**
   * The property of the request the decision is set on, as well as `rateLimit` (express-rate-limit's
   * requestPropertyName). 1-64 letters, digits, `_` and `$`, not starting with a digit. @default 'rateLimit'
   */
  requestPropertyName?: string
  /**
   * The name of the one limit in the draft-8 RateLimit headers, for a limiter without a policy.
   * express-rate-limit's identifier: a string, or a function of the request (sync or async)
   * that answers one: 1-64 printable characters, no `"` or `\`. @default the limiter's name
   */
  identifier?: string | IdentifierFunction
  /** Give a request back once its response says it succeeded. Success is status < 400, or requestWasSuccessful's answer. @default false */
  skipSuccessfulRequests?: boolean
  /** Give a request back once its response says it failed, or the client went away first. Failure is status >= 400, or requestWasSuccessful's false. @default false */
  skipFailedRequests?: boolean
  /** Whether a request succeeded, for skipSuccessfulRequests and skipFailedRequests. @default status < 400 */
  requestWasSuccessful?: RequestWasSuccessful
  /**
   * The outage policy, by express-rate-limit's name. true is onStoreError 'allow', false is 'deny'
   * (a refused request rather than an error). Not with onStoreError. @default none (onStoreError)
   */
  passOnStoreError?: boolean
  /**
   * The prefix length IPv6 clients are grouped by in the default key generator (express-rate-limit's
   * `ipv6Subnet`). An integer from 1 to 128, or false for each address on its own. Not with keyGenerator. @default 56
   */
  ipv6Subnet?: number | false
  /** The max of every limiter this call makes, unless its own max is given (express-rate-limit's `limit`). @default none */
  limit?: number | MaxFunction
  /** The older name of `limit`, as express-rate-limit has it. Not with `limit`. @default none */
  max?: number | MaxFunction
  /**
   * Redis to share the budget through. When neither this, `redisClient` nor REDIS_URL is set,
   * each process counts in memory. @default process.env.REDIS_URL
   */
  redisUrl?: string
  /**
   * An express-rate-limit Store of the user's to count in (Memcached, Postgres, ...), behind the same timeouts, circuit and fallback as Redis.
   * Its API counts one hit at a time, so it takes the default's fixed window only: not with
   * redisUrl, redisClient, another algorithm, limits, cost, policies or a max function. @default none
   */
  store?: Store
  /** A client to use instead of the process's shared connection (tests, custom set-ups). */
  redisClient?: RedisCommandClient
  /** Connection attempts retried before the first connection fails the call. An integer 0-20. @default 3 */
  redisRetries?: number
  /**
   * Kept so that code written against the first implementation still compiles. An integer
   * 0-60000, ignored with a warning: reconnects back off at `min(attempt * 100, 1000)` ms
   * (MAX_RECONNECT_DELAY_MS).
   * @deprecated
   */
  redisRetryDelay?: number
  /**
   * The client key a request is counted under. Whatever it returns is stored as is up to 128
   * bytes, and as its SHA-256 beyond. @default `user:<req.user.id>` when set, else the client IP
   * (IPv6 grouped by /56)
   */
  keyGenerator?: KeyGenerator
  /** Also send the legacy `X-RateLimit-*` headers. @default false */
  legacyHeaders?: boolean
  /**
   * Answer 429 as an RFC 9457 `application/problem+json` body, with the limits that refused.
   * @default false
   */
  problemDetails?: boolean
  /** Where operator lines go. @default console */
  logger?: RateLimitLogger
  /**
   * What the limiters do while Redis cannot be used (down, hung, or failing over).
   * `fallback` counts in process memory with `max / instances` per client; `allow` lets requests
   * through unlimited; `deny` answers 503 with Retry-After. @default 'fallback'
   */
  onStoreError?: StoreErrorPolicy
  /**
   * How many processes share the Redis budget. During a fallback each allows `floor(max / instances)`
   * (at least 1), so a fleet does not multiply its budget while Redis is away. An integer 1-10000.
   * @default 1
   */
  instances?: number
  /**
   * Refuse to create the limiters when Redis cannot be reached at first, instead of starting in
   * the onStoreError policy and switching to Redis when it appears. @default false
   */
  requireRedis?: boolean
  /**
   * How long (ms) Redis may leave a call's write unanswered before the request is decided by the
   * policy. Timeouts that keep coming for three times this open the circuit. Time a call spends in
   * our own process does not count (redis-failures.md, Deadlines). An integer 1-10000. @default 100
   */
  storeTimeoutMs?: number
  /**
   * Requests to let through without counting them, such as admins'. Runs before the key generator;
   * a throw or rejection goes to Express's error handler. @default none (every request counts)
   */
  skip?: SkipFunction
  /**
   * Shadow mode: count, send the RateLimit headers, report metrics and write the audit log, but never
   * block. A request over the limit goes on (without Retry-After) and is counted in
   * rate_limit_shadow_rejections_total; under onStoreError 'deny' an outage lets requests through too.
   * For rolling out a new limit safely. @default false (RATE_LIMIT_SHADOW)
   */
  shadow?: boolean
  /**
   * Write `[RateLimit:<type>] Rate limit exceeded` with a RateLimitAuditRecord through `logger.warn`,
   * once per client key and window. @default true
   */
  auditLog?: boolean
  /**
   * How the audit log names a request's route. Must never return ids or other client data.
   * @default the mount path (`req.baseUrl`, path parameters shown as `:name`) plus the route pattern
   */
  auditRoute?: (request: Request) => string
  /**
   * A prom-client Registry to report the limiters' metrics on (see docs/observability.md). Without
   * it no metric exists and prom-client is never loaded. @default none
   */
  metricsRegistry?: MetricsRegistry
  /**
   * The `namespace` label of the metrics and audit records, usually the service name. 1-64
   * characters from `A-Z a-z 0-9 . _ -`. @default keyPrefix
   */
  metricsNamespace?: string
}

/**
 * An Express middleware that limits one type of request. It is our own front middleware
 * (limiter/front.ts) in front of express-rate-limit, not express-rate-limit's handler itself: it
 * has express-rate-limit's getKey, a resetKey that resolves once the store has reset the key,
 * and status and dispose.
 */
export type RateLimitRequestHandler = RequestHandler &
  OperatorControls & {
    /**
     * Resets a client's count, in the store and in this process's memory of blocked clients.
     * Resolves once the store has done so: at once in memory, after the Redis call on Redis (which
     * rejects, like a request's call, when Redis cannot be used).
     */
    resetKey(key: string): Promise<void>
    /** A client's hits and reset time, as express-rate-limit's getKey. */
    getKey: ExpressRateLimitHandler['getKey']
    /** Where this limiter counts, and whether that store can be used right now. */
    status(): RateLimitStoreStatus
    /**
     * Frees this limiter's keyPrefix and type so another limiter may take them, and stops its
     * in-memory timer. It does not close the shared Redis connection: that is RedisClientManager.close().
     */
    dispose(): void
  }

/** The read and write limiters of one service. */
export interface RateLimiters {
  readonly read: RateLimitRequestHandler
  readonly write: RateLimitRequestHandler
  /** Where both limiters count (they always share one kind of store), and whether it is usable. */
  status(): RateLimitStoreStatus
  /** Disposes both limiters (see RateLimitRequestHandler.dispose). */
  dispose(): void
}

/** The JSON body of a 429 answer. */
export interface RateLimitExceededBody {
  readonly success: false
  readonly error: string
  readonly code: 'RATE_LIMIT_EXCEEDED'
  /** Seconds until the window resets; the same value as the Retry-After header. */
  readonly retryAfter: number
}

/**
 * What /ready reports. `ready` is true while requests are counted where they should be: in memory
 * for a memory store, in Redis for a Redis store. `state` is `redis` when Redis is in use, or the
 * onStoreError policy in force while it is not; `since` is when that state began (ISO 8601).
 */
export type RateLimitStoreStatus =
  | { readonly store: 'memory'; readonly ready: true; readonly state: 'memory'; readonly since: string }
  | {
      /** An express-rate-limit Store of the user's (the `store` option). */
      readonly store: 'custom'
      readonly ready: boolean
      readonly state: 'custom' | StoreErrorPolicy
      readonly since: string
    }
  | {
      readonly store: 'redis'
      /** standalone, sentinel or cluster. */
      readonly topology: Topology
      readonly ready: boolean
      readonly state: 'redis' | StoreErrorPolicy
      readonly since: string
    }
