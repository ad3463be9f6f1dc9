// RedisClientManager against real redis-servers: one connection, clean close, outages, passwords.
import { Redis } from 'ioredis'
import request from 'supertest'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'

import { createRateLimiters, ERROR_CODES, RedisClientManager } from '#src/index.js'
import { MAX_RECONNECT_DELAY_MS } from '#src/config/schema.js'
import { CONNECTION_NAME, RedisConnection } from '#src/redis/connection.js'
import { createApp } from '#test/support/app.js'
import { waitFor } from '#test/support/http.js'
import { uniquePrefix } from '#test/support/limiter-contract.js'
import { recordingLogger } from '#test/support/logger.js'
import { freePort } from '#test/support/ports.js'
import {
  libraryConnections,
  redisServerAvailable,
  startRedisServer,
  type TestRedisServer,
} from '#test/support/redis-server.js'

const ours = (server: TestRedisServer): Promise<string[]> => libraryConnections(server.admin, CONNECTION_NAME)

/**
 * Resolves once every reconnect that was pending when `server` came up has had its turn: a client
 * left retrying would have a timer of at most MAX_RECONNECT_DELAY_MS set before then, and timers
 * fire in order, so once a timer of that length set now has fired and a canary client it starts
 * has finished its handshake, a leaked client's connect (begun earlier) is in CLIENT LIST too.
 * Proving that nothing connects takes a bound; this one is the back-off's, not a guess.
 */
async function afterEveryPendingReconnect(server: TestRedisServer): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, MAX_RECONNECT_DELAY_MS))
  const canary = new Redis(server.port, '127.0.0.1', { connectionName: 'canary' })
  try {
    await waitFor(
      'the canary in CLIENT LIST',
      async () => (await libraryConnections(server.admin, 'canary')).length === 1,
    )
  } finally {
    canary.disconnect()
  }
}

