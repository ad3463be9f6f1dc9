// The two kinds of limiter behind the front middleware: one that counts in memory, and one that
// counts in Redis and turns to the onStoreError policy while Redis cannot be used.
import {
  rateLimit,
  type ClientRateLimitInfo,
  type RateLimitInfo,
  type RateLimitRequestHandler as LimiterHandler,
  type Store,
} from 'express-rate-limit'

import type { RateLimitLogger } from '../observability/logger.js'
import type { AuditLog } from '../observability/audit.js'
import type { LimiterStats, StoreKind } from '../observability/stats.js'
import type { RedisBackend } from '../redis/backend.js'
import { degradedHandler, fallbackMax, unlessUnavailable } from '../resilience/degraded.js'
import { GuardedRedisStore } from '../stores/guarded-store.js'
import type { GuardedCustomStore } from '../stores/custom-store.js'
import type { Breakers } from '../resilience/breakers.js'
import { ERROR_CODES, RateLimitError } from '../errors.js'
import { CompactMemoryStore } from '../stores/memory-store.js'
import { createRedisStore } from '../stores/redis-store.js'
import type {
  ExceededHandlerFunction,
  LimiterName,
  MessageFunction,
  RateLimitStoreStatus,
  StoreErrorPolicy,
} from '../config/types.js'
import type { BlockedKeys } from './blocked-keys.js'
import { decidedDirectly, keyFromFront, type Decide, type Decider } from './decision.js'
import type { RateLimitHeaders } from './headers.js'
import { rateLimitExceededHandler } from './response.js'
import type { CheckedLimit, LimitState } from '../policies/limits.js'

/** What one limiter's express-rate-limit instances share, whatever they count in. */
export interface LimiterParts {
  readonly type: LimiterName
  readonly max: number
  readonly windowMs: number
  readonly message: string | Readonly<Record<string, unknown>> | MessageFunction
  readonly statusCode: number
  readonly handler: ExceededHandlerFunction | undefined
  /** 429 bodies as RFC 9457 problem details (response.ts). */
  readonly problemDetails: boolean
  /** A policy's limits; undefined for the default's one window. */
  readonly limits: readonly CheckedLimit[] | undefined
  readonly shadow: boolean
  readonly logger: RateLimitLogger
  readonly stats: LimiterStats
  readonly audit: AuditLog | undefined
  /** Clients known to be over their limit; undefined in shadow mode, which never blocks. */
  readonly blocked: BlockedKeys | undefined
  readonly headers: RateLimitHeaders
  /** requestPropertyName, when it is not rateLimit. */
  readonly property: string | undefined
}

/** Where a client stands (an operator's view): its limits, and how long until it could pass. */
export interface RateLimitClientState {
  /** The client key, as stored. */
  readonly key: string
  /** The policy it was read under (`policies`); undefined for the limiter's own limits. */
  readonly policy: string | undefined
  /** ms until a request of cost 1 could pass: 0 when one could now. */
  readonly retryAfterMs: number
  /** Each limit: its name, max and windowMs, the units left and the ms until it is whole again. */
  readonly limits: readonly LimitState[]
}

/** What an operator's controls need of a kind of limiter (limiter/controls.ts checks their arguments). */
export interface LimiterControls {
  /** The state of `key`, spending nothing; under `policy` for a limiter with policies. */
  inspect(key: string, policy?: string): Promise<RateLimitClientState>
  /** Spends `n` more of every limit (`n` > 0, a penalty), or gives `-n` back (a reward), never below nothing spent. */
  adjust(key: string, n: number, policy?: string): Promise<RateLimitClientState>
  /** Refuses every request of `key` for `ms`, fleet-wide on Redis. */
  block(key: string, ms: number): Promise<RateLimitClientState>
  /**
   * Gives back what a request let through spent (skipSuccessfulRequests, skipFailedRequests),
   * never below nothing spent; nothing once its window has ended.
   */
  giveBack(key: string, info: RateLimitInfo): Promise<void>
}

/** What a limiter's handle adds to its front middleware. */
export interface LimiterCore extends LimiterControls {
  readonly decide: Decide
  resetKey(key: string): Promise<void>
  readonly getKey: LimiterHandler['getKey']
  status(): RateLimitStoreStatus
  /** Frees what this kind of limiter holds (its stores, its listeners). */
  dispose(): void
}

