// Where a limiter set counts: memory, or Redis behind one shared circuit breaker.
import type { Cluster, Redis } from 'ioredis'

import { ERROR_CODES, RateLimitError } from '../errors.js'
import { sharedConnection } from './client-manager.js'
import { redisConfiguredInEnv } from './connection.js'
import type { Topology } from './topology.js'
import { clusterOf } from '../stores/redis-store.js'
import { whenReady, type ReadyClient } from './injected-client.js'
import { clusterBreakers, singleBreaker, type Breakers } from '../resilience/breakers.js'
import { CircuitBreaker } from '../resilience/circuit-breaker.js'
import { withTimeout } from '../stores/deadlines.js'
/** A store whose scripts a breaker's probe loads again before it closes, and that the backend disposes. */
export interface ScriptedStore {
  reloadScripts(timeoutMs: number): Promise<void>
  dispose(): void
}
import type { RateLimitConfig, RedisCommandClient } from '../config/types.js'
import type { RateLimitLogger } from '../observability/logger.js'

/** How often a degraded limiter set asks Redis whether it is back. */
export const PROBE_INTERVAL_MS = 250
/** The probe runs in the background, so it may wait longer than a request would. */
const PROBE_TIMEOUT_MS = 1000
/** Timeouts must keep coming for this many storeTimeoutMs before they open the breaker. */
export const STALL_FACTOR = 3
/** How long a handed-in client that is still connecting is waited for. */
const CONNECT_WAIT_MS = 10_000

/** A limiter set's Redis: the client, its breakers, and the stores the probe looks after. */
export interface RedisBackend {
  readonly kind: 'redis'
  readonly client: RedisCommandClient
  readonly topology: Topology
  readonly breakers: Breakers
  /** Filled as the limiters are built; the probe reloads their scripts. */
  readonly stores: ScriptedStore[]
  /** Stops watching the connection. */
  readonly dispose: () => void
}

export type Backend = { readonly kind: 'memory'; readonly since: Date } | RedisBackend

