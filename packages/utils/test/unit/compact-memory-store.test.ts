// The compact in-memory store answers exactly as express-rate-limit's MemoryStore, in less memory.
import { MemoryStore, type Options } from 'express-rate-limit'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { LimiterStats } from '#src/observability/stats.js'
import { CompactMemoryStore } from '#src/stores/memory-store.js'
import { seededRandom } from '#test/support/random.js'

const WINDOW_MS = 1_000
const options = { windowMs: WINDOW_MS } as Options

/** A store's answer as plain values, so the two stores compare with toEqual. */
const plain = (info: { totalHits: number; resetTime?: Date | undefined } | undefined) =>
  info === undefined ? undefined : { totalHits: info.totalHits, resetMs: info.resetTime?.getTime() }

describe('CompactMemoryStore', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date', 'setInterval', 'clearInterval'], now: 1_700_000_000_000 })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it.each([1, 2, 3, 4, 5, 6, 7, 8])(
    'answers increment, decrement, get and resetKey as MemoryStore does, over rotations (seed %i)',
    async (seed) => {
      const next = seededRandom(seed)
      const ours = new CompactMemoryStore()
      const theirs = new MemoryStore()
      ours.init(options)
      theirs.init(options)
      const keys = ['a', 'b', 'c', 'd', 'e', 'f']
      const steps: string[] = []
      // The steps before a mismatch, to replay it.
      const trail = () => steps.slice(-30).join(', ')
      for (let step = 0; step < 3_000; step++) {
        const key = keys[Math.floor(next() * keys.length)]!
        const roll = next()
        if (roll < 0.55) {
          steps.push(`increment ${key}`)
          expect(plain(ours.increment(key)), trail()).toEqual(plain(await theirs.increment(key)))
        } else if (roll < 0.65) {
          steps.push(`decrement ${key}`)
          ours.decrement(key)
          await theirs.decrement(key)
        } else if (roll < 0.7) {
          steps.push(`resetKey ${key}`)
          ours.resetKey(key)
          await theirs.resetKey(key)
        } else if (roll < 0.72) {
          steps.push('resetAll')
          ours.resetAll()
          await theirs.resetAll()
        } else {
          // Time moves on by up to a window; rotations happen on the way, in both stores.
          const ms = Math.floor(next() * WINDOW_MS * 0.6)
          steps.push(`wait ${ms}`)
          vi.advanceTimersByTime(ms)
        }
        for (const k of keys) expect(plain(await ours.get(k)), trail()).toEqual(plain(await theirs.get(k)))
      }
      ours.shutdown()
      theirs.shutdown()
    },
  )

  // More clients than a generation's first 1,024 slots: the cells grow, and every count survives it.
  it.each([11, 12])('answers as MemoryStore does across growth, with thousands of clients (seed %i)', async (seed) => {
    const next = seededRandom(seed)
    const ours = new CompactMemoryStore()
    const theirs = new MemoryStore()
    ours.init(options)
    theirs.init(options)
    const clients = 5_000
    for (let step = 0; step < 40_000; step++) {
      const key = `client-${Math.floor(next() * clients)}`
      if (next() < 0.002) vi.advanceTimersByTime(Math.floor(next() * WINDOW_MS * 0.5))
      expect(plain(ours.increment(key)), `step ${step}, ${key}`).toEqual(plain(await theirs.increment(key)))
    }
    for (let n = 0; n < clients; n++) {
      expect(plain(await ours.get(`client-${n}`))).toEqual(plain(await theirs.get(`client-${n}`)))
    }
    expect(ours.capacity).toBeGreaterThan(1_024)
    ours.shutdown()
    theirs.shutdown()
  })

  it('counts a client in a window that starts at its first hit and lasts windowMs', () => {
    const store = new CompactMemoryStore()
    store.init(options)
    const start = Date.now()
    expect(plain(store.increment('k'))).toEqual({ totalHits: 1, resetMs: start + WINDOW_MS })
    vi.advanceTimersByTime(WINDOW_MS - 1)
    expect(plain(store.increment('k'))).toEqual({ totalHits: 2, resetMs: start + WINDOW_MS })
    vi.advanceTimersByTime(1)
    expect(plain(store.increment('k'))).toEqual({ totalHits: 1, resetMs: start + 2 * WINDOW_MS })
    store.shutdown()
  })

  it('drops clients that have not come back within two windows, so memory stays bounded', () => {
    const store = new CompactMemoryStore()
    store.init(options)
    for (let n = 0; n < 5_000; n++) store.increment(`client-${n}`)
    expect(store.size).toBe(5_000)
    vi.advanceTimersByTime(WINDOW_MS)
    store.increment('client-0')
    expect(store.size).toBe(5_000)
    vi.advanceTimersByTime(WINDOW_MS)
    expect(store.size).toBe(1)
    vi.advanceTimersByTime(WINDOW_MS)
    expect(store.size).toBe(0)
    store.shutdown()
  })

  it('reuses the slot of a reset key rather than growing', async () => {
    const store = new CompactMemoryStore()
    store.init(options)
    store.increment('stays')
    for (let n = 0; n < 10_000; n++) {
      store.increment('churn')
      store.resetKey('churn')
    }
    expect(store.size).toBe(1)
    expect(store.capacity).toBe(1_024)
    expect(plain(await store.get('stays'))).toMatchObject({ totalHits: 1 })
    expect(store.increment('churn').totalHits).toBe(1)
    store.shutdown()
  })

  it('times each increment for the store metric, under its kind, while metrics are on', () => {
    const stats = new LimiterStats()
    const store = new CompactMemoryStore(stats, 'fallback')
    store.init(options)
    store.increment('before-metrics')
    const seen: [number, string][] = []
    stats.observeStore = (seconds, kind) => seen.push([seconds, kind])
    store.increment('k')
    store.increment('k')
    expect(seen.map(([, kind]) => kind)).toEqual(['fallback', 'fallback'])
    for (const [seconds] of seen) expect(seconds).toBeGreaterThanOrEqual(0)
    store.shutdown()
  })

  it('stops rotating once shut down', () => {
    const store = new CompactMemoryStore()
    store.init(options)
    store.increment('k')
    store.shutdown()
    expect(store.size).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
  })
})
