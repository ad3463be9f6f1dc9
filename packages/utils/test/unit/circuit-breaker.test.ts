// The circuit breaker on its own: fake timers, a probe that fails until told otherwise.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { CircuitBreaker } from '#src/resilience/circuit-breaker.js'
import { fallbackMax } from '#src/redis/backend.js'
import { recordingLogger } from '#test/support/logger.js'

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
  const health = new CircuitBreaker({
    name: 'svc',
    degradedLine: 'fallback on: test',
    probeIntervalMs: 250,
    stallMs: 90,
    logger,
    probe: () => {
      probes++
      return redisBack ? Promise.resolve() : Promise.reject(new Error('ECONNREFUSED'))
    },
  })
  return { health, logger, back: () => (redisBack = true), probes: () => probes }
}

describe('CircuitBreaker', () => {
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

  it('opens on timeouts only once they have kept coming for stallMs', () => {
    const { health } = breaker()
    const { generation } = health
    health.failure(new Error('slow'), { generation, timeout: true })
    vi.advanceTimersByTime(60)
    health.failure(new Error('slow'), { generation, timeout: true })
    expect(health.healthy).toBe(true)
    health.success(generation)
    vi.advanceTimersByTime(100)
    health.failure(new Error('slow'), { generation, timeout: true })
    expect(health.healthy).toBe(true)
    vi.advanceTimersByTime(90)
    health.failure(new Error('slow'), { generation, timeout: true })
    expect(health.healthy).toBe(false)
  })

  it('ignores a failure from a call that started before Redis came back', async () => {
    const { health, back, logger } = breaker()
    const before = health.generation
    health.failure(new Error('down'), { generation: before, timeout: false })
    back()
    await vi.advanceTimersByTimeAsync(250)
    expect(health.healthy).toBe(true)
    health.failure(new Error('late answer from the old connection'), { generation: before, timeout: false })
    expect(health.healthy).toBe(true)
    expect(logger.messages().filter((m) => m.includes('unavailable ('))).toHaveLength(1)
  })

  it('backs its probe off (up to 1 s) when Redis flaps, and says so', async () => {
    const { health, back, logger, probes } = breaker()
    back()
    for (let i = 0; i < 4; i++) {
      health.failure(new Error('flap'))
      await vi.advanceTimersByTimeAsync(1000)
      expect(health.healthy).toBe(true)
    }
    expect(probes()).toBe(4)
    expect(logger.messages().filter((m) => m.includes('is flapping'))).toEqual([
      '[RateLimit] svc: Redis is flapping; probing every 500 ms',
      '[RateLimit] svc: Redis is flapping; probing every 1000 ms',
      '[RateLimit] svc: Redis is flapping; probing every 1000 ms',
    ])
  })

  it('tells listeners about each transition, and a failure during a probe changes nothing twice', async () => {
    const { health, back } = breaker()
    const seen: boolean[] = []
    health.onChange((healthy) => seen.push(healthy))
    health.failure(new Error('down'))
    health.failure(new Error('down again'))
    back()
    await vi.advanceTimersByTimeAsync(250)
    expect(seen).toEqual([false, true])
  })

  it('says once per outage why a probe failed', async () => {
    const { health, logger } = breaker()
    health.failure(new Error('down'))
    await vi.advanceTimersByTimeAsync(2000)
    expect(logger.messages().filter((m) => m.includes('still unavailable'))).toEqual([
      '[RateLimit] svc: Redis still unavailable: ECONNREFUSED',
    ])
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
