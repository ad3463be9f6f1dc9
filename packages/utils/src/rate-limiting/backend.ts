// Where a limiter set counts: memory, or Redis behind one shared circuit breaker.
import type { Redis } from 'ioredis'

import { ERROR_CODES, RateLimitError } from './errors.js'
import { maxFor, type ResolvedRateLimitConfig } from './options.js'
import { sharedConnection } from './redis-client-manager.js'
import { redisUrlFromEnv } from './redis-connection.js'
import { StoreHealth } from './store-health.js'
import { withTimeout, type GuardedRedisStore } from './stores/guarded-store.js'
import type { RateLimitType, RedisCommandClient } from './types.js'

/** How often a degraded limiter set asks Redis whether it is back. */
export const PROBE_INTERVAL_MS = 250
/** The probe runs in the background, so it may wait longer than a request would. */
const PROBE_TIMEOUT_MS = 1000

export type Backend =
  | { readonly kind: 'memory'; readonly since: Date }
  | {
      readonly kind: 'redis'
      readonly client: RedisCommandClient
      readonly health: StoreHealth
      /** Filled as the limiters are built; the probe reloads their scripts. */
      readonly stores: GuardedRedisStore[]
      /** Stops watching the connection. */
      readonly dispose: () => void
    }

/** A failed first connect under requireRedis, saying why the limiters do not start without Redis. */
function refusal(error: unknown): unknown {
  if (!(error instanceof RateLimitError) || error.code !== ERROR_CODES.REDIS_CONNECT_TIMEOUT) return error
  return new RateLimitError(
    error.code,
    `${error.message}; requireRedis (RATE_LIMIT_REQUIRE_REDIS) refuses to start the limiters without Redis`,
    { option: error.option, cause: error.cause },
  )
}

/** The per-instance limit during a fallback: the shared limit split across the fleet, at least 1. */
export const fallbackMax = (max: number, instances: number): number => Math.max(1, Math.floor(max / instances))

function degradedLine(config: ResolvedRateLimitConfig, types: readonly RateLimitType[]): string {
  switch (config.onStoreError) {
    case 'allow':
      return 'failing open (onStoreError allow): requests pass without a limit until Redis is back'
    case 'deny':
      return 'failing closed (onStoreError deny): requests get 503 until Redis is back'
    case 'fallback': {
      const limits = types.map((type) => {
        const max = maxFor(config, type)
        return `${type} ${max} -> ${fallbackMax(max, config.instances)}`
      })
      return `fallback on: in-memory limits per instance, ${limits.join(', ')} (instances ${config.instances})`
    }
  }
}

/**
 * Redis when a client, a URL or REDIS_URL is configured (or a client was handed to
 * RedisClientManager); memory otherwise. A Redis that is not there at first is not an error
 * unless requireRedis is set: the set starts degraded and switches to Redis when it appears.
 */
export async function openBackend(config: ResolvedRateLimitConfig, types: readonly RateLimitType[]): Promise<Backend> {
  let client: RedisCommandClient | undefined = config.redisClient
  if (client === undefined) {
    const url = config.redisUrl ?? redisUrlFromEnv()
    if (url === undefined && !sharedConnection.holdsClient()) return { kind: 'memory', since: new Date() }
    const options = { logger: config.logger, connectRetries: config.redisRetries }
    client = config.requireRedis
      ? await sharedConnection.get(config.redisUrl, options).catch((error: unknown) => {
          throw refusal(error)
        })
      : await sharedConnection.attach(config.redisUrl, options)
  }
  const commands = client
  const stores: GuardedRedisStore[] = []
  const health = new StoreHealth({
    name: config.keyPrefix,
    policy: config.onStoreError,
    degradedLine: degradedLine(config, types),
    probeIntervalMs: PROBE_INTERVAL_MS,
    logger: config.logger,
    probe: async () => {
      await withTimeout(commands.call('PING'), PROBE_TIMEOUT_MS)
      await Promise.all(stores.map((store) => store.reloadScripts()))
    },
  })

  // An ioredis client says when its connection drops, so /ready is right even with no traffic.
  const ioredis = client as Partial<Pick<Redis, 'on' | 'off' | 'status'>>
  const onClose = (): void => health.failure(new Error('connection closed'))
  ioredis.on?.('close', onClose)
  if (typeof ioredis.status === 'string' && ioredis.status !== 'ready') {
    health.failure(new Error(`not connected (${ioredis.status})`))
  }
  return {
    kind: 'redis',
    client,
    health,
    stores,
    dispose: () => {
      ioredis.off?.('close', onClose)
      health.dispose()
    },
  }
}
