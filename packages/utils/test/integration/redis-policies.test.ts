// The sliding window and the token bucket on a real redis-server that this file starts and stops:
// random traffic decided as the reference models and the memory store decide it, by the test's
// clock passed to the script; Redis's own clock; TTLs; and a script flushed away.
import { createHash } from 'node:crypto'

import fc from 'fast-check'
import { Redis } from 'ioredis'
import request from 'supertest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { RedisClientManager } from '#src/index.js'

import { MODELS, type PolicyAlgorithm } from '#src/policies/algorithms.js'
import { checkLimits, type Limit } from '#src/policies/limits.js'
import { MemoryPolicyStore } from '#src/policies/memory-policy-store.js'
import { RedisPolicyStore } from '#src/policies/redis-policy-store.js'
import { batchedCalls } from '#src/stores/batched-calls.js'
import { describePolicyContract, policyApp } from '#test/support/policy-contract.js'
import { REFERENCES, traffic } from '#test/support/policy-reference.js'
import { waitFor } from '#test/support/http.js'
import { uniquePrefix } from '#test/support/limiter-contract.js'
import { redisServerAvailable, startRedisServer, type TestRedisServer } from '#test/support/redis-server.js'

const ALGORITHMS = ['fixed-window', 'sliding-window', 'token-bucket'] as const

