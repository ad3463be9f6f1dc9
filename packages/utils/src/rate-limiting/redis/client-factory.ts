// Builds the one ioredis client for a target: a Redis for one server or Sentinel, a Cluster for Cluster.
import type { ConnectionOptions } from 'node:tls'

import { Cluster, Redis, type RedisOptions } from 'ioredis'

import type { RedisTarget, TlsSettings } from './topology.js'

/** The client of any topology. Both speak the same commands and events. */
export type RedisClient = Redis | Cluster

/** The name every connection of ours gives itself, so `CLIENT LIST` shows which are ours. */
export const CONNECTION_NAME = 'universo-rate-limit'
/** The guide's setting. With the offline queue off, no command waits for a reconnect anyway. */
export const MAX_RETRIES_PER_REQUEST = 3

/** How long one question to a sentinel may take. */
const SENTINEL_COMMAND_TIMEOUT_MS = 1000

export interface ClientBehaviour {
  readonly connectTimeoutMs: number
  /** Delay before reconnect attempt `attempt`, or null to stop. */
  readonly retryStrategy: (attempt: number) => number | null
  readonly reconnectOnError: (error: Error) => boolean
}

function tlsOptions(tls: TlsSettings | undefined, servername?: string): ConnectionOptions | undefined {
  if (tls === undefined) return undefined
  return {
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(tls.cert === undefined ? {} : { cert: tls.cert, key: tls.key }),
    rejectUnauthorized: tls.rejectUnauthorized,
    ...(servername === undefined ? {} : { servername }),
  }
}

/** The one client for `target`: a Redis for one server or a Sentinel set, a Cluster for a Cluster. */
export function createRedisClient(target: RedisTarget, behaviour: ClientBehaviour): RedisClient {
  // No command waits for a reconnect, and none is sent twice: a queued or resent INCR would
  // land late, perhaps in a new window. Callers get an error at once and fall back.
  const common: RedisOptions = {
    connectionName: CONNECTION_NAME,
    lazyConnect: true,
    connectTimeout: behaviour.connectTimeoutMs,
    maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    reconnectOnError: behaviour.reconnectOnError,
  }
  switch (target.kind) {
    case 'standalone':
      return standaloneClient(target, common, behaviour)
    case 'sentinel':
      return sentinelClient(target, common, behaviour)
    case 'cluster':
      return clusterClient(target, common, behaviour)
  }
}

type TargetOf<K extends RedisTarget['kind']> = Extract<RedisTarget, { kind: K }>

function standaloneClient(target: TargetOf<'standalone'>, common: RedisOptions, behaviour: ClientBehaviour): Redis {
  const { endpoint } = target
  return new Redis({
    ...common,
    host: endpoint.host,
    port: endpoint.port,
    db: endpoint.db,
    username: endpoint.username,
    password: endpoint.password,
    // rediss:// verifies against REDIS_TLS_CA when given, the system CAs otherwise.
    tls: endpoint.tls ? (tlsOptions(target.tls) ?? {}) : undefined,
    retryStrategy: behaviour.retryStrategy,
  })
}

function sentinelClient(target: TargetOf<'sentinel'>, common: RedisOptions, behaviour: ClientBehaviour): Redis {
  const tls = tlsOptions(target.tls)
  return new Redis({
    ...common,
    sentinels: target.sentinels.map(({ host, port }) => ({ host, port })),
    name: target.masterName,
    role: 'master',
    username: target.username,
    password: target.password,
    sentinelPassword: target.sentinelPassword,
    tls,
    enableTLSForSentinelMode: tls !== undefined,
    sentinelTLS: tls,
    // Follow +switch-master at once instead of waiting for the old master to fail a command.
    failoverDetector: true,
    // A sentinel that takes the connection but never answers must not hold the connect up.
    sentinelCommandTimeout: SENTINEL_COMMAND_TIMEOUT_MS,
    retryStrategy: behaviour.retryStrategy,
    // Two rounds over the sentinels per connection attempt; then retryStrategy (above) decides,
    // with its logging and its limit before the first success.
    sentinelRetryStrategy: (attempt: number) => (attempt > 2 ? null : attempt * 100),
  })
}

function clusterClient(target: TargetOf<'cluster'>, common: RedisOptions, behaviour: ClientBehaviour): Cluster {
  // The cluster connects lazily and queues (or not) for all its nodes; per node, neither applies.
  const perNode: RedisOptions = { ...common }
  delete perNode.lazyConnect
  delete perNode.enableOfflineQueue
  return new Cluster(
    target.nodes.map(({ host, port }) => ({ host, port })),
    {
      lazyConnect: true,
      enableOfflineQueue: false,
      scaleReads: 'master',
      clusterRetryStrategy: (attempt: number) => behaviour.retryStrategy(attempt),
      // With TLS, keep host names as given, so certificates issued for names verify.
      ...(target.tls === undefined
        ? {}
        : {
            dnsLookup: (address: string, callback: (error: null, address: string) => void) => callback(null, address),
          }),
      redisOptions: { ...perNode, username: target.username, password: target.password, tls: tlsOptions(target.tls) },
    },
  )
}
