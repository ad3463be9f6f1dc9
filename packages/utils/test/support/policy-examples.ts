// The algorithms' worked examples, on any policy store driven by the test's clock: the edge of a
// window (a fixed window lets 2x through, the others do not), the sliding window's weight, a
// bucket's refill to the fraction of a ms, several limits spent all or nothing, a cost, and where a
// client stands without spending. Run on the memory store (unit), ioredis-mock (unit) and a real
// redis-server (integration).
import { describe, expect, it } from 'vitest'

import type { PolicyAlgorithm } from '#src/policies/algorithms.js'
import type { Limit, PolicyDecision } from '#src/policies/limits.js'

import { ALGORITHMS } from './policy-store-contract.js'

/** A policy store as the examples use it: its answers as promises, whatever the store. */
export interface ExampleStore {
  consume(key: string, cost: number): Promise<PolicyDecision> | PolicyDecision
  get(key: string): Promise<PolicyDecision> | PolicyDecision
}

/** Makes a store of `algorithm` with `limits`, deciding by `clock.now`. */
export type ExampleStoreMaker = (algorithm: PolicyAlgorithm, limits: Limit[], clock: { now: number }) => ExampleStore

export function describePolicyExamples(name: string, make: ExampleStoreMaker): void {
  /** A store on a clock the test moves, starting at `start` ms. */
  const storeOf = (algorithm: PolicyAlgorithm, limits: Limit[], start = 1_000_000) => {
    const clock = { now: start }
    return { store: make(algorithm, limits, clock), clock }
  }
  /** How many of `n` requests of `cost` for `key` pass at the store's present time. */
  const passed = async (store: ExampleStore, n: number, key = 'client', cost = 1) => {
    let count = 0
    for (let i = 0; i < n; i++) if ((await store.consume(key, cost)).allowed) count++
    return count
  }

  describe(`policy examples on ${name}`, () => {
    describe('the edge of a window', () => {
      it('lets a fixed window pass twice its max across the edge', async () => {
        const { store, clock } = storeOf('fixed-window', [{ max: 10, windowMs: 1000 }])
        expect(await passed(store, 1)).toBe(1)
        clock.now += 999
        expect(await passed(store, 19)).toBe(9)
        clock.now += 1
        expect(await passed(store, 10)).toBe(10)
      })

      it.each(['sliding-window', 'token-bucket'] as const)(
        'lets %s pass no more than max across it',
        async (algorithm) => {
          const { store, clock } = storeOf(algorithm, [{ max: 10, windowMs: 1000 }])
          clock.now += 999
          expect(await passed(store, 20)).toBe(10)
          clock.now += 1
          expect(await passed(store, 10)).toBe(0)
        },
      )
    })

    describe('sliding-window', () => {
      it('weights the previous window by how much of it still overlaps', async () => {
        // Aligned windows of 1000 ms: 10 spent in [1_000_000, 1_001_000).
        const { store, clock } = storeOf('sliding-window', [{ max: 10, windowMs: 1000 }])
        expect(await passed(store, 10)).toBe(10)
        // 250 ms into the next window the previous one weighs 0.75: 7.5 of 10 used, 2 more fit.
        clock.now = 1_001_250
        expect(await passed(store, 5)).toBe(2)
        // 7.5 + 2 = 9.5: one more fits once the weight is down to 0.7, at 300 ms.
        expect(await store.consume('client', 1)).toMatchObject({ allowed: false, retryMs: 50 })
        clock.now += 49
        expect((await store.consume('client', 1)).allowed).toBe(false)
        clock.now += 1
        expect((await store.consume('client', 1)).allowed).toBe(true)
      })

      it('spends nothing on a refused request, so a client that keeps asking is not locked out', async () => {
        const { store, clock } = storeOf('sliding-window', [{ max: 5, windowMs: 1000 }])
        expect(await passed(store, 5)).toBe(5)
        for (let t = 0; t < 1000; t += 10) {
          clock.now += 10
          await store.consume('client', 1)
        }
        // Two windows on, nothing of the first weighs, and the hammering counted for nothing.
        clock.now = 1_002_000
        expect(await passed(store, 5)).toBe(5)
      })
    })

    describe('token-bucket', () => {
      it('refills one unit every windowMs / max', async () => {
        const { store, clock } = storeOf('token-bucket', [{ max: 10, windowMs: 1000 }])
        expect(await passed(store, 10)).toBe(10)
        expect(await store.consume('client', 1)).toMatchObject({ allowed: false, retryMs: 100 })
        clock.now += 99
        expect(await store.consume('client', 1)).toMatchObject({ allowed: false, retryMs: 1 })
        clock.now += 1
        expect((await store.consume('client', 1)).allowed).toBe(true)
        expect((await store.consume('client', 1)).allowed).toBe(false)
      })

      it('keeps exact time when a unit takes a fraction of a ms', async () => {
        // 3 per 1000 ms: a unit every 333⅓ ms, so three units take exactly 1000 ms to come back.
        const { store, clock } = storeOf('token-bucket', [{ max: 3, windowMs: 1000 }])
        expect(await passed(store, 3)).toBe(3)
        const refused = await store.consume('client', 3)
        expect(refused).toMatchObject({ allowed: false, retryMs: 1000 })
        expect(refused.limits[0]).toMatchObject({ remaining: 0, resetMs: 1000 })
        clock.now += 999
        expect((await store.consume('client', 3)).allowed).toBe(false)
        clock.now += 1
        expect(await store.consume('client', 3)).toMatchObject({ allowed: true })
      })
    })

    describe.each(ALGORITHMS)('%s with several limits and a cost', (algorithm) => {
      const limits = [
        { name: 'burst', max: 2, windowMs: 1000 },
        { name: 'hourly', max: 3, windowMs: 3_600_000 },
      ]

      it('spends every limit when all allow, and none when one refuses', async () => {
        const { store, clock } = storeOf(algorithm, limits, 3_600_000_000)
        expect(await passed(store, 2)).toBe(2)
        const refused = await store.consume('client', 1)
        expect(refused.allowed).toBe(false)
        // The burst limit refused: the hourly one spent nothing on it.
        expect(refused.limits.map((limit) => [limit.name, limit.remaining])).toEqual([
          ['burst', 0],
          ['hourly', 1],
        ])
        clock.now += 2000
        expect((await store.consume('client', 1)).allowed).toBe(true)
        clock.now += 2000
        const hourly = await store.consume('client', 1)
        expect(hourly.allowed).toBe(false)
        expect(hourly.limits.map((limit) => [limit.name, limit.remaining])).toEqual([
          ['burst', 2],
          ['hourly', 0],
        ])
      })

      it('spends the cost of a request from every limit', async () => {
        const { store } = storeOf(algorithm, [{ max: 10, windowMs: 60_000 }])
        expect(await passed(store, 4, 'client', 3)).toBe(3)
        expect(await store.consume('client', 1)).toMatchObject({ allowed: true, limits: [{ remaining: 0 }] })
      })

      it('tells where a client stands without spending', async () => {
        const { store } = storeOf(algorithm, limits)
        await store.consume('client', 1)
        expect((await store.get('client')).limits.map((limit) => limit.remaining)).toEqual([1, 2])
        expect((await store.get('client')).limits.map((limit) => limit.remaining)).toEqual([1, 2])
        expect((await store.get('stranger')).limits.map((limit) => limit.remaining)).toEqual([2, 3])
      })
    })
  })
}
