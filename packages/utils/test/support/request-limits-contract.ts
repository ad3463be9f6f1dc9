// Limits that depend on the request, through a real Express app, on each store (memory, ioredis-mock
// and a real redis-server): a max as a function of the request, named policies picked per request,
// what a client's counters do when its policy changes in the middle of a window, and the errors of
// a bad answer.
import type { Request } from 'express'
import request from 'supertest'
import { afterEach, describe, expect, it } from 'vitest'

import type { RateLimitConfig, RateLimitRequestHandler } from '#src/index.js'

import { policyApp, type PolicyContractOptions } from './policy-contract.js'

const ALGORITHMS = ['fixed-window', 'sliding-window', 'token-bucket'] as const

/** The plan a request says it is on, as an app would read it from its user. */
const planOf = (req: Request): string | undefined => req.get('x-plan') || undefined

/** free: 3 a minute; pro: 10 a minute. */
const PLANS = { free: { maxRead: 3 }, pro: { maxRead: 10 } } as const

export function describeRequestLimitsContract(name: string, { store }: PolicyContractOptions): void {
  describe(`limits that depend on the request: ${name}`, () => {
    const made: RateLimitRequestHandler[] = []
    afterEach(() => {
      for (const limiter of made.splice(0)) limiter.dispose()
    })
    const app = async (config: RateLimitConfig) => {
      const built = await policyApp({ windowMs: 60_000, ...store(), ...config })
      made.push(built.limiter)
      return built.app
    }
    type App = Awaited<ReturnType<typeof app>>
    const get = (target: App, client: string, headers: Record<string, string> = {}) =>
      request(target)
        .get('/r')
        .set({ 'X-Forwarded-For': client, ...headers })
    const statuses = async (target: App, n: number, client: string, headers: Record<string, string> = {}) => {
      const seen: number[] = []
      for (let i = 0; i < n; i++) seen.push((await get(target, client, headers)).status)
      return seen
    }

    it.each(ALGORITHMS)('gives each client the max its function answers, sync or async (%s)', async (algorithm) => {
      const target = await app({
        algorithm,
        maxRead: (req) => (planOf(req) === 'pro' ? Promise.resolve(5) : 2),
      })
      expect(await statuses(target, 3, '10.3.0.1')).toEqual([200, 200, 429])
      expect(await statuses(target, 6, '10.3.0.2', { 'X-Plan': 'pro' })).toEqual([200, 200, 200, 200, 200, 429])
      const pro = await get(target, '10.3.0.3', { 'X-Plan': 'pro' })
      expect(pro.headers['ratelimit-policy']).toMatch(/^"read"; q=5; w=60; pk=:[^:]+:$/)
      expect(pro.body.rateLimit).toMatchObject({ limit: 5, remaining: 4, name: 'read' })
    })

    it('answers a max function per limit, beside limits that are numbers', async () => {
      const target = await app({
        algorithm: 'sliding-window',
        limitsRead: [
          { name: 'minute', max: (req) => (planOf(req) === 'pro' ? 20 : 4), windowMs: 60_000 },
          { name: 'day', max: 6, windowMs: 86_400_000 },
        ],
      })
      const pro = await get(target, '10.3.1.1', { 'X-Plan': 'pro' })
      expect(pro.headers['ratelimit-policy']).toMatch(/^"minute"; q=20; w=60; pk=:[^:]+:, "day"; q=6; w=86400; pk=/)
      // The day's 6 is closer to refusing than the minute's 20.
      expect(pro.headers.ratelimit).toMatch(/^"day"; r=5; t=\d+$/)
      // A free client spends the minute's 4; as pro, the same client has 16 of the minute's 20
      // left, and the day's 6 that both share refuses the seventh request.
      expect(await statuses(target, 4, '10.3.1.2')).toEqual([200, 200, 200, 200])
      expect((await get(target, '10.3.1.2', { 'X-Plan': 'pro' })).body.rateLimit.limits).toMatchObject([
        { name: 'minute', max: 20, remaining: 15 },
        { name: 'day', max: 6, remaining: 1 },
      ])
      expect(await statuses(target, 2, '10.3.1.2', { 'X-Plan': 'pro' })).toEqual([200, 429])
    })

    it.each([
      [0, 'got 0'],
      [1.5, 'got 1.5'],
      ['7', 'got "7"'],
      [Number.MAX_SAFE_INTEGER, `got ${Number.MAX_SAFE_INTEGER}`],
    ])(
      'sends a max function answer of %j to the error handler with ERR_RATE_LIMIT_INVALID_LIMIT',
      async (answer, shown) => {
        const target = await app({ maxRead: () => Promise.resolve(answer as number) })
        const response = await get(target, '10.3.2.1')
        expect(response.status).toBe(400)
        expect(response.body).toEqual({
          code: 'ERR_RATE_LIMIT_INVALID_LIMIT',
          message: `maxRead (a function of the request) must answer a positive safe integer with 2 × max × windowMs at most ${Number.MAX_SAFE_INTEGER}, ${shown}`,
        })
      },
    )

    it("sends a max function's own error to the error handler", async () => {
      const target = await app({
        limitsRead: [
          {
            max: () => {
              throw Object.assign(new Error('no plan'), { code: 'NO_PLAN' })
            },
            windowMs: 60_000,
          },
        ],
      })
      expect((await get(target, '10.3.2.2')).body).toEqual({ code: 'NO_PLAN', message: 'no plan' })
    })

    it.each(ALGORITHMS)(
      'decides by the policy the function picks, and shows it in the headers and req.rateLimit (%s)',
      async (algorithm) => {
        const target = await app({ algorithm, maxRead: 1, policies: PLANS, policy: planOf })
        expect(await statuses(target, 4, '10.3.3.1', { 'X-Plan': 'free' })).toEqual([200, 200, 200, 429])
        const pro = await get(target, '10.3.3.2', { 'X-Plan': 'pro' })
        expect(pro.headers['ratelimit-policy']).toMatch(/^"pro\.read"; q=10; w=60; pk=:[^:]+:$/)
        expect(pro.headers.ratelimit).toMatch(/^"pro\.read"; r=9; t=\d+$/)
        expect(pro.body.rateLimit).toMatchObject({ policy: 'pro', name: 'pro.read', limit: 10, remaining: 9 })
        // No policy: the set's own limits, under their own name.
        const own = await get(target, '10.3.3.3')
        expect(own.headers['ratelimit-policy']).toMatch(/^"read"; q=1; w=60; pk=/)
        expect(own.body.rateLimit).toMatchObject({ name: 'read', limit: 1 })
        expect(own.body.rateLimit.policy).toBeUndefined()
      },
    )

    it('gives a policy several limits, and keeps the set’s limits for a budget the policy leaves out', async () => {
      const target = await app({
        limitsRead: [{ name: 'minute', max: 2, windowMs: 60_000 }],
        policies: {
          pro: {
            limitsRead: [
              { name: 'second', max: 5, windowMs: 1_000 },
              { name: 'hour', max: 1000, windowMs: 3_600_000 },
            ],
          },
          slow: { windowMs: 120_000 },
        },
        policy: planOf,
      })
      const pro = await get(target, '10.3.4.1', { 'X-Plan': 'pro' })
      expect(pro.headers['ratelimit-policy']).toMatch(
        /^"pro\.second"; q=5; w=1; pk=:[^:]+:, "pro\.hour"; q=1000; w=3600; pk=:[^:]+:$/,
      )
      const slow = await get(target, '10.3.4.2', { 'X-Plan': 'slow' })
      expect(slow.headers['ratelimit-policy']).toMatch(/^"slow\.minute"; q=2; w=60; pk=/)
    })

    it('sends an unknown policy name to the error handler with ERR_RATE_LIMIT_INVALID_POLICY', async () => {
      const target = await app({ policies: PLANS, policy: (req) => Promise.resolve(planOf(req)) })
      const response = await get(target, '10.3.5.1', { 'X-Plan': 'gold' })
      expect(response.status).toBe(400)
      expect(response.body).toEqual({
        code: 'ERR_RATE_LIMIT_INVALID_POLICY',
        message: 'policy must answer one of free, pro (or undefined for the limiter\'s own limits), got "gold"',
      })
    })

    // What a change of policy in the middle of a window does (docs/rate-limiting.md, Policies chosen
    // per request): a limit's state is kept by its place in the list. The windows count units, so
    // the units spent carry over; the bucket keeps its TAT, the time until it is full again, so
    // the share spent carries over.
    const remainingAfterUpgrade = { 'fixed-window': 8, 'sliding-window': 8, 'token-bucket': 3 }
    it.each(ALGORITHMS)(
      'keeps what a client has spent when its policy changes in the middle of a window (%s)',
      async (algorithm) => {
        const target = await app({ algorithm, policies: PLANS, policy: planOf })
        const free = { 'X-Plan': 'free' }
        const pro = { 'X-Plan': 'pro' }
        expect(await statuses(target, 2, '10.3.6.1', free)).toEqual([200, 200])
        // Upgraded: 2 of free's 3 spent; pro's 10 less what carries over, less this request.
        const upgraded = await get(target, '10.3.6.1', pro)
        expect(upgraded.status).toBe(200)
        expect(upgraded.body.rateLimit).toMatchObject({
          policy: 'pro',
          remaining: remainingAfterUpgrade[algorithm] - 1,
        })
        // Downgraded: more than free's max spent; no counter goes below 0, and free refuses.
        const downgraded = await get(target, '10.3.6.1', free)
        expect(downgraded.status).toBe(429)
        expect(downgraded.headers.ratelimit).toMatch(/^"free\.read"; r=0; t=\d+$/)
      },
    )

    it('starts a limit a new policy adds whole, and keeps the limits at the same places', async () => {
      const target = await app({
        algorithm: 'fixed-window',
        policies: {
          free: { limitsRead: [{ name: 'minute', max: 3, windowMs: 60_000 }] },
          pro: {
            limitsRead: [
              { name: 'minute', max: 10, windowMs: 60_000 },
              { name: 'day', max: 50, windowMs: 86_400_000 },
            ],
          },
        },
        policy: planOf,
      })
      expect(await statuses(target, 2, '10.3.7.1', { 'X-Plan': 'free' })).toEqual([200, 200])
      expect((await get(target, '10.3.7.1', { 'X-Plan': 'pro' })).body.rateLimit.limits).toMatchObject([
        { name: 'pro.minute', remaining: 7 },
        { name: 'pro.day', remaining: 49 },
      ])
    })

    it('keeps a client blocked under one policy until its retry time, and resetKey frees it at once', async () => {
      const built = await policyApp({ windowMs: 60_000, ...store(), policies: PLANS, policy: planOf })
      made.push(built.limiter)
      const free = { 'X-Plan': 'free' }
      expect(await statuses(built.app, 4, '10.3.8.1', free)).toEqual([200, 200, 200, 429])
      // Blocked in this process until the free window's end, whatever the next request's policy.
      expect((await get(built.app, '10.3.8.1', { 'X-Plan': 'pro' })).status).toBe(429)
      await built.limiter.resetKey('10.3.8.1')
      expect((await get(built.app, '10.3.8.1', { 'X-Plan': 'pro' })).body.rateLimit).toMatchObject({
        policy: 'pro',
        remaining: 9,
      })
    })
  })
}
