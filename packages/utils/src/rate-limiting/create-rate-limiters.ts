// createRateLimiter / createRateLimiters: express-rate-limit middlewares on a Redis or memory store.
import type { Request, RequestHandler } from 'express'
import { rateLimit, type Options, type RateLimitRequestHandler as LimiterHandler } from 'express-rate-limit'

import { fallbackMax, openBackend, type Backend } from './redis/backend.js'
import { AuditLog } from './observability/audit.js'
import { degradedHandler } from './resilience/degraded.js'
import { instrument, keyFromFront } from './limiter/front.js'

import { boundedKey, defaultKeyFor, defaultKeyGenerator } from './limiter/keys.js'
import { RateLimitHeaders } from './limiter/headers.js'
import { debug, type RateLimitLogger } from './observability/logger.js'
import { checkType, maxFor, resolveConfig, type ResolvedRateLimitConfig } from './config/options.js'
import { RateLimitMetrics } from './observability/metrics.js'
import { claimPrefix } from './limiter/prefix-registry.js'
import { createProxyChecks } from './limiter/proxy-checks.js'
import { blockedAnswer, rateLimitExceededHandler } from './limiter/response.js'
import { BlockedKeys } from './limiter/blocked-keys.js'
import { GuardedRedisStore, StoreUnavailableError } from './stores/guarded-store.js'
import { CompactMemoryStore } from './stores/memory-store.js'
import { createRedisStore } from './stores/redis-store.js'
import { LimiterStats, type StoreKind } from './observability/stats.js'
import type {
  RateLimitConfig,
  RateLimiters,
  RateLimitRequestHandler,
  RateLimitStoreStatus,
  RateLimitType,
} from './config/types.js'

/** What every express-rate-limit instance of one limiter shares. */
interface LimiterParts {
  readonly type: RateLimitType
  readonly config: ResolvedRateLimitConfig
  readonly stats: LimiterStats
  readonly audit: AuditLog | undefined
  readonly blocked: BlockedKeys | undefined
  readonly headers: RateLimitHeaders
}

/** The options of one express-rate-limit instance of a limiter, counting in `store`. */
function limiterOptions({ type, config, stats, audit, blocked, headers }: LimiterParts, store: StoreKind) {
  return {
    windowMs: config.windowMs,
    // The headers are ours (limiter/headers.ts): the same draft-8 and legacy headers, written cheaper.
    standardHeaders: false,
    legacyHeaders: false,
    identifier: type,
    // The front layer has computed the key already (limiter/front.ts).
    keyGenerator: keyFromFront,
    handler: rateLimitExceededHandler({
      message: config.message,
      shadow: config.shadow,
      stats,
      audit,
      store,
      // A fallback's count is this process's alone, and starts afresh when Redis is back: not a block to keep.
      blocked: store === 'fallback' ? undefined : blocked,
      headers,
    }),
    logger: loggerFor(config.logger, type),
  } satisfies Partial<Options>
}

/** The client key of a request: the key generator's answer, proxy-checked, and hashed when long. */
function clientKeys(type: RateLimitType, config: ResolvedRateLimitConfig) {
  const checkProxy = createProxyChecks(config.logger, `[RateLimit:${type}]`)
  const { keyGenerator } = config
  return (request: Request, ip: () => string | undefined): string | Promise<string> => {
    checkProxy(request)
    const key = keyGenerator === defaultKeyGenerator ? defaultKeyFor(request, ip) : keyGenerator(request)
    return typeof key === 'string' ? boundedKey(key) : Promise.resolve(key).then((k) => boundedKey(String(k)))
  }
}