/** What opening a backend needs: where Redis is, how hard to try, and what to log when it fails. */
export type BackendOptions = Pick<RateLimitConfig, 'redisClient' | 'redisUrl'> & {
  readonly requireRedis: boolean
  readonly redisRetries: number
  readonly keyPrefix: string
  /** What the set's log lines call it: its keyPrefix, and a named limiter's name after a slash. */
  readonly setName?: string
  readonly storeTimeoutMs: number
  readonly logger: RateLimitLogger
  /** What a breaker logs as it opens (resilience/degraded.ts). */
  readonly degradedLine: string
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

/**
 * Redis when a client, a URL or REDIS_URL is configured (or a client was handed to
 * RedisClientManager); memory otherwise. A Redis that is not there at first is not an error
 * unless requireRedis is set: the set starts degraded and switches to Redis when it appears.
 */
export async function openBackend(config: BackendOptions): Promise<Backend> {
  const client = await redisClientFor(config)
  if (client === undefined) return { kind: 'memory', since: new Date() }
  // Only a client made elsewhere can have the offline queue on: ours never do.
  if (config.redisClient !== undefined || sharedConnection.holdsInjected()) warnAboutReplays(client, config)
  const stores: ScriptedStore[] = []
  const cluster = clusterOf(client)
  const probe = probeOf(client, cluster, config, stores)
  const makeBreaker = (node: string, probeKey: () => string): CircuitBreaker =>
    new CircuitBreaker({
      name:
        cluster === undefined
          ? (config.setName ?? config.keyPrefix)
          : `${config.setName ?? config.keyPrefix} (cluster node ${node})`,
      degradedLine: config.degradedLine,
      probeIntervalMs: PROBE_INTERVAL_MS,
      stallMs: STALL_FACTOR * config.storeTimeoutMs,
      logger: config.logger,
      probe: () => probe(probeKey),
    })
  const breakers = cluster === undefined ? singleBreaker(makeBreaker) : clusterBreakers(cluster, makeBreaker)
  const unwatch = watchConnection(client, breakers)
  return {
    kind: 'redis',
    client,
    topology:
      config.redisClient === undefined
        ? (sharedConnection.topology() ?? 'standalone')
        : cluster
          ? 'cluster'
          : 'standalone',
    breakers,
    stores,
    dispose: () => {
      unwatch()
      for (const store of stores) store.dispose()
      breakers.dispose()
    },
  }
}

/** The client the set counts through: the one handed in, or the process's shared connection; undefined for memory. */
async function redisClientFor(config: BackendOptions): Promise<RedisCommandClient | undefined> {
  const handedIn = config.redisClient
  if (handedIn !== undefined) {
    // A handed-in client that is still connecting is waited for, so the set does not start degraded.
    const status = (handedIn as IoredisLike).status
    if (status === 'connecting' || status === 'connect') {
      await whenReady(handedIn as unknown as ReadyClient, CONNECT_WAIT_MS).catch(() => undefined)
    }
    return handedIn
  }
  const named = config.redisUrl !== undefined || redisConfiguredInEnv() || sharedConnection.holdsClient()
  if (!named) return undefined
  const options = { logger: config.logger, connectRetries: config.redisRetries }
  if (!config.requireRedis) return sharedConnection.attach(config.redisUrl, options)
  return sharedConnection.get(config.redisUrl, options).catch((error: unknown) => {
    throw refusal(error)
  })
}

/**
 * What a breaker asks before it closes again: Redis answers a PING within storeTimeoutMs, has the
 * scripts (loaded again), and takes a write. On a cluster `probeKey` names a key in a slot of the
 * master the breaker stands for.
 */
function probeOf(
  client: RedisCommandClient,
  cluster: Cluster | undefined,
  { keyPrefix, storeTimeoutMs }: BackendOptions,
  stores: readonly ScriptedStore[],
) {
  return async (probeKey: () => string): Promise<void> => {
    const started = performance.now()
    await withTimeout(client.call('PING'), PROBE_TIMEOUT_MS)
    const ms = performance.now() - started
    if (ms > storeTimeoutMs) {
      throw new Error(`Redis answers, but in ${Math.round(ms)} ms, slower than storeTimeoutMs (${storeTimeoutMs} ms)`)
    }
    // A cluster may have moved the slots to a promoted replica: learn the new map first, or
    // every probe would go on asking the dead master.
    if (cluster !== undefined) await refreshSlots(cluster)
    await Promise.all(stores.map((store) => store.reloadScripts(PROBE_TIMEOUT_MS)))
    // A write, with a TTL: a Redis that answers but refuses writes (OOM, READONLY, MISCONF) is not back.
    const key = cluster === undefined ? `${keyPrefix}:probe` : probeKey()
    await withTimeout(client.call('SET', key, '1', 'PX', '10000'), PROBE_TIMEOUT_MS)
  }
}

/**
 * Opens the set's keyless circuit when an ioredis client says its connection dropped (or is not
 * up yet), so /ready is right even with no traffic. A cluster's masters fail one by one and their
 * circuits learn it from the calls; the keyless one stands for the cluster as a whole. Returns
 * the function that stops watching.
 */
function watchConnection(client: RedisCommandClient, breakers: Breakers): () => void {
  const ioredis = client as IoredisLike
  const onClose = (): void => breakers.for().failure(new Error('connection closed'))
  ioredis.on?.('close', onClose)
  if (typeof ioredis.status === 'string' && ioredis.status !== 'ready') {
    breakers.for().failure(new Error(`not connected (${ioredis.status})`))
  }
  return () => ioredis.off?.('close', onClose)
}

/** The parts of an ioredis client the backend looks at, when the client is one. */
type ReplayOptions = { enableOfflineQueue?: boolean; autoResendUnfulfilledCommands?: boolean }
type IoredisLike = Partial<Pick<Redis, 'on' | 'off' | 'once' | 'status'>> & {
  // A Cluster keeps the per-node settings in redisOptions.
  options?: ReplayOptions & { redisOptions?: ReplayOptions }
}

/**
 * A client made elsewhere may queue commands while disconnected and resend those in flight after
 * a reconnect: a late INCR then lands in a new window, after the fallback already decided. Say so.
 */
function warnAboutReplays(client: RedisCommandClient, { logger, keyPrefix }: BackendOptions): void {
  const options = (client as IoredisLike).options
  if (options === undefined) return
  const nodes = options.redisOptions ?? options
  const on = [
    ...(options.enableOfflineQueue !== false ? ['enableOfflineQueue'] : []),
    ...(nodes.autoResendUnfulfilledCommands !== false ? ['autoResendUnfulfilledCommands'] : []),
  ]
  if (on.length === 0) return
  logger.warn(
    `[RateLimit] ${keyPrefix}: the handed-in Redis client has ${on.join(' and ')} on, so during an outage ` +
      'commands may wait, or land late in a new window; create it with ' +
      '{ enableOfflineQueue: false, autoResendUnfulfilledCommands: false }',
  )
}

/** Asks the cluster for its slot map again (at most PROBE_TIMEOUT_MS). */
function refreshSlots(cluster: Cluster): Promise<void> {
  return withTimeout(
    new Promise<void>((resolve, reject) => cluster.refreshSlotsCache((error) => (error ? reject(error) : resolve()))),
    PROBE_TIMEOUT_MS,
  )
}
