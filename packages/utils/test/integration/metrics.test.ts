// Metrics and the audit log with a real redis-server: known traffic, long keys, and an outage.
import { Registry } from 'prom-client'
import request from 'supertest'
import { afterEach, describe, expect, it } from 'vitest'

import {
  createRateLimiters,
  RATE_LIMIT_METRICS,
  RedisClientManager,
  type RateLimitAuditRecord,
  type RateLimitConfig,
  type RateLimiters,
} from '#src/index.js'
import { createApp } from '#test/support/app.js'
import { waitFor } from '#test/support/http.js'
import { uniquePrefix } from '#test/support/limiter-contract.js'
import { recordingLogger, type RecordingLogger } from '#test/support/logger.js'
import { valueOf } from '#test/support/metrics.js'
import { redisServerAvailable, startRedisServer, type TestRedisServer } from '#test/support/redis-server.js'

interface Rig {
  redis: TestRedisServer
  limiters: RateLimiters
  registry: Registry
  logger: RecordingLogger
  keyPrefix: string
}

let rig: Rig | undefined
afterEach(async () => {
  if (rig === undefined) return
  rig.limiters.dispose()
  await RedisClientManager.close()
  await rig.redis.stop()
  rig = undefined
})

async function setUp(config: RateLimitConfig = {}): Promise<Rig> {
  const redis = await startRedisServer()
  const registry = new Registry()
  const logger = recordingLogger()
  const keyPrefix = uniquePrefix('metrics')
  const limiters = await createRateLimiters({
    keyPrefix,
    metricsNamespace: 'svc',
    metricsRegistry: registry,
    redisUrl: redis.url,
    logger,
    ...config,
  })
  rig = { redis, limiters, registry, logger, keyPrefix }
  return rig
}

const read = { namespace: 'svc', type: 'read' }
const audited = (logger: RecordingLogger): RateLimitAuditRecord[] =>
  logger.lines.filter((l) => l.message === '[RateLimit:read] Rate limit exceeded').map((l) => l.details[0] as never)