/** The 429 answer of a request over the limit, counted in `store`. */
export function exceededHandler(parts: LimiterParts, store: StoreKind) {
  return rateLimitExceededHandler({
    name: parts.type,
    message: parts.message,
    statusCode: parts.statusCode,
    handler: parts.handler,
    problemDetails: parts.problemDetails,
    limits: parts.limits,
    shadow: parts.shadow,
    stats: parts.stats,
    audit: parts.audit,
    store,
    // A fallback's count is this process's alone, and starts afresh when Redis is back: not a block to keep.
    blocked: store === 'fallback' ? undefined : parts.blocked,
    headers: parts.headers,
    property: parts.property,
  })
}

/**
 * One express-rate-limit instance of the limiter, counting in `store` (a `kind` of store) up to
 * `limit`, and deciding directly after its first request (limiter/decision.ts).
 */
function expressLimiter(parts: LimiterParts, kind: StoreKind, store: Store, limit = parts.max): Decider {
  const exceeded = exceededHandler(parts, kind)
  const limiter = rateLimit({
    windowMs: parts.windowMs,
    limit,
    store,
    // The headers are ours (limiter/headers.ts): the same draft-8 and legacy headers, written cheaper.
    standardHeaders: false,
    legacyHeaders: false,
    identifier: parts.type,
    // The front layer has computed the key already (limiter/front.ts).
    keyGenerator: keyFromFront,
    handler: exceeded,
    logger: loggerFor(parts.logger, parts.type),
  })
  return decidedDirectly(limiter, store, limit, parts.windowMs, exceeded)
}

/** express-rate-limit's (error, message) logger, written to ours with the limiter's tag. */
function loggerFor(logger: RateLimitLogger, type: LimiterName) {
  const line = (error: unknown, message?: string): string =>
    `[RateLimit:${type}] ${message ?? (error instanceof Error ? error.message : String(error))}`
  return {
    warn: (error: unknown, message?: string) => logger.warn(line(error, message), error),
    error: (error: unknown, message?: string) => logger.error(line(error, message), error),
  }
}

/** A limiter counting in this process's memory. */
export function memoryLimiter(parts: LimiterParts, since: Date): LimiterCore {
  const store = new CompactMemoryStore(parts.stats, 'memory')
  const handler = expressLimiter(parts, 'memory', store)
  return {
    decide: handler,
    resetKey(key: string): Promise<void> {
      parts.blocked?.delete(key)
      handler.resetKey(key)
      return Promise.resolve()
    },
    getKey: handler.getKey,
    status: () => ({ store: 'memory', ready: true, state: 'memory', since: since.toISOString() }),
    dispose: () => store.shutdown(),
    ...fixedControls(parts, {
      info: (key) => store.get(key),
      add: (key, n) => Promise.resolve(store.add(key, n)),
      block: (key, ms) => Promise.resolve(store.block(key, Date.now() + ms)),
    }),
  }
}

/** The fixed window's store, as the operator's controls use it. */
interface FixedControlStore {
  info(key: string): Promise<ClientRateLimitInfo | undefined>
  add(key: string, n: number): Promise<void>
  block(key: string, ms: number): Promise<void>
}

/** The operator's controls of the default's fixed window, over its store (memory or Redis). */
function fixedControls(parts: LimiterParts, store: FixedControlStore): LimiterControls {
  const stateOf = async (key: string): Promise<RateLimitClientState> => {
    const info = await store.info(key)
    const now = Date.now()
    // rate-limit-redis answers a key that does not exist with NaN hits.
    const counted = info !== undefined && Number.isFinite(info.totalHits) && info.totalHits > 0
    const hits = counted ? info.totalHits : 0
    const resetMs = !counted || info.resetTime === undefined ? 0 : Math.max(0, info.resetTime.getTime() - now)
    return {
      key,
      policy: undefined,
      retryAfterMs: hits >= parts.max ? resetMs : 0,
      limits: [
        {
          name: parts.type,
          max: parts.max,
          windowMs: parts.windowMs,
          remaining: Math.max(0, parts.max - hits),
          resetMs,
        },
      ],
    }
  }
  return {
    inspect: (key) => stateOf(key),
    async adjust(key, n) {
      await store.add(key, n)
      if (n < 0) parts.blocked?.delete(key)
      return stateOf(key)
    },
    async block(key, ms) {
      await store.block(key, ms)
      parts.blocked?.block(key, Date.now() + ms, parts.max)
      return stateOf(key)
    },
    async giveBack(key, info) {
      // As express-rate-limit: a window that has ended holds nothing of this request.
      if (info.resetTime !== undefined && Date.now() >= info.resetTime.getTime()) return
      await store.add(key, -1)
    },
  }
}

