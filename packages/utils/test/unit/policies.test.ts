// The sliding window and the token bucket in this process: their semantics on worked examples, their
// limits and costs checked, and random traffic decided as the reference models decide it.
import fc from 'fast-check'
import { afterEach, describe, expect, it, vi } from 'vitest'

import { ERROR_CODES } from '#src/errors.js'
import type { PolicyAlgorithm } from '#src/policies/algorithms.js'
import { checkCost, checkLimits, type Limit } from '#src/policies/limits.js'
import { MemoryPolicyStore } from '#src/policies/memory-policy-store.js'
import { CompactMemoryStore } from '#src/stores/memory-store.js'
import { REFERENCES, traffic, type ReferenceModel } from '#test/support/policy-reference.js'

const stores: MemoryPolicyStore[] = []
afterEach(() => {
  for (const store of stores.splice(0)) store.shutdown()
})

/** A store on a clock the test moves, starting at `start` ms. */
function storeOf(algorithm: PolicyAlgorithm, limits: Limit[], start = 1_000_000) {
  const clock = { now: start }
  const store = new MemoryPolicyStore(algorithm, checkLimits(limits), () => clock.now)
  stores.push(store)
  return { store, clock }
}

/** How many of `n` requests of `cost` for `key` pass at the store's present time. */
function passed(store: MemoryPolicyStore, n: number, key = 'client', cost = 1): number {
  let count = 0
  for (let i = 0; i < n; i++) if (store.consume(key, cost).allowed) count++
  return count
}

describe('the edge of a window', () => {
  it('lets a fixed window pass twice its max across the edge', () => {
    const store = new CompactMemoryStore()
    store.init({ windowMs: 1000 } as never)
    const realNow = Date.now
    let now = 1_000_000
    Date.now = () => now
    try {
      store.increment('client')
      now += 999
      let passes = 1
      for (let i = 0; i < 19; i++) if ((store.increment('client') as { totalHits: number }).totalHits <= 10) passes++
      now += 1
      for (let i = 0; i < 10; i++) if ((store.increment('client') as { totalHits: number }).totalHits <= 10) passes++
      expect(passes).toBe(20)
    } finally {
      Date.now = realNow
      store.shutdown()
    }
  })

  it.each(['sliding-window', 'token-bucket'] as const)('lets %s pass no more than max across the edge', (algorithm) => {
    const { store, clock } = storeOf(algorithm, [{ max: 10, windowMs: 1000 }], 1_000_000)
    clock.now += 999
    expect(passed(store, 20)).toBe(10)
    clock.now += 1
    expect(passed(store, 10)).toBe(0)
  })
})

describe('sliding-window', () => {
  it('weights the previous window by how much of it still overlaps', () => {
    // Aligned windows of 1000 ms: 10 spent in [1_000_000, 1_001_000).
    const { store, clock } = storeOf('sliding-window', [{ max: 10, windowMs: 1000 }], 1_000_000)
    expect(passed(store, 10)).toBe(10)
    // 250 ms into the next window the previous one weighs 0.75: 7.5 of 10 used, 2 more fit.
    clock.now = 1_001_250
    expect(passed(store, 5)).toBe(2)
    const refused = store.consume('client', 1)
    // 7.5 + 2 = 9.5: one more fits once the weight is down to 0.7, at 300 ms.
    expect(refused).toMatchObject({ allowed: false, retryMs: 50 })
    clock.now += 49
    expect(store.consume('client', 1).allowed).toBe(false)
    clock.now += 1
    expect(store.consume('client', 1).allowed).toBe(true)
  })

  it('spends nothing on a refused request, so a client that keeps asking is not locked out', () => {
    const { store, clock } = storeOf('sliding-window', [{ max: 5, windowMs: 1000 }], 1_000_000)
    expect(passed(store, 5)).toBe(5)
    for (let t = 0; t < 1000; t += 10) {
      clock.now += 10
      store.consume('client', 1)
    }
    // Two windows on, nothing of the first weighs, and the hammering counted for nothing.
    clock.now = 1_002_000
    expect(passed(store, 5)).toBe(5)
  })
})

describe('token-bucket', () => {
  it('refills one unit every windowMs / max', () => {
    const { store, clock } = storeOf('token-bucket', [{ max: 10, windowMs: 1000 }])
    expect(passed(store, 10)).toBe(10)
    expect(store.consume('client', 1)).toMatchObject({ allowed: false, retryMs: 100 })
    clock.now += 99
    expect(store.consume('client', 1)).toMatchObject({ allowed: false, retryMs: 1 })
    clock.now += 1
    expect(store.consume('client', 1).allowed).toBe(true)
    expect(store.consume('client', 1).allowed).toBe(false)
  })

  it('keeps exact time when a unit takes a fraction of a ms', () => {
    // 3 per 1000 ms: a unit every 333⅓ ms, so three units take exactly 1000 ms to come back.
    const { store, clock } = storeOf('token-bucket', [{ max: 3, windowMs: 1000 }])
    expect(passed(store, 3)).toBe(3)
    const refused = store.consume('client', 3)
    expect(refused).toMatchObject({ allowed: false, retryMs: 1000 })
    expect(refused.limits[0]).toMatchObject({ remaining: 0, resetMs: 1000 })
    clock.now += 999
    expect(store.consume('client', 3).allowed).toBe(false)
    clock.now += 1
    expect(store.consume('client', 3)).toMatchObject({ allowed: true })
  })
})

