// The policy stores' contract below the middleware, on one Redis-speaking client: random traffic
// decided as the reference models and the memory store decide it (the test's clock passed to the
// script, so no TTL can expire a key early in real time), Redis's own clock, pipelined requests,
// TTLs, and a script flushed away. Run on a real
// redis-server (integration) and on ioredis-mock through createIoredisMockAdapter (unit).
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

import type { RedisCommandClient } from '#src/config/types.js'
import type { PolicyAlgorithm } from '#src/policies/algorithms.js'
import { checkLimits, type Limit } from '#src/policies/limits.js'
import { MemoryPolicyStore } from '#src/policies/memory-policy-store.js'
import { RedisPolicyStore } from '#src/policies/redis-policy-store.js'
import { batchedCalls } from '#src/stores/batched-calls.js'

import { waitFor } from './http.js'
import { uniquePrefix } from './limiter-contract.js'
import { REFERENCES, traffic } from './policy-reference.js'

export const ALGORITHMS = ['fixed-window', 'sliding-window', 'token-bucket'] as const

/** The Redis a contract runs on: a client for the stores, and what the tests look at directly. */
export interface PolicyRedis {
  readonly client: RedisCommandClient
  /** Redis's clock, whole ms since the epoch. */
  time(): Promise<number>
  pttl(key: string): Promise<number>
  hgetall(key: string): Promise<Record<string, string>>
  exists(key: string): Promise<number>
  /** SCRIPT FLUSH. */
  flushScripts(): Promise<void>
}

/** A store on `client` and the test's clock (or Redis's own, with no clock), through the hot path's sender. */
export function clockedStore(
  client: RedisCommandClient,
  algorithm: PolicyAlgorithm,
  limits: Limit[],
  clock?: { now: number },
): RedisPolicyStore {
  const send = batchedCalls(client, 1000)
  const now = clock === undefined ? undefined : () => clock.now
  return new RedisPolicyStore(send, algorithm, checkLimits(limits), `${uniquePrefix('pol')}:`, now)
}