describe.runIf(redisServerAvailable())('metrics on Redis', () => {
  it('count known traffic, time Redis calls, and see the one connection', async () => {
    const r = await setUp({ maxRead: 10 })
    const app = createApp(r.limiters)
    for (let i = 0; i < 14; i++) await request(app).get('/items').set('X-Forwarded-For', '10.0.0.1')

    expect(await valueOf(r.registry, RATE_LIMIT_METRICS.requests, read)).toBe(14)
    expect(await valueOf(r.registry, RATE_LIMIT_METRICS.rejections, read)).toBe(4)
    // 20% of 10 is 2: the 9th and 10th requests left 1 and 0.
    expect(await valueOf(r.registry, RATE_LIMIT_METRICS.nearLimit, read)).toBe(2)
    // 11 Redis calls: after the first rejection, the client is answered from the blocked-client memory.
    expect(await valueOf(r.registry, `${RATE_LIMIT_METRICS.storeDuration}_count`, { ...read, store: 'redis' })).toBe(11)
    const seconds = await valueOf(r.registry, `${RATE_LIMIT_METRICS.storeDuration}_sum`, { ...read, store: 'redis' })
    expect(seconds).toBeGreaterThan(0)
    expect(await valueOf(r.registry, RATE_LIMIT_METRICS.poolSize)).toBe(1)
    expect(await valueOf(r.registry, RATE_LIMIT_METRICS.poolActive)).toBe(1)
    expect(await valueOf(r.registry, RATE_LIMIT_METRICS.fallback, read)).toBe(0)
    expect(await valueOf(r.registry, RATE_LIMIT_METRICS.storeErrors, { ...read, kind: 'error' })).toBe(0)
    expect(audited(r.logger)).toEqual([expect.objectContaining({ key: '10.0.0.1', store: 'redis', limit: 10 })])
  })

  it('sends no Redis command for a client known to be over its limit, until resetKey', async () => {
    const r = await setUp({ maxRead: 2 })
    const app = createApp(r.limiters)
    const calls = async () => {
      const info = await r.redis.admin.info('commandstats')
      let total = 0
      for (const [, name, count] of info.matchAll(/^cmdstat_([\w|]+):calls=(\d+)/gm))
        if (name !== 'info') total += Number(count)
      return total
    }
    for (let i = 0; i < 3; i++) await request(app).get('/items')
    const before = await calls()
    for (let i = 0; i < 50; i++) await request(app).get('/items').expect(429)
    expect((await calls()) - before).toBe(0)
    await r.limiters.read.resetKey('127.0.0.1')
    await request(app).get('/items').expect(200)
    expect(await r.redis.admin.get(`${r.keyPrefix}:read:127.0.0.1`)).toBe('1')
  })

  it('stores a client key over 128 bytes as its SHA-256, so a header cannot inflate Redis memory', async () => {
    const r = await setUp({ maxRead: 1, keyGenerator: (req) => String(req.headers['x-client']) })
    const app = createApp(r.limiters)
    const hostile = 'x'.repeat(10_000)
    expect((await request(app).get('/items').set('X-Client', hostile)).status).toBe(200)
    expect((await request(app).get('/items').set('X-Client', hostile)).status).toBe(429)

    const keys = await r.redis.admin.keys(`${r.keyPrefix}:*`)
    expect(keys).toHaveLength(1)
    expect(keys[0]).toMatch(new RegExp(`^${r.keyPrefix}:read:sha256:[0-9a-f]{64}$`))
    expect(await r.redis.admin.get(keys[0]!)).toBe('2')
    // A custom key may be a secret: the audit log shows a hash of it, never the key.
    expect(audited(r.logger)[0]?.keyHash).toMatch(/^[0-9a-f]{16}$/)
    expect(r.logger.text()).not.toContain('xxxxxxxx')
  })

  it('show a hung Redis: store timeouts, the fallback gauge, degraded requests and audits; then recovery', async () => {
    const r = await setUp({ maxRead: 3 })
    const app = createApp(r.limiters)
    await request(app).get('/items')
    await r.redis.signal('SIGSTOP')
    try {
      // Each probe as a client of its own: however many it takes to open the breaker, none is refused.
      let probes = 0
      await waitFor('the limiters to notice', async () => {
        await request(app).get('/items').set('X-Forwarded-For', `10.0.1.${++probes}`)
        return !r.limiters.status().ready
      })
      const statuses = []
      for (let i = 0; i < 5; i++) {
        statuses.push((await request(app).get('/items').set('X-Forwarded-For', '10.0.0.8')).status)
      }
      expect(statuses).toEqual([200, 200, 200, 429, 429])

      expect(await valueOf(r.registry, RATE_LIMIT_METRICS.fallback, read)).toBe(1)
      expect(await valueOf(r.registry, RATE_LIMIT_METRICS.storeErrors, { ...read, kind: 'timeout' })).toBeGreaterThan(0)
      expect(await valueOf(r.registry, RATE_LIMIT_METRICS.degraded, { ...read, policy: 'fallback' })).toBeGreaterThan(5)
      expect(await valueOf(r.registry, RATE_LIMIT_METRICS.rejections, read)).toBe(2)
      expect(audited(r.logger)).toEqual([expect.objectContaining({ key: '10.0.0.8', store: 'fallback', limit: 3 })])
    } finally {
      await r.redis.signal('SIGCONT')
    }
    await waitFor('Redis to be used again', () => r.limiters.status().ready)
    expect(await valueOf(r.registry, RATE_LIMIT_METRICS.fallback, read)).toBe(0)
  })

  it('show a lost connection in redis_connection_pool_active, and its return', async () => {
    const r = await setUp()
    await r.redis.signal('SIGKILL')
    await waitFor('the limiters to notice', () => !r.limiters.status().ready)
    expect(await valueOf(r.registry, RATE_LIMIT_METRICS.poolSize)).toBe(1)
    expect(await valueOf(r.registry, RATE_LIMIT_METRICS.poolActive)).toBe(0)
    expect(await valueOf(r.registry, RATE_LIMIT_METRICS.fallback, read)).toBe(1)

    r.redis = await startRedisServer({ port: r.redis.port })
    await waitFor('Redis to be used again', () => r.limiters.status().ready)
    await waitFor(
      'the connection to be ready',
      async () => (await valueOf(r.registry, RATE_LIMIT_METRICS.poolActive)) === 1,
    )
    expect(await valueOf(r.registry, RATE_LIMIT_METRICS.fallback, read)).toBe(0)
  })

  it('in shadow mode, lets requests through even under onStoreError deny while Redis is away', async () => {
    const r = await setUp({ maxRead: 1, shadow: true, onStoreError: 'deny' })
    const app = createApp(r.limiters)
    expect((await request(app).get('/items')).status).toBe(200)
    expect((await request(app).get('/items')).status).toBe(200)
    expect(await valueOf(r.registry, RATE_LIMIT_METRICS.shadowRejections, read)).toBe(1)
    await r.redis.signal('SIGKILL')
    await waitFor('the limiters to notice', async () => {
      expect((await request(app).get('/items')).status).toBe(200)
      return !r.limiters.status().ready
    })
    for (let i = 0; i < 5; i++) expect((await request(app).get('/items')).status).toBe(200)
    expect(await valueOf(r.registry, RATE_LIMIT_METRICS.degraded, { ...read, policy: 'deny' })).toBeGreaterThan(4)
    expect(r.logger.messages()).toContain(
      `[RateLimit] ${r.keyPrefix}: onStoreError deny, not enforced in shadow mode: requests pass without a limit until Redis is back`,
    )
  })
})