describe.each(['fixed-window', 'sliding-window', 'token-bucket'] as const)(
  '%s with several limits and a cost',
  (algorithm) => {
    const limits = [
      { name: 'burst', max: 2, windowMs: 1000 },
      { name: 'hourly', max: 3, windowMs: 3_600_000 },
    ]

    it('spends every limit when all allow, and none when one refuses', () => {
      const { store, clock } = storeOf(algorithm, limits, 3_600_000_000)
      expect(passed(store, 2)).toBe(2)
      const refused = store.consume('client', 1)
      expect(refused.allowed).toBe(false)
      // The burst limit refused: the hourly one spent nothing on it.
      expect(refused.limits.map((limit) => [limit.name, limit.remaining])).toEqual([
        ['burst', 0],
        ['hourly', 1],
      ])
      clock.now += 2000
      expect(store.consume('client', 1).allowed).toBe(true)
      clock.now += 2000
      const hourly = store.consume('client', 1)
      expect(hourly.allowed).toBe(false)
      expect(hourly.limits.map((limit) => [limit.name, limit.remaining])).toEqual([
        ['burst', 2],
        ['hourly', 0],
      ])
    })

    it('spends the cost of a request from every limit', () => {
      const { store } = storeOf(algorithm, [{ max: 10, windowMs: 60_000 }])
      expect(passed(store, 4, 'client', 3)).toBe(3)
      expect(store.consume('client', 1)).toMatchObject({ allowed: true, limits: [{ remaining: 0 }] })
    })

    it('tells where a client stands without spending', () => {
      const { store } = storeOf(algorithm, limits)
      store.consume('client', 1)
      expect(store.get('client').limits.map((limit) => limit.remaining)).toEqual([1, 2])
      expect(store.get('client').limits.map((limit) => limit.remaining)).toEqual([1, 2])
      expect(store.get('stranger').limits.map((limit) => limit.remaining)).toEqual([2, 3])
    })
  },
)

describe('MemoryPolicyStore', () => {
  it('keeps a client for two of its longest windows after it was last seen, and forgets it by three', () => {
    vi.useFakeTimers()
    try {
      const { store, clock } = storeOf('sliding-window', [
        { max: 5, windowMs: 100 },
        { max: 9, windowMs: 1000 },
      ])
      store.consume('client', 4)
      clock.now += 1999
      vi.advanceTimersByTime(1999)
      // Its count of the window before still weighs: 4 × (1000 − 999) / 1000 of 9 units.
      expect(store.size).toBe(1)
      expect(store.get('client').limits[1]).toMatchObject({ remaining: 8 })
      vi.advanceTimersByTime(1001)
      expect(store.size).toBe(0)
    } finally {
      vi.useRealTimers()
    }
  })
})

describe('checkLimits and checkCost', () => {
  it.each([
    [[], 'limits must be a list of 1 to 8 limits, got 0 entries'],
    [{ max: 5, windowMs: 1000 }, 'limits must be a list of 1 to 8 limits, got an object'],
    [[{ max: 0, windowMs: 1000 }], 'limits[0].max must be a positive integer, got 0'],
    [[{ max: 5, windowMs: 1.5 }], 'limits[0].windowMs must be an integer of ms from 1 to 2147483647, got 1.5'],
    [[{ max: 2 ** 40, windowMs: 2 ** 20 }], 'limits[0]: 2 × max × windowMs must be at most 9007199254740991'],
    [[{ name: 'a:b', max: 5, windowMs: 1000 }], 'limits[0].name must be 1-32 of A-Z a-z 0-9 _ . -, got "a:b"'],
    [
      [
        { name: 'x', max: 5, windowMs: 1000 },
        { name: 'x', max: 9, windowMs: 9000 },
      ],
      'limits[1].name "x" is already the name of another limit',
    ],
  ])('refuses %j: %s', (limits, message) => {
    expect(() => checkLimits(limits as Limit[])).toThrow(expect.objectContaining({ code: ERROR_CODES.INVALID_OPTION }))
    expect(() => checkLimits(limits as Limit[])).toThrow(message)
  })

  it.each([
    [0, 'cost must be a positive safe integer, got 0'],
    [1.5, 'cost must be a positive safe integer, got 1.5'],
    ['2', 'cost must be a positive safe integer, got "2"'],
    [11, 'cost 11 is more than limit "small" can ever allow (max 10)'],
  ])('refuses a cost of %j', (cost, message) => {
    const limits = checkLimits([
      { name: 'small', max: 10, windowMs: 1000 },
      { name: 'large', max: 100, windowMs: 60_000 },
    ])
    expect(() => checkCost(cost, limits)).toThrow(expect.objectContaining({ code: ERROR_CODES.INVALID_COST, message }))
  })
})

describe.each(['fixed-window', 'sliding-window', 'token-bucket'] as const)(
  '%s against its reference model',
  (algorithm) => {
    it('decides random traffic as the model does, limit by limit', () => {
      fc.assert(
        fc.property(traffic, ({ limits, start, steps }) => {
          const { store, clock } = storeOf(algorithm, limits, start)
          const reference: ReferenceModel = REFERENCES[algorithm](checkLimits(limits))
          for (const { dt, client, cost } of steps) {
            clock.now += dt
            expect(store.consume(client, cost)).toEqual(reference.decide(client, clock.now, cost))
          }
          store.shutdown()
        }),
        { numRuns: 300 },
      )
    })
  },
)
