// The circuit breaker on its own: fake timers, a probe that fails until told otherwise.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { StoreHealth } from '../../src/rate-limiting/store-health.js'
import { fallbackMax } from '../../src/rate-limiting/backend.js'
import { recordingLogger } from '../support/logger.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

function breaker() {
  const logger = recordingLogger()
  let redisBack = false
  let probes = 0
  const health = new StoreHealth({
    name: 'svc',
    policy: 'fallback',
    degradedLine: 'fallback on: test',
    probeIntervalMs: 250,
    logger,
    probe: () => {
      probes++
      return redisBack ? Promise.resolve() : Promise.reject(new Error('ECONNREFUSED'))
    },
  })
  return { health, logger, back: () => (redisBack = true), probes: () => probes }
}

describe('StoreHealth', () => {
  it('opens on the first failure and logs that once, however many failures follow', () => {
    const { health, logger } = breaker()
    expect(health.healthy).toBe(true)
    health.failure(new Error('connect ECONNREFUSED'))
    health.failure(new Error('again'))
    expect(health.healthy).toBe(false)
    expect(logger.messages()).toEqual([
      '[RateLimit] svc: Redis unavailable (connect ECONNREFUSED)',
      '[RateLimit] svc: fallback on: test',
    ])
  })

  it('probes every 250 ms while open and closes on the first probe that succeeds', async () => {
    const { health, logger, back, probes } = breaker()
    health.failure(new Error('down'))
    await vi.advanceTimersByTimeAsync(1000)
    expect(probes()).toBe(4)
    expect(health.healthy).toBe(false)
    back()
    await vi.advanceTimersByTimeAsync(250)
    expect(health.healthy).toBe(true)
    expect(logger.messages().at(-1)).toBe('[RateLimit] svc: Redis back after 1.3 s, shared limits restored')
    await vi.advanceTimersByTimeAsync(2000)
    expect(probes()).toBe(5)
  })

  it('reports since when it is in its state', async () => {
    const { health, back } = breaker()
    const opened = Date.now()
    health.failure(new Error('down'))
    expect(health.snapshot()).toEqual({ healthy: false, since: new Date(opened) })
    back()
    await vi.advanceTimersByTimeAsync(250)
    expect(health.snapshot().since.getTime()).toBe(opened + 250)
  })

  it('stops probing once disposed', async () => {
    const { health, probes } = breaker()
    health.failure(new Error('down'))
    health.dispose()
    await vi.advanceTimersByTimeAsync(5000)
    expect(probes()).toBe(0)
  })

  it('never redacts less than the rest of the library: passwords in errors stay hidden', () => {
    const { health, logger } = breaker()
    health.failure(new Error('cannot reach redis://:hunter2@host:6379'))
    expect(logger.text()).not.toContain('hunter2')
  })
})

describe('fallbackMax', () => {
  it.each([
    [100, 1, 100],
    [100, 3, 33],
    [60, 4, 15],
    [5, 10, 1],
  ])('splits %i over %i instances as %i, never below 1', (max, instances, expected) => {
    expect(fallbackMax(max, instances)).toBe(expected)
  })
})
