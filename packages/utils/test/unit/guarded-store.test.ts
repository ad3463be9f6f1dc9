// The guarded store's pending calls: every one is settled, on time, whatever a listener does; and its hot path.
import type { Options } from 'express-rate-limit'
import type { RedisStore } from 'rate-limit-redis'
import { afterEach, describe, expect, it, vi } from 'vitest'

import { singleBreaker } from '#src/resilience/breakers.js'
import { LimiterStats } from '#src/observability/stats.js'
import { CircuitBreaker } from '#src/resilience/circuit-breaker.js'
import { failEach, StoreTimeoutError, StoreUnavailableError, type PendingCall } from '#src/stores/deadlines.js'
import { GuardedRedisStore } from '#src/stores/guarded-store.js'
import { createRedisStore } from '#src/stores/redis-store.js'
import type { RedisCommandClient } from '#src/config/types.js'
import { recordingLogger } from '#test/support/logger.js'

/** A rate-limit-redis store whose calls never answer: Redis hung. */
function hungStore(): RedisStore {
  const never = () => new Promise<never>(() => undefined)
  return {
    prefix: 'hung:',
    prefixKey: (key: string) => `hung:${key}`,
    increment: never,
    get: never,
    resetKey: never,
    loadIncrementScript: never,
    loadGetScript: never,
  } as unknown as RedisStore
}

const stores: GuardedRedisStore[] = []
afterEach(() => {
  for (const store of stores.splice(0)) store.dispose()
})

/**
 * A client that loads scripts at once and answers EVALSHA with `reply` (never, by default: Redis
 * hung). A store made over it by createRedisStore takes the guard's hot path once loaded.
 */
function scriptedClient(reply: () => Promise<unknown> = () => new Promise<never>(() => undefined)) {
  const sent: string[][] = []
  const client = {
    call(command: string, ...args: string[]): Promise<unknown> {
      sent.push([command, ...args])
      return command === 'SCRIPT' ? Promise.resolve(`sha-of-${args[1]?.length}`) : reply()
    },
  }
  const typed: RedisCommandClient = client
  return { client: typed, sent }
}

function guarded(timeoutMs: number, stallMs = 60_000, inner: RedisStore = hungStore()) {
  const stats = new LimiterStats()
  const breakers = singleBreaker(
    () =>
      new CircuitBreaker({
        name: 'hung',
        degradedLine: 'test',
        stallMs,
        probe: () => new Promise(() => undefined),
        probeIntervalMs: 60_000,
        logger: recordingLogger(),
      }),
  )
  const store = new GuardedRedisStore(inner, {} as RedisCommandClient, breakers, timeoutMs, stats)
  stores.push(store)
  return { store, stats, breakers }
}

/** The guard over each of its two paths: rate-limit-redis's increment, and its own EVALSHA. */
const paths = [
  { path: "rate-limit-redis's increment", make: (timeoutMs: number) => Promise.resolve(guarded(timeoutMs)) },
  {
    path: 'the hot path',
    make: async (timeoutMs: number) => {
      const made = guarded(timeoutMs, 60_000, createRedisStore(scriptedClient().client, 'hot', 'read', timeoutMs))
      await made.store.init({ windowMs: 60_000 } as Options)
      return made
    },
  },
]

describe.each(paths)('GuardedRedisStore, through $path', ({ make: guarded }) => {
  it('times out every call of a burst, and the calls made after the first deadline too', async () => {
    const { store, stats } = await guarded(20)
    const first = [store.increment('a'), store.increment('b'), store.increment('c')]
    // d and e come on a later turn of the loop, while the burst still waits: deadlines of their own.
    await new Promise((resolve) => setImmediate(resolve))
    expect(stats.storeErrors.timeout).toBe(0)
    const later = [store.increment('d'), store.increment('e')]
    const results = await Promise.allSettled([...first, ...later])
    for (const result of results) {
      expect(result.status).toBe('rejected')
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(StoreTimeoutError)
    }
    expect(stats.storeErrors.timeout).toBe(5)
  })

  it('fails the pending calls at once when the circuit opens', async () => {
    const { store, breakers } = await guarded(60_000)
    const calls = [store.increment('a'), store.increment('b')]
    breakers.for().failure(new Error('connection lost'))
    for (const result of await Promise.allSettled(calls)) {
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(StoreUnavailableError)
    }
  })

  it('answers at once while the circuit is open', async () => {
    const { store, breakers } = await guarded(60_000)
    breakers.for().failure(new Error('connection lost'))
    await expect(store.increment('a')).rejects.toThrow('Redis is unavailable (circuit open)')
  })
})

