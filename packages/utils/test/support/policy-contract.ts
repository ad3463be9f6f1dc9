// The policy limiters' contract through a real Express app: every algorithm, several limits, a
// cost, the headers and req.rateLimit, run against each store (memory in unit tests, a real
// redis-server in integration tests).
import express, { type ErrorRequestHandler, type Express } from 'express'
import request from 'supertest'
import { afterEach, describe, expect, it } from 'vitest'

import { createRateLimiter, type RateLimitConfig, type RateLimitRequestHandler } from '#src/index.js'

import { uniquePrefix } from './limiter-contract.js'
import { recordingLogger } from './logger.js'

export interface PolicyContractOptions {
  /** The options that choose the store: none for memory, a redisUrl for Redis. */
  readonly store: () => RateLimitConfig
}

/** An app with one limited route, GET /r, that echoes req.rateLimit; errors answer their code. */
export async function policyApp(config: RateLimitConfig): Promise<{ app: Express; limiter: RateLimitRequestHandler }> {
  const limiter = await createRateLimiter('read', {
    keyPrefix: uniquePrefix('pol'),
    logger: recordingLogger(),
    ...config,
  })
  const app = express()
  app.set('trust proxy', 1)
  app.get('/r', limiter, (req, res) => {
    res.json({ rateLimit: (req as { rateLimit?: unknown }).rateLimit })
  })
  const errors: ErrorRequestHandler = (error: { code?: string; message?: string }, _req, res, _next) => {
    res.status(400).json({ code: error.code, message: error.message })
  }
  app.use(errors)
  return { app, limiter }
}

