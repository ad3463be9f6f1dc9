import RedisMock from 'ioredis-mock'
import request from 'supertest'
import { describe, expect, it } from 'vitest'

import { createIoredisMockAdapter } from '#src/testing/index.js'
import { createApp } from '#test/support/app.js'
import { describeLimiterContract } from '#test/support/limiter-contract.js'
import { mockLimiters } from '#test/support/mock-limiters.js'

// ioredis-mock instances share one dataset per host and port, and each one adds a listener to a
// shared emitter, so the file uses one instance and each test reads only its own prefix.
const mock = new RedisMock()

describeLimiterContract('rate-limit-redis over ioredis-mock', {
  storeLine: 'Using Redis store (distributed mode)',
  options: () => ({ redisClient: createIoredisMockAdapter(mock) }),
})

describe('Redis keys (ioredis-mock)', () => {
  const sets = mockLimiters(mock)

  it('are {keyPrefix}:{type}:{client key}, each with the window as TTL', async () => {
    const limiters = await sets.create('keys', { windowMs: 60_000 })
    const { keyPrefix } = limiters
    const app = createApp(limiters)
    await request(app).get('/items').set('X-Forwarded-For', '198.51.100.7').expect(200)
    await request(app).post('/items').set('X-Forwarded-For', '198.51.100.7').expect(201)
    expect((await mock.keys(`${keyPrefix}:*`)).sort()).toEqual([
      `${keyPrefix}:read:198.51.100.7`,
      `${keyPrefix}:write:198.51.100.7`,
    ])
    for (const key of await mock.keys(`${keyPrefix}:*`)) {
      const ttl = await mock.pttl(key)
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(60_000)
    }
  })

  it('groups an IPv6 client by its /56, so rotating addresses inside it shares one budget', async () => {
    const limiters = await sets.create('v6', { maxRead: 1 })
    const { keyPrefix } = limiters
    const app = createApp(limiters)
    await request(app).get('/items').set('X-Forwarded-For', '2001:db8:abcd:12ff::1').expect(200)
    await request(app).get('/items').set('X-Forwarded-For', '2001:db8:abcd:1200::99').expect(429)
    expect(await mock.keys(`${keyPrefix}:*`)).toEqual([`${keyPrefix}:read:2001:db8:abcd:1200::/56`])
  })

  it('keeps counting after the scripts are flushed (NOSCRIPT is retried, never shown)', async () => {
    const adapter = createIoredisMockAdapter(mock)
    const limiters = await sets.create('noscript', { maxRead: 3, redisClient: adapter })
    const app = createApp(limiters)
    await request(app).get('/items').expect(200)
    adapter.flushScripts()
    const res = await request(app).get('/items').expect(200)
    expect(res.body.rateLimit).toMatchObject({ used: 2, remaining: 1 })
  })
})
