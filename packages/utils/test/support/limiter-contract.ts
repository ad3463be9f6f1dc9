// One behaviour suite for every store: memory and ioredis-mock in unit tests, real Redis in integration.
import request from 'supertest'
import { afterEach, describe, expect, it } from 'vitest'

import {
  createRateLimiter,
  createRateLimiters,
  type RateLimitConfig,
  type RateLimiters,
  type RateLimitRequestHandler,
} from '#src/index.js'
import { createApp } from './app.js'
import { recordingLogger } from './logger.js'

export interface ContractStore {
  /** What the store log line says, e.g. 'Using MemoryStore (single-instance mode)'. */
  readonly storeLine: string
  /** Options that select the store (redisClient, redisUrl ...). Called once per test. */
  options(): RateLimitConfig | Promise<RateLimitConfig>
}

let prefixes = 0
/** A keyPrefix no other test in this process has used. */
export const uniquePrefix = (name = 'test'): string => `${name}-${process.pid}-${++prefixes}`

export function describeLimiterContract(storeName: string, store: ContractStore): void {
  describe(`limiter behaviour on ${storeName}`, () => {
    const disposables: { dispose(): void }[] = []
    afterEach(() => {
      for (const d of disposables.splice(0)) d.dispose()
    })

    async function limiters(config: RateLimitConfig = {}): Promise<RateLimiters> {
      const made = await createRateLimiters({ keyPrefix: uniquePrefix(), ...(await store.options()), ...config })
      disposables.push(made)
      return made
    }

    it(`logs "${store.storeLine}" once for read and once for write`, async () => {
      const logger = recordingLogger()
      await limiters({ logger })
      expect(logger.messages()).toEqual(
        expect.arrayContaining([`[RateLimit:read] ${store.storeLine}`, `[RateLimit:write] ${store.storeLine}`]),
      )
      expect(logger.messages().filter((m) => m.startsWith('[RateLimit:'))).toHaveLength(2)
    })

    it('answers 429 after maxRead reads in one window, with the JSON body and Retry-After', async () => {
      const app = createApp(await limiters({ maxRead: 3, logger: recordingLogger() }))
      for (let i = 0; i < 3; i++) await request(app).get('/items').expect(200)
      const res = await request(app).get('/items').expect(429)
      expect(res.body).toEqual({
        success: false,
        error: 'Too many requests, please try again later.',
        code: 'RATE_LIMIT_EXCEEDED',
        retryAfter: expect.any(Number),
      })
      expect(res.headers['retry-after']).toBe(String(res.body.retryAfter))
      expect(res.body.retryAfter).toBeGreaterThan(0)
      expect(res.body.retryAfter).toBeLessThanOrEqual(900)
      expect(res.headers['content-type']).toMatch(/application\/json/)
    })

    it('answers 429 as RFC 9457 problem details with problemDetails, from the store and from memory', async () => {
      const app = createApp(await limiters({ maxRead: 2, problemDetails: true, logger: recordingLogger() }))
      for (let i = 0; i < 2; i++) await request(app).get('/items').expect(200)
      // The first 429 is the store's; the next is answered from the blocked clients in memory.
      for (let i = 0; i < 2; i++) {
        const res = await request(app).get('/items').expect(429)
        expect(res.headers['content-type']).toBe('application/problem+json')
        expect(res.body).toEqual({
          type: 'https://www.rfc-editor.org/rfc/rfc6585#section-4',
          title: 'Too Many Requests',
          status: 429,
          detail: 'Too many requests, please try again later.',
          code: 'RATE_LIMIT_EXCEEDED',
          retryAfter: Number(res.headers['retry-after']),
          limits: [{ name: 'read', limit: 2, windowMs: 900_000, remaining: 0 }],
        })
      }
    })

    it('answers 429 after maxWrite writes, on a budget separate from reads', async () => {
      const app = createApp(await limiters({ maxRead: 2, maxWrite: 2, logger: recordingLogger() }))
      await request(app).post('/items').expect(201)
      await request(app).post('/items').expect(201)
      await request(app).post('/items').expect(429)
      await request(app).get('/items').expect(200)
      await request(app).get('/items').expect(200)
      await request(app).get('/items').expect(429)
    })

    it('sends the draft-8 RateLimit and RateLimit-Policy headers and no legacy headers', async () => {
      const app = createApp(await limiters({ maxRead: 5, windowMs: 60_000, logger: recordingLogger() }))
      const res = await request(app).get('/items').expect(200)
      expect(res.headers['ratelimit']).toMatch(/^"read"; r=4; t=(60|59)$/)
      expect(res.headers['ratelimit-policy']).toMatch(/^"read"; q=5; w=60; pk=:[A-Za-z0-9+/=]+:$/)
      expect(Object.keys(res.headers).filter((h) => h.startsWith('x-ratelimit'))).toEqual([])
      expect(res.headers['retry-after']).toBeUndefined()
    })

    it('sends the legacy X-RateLimit-* headers only when legacyHeaders is true', async () => {
      const app = createApp(await limiters({ maxRead: 5, legacyHeaders: true, logger: recordingLogger() }))
      const res = await request(app).get('/items').expect(200)
      expect(res.headers['x-ratelimit-limit']).toBe('5')
      expect(res.headers['x-ratelimit-remaining']).toBe('4')
      // Epoch seconds, as express-rate-limit documents; the original sent an ISO date here.
      expect(res.headers['x-ratelimit-reset']).toMatch(/^\d+$/)
      const reset = Number(res.headers['x-ratelimit-reset'])
      expect(reset).toBeGreaterThan(Date.now() / 1000)
      expect(reset).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 900)
    })

    it('sets req.rateLimit on every request, limited or not', async () => {
      const seen: [unknown, number][] = []
      const app = createApp(await limiters({ maxRead: 1, logger: recordingLogger() }), (info, status) =>
        seen.push([info, status]),
      )
      const first = await request(app).get('/items').expect(200)
      expect(first.body.rateLimit).toMatchObject({ limit: 1, used: 1, remaining: 0 })
      expect(Date.parse(first.body.rateLimit.resetTime)).toBeGreaterThan(Date.now())
      await request(app).get('/items').expect(429)
      expect(seen).toEqual([
        [expect.objectContaining({ limit: 1, used: 1, remaining: 0 }), 200],
        [expect.objectContaining({ limit: 1, used: 2, remaining: 0 }), 429],
      ])
    })

    it("builds req.rateLimit as express-rate-limit does, on the limiter's first request and after", async () => {
      // The first request goes through express-rate-limit's middleware (its validations run then);
      // the later ones are decided directly (limiter/decision.ts), and must not look different.
      const seen: Record<string, unknown>[] = []
      const app = createApp(await limiters({ maxRead: 3, logger: recordingLogger() }), (info) =>
        seen.push(info as Record<string, unknown>),
      )
      for (let i = 0; i < 4; i++) await request(app).get('/items')
      expect(seen.map((info) => [info.used, info.remaining])).toEqual([
        [1, 2],
        [2, 1],
        [3, 0],
        [4, 0],
      ])
      const [first, ...later] = seen as [Record<string, unknown>, ...Record<string, unknown>[]]
      expect(Object.keys(first)).toEqual(['limit', 'used', 'remaining', 'resetTime', 'key'])
      for (const info of [first, ...later]) {
        expect(Object.keys(info)).toEqual(Object.keys(first))
        expect(info.current).toBe(info.used)
        expect(info.resetTime).toBeInstanceOf(Date)
        expect(info.key).toBe(first.key)
      }
    })

    it('counts each client on its own budget', async () => {
      const app = createApp(await limiters({ maxRead: 1, logger: recordingLogger() }))
      await request(app).get('/items').set('X-Forwarded-For', '203.0.113.1').expect(200)
      await request(app).get('/items').set('X-Forwarded-For', '203.0.113.1').expect(429)
      await request(app).get('/items').set('X-Forwarded-For', '203.0.113.2').expect(200)
    })

    it('puts the message option in the 429 body', async () => {
      const app = createApp(await limiters({ maxRead: 1, message: 'Slow down', logger: recordingLogger() }))
      await request(app).get('/items')
      const res = await request(app).get('/items').expect(429)
      expect(res.body.error).toBe('Slow down')
    })

    it('limits a custom limiter by maxCustom', async () => {
      const custom: RateLimitRequestHandler = await createRateLimiter('custom', {
        keyPrefix: uniquePrefix(),
        maxCustom: 2,
        ...(await store.options()),
        logger: recordingLogger(),
      })
      disposables.push(custom)
      const app = createApp({ read: custom, write: custom })
      await request(app).get('/items').expect(200)
      await request(app).get('/items').expect(200)
      const res = await request(app).get('/items').expect(429)
      expect(res.headers['ratelimit']).toMatch(/^"custom"; r=0;/)
    })

    it('keeps two services with different prefixes on separate budgets', async () => {
      const a = createApp(await limiters({ maxRead: 1, logger: recordingLogger() }))
      const b = createApp(await limiters({ maxRead: 1, logger: recordingLogger() }))
      await request(a).get('/items').expect(200)
      await request(a).get('/items').expect(429)
      await request(b).get('/items').expect(200)
    })
  })
}
