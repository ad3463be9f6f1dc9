// The guarded store's pending calls: every one is settled, on time, whatever a listener does.
import type { RedisStore } from 'rate-limit-redis'
import { afterEach, describe, expect, it } from 'vitest'

import { singleBreaker } from '../../src/rate-limiting/breakers.js'
import { LimiterStats } from '../../src/rate-limiting/stats.js'
import { StoreHealth } from '../../src/rate-limiting/store-health.js'
import {
  failEach,
  GuardedRedisStore,
  StoreTimeoutError,
  StoreUnavailableError,
  type PendingCall,
} from '../../src/rate-limiting/stores/guarded-store.js'
import type { RedisCommandClient } from '../../src/rate-limiting/types.js'
import { recordingLogger } from '../support/logger.js'

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

function guarded(timeoutMs: number, stallMs = 60_000) {
  const stats = new LimiterStats()
  const breakers = singleBreaker(
    () =>
      new StoreHealth({
        name: 'hung',
        degradedLine: 'test',
        stallMs,
        probe: () => new Promise(() => undefined),
        probeIntervalMs: 60_000,
        logger: recordingLogger(),
      }),
  )
  const store = new GuardedRedisStore(hungStore(), {} as RedisCommandClient, breakers, timeoutMs, stats)
  stores.push(store)
  return { store, stats, breakers }
}

describe('GuardedRedisStore', () => {
  it('times out every call of a burst, and the calls made after the first deadline too', async () => {
    const { store, stats } = guarded(20)
    const first = [store.increment('a'), store.increment('b'), store.increment('c')]
    await new Promise((resolve) => setTimeout(resolve, 10))
    const later = [store.increment('d'), store.increment('e')]
    const results = await Promise.allSettled([...first, ...later])
    for (const result of results) {
      expect(result.status).toBe('rejected')
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(StoreTimeoutError)
    }
    expect(stats.storeErrors.timeout).toBe(5)
  })

  it('fails the pending calls at once when the circuit opens', async () => {
    const { store, breakers } = guarded(60_000)
    const calls = [store.increment('a'), store.increment('b')]
    breakers.for().failure(new Error('connection lost'))
    for (const result of await Promise.allSettled(calls)) {
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(StoreUnavailableError)
    }
  })

  it('answers at once while the circuit is open', async () => {
    const { store, breakers } = guarded(60_000)
    breakers.for().failure(new Error('connection lost'))
    await expect(store.increment('a')).rejects.toThrow('Redis is unavailable (circuit open)')
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