describe.runIf(redisServerAvailable())('RedisClientManager on a real redis-server', () => {
  let server: TestRedisServer
  beforeAll(async () => {
    server = await startRedisServer()
  })
  afterEach(async () => {
    await RedisClientManager.close()
    vi.unstubAllEnvs()
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('shares one connect among concurrent callers and logs the guide’s line once', async () => {
    const logger = recordingLogger()
    const clients = await Promise.all(
      Array.from({ length: 10 }, () => RedisClientManager.getClient(server.url, { logger })),
    )
    expect(new Set(clients).size).toBe(1)
    expect(RedisClientManager.isConnected()).toBe(true)
    expect(await clients[0]!.ping()).toBe('PONG')
    expect(await ours(server)).toHaveLength(1)
    expect(logger.messages()).toEqual([
      `[Redis] Connecting (standalone): redis://127.0.0.1:${server.port}`,
      '[Redis] Client connected successfully',
    ])
  })

  it('uses REDIS_URL when no argument is given, and logs to the console by default', async () => {
    vi.stubEnv('REDIS_URL', server.url)
    const info = vi.spyOn(console, 'info').mockImplementation(() => {})
    try {
      const client = await RedisClientManager.getClient()
      expect(await client.ping()).toBe('PONG')
      await RedisClientManager.close()
      expect(info.mock.calls.map(([line]) => line as string)).toEqual([
        `[Redis] Connecting (standalone): redis://127.0.0.1:${server.port}`,
        '[Redis] Client connected successfully',
        '[Redis] Closing connection...',
        '[Redis] Connection closed',
      ])
    } finally {
      info.mockRestore()
    }
  })

  it('returns the held client when asked without a URL and REDIS_URL is unset', async () => {
    vi.stubEnv('REDIS_URL', '')
    const client = await RedisClientManager.getClient(server.url, { logger: recordingLogger() })
    await expect(RedisClientManager.getClient()).resolves.toBe(client)
    const keyPrefix = uniquePrefix('held')
    const limiters = await createRateLimiters({ keyPrefix, logger: recordingLogger() })
    await request(createApp(limiters)).get('/items').expect(200)
    expect(await server.admin.get(`${keyPrefix}:read:127.0.0.1`)).toBe('1')
    limiters.dispose()
  })

  it('refuses a database the server does not have, instead of counting in database 0', async () => {
    const error = await createRateLimiters({
      keyPrefix: uniquePrefix('db'),
      redisUrl: `redis://127.0.0.1:${server.port}/99`,
      logger: recordingLogger(),
    }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: ERROR_CODES.REDIS_URL_INVALID, option: 'redisUrl' })
    expect((error as Error).message).toMatch(
      /^redisUrl names database 99, which redis:\/\/127\.0\.0\.1:\d+ does not have/,
    )
    expect(RedisClientManager.isConnected()).toBe(false)
    await waitFor('no connection of ours to be left', async () => (await ours(server)).length === 0)
  })

  it('refuses a second, different Redis in the same process', async () => {
    await RedisClientManager.getClient(server.url, { logger: recordingLogger() })
    await expect(RedisClientManager.getClient(`redis://127.0.0.1:${await freePort()}`)).rejects.toMatchObject({
      code: ERROR_CODES.REDIS_CLIENT_CONFLICT,
    })
  })

  it('closes once: "Closing connection..." then "Connection closed", however often close() is called', async () => {
    const logger = recordingLogger()
    await RedisClientManager.getClient(server.url, { logger })
    await Promise.all([RedisClientManager.close(), RedisClientManager.close()])
    await RedisClientManager.close()
    expect(logger.messages()).toEqual([
      `[Redis] Connecting (standalone): redis://127.0.0.1:${server.port}`,
      '[Redis] Client connected successfully',
      '[Redis] Closing connection...',
      '[Redis] Connection closed',
    ])
    expect(RedisClientManager.isConnected()).toBe(false)
    await waitFor('the server to drop our connection', async () => (await ours(server)).length === 0)
  })

  it('makes no new connection while close() runs, and none is left behind', async () => {
    await RedisClientManager.getClient(server.url, { logger: recordingLogger() })
    const closing = RedisClientManager.close()
    await expect(RedisClientManager.getClient(server.url)).rejects.toMatchObject({ code: ERROR_CODES.REDIS_CLOSED })
    await closing
    expect(RedisClientManager.isConnected()).toBe(false)
    await waitFor('the server to drop our connection', async () => (await ours(server)).length === 0)
    const again = await RedisClientManager.getClient(server.url, { logger: recordingLogger() })
    expect(await again.ping()).toBe('PONG')
    expect(await ours(server)).toHaveLength(1)
  })

  it('takes a client handed in with setClient and closes it on close()', async () => {
    const client = new Redis(server.port, '127.0.0.1', { connectionName: 'handed-in' })
    RedisClientManager.setClient(client, recordingLogger())
    expect(() => RedisClientManager.setClient(client)).toThrow(
      expect.objectContaining({ code: ERROR_CODES.REDIS_CLIENT_CONFLICT }),
    )
    expect(await RedisClientManager.getClient()).toBe(client)
    const keyPrefix = uniquePrefix('handed')
    const limiters = await createRateLimiters({ keyPrefix, logger: recordingLogger() })
    await request(createApp(limiters)).get('/items').expect(200)
    expect(await server.admin.get(`${keyPrefix}:read:127.0.0.1`)).toBe('1')
    limiters.dispose()
    await RedisClientManager.close()
    expect(client.status).toBe('end')
  })

  it('leaves nothing reconnecting in the background after a failed first connect', async () => {
    const port = await freePort()
    const connection = new RedisConnection()
    await expect(
      connection.get(`redis://127.0.0.1:${port}`, { logger: recordingLogger(), connectRetries: 1 }),
    ).rejects.toMatchObject({
      code: ERROR_CODES.REDIS_CONNECT_TIMEOUT,
    })
    const late = await startRedisServer({ port })
    try {
      await afterEveryPendingReconnect(late)
      expect(await libraryConnections(late.admin, CONNECTION_NAME)).toEqual([])
    } finally {
      await late.stop()
    }
  })

  it('with requireRedis, fails createRateLimiters with a clear error when Redis is unreachable', async () => {
    const logger = recordingLogger()
    const error = await createRateLimiters({
      keyPrefix: uniquePrefix(),
      redisUrl: `redis://127.0.0.1:${await freePort()}`,
      redisRetries: 0,
      requireRedis: true,
      logger,
    }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: ERROR_CODES.REDIS_CONNECT_TIMEOUT })
    expect(logger.messages().some((m) => m.includes('MemoryStore'))).toBe(false)
  })
})

