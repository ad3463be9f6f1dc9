// The limiters against a real redis-server that this file starts and stops.
import type { Options } from 'express-rate-limit'
import request from 'supertest'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'

import { createRateLimiters, RedisClientManager, type RateLimiters } from '#src/index.js'
import { CONNECTION_NAME } from '#src/redis/connection.js'
import { singleBreaker } from '#src/resilience/breakers.js'
import { CircuitBreaker } from '#src/resilience/circuit-breaker.js'
import { GuardedRedisStore } from '#src/stores/guarded-store.js'
import { createRedisStore } from '#src/stores/redis-store.js'
import { LimiterStats } from '#src/observability/stats.js'
import { createApp } from '#test/support/app.js'
import { hammer, listen, waitFor } from '#test/support/http.js'
import { seededRandom } from '#test/support/random.js'
import { describeLimiterContract, uniquePrefix } from '#test/support/limiter-contract.js'
import { recordingLogger } from '#test/support/logger.js'
import {
  libraryConnections,
  redisServerAvailable,
  startRedisServer,
  type TestRedisServer,
} from '#test/support/redis-server.js'

describe.runIf(redisServerAvailable())('rate limiting on a real redis-server', () => {
  let server: TestRedisServer
  const made: RateLimiters[] = []

  beforeAll(async () => {
    server = await startRedisServer()
  })
  afterEach(() => {
    for (const m of made.splice(0)) m.dispose()
  })
  afterAll(async () => {
    await RedisClientManager.close()
    await server?.stop()
  })

  async function limiters(config: Parameters<typeof createRateLimiters>[0] = {}): Promise<RateLimiters> {
    const m = await createRateLimiters({
      keyPrefix: uniquePrefix('it'),
      redisUrl: server.url,
      logger: recordingLogger(),
      ...config,
    })
    made.push(m)
    return m
  }

  describeLimiterContract('rate-limit-redis over a real Redis', {
    storeLine: 'Using Redis store (distributed mode)',
    options: () => ({ redisUrl: server.url }),
  })

  it('chooses Redis for both limiters when only REDIS_URL is set', async () => {
    vi.stubEnv('REDIS_URL', server.url)
    const logger = recordingLogger()
    const keyPrefix = uniquePrefix('env')
    try {
      const m = await createRateLimiters({ keyPrefix, logger })
      made.push(m)
      await request(createApp(m)).post('/items').expect(201)
    } finally {
      vi.unstubAllEnvs()
    }
    expect(logger.messages().filter((m) => m.startsWith('[RateLimit:'))).toEqual([
      '[RateLimit:read] Using Redis store (distributed mode)',
      '[RateLimit:write] Using Redis store (distributed mode)',
    ])
    expect(await server.admin.get(`${keyPrefix}:write:127.0.0.1`)).toBe('1')
  })

  it('allows exactly maxRead of 200 concurrent requests on one key', async () => {
    const http = await listen(createApp(await limiters({ maxRead: 100 })))
    const statuses = await hammer(200, 200, () => fetch(`${http.base}/items`))
    await http.close()
    expect(Object.fromEntries(statuses)).toEqual({ 200: 100, 429: 100 })
  })

  it('lets a client in again once Redis has expired its window', async () => {
    const keyPrefix = uniquePrefix('window')
    let resetTime: Date | undefined
    const app = createApp(await limiters({ keyPrefix, maxRead: 2, windowMs: 1000 }), (rateLimit, status) => {
      if (status === 429) resetTime = (rateLimit as { resetTime: Date }).resetTime
    })
    const start = Date.now()
    await request(app).get('/items').expect(200)
    await request(app).get('/items').expect(200)
    await request(app).get('/items').expect(429)
    // The 429 told the client when its window resets: Redis's TTL, read when the answer came back,
    // so never before Redis drops the key. Until then the client stays blocked, from memory.
    expect(resetTime!.getTime()).toBeGreaterThan(start)
    expect(resetTime!.getTime()).toBeLessThanOrEqual(Date.now() + 1000)
    await waitFor(
      'the window key to expire',
      async () => (await server.admin.exists(`${keyPrefix}:read:127.0.0.1`)) === 0,
    )
    await waitFor('the reset time the 429 gave', () => Date.now() >= resetTime!.getTime())
    const res = await request(app).get('/items').expect(200)
    expect(res.body.rateLimit).toMatchObject({ used: 1, remaining: 1 })
  })

  it('keeps prefixes apart: one service’s flood leaves another’s budget whole', async () => {
    const a = uniquePrefix('svc-a')
    const b = uniquePrefix('svc-b')
    const appA = createApp(await limiters({ keyPrefix: a, maxRead: 5 }))
    const appB = createApp(await limiters({ keyPrefix: b, maxRead: 5 }))
    for (let i = 0; i < 7; i++) await request(appA).get('/items')
    const res = await request(appB).get('/items').expect(200)
    expect(res.body.rateLimit).toMatchObject({ used: 1, remaining: 4 })
    // 6: the 7th request was answered from the blocked-client memory, without Redis.
    expect(await server.admin.get(`${a}:read:127.0.0.1`)).toBe('6')
    expect(await server.admin.get(`${b}:read:127.0.0.1`)).toBe('1')
  })

  it('gives every key it writes a TTL no longer than the window', async () => {
    const keyPrefix = uniquePrefix('ttl')
    const app = createApp(await limiters({ keyPrefix, maxRead: 3, maxWrite: 3, windowMs: 60_000 }))
    for (let client = 1; client <= 20; client++) {
      for (let i = 0; i < 5; i++) {
        await request(app).get('/items').set('X-Forwarded-For', `192.0.2.${client}`)
        await request(app).post('/items').set('X-Forwarded-For', `192.0.2.${client}`)
      }
    }
    const keys = await server.admin.keys(`${keyPrefix}:*`)
    expect(keys).toHaveLength(40)
    for (const key of keys) {
      const ttl = await server.admin.pttl(key)
      expect(ttl, key).toBeGreaterThan(0)
      expect(ttl, key).toBeLessThanOrEqual(60_000)
    }
  })

  it('keeps counting after SCRIPT FLUSH: NOSCRIPT is recovered, never shown to a client', async () => {
    const app = createApp(await limiters({ maxRead: 5 }))
    await request(app).get('/items').expect(200)
    expect(await server.admin.script('FLUSH')).toBe('OK')
    const res = await request(app).get('/items').expect(200)
    expect(res.body.rateLimit).toMatchObject({ used: 2, remaining: 3 })
    await request(app).post('/items').expect(201)
  })

  it('uses one connection for this process after thousands of requests through both limiters', async () => {
    const http = await listen(createApp(await limiters({ maxRead: 1_000_000, maxWrite: 1_000_000 })))
    const statuses = await hammer(3000, 50, (i) =>
      fetch(`${http.base}/items`, {
        method: i % 2 === 0 ? 'GET' : 'POST',
        headers: { 'X-Forwarded-For': `10.0.${i % 200}.1` },
      }),
    )
    await http.close()
    expect(Object.fromEntries(statuses)).toEqual({ 200: 1500, 201: 1500 })
    await waitFor(
      'the connection list to settle',
      async () => (await libraryConnections(server.admin, CONNECTION_NAME)).length === 1,
    )
    expect(await libraryConnections(server.admin, CONNECTION_NAME)).toHaveLength(1)
  })

  /** Our guarded store over rate-limit-redis's, on the shared connection, loaded. */
  async function guarded(keyPrefix: string, windowMs = 60_000) {
    const client = await RedisClientManager.getClient(server.url)
    const breakers = singleBreaker(
      () =>
        new CircuitBreaker({
          name: keyPrefix,
          degradedLine: 'test',
          stallMs: 1000,
          probe: () => Promise.resolve(),
          probeIntervalMs: 1000,
          logger: recordingLogger(),
        }),
    )
    const inner = createRedisStore(client, keyPrefix, 'read')
    const store = new GuardedRedisStore(inner, client, breakers, 1000, new LimiterStats())
    await store.init({ windowMs } as Options)
    return { store, inner }
  }

  describe("increment's hot path: rate-limit-redis's EVALSHA, sent by the guard itself", () => {
    it('answers a burst of increments exactly as rate-limit-redis does, without its increment', async () => {
      const ours = await guarded(uniquePrefix('hot'))
      const theirs = createRedisStore(await RedisClientManager.getClient(server.url), uniquePrefix('lib'), 'read')
      await theirs.init({ windowMs: 60_000 } as Options)
      const viaLibrary = vi.spyOn(ours.inner, 'increment')
      const random = seededRandom(7)
      for (let round = 0; round < 20; round++) {
        // Concurrent calls, so that they go out in pipelines; the same keys on both sides.
        const keys = Array.from({ length: 25 }, () => `client-${Math.floor(random() * 10)}`)
        const [mine, library] = await Promise.all([
          Promise.all(keys.map((key) => ours.store.increment(key))),
          Promise.all(keys.map((key) => theirs.increment(key))),
        ])
        expect(mine.map((answer) => answer.totalHits)).toEqual(library.map((answer) => answer.totalHits))
        mine.forEach((answer, index) => {
          expect(Math.abs(answer.resetTime!.getTime() - library[index]!.resetTime!.getTime())).toBeLessThan(1000)
        })
      }
      expect(viaLibrary).not.toHaveBeenCalled()
    })

    it("sets the limiter's window on the first hit, as rate-limit-redis does", async () => {
      const keyPrefix = uniquePrefix('hot')
      const { store, inner } = await guarded(keyPrefix, 45_000)
      const viaLibrary = vi.spyOn(inner, 'increment')
      const answer = await store.increment('client')
      const ttl = await server.admin.pttl(`${keyPrefix}:read:client`)
      expect(ttl).toBeGreaterThan(40_000)
      expect(ttl).toBeLessThanOrEqual(45_000)
      expect(answer.resetTime!.getTime() - Date.now()).toBeGreaterThan(40_000)
      expect(viaLibrary).not.toHaveBeenCalled()
    })

    it('loses no hit when Redis forgets the script, and takes the hot path again after', async () => {
      const keyPrefix = uniquePrefix('hot')
      const { store, inner } = await guarded(keyPrefix)
      await store.increment('client')
      await server.admin.script('FLUSH')
      const viaLibrary = vi.spyOn(inner, 'increment')
      const burst = await Promise.all(Array.from({ length: 5 }, () => store.increment('client')))
      expect(burst.map((answer) => answer.totalHits).sort()).toEqual([2, 3, 4, 5, 6])
      expect(viaLibrary).toHaveBeenCalled()
      viaLibrary.mockClear()
      expect((await store.increment('client')).totalHits).toBe(7)
      expect(viaLibrary).not.toHaveBeenCalled()
      expect(await server.admin.get(`${keyPrefix}:read:client`)).toBe('7')
    })
  })

  describe('decrement (rate-limit-redis 6 would DECR blindly)', () => {
    const guardedStore = async (keyPrefix: string) => (await guarded(keyPrefix)).store

    it('never creates a key for a client whose window has gone', async () => {
      const keyPrefix = uniquePrefix('decr')
      const store = await guardedStore(keyPrefix)
      await store.decrement('ghost')
      expect(await server.admin.exists(`${keyPrefix}:read:ghost`)).toBe(0)
    })

    it('takes one hit back, keeps the TTL, and stops at zero', async () => {
      const keyPrefix = uniquePrefix('decr')
      const store = await guardedStore(keyPrefix)
      const key = `${keyPrefix}:read:client`
      await store.increment('client')
      await store.increment('client')
      await store.decrement('client')
      expect(await server.admin.get(key)).toBe('1')
      await store.decrement('client')
      await store.decrement('client')
      expect(await server.admin.get(key)).toBe('0')
      const ttl = await server.admin.pttl(key)
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(60_000)
    })
  })
})