function buildLimiter(
  type: RateLimitType,
  config: ResolvedRateLimitConfig,
  backend: Backend,
  metrics: RateLimitMetrics | undefined,
  release: () => void,
): RateLimitRequestHandler {
  const max = maxFor(config, type)
  config.logger.info(
    backend.kind === 'redis'
      ? `[RateLimit:${type}] Using Redis store (distributed mode)`
      : `[RateLimit:${type}] Using MemoryStore (single-instance mode)`,
  )
  if (config.shadow) {
    config.logger.warn(`[RateLimit:${type}] Shadow mode: requests over the limit are reported, never blocked`)
  }
  debug('%s:%s limit %d per %d ms', config.keyPrefix, type, max, config.windowMs)
  const stats = new LimiterStats()
  const audit = config.auditLog
    ? new AuditLog({
        logger: config.logger,
        namespace: config.metricsNamespace,
        type,
        windowMs: config.windowMs,
        hashKeys: config.keyGenerator !== defaultKeyGenerator,
        ...(config.auditRoute === undefined ? {} : { route: config.auditRoute }),
      })
    : undefined
  // Shadow mode never blocks, so it has no blocked clients to remember.
  const blocked = config.shadow ? undefined : new BlockedKeys()
  const headers = new RateLimitHeaders({ type, windowMs: config.windowMs, legacyHeaders: config.legacyHeaders })
  const parts: LimiterParts = { type, config, stats, audit, blocked, headers }
  const front = (decide: RequestHandler) =>
    instrument({
      decide,
      stats,
      skip: config.skip,
      keyOf: clientKeys(type, config),
      blocked,
      answerBlocked: blockedAnswer(
        limiterOptions(parts, backend.kind === 'redis' ? 'redis' : 'memory').handler,
        config.windowMs,
      ),
      headers,
    })
  const inFallback = (): boolean => backend.kind === 'redis' && !backend.breakers.healthy
  const leaveMetrics = metrics?.join(
    { namespace: config.metricsNamespace, type, stats, policy: config.onStoreError, inFallback },
    backend.kind === 'redis' ? backend.client : undefined,
  )

  if (backend.kind === 'memory') {
    const store = new CompactMemoryStore(stats, 'memory')
    const handler = rateLimit({ ...limiterOptions(parts, 'memory'), limit: max, store })
    return Object.assign(front(handler), {
      resetKey(key: string): Promise<void> {
        blocked?.delete(key)
        handler.resetKey(key)
        return Promise.resolve()
      },
      getKey: handler.getKey,
      status: (): RateLimitStoreStatus => ({
        store: 'memory',
        ready: true,
        state: 'memory',
        since: backend.since.toISOString(),
      }),
      dispose(): void {
        release()
        leaveMetrics?.()
        store.shutdown()
      },
    })
  }

  const { breakers } = backend
  const store = new GuardedRedisStore(
    createRedisStore(backend.client, config.keyPrefix, type, config.storeTimeoutMs),
    backend.client,
    breakers,
    config.storeTimeoutMs,
    stats,
  )
  backend.stores.push(store)
  const primary = rateLimit({ ...limiterOptions(parts, 'redis'), limit: max, store })
  let fallback: LimiterHandler | undefined
  const fallbackStore = new CompactMemoryStore(stats, 'fallback')
  // The outage's counts go when Redis is back: a later outage starts afresh, and memory is freed.
  const stopResetting = breakers.onChange((healthy) => {
    if (healthy) void fallbackStore.resetAll()
  })
  const policy = degradedHandler(config.onStoreError, config.shadow, () => {
    fallback = rateLimit({
      ...limiterOptions(parts, 'fallback'),
      limit: fallbackMax(max, config.instances),
      store: fallbackStore,
    })
    return fallback
  })
  const degraded: RequestHandler = (req, res, next) => {
    stats.degraded++
    return policy(req, res, next)
  }

  // Redis while it is healthy; the policy while the breaker is open, or when this call failed.
  // (With one circuit per cluster master, the store fails fast for keys on a lost master only.)
  const decide: RequestHandler = (req, res, next) => {
    if (breakers.single && !breakers.healthy) return degraded(req, res, next)
    void primary(req, res, (error?: unknown) => {
      if (error instanceof StoreUnavailableError) return void degraded(req, res, next)
      next(error)
    })
  }
  return Object.assign(front(decide), {
    async resetKey(key: string): Promise<void> {
      blocked?.delete(key)
      fallback?.resetKey(key)
      // express-rate-limit types this as void; our store returns a promise worth waiting for.
      const reset: unknown = primary.resetKey(key)
      await reset
    },
    getKey: (key: string) => (breakers.healthy || fallback === undefined ? primary.getKey(key) : fallback.getKey(key)),
    status: (): RateLimitStoreStatus => {
      const { healthy, since } = breakers
      return {
        store: 'redis',
        topology: backend.topology,
        ready: healthy,
        state: healthy ? 'redis' : config.onStoreError,
        since: since.toISOString(),
      }
    },
    dispose(): void {
      release()
      leaveMetrics?.()
      stopResetting()
      fallbackStore.shutdown()
    },
  })
}

/** express-rate-limit's (error, message) logger, written to ours with the limiter's tag. */
function loggerFor(logger: RateLimitLogger, type: RateLimitType) {
  const line = (error: unknown, message?: string): string =>
    `[RateLimit:${type}] ${message ?? (error instanceof Error ? error.message : String(error))}`
  return {
    warn: (error: unknown, message?: string) => logger.warn(line(error, message), error),
    error: (error: unknown, message?: string) => logger.error(line(error, message), error),
  }
}

/**
 * Creates the limiters of `types` on one backend, claiming each prefix first. The backend is
 * released when the last of them is disposed.
 */
async function createLimiters(types: readonly RateLimitType[], config: ResolvedRateLimitConfig) {
  const releases: (() => void)[] = []
  try {
    for (const type of types) releases.push(claimPrefix(config.keyPrefix, type))
    const metrics = config.metricsRegistry === undefined ? undefined : await RateLimitMetrics.on(config.metricsRegistry)
    const backend = await openBackend(config, types)
    let open = types.length
    return types.map((type, index) =>
      buildLimiter(type, config, backend, metrics, () => {
        releases[index]!()
        if (--open === 0 && backend.kind === 'redis') backend.dispose()
      }),
    )
  } catch (error) {
    for (const release of releases) release()
    throw error
  }
}

/**
 * One limiter of the given type. Options are checked before anything else happens; a bad one
 * throws a RateLimitError naming it.
 */
export async function createRateLimiter(
  type: RateLimitType,
  config?: RateLimitConfig,
): Promise<RateLimitRequestHandler> {
  const resolved = resolveConfig(config)
  const [limiter] = await createLimiters([checkType(type)], resolved)
  return limiter!
}

/** A service's read and write limiters, on the same store, with separate budgets. */
export async function createRateLimiters(config?: RateLimitConfig): Promise<RateLimiters> {
  const resolved = resolveConfig(config)
  const [read, write] = (await createLimiters(['read', 'write'], resolved)) as [
    RateLimitRequestHandler,
    RateLimitRequestHandler,
  ]
  return {
    read,
    write,
    status: () => read.status(),
    dispose(): void {
      read.dispose()
      write.dispose()
    },
  }
}
