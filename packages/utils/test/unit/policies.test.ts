// The algorithms in this process: their worked examples (policy-examples.ts), the default's memory
// store at a window's edge, their limits and costs checked, and random traffic decided as the
// reference models decide it.
import fc from 'fast-check'
import { afterEach, describe, expect, it, vi } from 'vitest'

import { ERROR_CODES } from '#src/errors.js'
import type { PolicyAlgorithm } from '#src/policies/algorithms.js'
import { checkCost, checkLimits, type Limit } from '#src/policies/limits.js'
import { MemoryPolicyStore } from '#src/policies/memory-policy-store.js'
import { CompactMemoryStore } from '#src/stores/memory-store.js'
import { describePolicyExamples } from '#test/support/policy-examples.js'
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

describe("the default's memory store at the edge of a window", () => {
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
})

describePolicyExamples('memory', (algorithm, limits, clock) => {
  const store = new MemoryPolicyStore(algorithm, checkLimits(limits), () => clock.now)
  stores.push(store)
  return store
})

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
