// createRateLimiter / createRateLimiters: express-rate-limit middlewares on a Redis or memory store.
import { MemoryStore, rateLimit, type Store } from 'express-rate-limit'

import { boundedKey } from './keys.js'
import { debug, type RateLimitLogger } from './logger.js'
import { checkType, maxFor, resolveConfig, type ResolvedRateLimitConfig } from './options.js'
import { claimPrefix } from './prefix-registry.js'
import { createProxyChecks } from './proxy-checks.js'
import { sharedConnection } from './redis-client-manager.js'
import { redisUrlFromEnv } from './redis-connection.js'
import { rateLimitExceededHandler } from './response.js'
import { createRedisStore } from './stores/redis-store.js'
import type {
  RateLimitConfig,
  RateLimiters,
  RateLimitRequestHandler,
  RateLimitStoreStatus,
  RateLimitType,
  RedisCommandClient,
} from './types.js'

/** Where one limiter set counts. Chosen once per call, so read and write always agree. */
type StoreChoice =
  { readonly kind: 'redis'; readonly client: RedisCommandClient; connected(): boolean } | { readonly kind: 'memory' }

/**
 * Redis when a client, a URL or REDIS_URL is configured (or a client was handed to
 * RedisClientManager); memory otherwise. A Redis that cannot be reached fails the call: there is
 * no silent fallback to memory.
 */
async function chooseStore(config: ResolvedRateLimitConfig): Promise<StoreChoice> {
  const given = config.redisClient
  if (given !== undefined) {
    // A client of our own making reports its state; one that does not is taken to be usable.
    const status = (): unknown => (given as { status?: unknown }).status
    return { kind: 'redis', client: given, connected: () => typeof status() !== 'string' || status() === 'ready' }
  }
  const url = config.redisUrl ?? redisUrlFromEnv()
  if (url === undefined && !sharedConnection.holdsClient()) return { kind: 'memory' }
  const client = await sharedConnection.get(config.redisUrl, {
    logger: config.logger,
    connectRetries: config.redisRetries,
  })
  return { kind: 'redis', client, connected: () => sharedConnection.isConnected() }
}

function buildLimiter(
  type: RateLimitType,
  config: ResolvedRateLimitConfig,
  choice: StoreChoice,
  release: () => void,
): RateLimitRequestHandler {
  const store: Store =
    choice.kind === 'redis' ? createRedisStore(choice.client, config.keyPrefix, type) : new MemoryStore()
  config.logger.info(
    choice.kind === 'redis'
      ? `[RateLimit:${type}] Using Redis store (distributed mode)`
      : `[RateLimit:${type}] Using MemoryStore (single-instance mode)`,
  )
  debug('%s:%s limit %d per %d ms', config.keyPrefix, type, maxFor(config, type), config.windowMs)
  const checkProxy = createProxyChecks(config.logger, `[RateLimit:${type}]`)
  const handler = rateLimit({
    windowMs: config.windowMs,
    limit: maxFor(config, type),
    store,
    standardHeaders: 'draft-8',
    legacyHeaders: config.legacyHeaders,
    identifier: type,
    keyGenerator: async (request) => {
      checkProxy(request)
      return boundedKey(String(await config.keyGenerator(request)))
    },
    handler: rateLimitExceededHandler(config.message),
    logger: loggerFor(config.logger, type),
  })
  return Object.assign(handler, {
    status: (): RateLimitStoreStatus => storeStatus(choice),
    dispose(): void {
      release()
      void store.shutdown?.()
    },
  })
}

function storeStatus(choice: StoreChoice): RateLimitStoreStatus {
  if (choice.kind === 'memory') return { store: 'memory', ready: true }
  const connected = choice.connected()
  return { store: 'redis', ready: connected, redis: connected ? 'connected' : 'disconnected' }
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

/** Creates the limiters of `types` from one store choice, claiming each prefix first. */
async function createLimiters(types: readonly RateLimitType[], config: ResolvedRateLimitConfig) {
  const releases: (() => void)[] = []
  try {
    for (const type of types) releases.push(claimPrefix(config.keyPrefix, type))
    const choice = await chooseStore(config)
    return types.map((type, index) => buildLimiter(type, config, choice, releases[index]!))
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