export function describePolicyStoreContract(name: string, redis: () => PolicyRedis): void {
  const redisStore = (algorithm: PolicyAlgorithm, limits: Limit[], clock?: { now: number }) =>
    clockedStore(redis().client, algorithm, limits, clock)

  describe.each(ALGORITHMS)(`policy store on ${name}: %s`, (algorithm) => {
    it('decides random traffic as the reference model and the memory store do', async () => {
      await fc.assert(
        fc.asyncProperty(traffic, async ({ limits, start, steps }) => {
          const clock = { now: start }
          const store = redisStore(algorithm, limits, clock)
          const memory = new MemoryPolicyStore(algorithm, checkLimits(limits), () => clock.now)
          const reference = REFERENCES[algorithm](checkLimits(limits))
          try {
            for (const { dt, client: key, cost } of steps) {
              clock.now += dt
              const expected = reference.decide(key, clock.now, cost)
              expect(await store.consume(key, cost)).toEqual(expected)
              expect(memory.consume(key, cost)).toEqual(expected)
            }
          } finally {
            memory.shutdown()
          }
        }),
        { numRuns: 100 },
      )
    })

    it('decides several requests sent at once one after another', async () => {
      const clock = { now: 5_000_000 }
      const store = redisStore(algorithm, [{ max: 10, windowMs: 60_000 }], clock)
      const decisions = await Promise.all(Array.from({ length: 25 }, () => store.consume('crowd', 1)))
      expect(decisions.filter((decision) => decision.allowed)).toHaveLength(10)
      expect(decisions.map((decision) => decision.limits[0]!.remaining).slice(0, 10)).toEqual([
        9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
      ])
    })

    it("counts by Redis's clock when no clock is given", async () => {
      // The longest window, aligned on its multiples: if one is about to begin, wait for it to
      // pass, so that the four requests fall in one window.
      const w = 2 ** 31 - 1
      const store = redisStore(algorithm, [{ max: 3, windowMs: w }])
      await waitFor('a window boundary to pass', async () => w - ((await redis().time()) % w) > 5000)
      const before = await redis().time()
      const decisions = []
      for (let i = 0; i < 4; i++) decisions.push(await store.consume('timeless', 1))
      const after = await redis().time()
      expect(decisions.map((decision) => decision.allowed)).toEqual([true, true, true, false])
      const { retryMs, limits } = decisions[3]!
      if (algorithm === 'sliding-window') {
        // resetMs is 2W - e for the time e into the window that Redis's clock gave the script.
        const now = Math.floor(before / w) * w + (2 * w - limits[0]!.resetMs)
        expect(now).toBeGreaterThanOrEqual(before)
        expect(now).toBeLessThanOrEqual(after)
        // The next window, once this one's 3 weigh no more than 2: W - e, then W - floor(2W / 3).
        expect(retryMs).toBe(limits[0]!.resetMs - w + (w - Math.floor((2 * w) / 3)))
      } else if (algorithm === 'fixed-window') {
        // The window began with the first request, which Redis timed at or after `before`.
        expect(retryMs).toBeLessThanOrEqual(w)
        expect(retryMs).toBeGreaterThanOrEqual(w - (after - before) - 1)
      } else {
        // One unit back every W / 3 ms from the first request, which Redis timed at or after `before`.
        expect(retryMs).toBeLessThanOrEqual(Math.ceil(w / 3))
        expect(retryMs).toBeGreaterThanOrEqual(Math.ceil(w / 3) - (after - before) - 1)
      }
    })

    it("gives every key a TTL by Redis's clock that ends when the client would be new again", async () => {
      const limits = [
        { max: 5, windowMs: 1000 },
        { max: 50, windowMs: 30_000 },
      ]
      const store = redisStore(algorithm, limits)
      // The sliding window's TTL depends on the time into the 30 s window: not about to end.
      await waitFor('a 30 s window to be under way', async () => 30_000 - ((await redis().time()) % 30_000) > 5000)
      const before = await redis().time()
      await store.consume('ttl', 2)
      const ttl = await redis().pttl(store.keyOf('ttl'))
      // A fixed window's state lasts until its longest window ends, a sliding window's counts until
      // the window after this one ends, a bucket's until it is full.
      const expected = {
        'fixed-window': 30_000,
        'sliding-window': 2 * 30_000 - (before % 30_000),
        'token-bucket': Math.ceil((2 * 30_000) / 50),
      }[algorithm]
      expect(ttl).toBeGreaterThan(expected - 1000)
      expect(ttl).toBeLessThanOrEqual(expected)
      // A refused request writes nothing, and a cost of 0 (get) writes nothing either.
      const state = await redis().hgetall(store.keyOf('ttl'))
      await store.consume('ttl', 5)
      await store.get('ttl')
      expect(await redis().hgetall(store.keyOf('ttl'))).toEqual(state)
      await store.get('unknown')
      expect(await redis().exists(store.keyOf('unknown'))).toBe(0)
    })

    it("sets no TTL by a test's clock, which Redis cannot expire keys by", async () => {
      const clock = { now: 7_000_000 }
      const store = redisStore(algorithm, [{ max: 5, windowMs: 1 }], clock)
      await store.consume('clocked', 1)
      expect(await redis().pttl(store.keyOf('clocked'))).toBe(-1)
      // Its own times say it is stale: two windows later the limit is whole again.
      clock.now += 2
      expect(await store.consume('clocked', 5)).toMatchObject({ allowed: true })
    })

    it('loads its script again after SCRIPT FLUSH, and decides on', async () => {
      const clock = { now: 9_000_000 }
      const store = redisStore(algorithm, [{ max: 2, windowMs: 60_000 }], clock)
      expect((await store.consume('flushed', 1)).allowed).toBe(true)
      await redis().flushScripts()
      expect(await store.consume('flushed', 1)).toMatchObject({ allowed: true, limits: [{ remaining: 0 }] })
      expect((await store.consume('flushed', 1)).allowed).toBe(false)
    })
  })
}
