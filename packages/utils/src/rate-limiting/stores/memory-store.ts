// The in-memory store: express-rate-limit's fixed window per client, in a fraction of MemoryStore's memory.
import type { ClientRateLimitInfo, IncrementResponse, Options, Store } from 'express-rate-limit'

import type { LimiterStats, StoreKind } from '../observability/stats.js'
import { OperatorBlocks } from './operator-blocks.js'
import { BLOCKED_HITS } from './scripts.js'

/** Slots a fresh generation starts with; it doubles as clients arrive. */
const FIRST_CAPACITY = 1024

/**
 * The clients seen in one rotation period. A client is a Map entry from its key to a slot number
 * (a small integer, stored unboxed), and two doubles in `cells`: its reset time and its hits.
 * express-rate-limit's MemoryStore keeps an object and a Date per client instead, about three
 * times the heap, and a million of them leave the process holding about twice the RSS.
 */
class Generation {
  readonly slots = new Map<string, number>()
  /** Slot `s` holds the reset time (ms since the epoch) at `2s` and the hits at `2s + 1`. */
  cells = new Float64Array(FIRST_CAPACITY * 2)
  #used = 0
  /** Slots given back by resetKey, reused before new ones. */
  readonly #free: number[] = []

  /** Adds `key` with the given reset time and hits, and returns its slot. */
  add(key: string, resetMs: number, hits: number): number {
    let slot = this.#free.pop()
    if (slot === undefined) {
      slot = this.#used++
      if (2 * slot >= this.cells.length) {
        const grown = new Float64Array(this.cells.length * 2)
        grown.set(this.cells)
        this.cells = grown
      }
    }
    this.cells[2 * slot] = resetMs
    this.cells[2 * slot + 1] = hits
    this.slots.set(key, slot)
    return slot
  }

  /** Forgets `key`; its slot is reused. */
  delete(key: string): void {
    const slot = this.slots.get(key)
    if (slot === undefined) return
    this.slots.delete(key)
    this.#free.push(slot)
  }
}

/**
 * A fixed window per client, counted in this process: the window starts at the client's first hit
 * and lasts `windowMs`, as in express-rate-limit's MemoryStore and in rate-limit-redis. Clients are
 * kept in two generations: those seen in this rotation period, and those seen only in the one
 * before. Every `windowMs` the older generation is dropped whole, since all of its windows have
 * ended; a client that comes back moves to the current one. Memory is thus bounded by the clients
 * of two windows, and expiry costs nothing per request.
 *
 * `increment` answers synchronously, so a request pays for no promise; when `stats.observeStore`
 * is set, each increment is timed for the store latency metric.
 */
export class CompactMemoryStore implements Store {
  readonly localKeys = true
  #windowMs = 60_000
  #current = new Generation()
  #previous = new Generation()
  #rotation: NodeJS.Timeout | undefined

  constructor(
    private readonly stats?: LimiterStats,
    private readonly kind: StoreKind = 'memory',
  ) {}

  init(options: Options): void {
    this.#windowMs = options.windowMs
    clearInterval(this.#rotation)
    this.#rotation = setInterval(() => this.#rotate(), this.#windowMs)
    this.#rotation.unref()
  }

  /** A promise, as from MemoryStore: getKey's callers may chain on it. */
  get(key: string): Promise<ClientRateLimitInfo | undefined> {
    return Promise.resolve(this.#info(key))
  }

  increment(key: string): IncrementResponse {
    const observe = this.stats?.observeStore
    const start = observe === undefined ? 0 : performance.now()
    const now = Date.now()
    const until = this.#blocks.until(key, now)
    if (until > 0) return { totalHits: BLOCKED_HITS, resetTime: new Date(until) }
    const slot = this.#slotOf(key, now)
    const cells = this.#current.cells
    let resetMs = cells[2 * slot]!
    if (resetMs <= now) {
      resetMs = now + this.#windowMs
      cells[2 * slot] = resetMs
      cells[2 * slot + 1] = 0
    }
    const totalHits = cells[2 * slot + 1]! + 1
    cells[2 * slot + 1] = totalHits
    if (observe !== undefined) observe((performance.now() - start) / 1000, this.kind)
    return { totalHits, resetTime: new Date(resetMs) }
  }

  decrement(key: string): void {
    const slot = this.#slotOf(key, Date.now())
    const cells = this.#current.cells
    const hits = cells[2 * slot + 1]!
    if (hits > 0) cells[2 * slot + 1] = hits - 1
  }

  resetKey(key: string): void {
    this.#current.delete(key)
    this.#previous.delete(key)
    this.#blocks.delete(key)
  }

  resetAll(): void {
    this.#current = new Generation()
    this.#previous = new Generation()
    this.#blocks.clear()
  }

  /**
   * An operator's penalty (`n` > 0: as many hits, opening a window if none is open) or reward
   * (`n` < 0: hits taken back, never below 0, and no window opened).
   */
  add(key: string, n: number): void {
    // Nothing to take back from a client with no window open: create nothing.
    if (n < 0 && this.#info(key) === undefined) return
    const now = Date.now()
    const slot = this.#slotOf(key, now)
    const cells = this.#current.cells
    if (cells[2 * slot]! <= now) {
      if (n < 0) return
      cells[2 * slot] = now + this.#windowMs
      cells[2 * slot + 1] = 0
    }
    cells[2 * slot + 1] = Math.max(0, cells[2 * slot + 1]! + n)
  }

  /**
   * Refuses every request of `key` until `untilMs` (an operator's block). Kept apart from the
   * windows, since a block may outlast the two generations; its count starts afresh after it.
   */
  block(key: string, untilMs: number): void {
    this.#current.delete(key)
    this.#previous.delete(key)
    this.#blocks.set(key, untilMs)
  }

  readonly #blocks = new OperatorBlocks()

  shutdown(): void {
    clearInterval(this.#rotation)
    this.#rotation = undefined
    this.resetAll()
  }

  /** How many clients the store holds (both generations). */
  get size(): number {
    return this.#current.slots.size + this.#previous.slots.size
  }

  /** Slots the current generation has room for: it grows by doubling, and reuses freed ones. */
  get capacity(): number {
    return this.#current.cells.length / 2
  }

  /** The slot of `key` in the current generation: found, moved from the previous one, or new. */
  #slotOf(key: string, now: number): number {
    const slot = this.#current.slots.get(key)
    if (slot !== undefined) return slot
    const previous = this.#previous
    const old = previous.slots.get(key)
    if (old === undefined) return this.#current.add(key, now + this.#windowMs, 0)
    const moved = this.#current.add(key, previous.cells[2 * old]!, previous.cells[2 * old + 1]!)
    // Not delete(): the old generation never adds again, so its slot need not be reused.
    previous.slots.delete(key)
    return moved
  }

  #info(key: string): ClientRateLimitInfo | undefined {
    const until = this.#blocks.until(key, Date.now())
    if (until > 0) return { totalHits: BLOCKED_HITS, resetTime: new Date(until) }
    const generation = this.#current.slots.has(key) ? this.#current : this.#previous
    const slot = generation.slots.get(key)
    if (slot === undefined) return undefined
    const resetMs = generation.cells[2 * slot]!
    if (resetMs <= Date.now()) return undefined
    return { totalHits: generation.cells[2 * slot + 1]!, resetTime: new Date(resetMs) }
  }

  #rotate(): void {
    this.#previous = this.#current
    this.#current = new Generation()
  }
}