describe.runIf(redisServerAvailable())('an outage after the first connect', () => {
  it('keeps reconnecting past the original’s 3 tries and serves again without a restart', async () => {
    let server = await startRedisServer()
    const logger = recordingLogger()
    const keyPrefix = uniquePrefix('outage')
    try {
      const limiters = await createRateLimiters({ keyPrefix, redisUrl: server.url, maxRead: 1000, logger })
      const app = createApp(limiters)
      await request(app).get('/items').expect(200)
      const port = server.port
      expect(limiters.status()).toMatchObject({ store: 'redis', ready: true, state: 'redis' })
      await server.stop()
      await waitFor('a 5th reconnect attempt', () => logger.messages().some((m) => m.includes('(attempt 5)')), 15_000)
      expect(limiters.status()).toMatchObject({ store: 'redis', ready: false, state: 'fallback' })
      expect(logger.messages()).not.toContain('[Redis] Max retry attempts reached')
      server = await startRedisServer({ port })
      await waitFor('the client to reconnect', () => RedisClientManager.isConnected(), 15_000)
      await waitFor('the limiters to use Redis again', () => limiters.status().ready, 2000)
      const res = await request(app).get('/items').expect(200)
      expect(res.body.rateLimit).toMatchObject({ used: 1 })
      expect(await libraryConnections(server.admin, CONNECTION_NAME)).toHaveLength(1)
      expect(logger.messages().filter((m) => m === '[Redis] Client connected successfully')).toHaveLength(2)
      expect(logger.messages().filter((m) => m.startsWith('[Redis] Connection error:'))).toHaveLength(1)
      limiters.dispose()
    } finally {
      await RedisClientManager.close()
      await server.stop()
    }
  })
})

describe.runIf(redisServerAvailable())('a master demoted to replica (READONLY)', () => {
  it('reconnects and resends, so the request succeeds once a writable master is back', async () => {
    const server = await startRedisServer()
    const logger = recordingLogger()
    try {
      const limiters = await createRateLimiters({ keyPrefix: uniquePrefix('ro'), redisUrl: server.url, logger })
      const app = createApp(limiters)
      await request(app).get('/items').expect(200)
      await server.admin.replicaof('127.0.0.1', await freePort())
      const pending = request(app).get('/items')
      const settled = pending.then((res) => res.status)
      await waitFor('a reconnect after READONLY', () => logger.messages().some((m) => m.startsWith('[Redis] Retrying')))
      await server.admin.replicaof('NO', 'ONE')
      expect(await settled).toBe(200)
      limiters.dispose()
    } finally {
      await RedisClientManager.close()
      await server.stop()
    }
  })
})

describe.runIf(redisServerAvailable())('close() during an outage', () => {
  it('returns (it used to hang) and leaves nothing to reconnect when Redis comes back', async () => {
    const server = await startRedisServer()
    const logger = recordingLogger()
    await RedisClientManager.getClient(server.url, { logger })
    const port = server.port
    await server.stop()
    await waitFor('a reconnect attempt', () => logger.messages().some((m) => m.includes('(attempt 2)')))
    await RedisClientManager.close()
    expect(logger.messages().slice(-2)).toEqual(['[Redis] Closing connection...', '[Redis] Connection closed'])
    const back = await startRedisServer({ port })
    try {
      await afterEveryPendingReconnect(back)
      expect(await libraryConnections(back.admin, CONNECTION_NAME)).toEqual([])
    } finally {
      await back.stop()
    }
  })
})

describe.runIf(redisServerAvailable())('a password-protected Redis (requirepass)', () => {
  const password = 'pw-Zq81-never-print-me'
  let server: TestRedisServer
  beforeAll(async () => {
    server = await startRedisServer({ password })
  })
  afterEach(async () => {
    await RedisClientManager.close()
  })
  afterAll(async () => {
    await server?.stop()
  })

  it('connects with the URL’s password and never prints it', async () => {
    const logger = recordingLogger()
    const limiters = await createRateLimiters({
      keyPrefix: uniquePrefix('auth'),
      redisUrl: server.url,
      maxRead: 1,
      logger,
    })
    const app = createApp(limiters)
    await request(app).get('/items').expect(200)
    await request(app).get('/items').expect(429)
    limiters.dispose()
    await RedisClientManager.close()
    expect(logger.messages()).toEqual([
      `[Redis] Connecting (standalone): redis://:***@127.0.0.1:${server.port}`,
      '[Redis] Client connected successfully',
      '[RateLimit:read] Using Redis store (distributed mode)',
      '[RateLimit:write] Using Redis store (distributed mode)',
      '[RateLimit:read] Rate limit exceeded',
      '[Redis] Closing connection...',
      '[Redis] Connection closed',
    ])
    expect(logger.text()).not.toContain(password)
  })

  it('fails a wrong password with a clear error that shows neither password', async () => {
    const logger = recordingLogger()
    const wrong = 'wrong-Pw-77-secret'
    const error = await createRateLimiters({
      keyPrefix: uniquePrefix('badauth'),
      redisUrl: `redis://:${wrong}@127.0.0.1:${server.port}`,
      redisRetries: 1,
      requireRedis: true,
      logger,
    }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: ERROR_CODES.REDIS_CONNECT_TIMEOUT })
    const everything = `${(error as Error).message}\n${logger.text()}`
    expect(everything).toMatch(/WRONGPASS|NOAUTH|invalid username-password/)
    expect(everything).not.toContain(wrong)
    expect(everything).not.toContain(password)
    expect(server.output()).not.toContain(password)
  })
})
