// The operator's controls (get, reset, penalty, reward, block) through a real Express app, for the
// default's fixed window and every policy algorithm, on each store (memory, ioredis-mock and a real
// redis-server).
import request from 'supertest'
import { afterEach, describe, expect, it } from 'vitest'

import { ERROR_CODES, type RateLimitConfig, type RateLimitRequestHandler } from '#src/index.js'

import { policyApp, type PolicyContractOptions } from './policy-contract.js'

/** The limiters the controls are held to: the default's path, and each algorithm as a policy. */
export const CONTROLLED: readonly (readonly [string, RateLimitConfig])[] = [
  ['the fixed window (the default)', {}],
  ['the fixed window as a policy', { algorithm: 'fixed-window', cost: 1 }],
  ['the sliding window', { algorithm: 'sliding-window' }],
  ['the token bucket', { algorithm: 'token-bucket' }],
]

export function describeControlsContract(name: string, { store }: PolicyContractOptions): void {
  describe(`the operator's controls: ${name}`, () => {
    const made: RateLimitRequestHandler[] = []
    afterEach(() => {
      for (const limiter of made.splice(0)) limiter.dispose()
    })
    const setUp = async (config: RateLimitConfig) => {
      const built = await policyApp({ maxRead: 5, windowMs: 60_000, ...store(), ...config })
      made.push(built.limiter)
      const status = async (client: string) =>
        (await request(built.app).get('/r').set('X-Forwarded-For', client)).status
      return { ...built, status }
    }

    describe.each(CONTROLLED)('%s', (_label, config) => {
      it('reads a client’s state without spending anything', async () => {
        const { limiter, status } = await setUp(config)
        expect(await limiter.get('10.5.0.1')).toMatchObject({
          key: '10.5.0.1',
          policy: undefined,
          retryAfterMs: 0,
          limits: [{ name: 'read', max: 5, windowMs: 60_000, remaining: 5 }],
        })
        expect([await status('10.5.0.1'), await status('10.5.0.1')]).toEqual([200, 200])
        const state = await limiter.get('10.5.0.1')
        expect(state.limits[0]).toMatchObject({ remaining: 3 })
        expect(state.limits[0]!.resetMs).toBeGreaterThan(0)
        // Reading spent nothing.
        expect((await limiter.get('10.5.0.1')).limits[0]).toMatchObject({ remaining: 3 })
      })

      it('penalises past the limit, then rewards back to whole and no further', async () => {
        const { limiter, status } = await setUp(config)
        expect(await status('10.5.1.1')).toBe(200)
        const penalised = await limiter.penalty('10.5.1.1', 10)
        expect(penalised.limits[0]).toMatchObject({ remaining: 0 })
        expect(penalised.retryAfterMs).toBeGreaterThan(0)
        expect(await status('10.5.1.1')).toBe(429)
        // More than was ever spent: the counter stops at nothing spent, and the client passes again
        // (this process's blocked-clients cache forgets it too).
        const rewarded = await limiter.reward('10.5.1.1', 100)
        expect(rewarded).toMatchObject({ retryAfterMs: 0, limits: [{ remaining: 5 }] })
        expect(await status('10.5.1.1')).toBe(200)
        expect((await limiter.get('10.5.1.1')).limits[0]).toMatchObject({ remaining: 4 })
      })

      it('rewards a client that has spent nothing without creating anything', async () => {
        const { limiter } = await setUp(config)
        expect((await limiter.reward('10.5.2.1', 3)).limits[0]).toMatchObject({ remaining: 5, resetMs: 0 })
        expect((await limiter.get('10.5.2.1')).limits[0]).toMatchObject({ remaining: 5 })
      })

      it('blocks a client for the time asked, whatever its limits say, until reset', async () => {
        const { app, limiter, status } = await setUp(config)
        const blocked = await limiter.block('10.5.3.1', 30_000)
        expect(blocked.retryAfterMs).toBeGreaterThan(29_000)
        expect(blocked.retryAfterMs).toBeLessThanOrEqual(30_000)
        const refused = await request(app).get('/r').set('X-Forwarded-For', '10.5.3.1')
        expect(refused.status).toBe(429)
        expect(Number(refused.headers['retry-after'])).toBe(30)
        expect(await status('10.5.3.2')).toBe(200)
        await limiter.reset('10.5.3.1')
        expect(await status('10.5.3.1')).toBe(200)
      })

      it.each([
        ['get', (l: RateLimitRequestHandler) => l.get(''), 'key must be a client key of 1 to 1024 characters, got ""'],
        [
          'reset',
          (l: RateLimitRequestHandler) => l.reset(42 as unknown as string),
          'key must be a client key of 1 to 1024 characters, got 42',
        ],
        [
          'penalty',
          (l: RateLimitRequestHandler) => l.penalty('10.5.4.1', 0),
          'n must be a positive safe integer, got 0',
        ],
        [
          'reward',
          (l: RateLimitRequestHandler) => l.reward('10.5.4.1', 1.5),
          'n must be a positive safe integer, got 1.5',
        ],
        [
          'block',
          (l: RateLimitRequestHandler) => l.block('10.5.4.1', 2 ** 31),
          'ms must be an integer of ms from 1 to 2147483647, got 2147483648',
        ],
      ])('rejects a bad argument to %s with ERR_RATE_LIMIT_INVALID_ARGUMENT', async (_control, call, message) => {
        const { limiter } = await setUp(config)
        await expect(call(limiter)).rejects.toMatchObject({ code: ERROR_CODES.INVALID_ARGUMENT, message })
      })
    })

    it('reads and changes a client under a named policy', async () => {
      const { limiter } = await setUp({
        algorithm: 'sliding-window',
        policies: { pro: { maxRead: 50 } },
        policy: (req) => req.get('x-plan') || undefined,
      })
      await limiter.penalty('10.5.5.1', 7, { policy: 'pro' })
      expect(await limiter.get('10.5.5.1', { policy: 'pro' })).toMatchObject({
        policy: 'pro',
        limits: [{ name: 'pro.read', max: 50, remaining: 43 }],
      })
      // The same counters, read under the limiter's own limits.
      expect((await limiter.get('10.5.5.1')).limits[0]).toMatchObject({ name: 'read', max: 5, remaining: 0 })
      await expect(limiter.get('10.5.5.1', { policy: 'gold' })).rejects.toMatchObject({
        code: ERROR_CODES.INVALID_ARGUMENT,
        message: 'policy must be one of pro, got "gold"',
      })
    })
  })
}