export function describePolicyContract(name: string, { store }: PolicyContractOptions): void {
  describe(`policy limiters: ${name}`, () => {
    const made: RateLimitRequestHandler[] = []
    afterEach(() => {
      for (const limiter of made.splice(0)) limiter.dispose()
    })
    const app = async (config: RateLimitConfig) => {
      const built = await policyApp({ ...store(), ...config })
      made.push(built.limiter)
      return built.app
    }
    const statuses = async (
      target: Awaited<ReturnType<typeof app>>,
      n: number,
      headers: Record<string, string> = {},
    ) => {
      const seen: number[] = []
      for (let i = 0; i < n; i++) seen.push((await request(target).get('/r').set(headers)).status)
      return seen
    }

    it.each(['fixed-window', 'sliding-window', 'token-bucket'] as const)(
      'lets %s pass exactly max, then answers 429 with the time until one could pass',
      async (algorithm) => {
        const target = await app({ algorithm, maxRead: 3, windowMs: 60_000 })
        expect(await statuses(target, 3)).toEqual([200, 200, 200])
        const refused = await request(target).get('/r')
        expect(refused.status).toBe(429)
        const retryAfter = Number(refused.headers['retry-after'])
        // Fixed: the window's end. Sliding: the next window, once 3 weigh no more than 2 (20-80 s).
        // Bucket: one unit back, 20 s.
        const [low, high] = { 'fixed-window': [59, 60], 'sliding-window': [20, 80], 'token-bucket': [19, 20] }[
          algorithm
        ]
        expect(retryAfter).toBeGreaterThanOrEqual(low!)
        expect(retryAfter).toBeLessThanOrEqual(high!)
        expect(refused.body).toMatchObject({ code: 'RATE_LIMIT_EXCEEDED', retryAfter })
        expect(refused.headers.ratelimit).toBe(`"read"; r=0; t=${retryAfter}`)
      },
    )

    it('checks every limit, names each in RateLimit-Policy and the closest in RateLimit', async () => {
      const target = await app({
        algorithm: 'sliding-window',
        limitsRead: [
          { name: 'burst', max: 3, windowMs: 1000 },
          { name: 'hourly', max: 100, windowMs: 3_600_000 },
        ],
      })
      const first = await request(target).get('/r').set('X-Forwarded-For', '10.1.0.1')
      expect(first.headers['ratelimit-policy']).toMatch(
        /^"burst"; q=3; w=1; pk=:[^:]+:, "hourly"; q=100; w=3600; pk=:[^:]+:$/,
      )
      // 2 of 3 left is closer to refusing than 99 of 100.
      expect(first.headers.ratelimit).toMatch(/^"burst"; r=2; t=\d+$/)
      expect(first.body.rateLimit).toMatchObject({
        limit: 3,
        used: 1,
        remaining: 2,
        name: 'burst',
        limits: [
          { name: 'burst', max: 3, windowMs: 1000, remaining: 2 },
          { name: 'hourly', max: 100, windowMs: 3_600_000, remaining: 99 },
        ],
      })
    })

    it('spends none of the limits when one refuses', async () => {
      const target = await app({
        algorithm: 'token-bucket',
        limitsRead: [
          { name: 'burst', max: 2, windowMs: 60_000 },
          { name: 'hourly', max: 100, windowMs: 3_600_000 },
        ],
      })
      const client = { 'X-Forwarded-For': '10.1.0.2' }
      expect(await statuses(target, 5, client)).toEqual([200, 200, 429, 429, 429])
      // The limiter's own view: three refusals spent nothing of the hourly limit.
      const [limiter] = made.slice(-1)
      const info = await limiter!.getKey('10.1.0.2')
      expect(info).toMatchObject({ totalHits: 2 })
    })

    it('spends the cost of each request, and refuses a request that costs more than what is left', async () => {
      const target = await app({
        algorithm: 'fixed-window',
        maxRead: 10,
        windowMs: 60_000,
        cost: (req) => Number(req.get('x-cost') ?? '1'),
      })
      const as = (cost: string) => request(target).get('/r').set({ 'X-Forwarded-For': '10.1.0.3', 'X-Cost': cost })
      expect((await as('4')).body.rateLimit).toMatchObject({ remaining: 6 })
      expect((await as('4')).body.rateLimit).toMatchObject({ remaining: 2 })
      expect((await as('3')).status).toBe(429)
      // A cheaper request still passes: the client was not blocked by the expensive one.
      expect((await as('2')).body.rateLimit).toMatchObject({ remaining: 0 })
      expect((await as('1')).status).toBe(429)
    })

    it('lists in problem details the limits with less left than the request cost', async () => {
      const target = await app({
        algorithm: 'token-bucket',
        problemDetails: true,
        limits: [
          { name: 'burst', max: 6, windowMs: 60_000 },
          { name: 'hourly', max: 100, windowMs: 3_600_000 },
          { name: 'daily', max: 8, windowMs: 86_400_000 },
        ],
        cost: (req) => Number(req.get('x-cost') ?? 1),
      })
      expect((await request(target).get('/r').set('X-Cost', '5')).status).toBe(200)
      // 1 left of burst, 3 of daily, 95 of hourly: a request of 4 meets burst and daily.
      const refused = await request(target).get('/r').set('X-Cost', '4')
      expect(refused.status).toBe(429)
      expect(refused.headers['content-type']).toBe('application/problem+json')
      expect(refused.body).toMatchObject({
        status: 429,
        code: 'RATE_LIMIT_EXCEEDED',
        retryAfter: Number(refused.headers['retry-after']),
        limits: [
          { name: 'burst', limit: 6, windowMs: 60_000, remaining: 1 },
          { name: 'daily', limit: 8, windowMs: 86_400_000, remaining: 3 },
        ],
      })
    })

    it.each([
      ['abc', 'cost must be a positive safe integer, got NaN'],
      ['0', 'cost must be a positive safe integer, got 0'],
      ['11', 'cost 11 is more than limit "read" can ever allow (max 10)'],
    ])('sends a cost of %s to the error handler with ERR_RATE_LIMIT_INVALID_COST', async (cost, message) => {
      // A promise, as from an async cost function.
      const target = await app({ maxRead: 10, cost: (req) => Promise.resolve(Number(req.get('x-cost'))) })
      const answer = await request(target).get('/r').set('X-Cost', cost)
      expect(answer.status).toBe(400)
      expect(answer.body).toEqual({ code: 'ERR_RATE_LIMIT_INVALID_COST', message })
    })
  })
}
