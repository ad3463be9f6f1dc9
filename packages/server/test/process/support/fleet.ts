// What the process tests of a fleet on one Redis share: the redis-server, the servers each test
// starts (stopped after it), and what /ready says while Redis is away.
import { afterAll, afterEach, beforeAll, expect } from 'vitest'

import { startRedisServer, type TestRedisServer } from '../../../../utils/test/support/redis-server.js'
import { startServer, type ServerProcess } from './server-process.js'

/** /ready's body while the limiters run on the default policy (fallback) without a standalone Redis. */
export const DEGRADED_READY = {
  status: 'degraded',
  store: 'redis',
  topology: 'standalone',
  ready: false,
  state: 'fallback',
  since: expect.any(String) as unknown as string,
} as const

export interface OneRedis {
  /** The file's redis-server (started in beforeAll). */
  readonly redis: TestRedisServer
  /** A server on it, stopped after the test. */
  start(env?: Record<string, string>): Promise<ServerProcess>
}

/**
 * Call inside a describe: one redis-server for the file, and servers per test, all stopped by
 * pid. With `flushAfterEach`, Redis is emptied after each test too.
 */
export function oneRedis({ flushAfterEach = false } = {}): OneRedis {
  let redis: TestRedisServer | undefined
  const running: ServerProcess[] = []
  beforeAll(async () => {
    redis = await startRedisServer()
  })
  afterEach(async () => {
    await Promise.all(running.splice(0).map((server) => server.stop()))
    if (flushAfterEach) await redis?.admin.flushall()
  })
  afterAll(async () => {
    await redis?.stop()
  })
  const started = (): TestRedisServer => {
    if (redis === undefined) throw new Error('oneRedis(): the redis-server starts in beforeAll')
    return redis
  }
  return {
    get redis() {
      return started()
    },
    async start(env = {}) {
      const server = await startServer({ REDIS_URL: started().url, ...env })
      running.push(server)
      return server
    },
  }
}
