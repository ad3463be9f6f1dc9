import express, { type RequestHandler } from 'express'
import RedisMock from 'ioredis-mock'
import request from 'supertest'
import { describe, expect, it } from 'vitest'

import { createRateLimiters, defaultKeyGenerator, MAX_CLIENT_KEY_BYTES, type RateLimiters } from '#src/index.js'
import { boundedKey } from '#src/limiter/keys.js'
import { createIoredisMockAdapter } from '#src/testing/index.js'
import { uniquePrefix } from '#test/support/limiter-contract.js'
import { recordingLogger } from '#test/support/logger.js'
import { mockLimiters } from '#test/support/mock-limiters.js'

const fakeRequest = (ip: string | undefined, user?: unknown) =>
  ({ ip, user, socket: { remoteAddress: undefined } }) as unknown as express.Request

describe('defaultKeyGenerator', () => {
  it.each([
    [fakeRequest('203.0.113.5', { id: 'alice' }), 'user:alice'],
    [fakeRequest('203.0.113.5', { id: 42 }), 'user:42'],
    [fakeRequest('203.0.113.5', { id: '' }), '203.0.113.5'],
    [fakeRequest('203.0.113.5', {}), '203.0.113.5'],
    [fakeRequest('203.0.113.5'), '203.0.113.5'],
    [fakeRequest('::ffff:203.0.113.5'), '203.0.113.5'],
    [fakeRequest('2001:db8:1:2:3:4:5:6'), '2001:db8:1::/56'],
  ])('keys %# as %s', (req, key) => {
    expect(defaultKeyGenerator(req)).toBe(key)
  })
})

describe('boundedKey', () => {
  it('keeps a key of up to 128 bytes and hashes a longer one', () => {
    const edge = 'k'.repeat(MAX_CLIENT_KEY_BYTES)
    expect(boundedKey(edge)).toBe(edge)
    expect(boundedKey(`${edge}x`)).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(boundedKey('é'.repeat(65))).toMatch(/^sha256:/)
  })
})

const mock = new RedisMock()

describe('keys in Redis', () => {
  const sets = mockLimiters(mock)

  const appWith = (limiters: RateLimiters, identify: RequestHandler) => {
    const app = express()
    app.use(identify)
    app.get('/items', limiters.read, (_req, res) => res.json({ ok: true }))
    return app
  }

  it('gives two users behind one IP separate budgets', async () => {
    const limiters = await sets.create('users', { maxRead: 1 })
    const { keyPrefix } = limiters
    const app = appWith(limiters, (req, _res, next) => {
      const user = req.get('x-test-user')
      if (user) Object.assign(req, { user: { id: user } })
      next()
    })
    await request(app).get('/items').set('x-test-user', 'alice').expect(200)
    await request(app).get('/items').set('x-test-user', 'alice').expect(429)
    await request(app).get('/items').set('x-test-user', 'bob').expect(200)
    await request(app).get('/items').expect(200)
    expect((await mock.keys(`${keyPrefix}:*`)).sort()).toEqual(
      [`${keyPrefix}:read:127.0.0.1`, `${keyPrefix}:read:user:alice`, `${keyPrefix}:read:user:bob`].sort(),
    )
  })

  it('stores a client key longer than 128 bytes as its hash, so a hostile header cannot inflate Redis', async () => {
    const limiters = await sets.create('long', { keyGenerator: (req) => req.get('x-client') ?? 'none' })
    const { keyPrefix } = limiters
    const app = appWith(limiters, (_req, _res, next) => next())
    await request(app).get('/items').set('x-client', 'x'.repeat(4000)).expect(200)
    await request(app).get('/items').set('x-client', 'short').expect(200)
    const keys = (await mock.keys(`${keyPrefix}:*`)).sort()
    expect(keys).toHaveLength(2)
    expect(keys).toContain(`${keyPrefix}:read:short`)
    expect(keys.find((k) => k !== `${keyPrefix}:read:short`)).toMatch(
      new RegExp(`^${keyPrefix}:read:sha256:[0-9a-f]{64}$`),
    )
  })

  it('refuses a keyGenerator that is not a function', async () => {
    await expect(
      createRateLimiters({ keyPrefix: uniquePrefix(), keyGenerator: 'ip' as never, logger: recordingLogger() }),
    ).rejects.toThrow('keyGenerator must be a function (request) => string, got "ip"')
  })
})

describe('status()', () => {
  it('reports memory as always ready, since the limiters were made', async () => {
    const before = Date.now()
    const limiters = await createRateLimiters({ keyPrefix: uniquePrefix(), logger: recordingLogger() })
    const status = limiters.status()
    expect(status).toEqual({ store: 'memory', ready: true, state: 'memory', since: expect.any(String) })
    expect(Date.parse(status.since)).toBeGreaterThanOrEqual(before - 1)
    expect(limiters.read.status()).toEqual(status)
    limiters.dispose()
  })

  it('reports Redis as ready while a handed-in client answers', async () => {
    const limiters = await createRateLimiters({
      keyPrefix: uniquePrefix(),
      redisClient: createIoredisMockAdapter(mock),
      logger: recordingLogger(),
    })
    expect(limiters.status()).toMatchObject({ store: 'redis', ready: true, state: 'redis' })
    limiters.dispose()
  })
})