describe.runIf(redisServerAvailable())('policies on a real redis-server', () => {
  let server: TestRedisServer
  let client: Redis

  beforeAll(async () => {
    server = await startRedisServer()
    client = new Redis(server.url)
  })
  afterAll(async () => {
    client?.disconnect()
    await RedisClientManager.close()
    await server?.stop()
  })

  describePolicyContract('a real Redis', { store: () => ({ redisUrl: server.url }) })

  /** Calls of EVAL and EVALSHA Redis has run so far. */
  const scriptCalls = async () => {
    const info = await server.admin.info('commandstats')
    let calls = 0
    for (const [, count] of info.matchAll(/^cmdstat_eval(?:sha)?:calls=(\d+)/gm)) calls += Number(count)
    return calls
  }

  describe.each(ALGORITHMS)('%s through createRateLimiter', (algorithm) => {
    it('lets exactly max of 300 concurrent requests of one client pass', async () => {
      const { app, limiter } = await policyApp({
        redisUrl: server.url,
        algorithm,
        maxRead: 37,
        windowMs: 600_000,
        cost: 1,
      })
      try {
        const answers = await Promise.all(
          Array.from({ length: 300 }, () => request(app).get('/r').set('X-Forwarded-For', '10.2.0.1')),
        )
        expect(answers.filter((answer) => answer.status === 200)).toHaveLength(37)
        expect(answers.filter((answer) => answer.status === 429)).toHaveLength(263)
      } finally {
        limiter.dispose()
      }
    })

    it('loads its script when it is made, so the first request is one EVALSHA and no NOSCRIPT', async () => {
      await server.admin.script('FLUSH')
      await server.admin.config('RESETSTAT')
      const { app, limiter } = await policyApp({ redisUrl: server.url, algorithm, maxRead: 5, cost: 1 })
      try {
        const sha = createHash('sha1').update(MODELS[algorithm].script).digest('hex')
        const loaded = async () => ((await server.admin.script('EXISTS', sha)) as number[])[0] === 1
        await waitFor('the script to be loaded', loaded)
        expect((await request(app).get('/r').set('X-Forwarded-For', '10.2.0.9')).status).toBe(200)
        const stats = await server.admin.info('commandstats')
        expect(stats).toMatch(/cmdstat_evalsha:calls=1,.*failed_calls=0/)
        expect(stats).not.toMatch(/cmdstat_eval:/)
      } finally {
        limiter.dispose()
      }
    })

    it('decides on after SCRIPT FLUSH: the hot path sends the script itself, and counts on', async () => {
      const { app, limiter } = await policyApp({ redisUrl: server.url, algorithm, maxRead: 3, cost: 1 })
      try {
        const client = { 'X-Forwarded-For': '10.2.0.7' }
        expect((await request(app).get('/r').set(client)).status).toBe(200)
        await server.admin.script('FLUSH')
        const statuses = []
        for (let i = 0; i < 3; i++) statuses.push((await request(app).get('/r').set(client)).status)
        expect(statuses).toEqual([200, 200, 429])
      } finally {
        limiter.dispose()
      }
    })

    it('answers a blocked client from memory, with no Redis command, until it could pass', async () => {
      const { app, limiter } = await policyApp({
        redisUrl: server.url,
        algorithm,
        maxRead: 2,
        windowMs: 600_000,
        cost: 1,
      })
      try {
        const client = { 'X-Forwarded-For': '10.2.0.2' }
        for (let i = 0; i < 3; i++) await request(app).get('/r').set(client)
        const before = await scriptCalls()
        const flood = await Promise.all(Array.from({ length: 20 }, () => request(app).get('/r').set(client)))
        expect(flood.every((answer) => answer.status === 429)).toBe(true)
        expect(await scriptCalls()).toBe(before)
        // Another client is still decided by Redis.
        expect((await request(app).get('/r').set('X-Forwarded-For', '10.2.0.3')).status).toBe(200)
        expect(await scriptCalls()).toBe(before + 1)
      } finally {
        limiter.dispose()
      }
    })
  })

  /** A Redis store on the test's clock (or Redis's own, with no clock), through the hot path's sender. */
  function redisStore(algorithm: PolicyAlgorithm, limits: Limit[], clock?: { now: number }) {
    const send = batchedCalls(client, 1000)
    const now = clock === undefined ? undefined : () => clock.now
    return new RedisPolicyStore(send, algorithm, checkLimits(limits), `${uniquePrefix('pol')}:`, now)
  }

  describe.each(ALGORITHMS)('%s', (algorithm) => {
    it('decides random traffic as the reference model and the memory store do', async () => {
      await fc.assert(
        fc.asyncProperty(traffic, async ({ limits, start, steps }) => {
          const clock = { now: start }
          const redis = redisStore(algorithm, limits, clock)
          const memory = new MemoryPolicyStore(algorithm, checkLimits(limits), () => clock.now)
          const reference = REFERENCES[algorithm](checkLimits(limits))
          try {
            for (const { dt, client: key, cost } of steps) {
              clock.now += dt
              const expected = reference.decide(key, clock.now, cost)
              expect(await redis.consume(key, cost)).toEqual(expected)
              expect(memory.consume(key, cost)).toEqual(expected)
            }
          } finally {
            memory.shutdown()
          }
        }),
        { numRuns: 100 },
      )
    })

    it('decides several requests sent in one pipeline one after another', async () => {
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
      const time = async () => {
        const [seconds, micros] = await server.admin.time()
        return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
      }
      await waitFor('a window boundary to pass', async () => w - ((await time()) % w) > 5000)
      const before = await time()
      const decisions = []
      for (let i = 0; i < 4; i++) decisions.push(await store.consume('timeless', 1))
      const after = await time()
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

    it('gives every key a TTL that ends when the client would be new again', async () => {
      const clock = { now: 7_000_000 }
      const limits = [
        { max: 5, windowMs: 1000 },
        { max: 50, windowMs: 30_000 },
      ]
      const store = redisStore(algorithm, limits, clock)
      await store.consume('ttl', 2)
      const ttl = await server.admin.pttl(store.keyOf('ttl'))
      // A fixed window's state lasts until its longest window ends, a sliding window's counts until
      // the window after this one ends, a bucket's until it is full.
      const expected = {
        'fixed-window': 30_000,
        'sliding-window': 2 * 30_000 - (7_000_000 % 30_000),
        'token-bucket': Math.ceil((2 * 30_000) / 50),
      }[algorithm]
      expect(ttl).toBeGreaterThan(expected - 1000)
      expect(ttl).toBeLessThanOrEqual(expected)
      // A refused request writes nothing, and a cost of 0 (get) writes nothing either.
      const before = await server.admin.hgetall(store.keyOf('ttl'))
      await store.consume('ttl', 5)
      await store.get('ttl')
      expect(await server.admin.hgetall(store.keyOf('ttl'))).toEqual(before)
      await store.get('unknown')
      expect(await server.admin.exists(store.keyOf('unknown'))).toBe(0)
    })

    it('loads its script again after SCRIPT FLUSH, and decides on', async () => {
      const clock = { now: 9_000_000 }
      const store = redisStore(algorithm, [{ max: 2, windowMs: 60_000 }], clock)
      expect((await store.consume('flushed', 1)).allowed).toBe(true)
      await server.admin.script('FLUSH')
      expect(await store.consume('flushed', 1)).toMatchObject({ allowed: true, limits: [{ remaining: 0 }] })
      expect((await store.consume('flushed', 1)).allowed).toBe(false)
    })
  })
})
