// Limiters by name: any name of the documented alphabet, its own counters under
// {keyPrefix}:{name}:{client key}, custom's budget, and one limiter per prefix and name.
import express from 'express'
import RedisMock from 'ioredis-mock'
import request from 'supertest'
import { afterEach, describe, expect, it } from 'vitest'

import { createRateLimiter, ERROR_CODES, type RateLimitConfig, type RateLimitRequestHandler } from '#src/index.js'
import { createIoredisMockAdapter } from '#src/testing/index.js'
import { uniquePrefix } from '#test/support/limiter-contract.js'
import { recordingLogger } from '#test/support/logger.js'

const made: RateLimitRequestHandler[] = []
afterEach(() => {
  for (const limiter of made.splice(0)) limiter.dispose()
})

async function limiter(name: string, config: RateLimitConfig) {
  const handler = await createRateLimiter(name, { logger: recordingLogger(), ...config })
  made.push(handler)
  return handler
}

/** The statuses of one client's requests to the routes in `order`, each route behind its handler. */
async function statuses(handlers: Record<string, RateLimitRequestHandler>, order: string[]) {
  const app = express()
  app.set('trust proxy', 1)
  for (const [route, handler] of Object.entries(handlers)) app.get(`/${route}`, handler, (_req, res) => res.end())
  const seen: number[] = []
  for (const route of order) seen.push((await request(app).get(`/${route}`).set('X-Forwarded-For', '10.9.0.1')).status)
  return seen
}

describe('named limiters', () => {
  it.each([
    ['the fixed window', {}],
    ['a policy', { algorithm: 'token-bucket' }],
  ] as const)('count apart from custom and from each other, with custom’s budget: %s', async (_name, options) => {
    const keyPrefix = uniquePrefix('named')
    const config = { keyPrefix, maxCustom: 2, ...(options as RateLimitConfig) }
    const login = await limiter('login', config)
    const reset = await limiter('password-reset', config)
    const custom = await limiter('custom', config)
    expect(
      await statuses({ login, reset, custom }, ['login', 'login', 'login', 'reset', 'custom', 'reset', 'reset']),
    ).toEqual([200, 200, 429, 200, 200, 200, 429])
  })

  it('take their own limits from limitsCustom, named by the limiter', async () => {
    const login = await limiter('login', {
      keyPrefix: uniquePrefix('named'),
      limitsCustom: [{ max: 1, windowMs: 60_000 }],
    })
    const app = express().get('/', login, (_req, res) => res.end())
    const first = await request(app).get('/')
    expect(first.status).toBe(200)
    expect(first.headers['ratelimit-policy']).toMatch(/^"login\.1"; q=1; w=60/)
    expect((await request(app).get('/')).headers.ratelimit).toMatch(/^"login\.1"; r=0; t=60/)
  })

  it.each([
    ['the fixed window', {}, ':login:'],
    ['a sliding window', { algorithm: 'sliding-window' }, ':login#sw:'],
  ] as const)('keep their counters in Redis under {keyPrefix}:{name}: %s', async (_name, options, part) => {
    const mock = new RedisMock()
    const keyPrefix = uniquePrefix('named')
    const login = await limiter('login', {
      keyPrefix,
      redisClient: createIoredisMockAdapter(mock),
      ...(options as RateLimitConfig),
    })
    expect(await statuses({ login }, ['login'])).toEqual([200])
    expect(await mock.keys(`${keyPrefix}*`)).toEqual([`${keyPrefix}${part}10.9.0.1`])
  })

  it('are refused a second time for the same prefix and name, and not for another name', async () => {
    const keyPrefix = uniquePrefix('named')
    await limiter('login', { keyPrefix })
    await expect(limiter('login', { keyPrefix })).rejects.toMatchObject({ code: ERROR_CODES.DUPLICATE_PREFIX })
    await expect(limiter('signup', { keyPrefix })).resolves.toBeDefined()
  })
})
