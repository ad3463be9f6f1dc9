// createRateLimiter / createRateLimiters: express-rate-limit middlewares on a Redis or memory store.
import type { Request, RequestHandler } from 'express'
import { rateLimit, type Options, type RateLimitRequestHandler as LimiterHandler } from 'express-rate-limit'

import { fallbackMax, openBackend, type Backend } from './backend.js'
import { AuditLog } from './audit.js'
import { degradedHandler } from './degraded.js'
import { instrument } from './instrument.js'

import { boundedKey, defaultKeyGenerator } from './keys.js'
import { debug, type RateLimitLogger } from './logger.js'
import { checkType, maxFor, resolveConfig, type ResolvedRateLimitConfig } from './options.js'
import { RateLimitMetrics } from './metrics.js'
import { claimPrefix } from './prefix-registry.js'
import { createProxyChecks } from './proxy-checks.js'
import { rateLimitExceededHandler } from './response.js'
import { GuardedRedisStore, StoreUnavailableError } from './stores/guarded-store.js'
import { MeteredMemoryStore } from './stores/metered-memory-store.js'
import { createRedisStore } from './stores/redis-store.js'
import { LimiterStats, type StoreKind } from './stats.js'
import type {
  RateLimitConfig,
  RateLimiters,
  RateLimitRequestHandler,
  RateLimitStoreStatus,
  RateLimitType,
} from './types.js'

/** What every express-rate-limit instance of one limiter shares. */
interface LimiterParts {
  readonly type: RateLimitType
  readonly config: ResolvedRateLimitConfig
  readonly stats: LimiterStats
  readonly audit: AuditLog | undefined
}

/** The options of one express-rate-limit instance of a limiter, counting in `store`. */
function limiterOptions({ type, config, stats, audit }: LimiterParts, store: StoreKind) {
  const checkProxy = createProxyChecks(config.logger, `[RateLimit:${type}]`)
  return {
    windowMs: config.windowMs,
    standardHeaders: 'draft-8',
    legacyHeaders: config.legacyHeaders,
    identifier: type,
    keyGenerator: async (request: Request) => {
      checkProxy(request)
      return boundedKey(String(await config.keyGenerator(request)))
    },
    handler: rateLimitExceededHandler({ message: config.message, shadow: config.shadow, stats, audit, store }),
    logger: loggerFor(config.logger, type),
  } satisfies Partial<Options>
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
  const parts: LimiterParts = { type, config, stats, audit }
  const inFallback = (): boolean => backend.kind === 'redis' && !backend.breakers.healthy
  const leaveMetrics = metrics?.join(
    { namespace: config.metricsNamespace, type, stats, policy: config.onStoreError, inFallback },
    backend.kind === 'redis' ? backend.client : undefined,
  )

  if (backend.kind === 'memory') {
    const store = new MeteredMemoryStore(stats, 'memory')
    const handler = rateLimit({ ...limiterOptions(parts, 'memory'), limit: max, store })
    return Object.assign(instrument(handler, stats, config.skip), {
      resetKey: handler.resetKey,
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
    createRedisStore(backend.client, config.keyPrefix, type),
    backend.client,
    breakers,
    config.storeTimeoutMs,
    stats,
  )
  backend.stores.push(store)
  const primary = rateLimit({ ...limiterOptions(parts, 'redis'), limit: max, store })
  let fallback: LimiterHandler | undefined
  const fallbackStore = new MeteredMemoryStore(stats, 'fallback')
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
  return Object.assign(instrument(decide, stats, config.skip), {
    async resetKey(key: string): Promise<void> {
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
