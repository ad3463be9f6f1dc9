// The circuit breaker on its own: fake timers, a probe that fails until told otherwise.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { CircuitBreaker } from '#src/resilience/circuit-breaker.js'
import { fallbackMax } from '#src/resilience/degraded.js'
import { recordingLogger } from '#test/support/logger.js'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

function newBreaker() {
  const logger = recordingLogger()
  let redisBack = false
  let probes = 0
  const breaker = new CircuitBreaker({
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
  return { breaker, logger, back: () => (redisBack = true), probes: () => probes }
}

describe('CircuitBreaker', () => {
  it('opens on the first failure and logs that once, however many failures follow', () => {
    const { breaker, logger } = newBreaker()
    expect(breaker.healthy).toBe(true)
    breaker.failure(new Error('connect ECONNREFUSED'))
    breaker.failure(new Error('again'))
    expect(breaker.healthy).toBe(false)
    expect(logger.messages()).toEqual([
      '[RateLimit] svc: Redis unavailable (connect ECONNREFUSED)',
      '[RateLimit] svc: fallback on: test',
    ])
  })

  it('probes every 250 ms while open and closes on the first probe that succeeds', async () => {
    const { breaker, logger, back, probes } = newBreaker()
    breaker.failure(new Error('down'))
    await vi.advanceTimersByTimeAsync(1000)
    expect(probes()).toBe(4)
    expect(breaker.healthy).toBe(false)
    back()
    await vi.advanceTimersByTimeAsync(250)
    expect(breaker.healthy).toBe(true)
    expect(logger.messages().at(-1)).toBe('[RateLimit] svc: Redis back after 1.3 s, shared limits restored')
    await vi.advanceTimersByTimeAsync(2000)
    expect(probes()).toBe(5)
  })

  it('reports since when it is in its state', async () => {
    const { breaker, back } = newBreaker()
    const opened = Date.now()
    breaker.failure(new Error('down'))
    expect(breaker.snapshot()).toEqual({ healthy: false, since: new Date(opened) })
    back()
    await vi.advanceTimersByTimeAsync(250)
    expect(breaker.snapshot().since.getTime()).toBe(opened + 250)
  })

  it('opens on timeouts only once they have kept coming for stallMs', () => {
    const { breaker } = newBreaker()
    const { generation } = breaker
    breaker.failure(new Error('slow'), { generation, timeout: true })
    vi.advanceTimersByTime(60)
    breaker.failure(new Error('slow'), { generation, timeout: true })
    expect(breaker.healthy).toBe(true)
    breaker.success(generation)
    vi.advanceTimersByTime(100)
    breaker.failure(new Error('slow'), { generation, timeout: true })
    expect(breaker.healthy).toBe(true)
    vi.advanceTimersByTime(90)
    breaker.failure(new Error('slow'), { generation, timeout: true })
    expect(breaker.healthy).toBe(false)
  })

  it('ignores a failure from a call that started before Redis came back', async () => {
    const { breaker, back, logger } = newBreaker()
    const before = breaker.generation
    breaker.failure(new Error('down'), { generation: before, timeout: false })
    back()
    await vi.advanceTimersByTimeAsync(250)
    expect(breaker.healthy).toBe(true)
    breaker.failure(new Error('late answer from the old connection'), { generation: before, timeout: false })
    expect(breaker.healthy).toBe(true)
    expect(logger.messages().filter((m) => m.includes('unavailable ('))).toHaveLength(1)
  })

  it('backs its probe off (up to 1 s) when Redis flaps, and says so', async () => {
    const { breaker, back, logger, probes } = newBreaker()
    back()
    for (let i = 0; i < 4; i++) {
      breaker.failure(new Error('flap'))
      await vi.advanceTimersByTimeAsync(1000)
      expect(breaker.healthy).toBe(true)
    }
    expect(probes()).toBe(4)
    expect(logger.messages().filter((m) => m.includes('is flapping'))).toEqual([
      '[RateLimit] svc: Redis is flapping; probing every 500 ms',
      '[RateLimit] svc: Redis is flapping; probing every 1000 ms',
      '[RateLimit] svc: Redis is flapping; probing every 1000 ms',
    ])
  })

  it('tells listeners about each transition, and a failure during a probe changes nothing twice', async () => {
    const { breaker, back } = newBreaker()
    const seen: boolean[] = []
    breaker.onChange((healthy) => seen.push(healthy))
    breaker.failure(new Error('down'))
    breaker.failure(new Error('down again'))
    back()
    await vi.advanceTimersByTimeAsync(250)
    expect(seen).toEqual([false, true])
  })

  it('says once per outage why a probe failed', async () => {
    const { breaker, logger } = newBreaker()
    breaker.failure(new Error('down'))
    await vi.advanceTimersByTimeAsync(2000)
    expect(logger.messages().filter((m) => m.includes('still unavailable'))).toEqual([
      '[RateLimit] svc: Redis still unavailable: ECONNREFUSED',
    ])
  })

  it('stops probing once disposed', async () => {
    const { breaker, probes } = newBreaker()
    breaker.failure(new Error('down'))
    breaker.dispose()
    await vi.advanceTimersByTimeAsync(5000)
    expect(probes()).toBe(0)
  })

  it('never redacts less than the rest of the library: passwords in errors stay hidden', () => {
    const { breaker, logger } = newBreaker()
    breaker.failure(new Error('cannot reach redis://:hunter2@host:6379'))
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