/** What a Redis limiter needs beyond its parts. */
export interface RedisLimiterOptions {
  readonly keyPrefix: string
  readonly storeTimeoutMs: number
  readonly onStoreError: StoreErrorPolicy
  readonly instances: number
}

/**
 * The default's fixed window in a guarded store (Redis, or a Store of the user's): counted there
 * while it can be used, and by the onStoreError policy while its circuit is open or a call fails.
 * The fallback counts in memory with max / instances, and forgets its counts when the store is back.
 */
function guardedFixedWindow(
  parts: LimiterParts,
  store: Store & { resetKey(key: string): Promise<void> },
  kind: StoreKind,
  breakers: Breakers,
  options: RedisLimiterOptions,
): Pick<LimiterCore, 'decide' | 'resetKey' | 'getKey' | 'dispose'> {
  const primary = expressLimiter(parts, kind, store)
  let fallback: Decider | undefined
  const fallbackStore = new CompactMemoryStore(parts.stats, 'fallback')
  // The outage's counts go when the store is back: a later outage starts afresh, and memory is freed.
  const stopResetting = breakers.onChange((healthy) => {
    if (healthy) void fallbackStore.resetAll()
  })
  const policy = degradedHandler(options.onStoreError, parts.shadow, () => {
    fallback = expressLimiter(parts, 'fallback', fallbackStore, fallbackMax(parts.max, options.instances))
    return fallback
  })
  return {
    decide: unlessUnavailable(primary, policy, breakers, parts.stats),
    async resetKey(key: string): Promise<void> {
      parts.blocked?.delete(key)
      fallback?.resetKey(key)
      await store.resetKey(key)
    },
    getKey: (key: string) => (breakers.healthy || fallback === undefined ? primary.getKey(key) : fallback.getKey(key)),
    dispose(): void {
      stopResetting()
      fallbackStore.shutdown()
    },
  }
}

/**
 * A limiter counting in Redis while it is healthy, and by the policy while the breaker is open or
 * when a call fails. With one circuit per cluster master, the store fails fast for keys on a lost
 * master only.
 */
export function redisLimiter(parts: LimiterParts, backend: RedisBackend, options: RedisLimiterOptions): LimiterCore {
  const { breakers } = backend
  const store = new GuardedRedisStore(
    createRedisStore(backend.client, options.keyPrefix, parts.type, options.storeTimeoutMs),
    backend.client,
    breakers,
    options.storeTimeoutMs,
    parts.stats,
  )
  backend.stores.push(store)
  return {
    ...guardedFixedWindow(parts, store, 'redis', breakers, options),
    status: (): RateLimitStoreStatus => {
      const { healthy, since } = breakers
      return {
        store: 'redis',
        topology: backend.topology,
        ready: healthy,
        state: healthy ? 'redis' : options.onStoreError,
        since: since.toISOString(),
      }
    },
    ...fixedControls(parts, {
      info: (key) => store.get(key),
      add: (key, n) => store.add(key, n),
      block: (key, ms) => store.block(key, ms),
    }),
  }
}

/**
 * A limiter counting in an express-rate-limit Store of the user's, guarded as the Redis store is:
 * a call that fails or hangs past storeTimeoutMs is decided by the onStoreError policy, and the
 * fallback counts in memory with max / instances while the store is away.
 */
export function customStoreLimiter(
  parts: LimiterParts,
  store: GuardedCustomStore,
  breakers: Breakers,
  options: RedisLimiterOptions,
): LimiterCore {
  return {
    ...guardedFixedWindow(parts, store, 'custom', breakers, options),
    status: (): RateLimitStoreStatus => ({
      store: 'custom',
      ready: breakers.healthy,
      state: breakers.healthy ? 'custom' : options.onStoreError,
      since: breakers.since.toISOString(),
    }),
    ...fixedControls(parts, {
      info: (key) => store.get(key),
      // The Store API counts one hit at a time: n of them, in turn.
      async add(key, n) {
        for (let i = 0; i < Math.abs(n); i++) await (n > 0 ? store.increment(key) : store.decrement(key))
      },
      block: () =>
        Promise.reject(
          new RateLimitError(
            ERROR_CODES.INVALID_ARGUMENT,
            'block: an express-rate-limit Store cannot hold a block; count in Redis (redisUrl) or memory to block a client',
            { option: 'block' },
          ),
        ),
    }),
  }
}