describe("GuardedRedisStore's hot path", () => {
  async function loaded(reply: () => Promise<unknown>, windowMs = 60_000, timeoutMs = 1000) {
    const { client, sent } = scriptedClient(reply)
    const inner = createRedisStore(client, 'hot', 'read', timeoutMs)
    const made = guarded(timeoutMs, 60_000, inner)
    await made.store.init({ windowMs } as Options)
    const sha = await inner.incrementScriptSha
    sent.length = 0
    return { ...made, inner, sent, sha }
  }

  it("sends rate-limit-redis's own EVALSHA: its script, the prefixed key, the window of init", async () => {
    const { store, inner, sent, sha } = await loaded(() => Promise.resolve([1, 1234]), 1234)
    await store.increment('client')
    await inner.increment('client')
    expect(sent).toEqual([
      ['EVALSHA', sha, '1', 'hot:read:client', '1234'],
      ['EVALSHA', sha, '1', 'hot:read:client', '1234'],
    ])
  })

  it.each([
    [[3, 1500], 3],
    [['3', '1500'], 3],
    [[Buffer.from('4'), Buffer.from('200')], 4],
    [[false, 100], 0],
  ])(
    "sends rate-limit-redis's EVALSHA itself once the script is loaded, and reads %j as rate-limit-redis does",
    async (reply, hits) => {
      const { store, inner, sent } = await loaded(() => Promise.resolve(reply))
      const viaLibrary = vi.spyOn(inner, 'increment')
      const before = Date.now()
      const answer = await store.increment('client')
      const after = Date.now()
      expect(sent.map(([command]) => command)).toEqual(['EVALSHA'])
      expect(viaLibrary).not.toHaveBeenCalled()
      viaLibrary.mockRestore()
      const ttl = Number(reply[1]!.toString())
      expect(answer.totalHits).toBe(hits)
      expect(answer.resetTime!.getTime()).toBeGreaterThanOrEqual(before + ttl)
      expect(answer.resetTime!.getTime()).toBeLessThanOrEqual(after + ttl)
      // rate-limit-redis's own path gives the same answer to the same reply.
      const theirs = await inner.increment('client')
      expect(theirs.totalHits).toBe(hits)
      expect(Math.abs(theirs.resetTime!.getTime() - answer.resetTime!.getTime())).toBeLessThan(1000)
    },
  )

  it.each([
    ['a reply that is not an array', 'OK'],
    ['a reply of the wrong length', [1]],
  ])('fails on %s, with the error rate-limit-redis would give', async (_name, reply) => {
    const { store, inner, stats } = await loaded(() => Promise.resolve(reply))
    const theirs = await inner.increment('client').catch((error: unknown) => error as Error)
    const ours = await store.increment('client').catch((error: unknown) => error as StoreUnavailableError)
    expect(ours).toBeInstanceOf(StoreUnavailableError)
    expect((ours as StoreUnavailableError).cause).toEqual(theirs)
    expect(stats.storeErrors.error).toBe(1)
  })

  it('hands a NOSCRIPT to rate-limit-redis, which loads the script again and sends the call again', async () => {
    let flushed = true
    const { store, inner, sent } = await loaded(() => {
      if (!flushed) return Promise.resolve([1, 60_000])
      return Promise.reject(new Error('NOSCRIPT No matching script. Please use EVAL.'))
    })
    const viaLibrary = vi.spyOn(inner, 'increment')
    const load = vi.spyOn(inner, 'loadIncrementScript').mockImplementation(() => {
      flushed = false
      return Promise.resolve('sha-again')
    })
    expect((await store.increment('client')).totalHits).toBe(1)
    expect(viaLibrary).toHaveBeenCalledOnce()
    expect(load).toHaveBeenCalledOnce()
    // Ours, answered NOSCRIPT; then rate-limit-redis's, after the load: no round trip wasted.
    expect(sent.map(([command]) => command)).toEqual(['EVALSHA', 'EVALSHA'])
  })

  it('does not load the script for a call that has timed out meanwhile', async () => {
    let answer: ((error: Error) => void) | undefined
    const { store, inner } = await loaded(() => new Promise((_resolve, reject) => (answer = reject)), 60_000, 30)
    const viaLibrary = vi.spyOn(inner, 'increment')
    const load = vi.spyOn(inner, 'loadIncrementScript')
    const call = store.increment('client')
    await expect(call).rejects.toBeInstanceOf(StoreTimeoutError)
    answer!(new Error('NOSCRIPT No matching script. Please use EVAL.'))
    // Not a sleep: one turn of the event loop, after which the late answer's handlers have all run.
    await new Promise((resolve) => setImmediate(resolve))
    expect(viaLibrary).not.toHaveBeenCalled()
    expect(load).not.toHaveBeenCalled()
  })
})

describe('failEach', () => {
  // Regression: with one timer for all calls, a call whose failure threw (a logger of the
  // breaker's, say) left the calls after it pending for ever.
  it('fails every call even when failing one throws, then throws that error', () => {
    const failed: string[] = []
    const call = (name: string, throws = false): PendingCall =>
      ({
        deadline: 0,
        fail: () => {
          failed.push(name)
          if (throws) throw new Error(`${name} threw`)
        },
      }) as unknown as PendingCall
    expect(() => failEach([call('a', true), call('b', true), call('c')], () => new Error('late'))).toThrow('a threw')
    expect(failed).toEqual(['a', 'b', 'c'])
  })
})
