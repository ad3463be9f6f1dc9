// The public, static face of the process's one Redis connection.
import type { Redis } from 'ioredis'

import type { RedisClient } from './client-factory.js'

import type { RateLimitLogger } from '../observability/logger.js'
import { RedisConnection, type RedisConnectOptions } from './connection.js'

/** The process's one connection. Internal: services go through RedisClientManager. */
export const sharedConnection = new RedisConnection()
const connection = sharedConnection

/**
 * One ioredis connection per process, shared by every limiter. A thin facade: the behaviour
 * lives in {@link RedisConnection}.
 */
export class RedisClientManager {
  private constructor() {
    throw new TypeError('RedisClientManager has only static methods; use RedisClientManager.getClient()')
  }

  /**
   * The connected client, for `redisUrl` or else the environment (REDIS_URL, REDIS_SENTINELS or
   * REDIS_CLUSTER_NODES). A Redis for one server or Sentinel, a Cluster for Cluster. Concurrent
   * callers share one connect.
   */
  static getClient(redisUrl?: string, options?: RedisConnectOptions): Promise<RedisClient> {
    return connection.get(redisUrl, options)
  }

  /** Hands in a client made elsewhere; the manager owns (and will close) it from now on. */
  static setClient(client: Redis, logger?: RateLimitLogger): void {
    connection.set(client, logger)
  }

  /** True while the shared client is connected and ready. */
  static isConnected(): boolean {
    return connection.isConnected()
  }

  /** Closes the shared client. Idempotent: logs `[Redis] Closing connection...` and `[Redis] Connection closed` once. */
  static close(): Promise<void> {
    return connection.close()
  }
}
