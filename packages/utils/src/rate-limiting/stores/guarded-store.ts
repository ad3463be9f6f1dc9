// The Redis store behind a timeout and the circuit breaker: it fails fast instead of waiting on Redis.
import type { ClientRateLimitInfo, IncrementResponse, Options, Store } from 'express-rate-limit'
import type { RedisStore } from 'rate-limit-redis'

import type { Breakers } from '../breakers.js'
import type { LimiterStats } from '../stats.js'
import type { StoreHealth } from '../store-health.js'
import type { RedisCommandClient } from '../types.js'
import { SAFE_DECREMENT_SCRIPT } from './scripts.js'

/** A store call was not made (breaker open) or did not succeed in time. The limiter then applies its policy. */
export class StoreUnavailableError extends Error {
  readonly code = 'ERR_RATE_LIMIT_STORE_UNAVAILABLE'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
  }
}

/** A store call that did not answer in time (as opposed to one that answered with an error). */
export class StoreTimeoutError extends StoreUnavailableError {}

/** A call waiting on Redis: the circuit it went through, how to fail it, and when it times out. */
export interface PendingCall {
  readonly health: StoreHealth
  readonly fail: (error: unknown) => void
  /** performance.now() past which the call has timed out. */
  readonly deadline: number
}

/**
 * Fails every call, even if failing one throws (a logger of the breaker's, say); then rethrows the
 * first such error. One bad listener must not leave the other calls waiting for ever.
 */
export function failEach(calls: readonly PendingCall[], error: () => Error): void {
  let thrown: { error: unknown } | undefined
  for (const call of calls) {
    try {
      call.fail(error())
    } catch (caught) {
      thrown ??= { error: caught }
    }
  }
  if (thrown !== undefined) throw thrown.error
}

/** Rejects with StoreTimeoutError when `promise` takes longer than `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    // setImmediate lets I/O that is already waiting run first: after an event-loop stall the reply
    // may be in the socket although the timer is due, and it should win.
    timer = setTimeout(
      () => setImmediate(() => reject(new StoreTimeoutError(`Redis did not answer within ${ms} ms`))),
      ms,
    )
  })
  // The losing promise may still reject later; that must not become an unhandled rejection.
  promise.catch(() => undefined)
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * rate-limit-redis's store, guarded. While the breaker is open every call fails at once; a call
 * that errors or outlives `timeoutMs` opens it. Decrement is our own script: rate-limit-redis's
 * plain DECR would create a key at -1, without a TTL, for a client whose window had expired.
 */
export class GuardedRedisStore implements Store {
  readonly localKeys = false
  readonly prefix: string
  #windowMs = 60_000
  /**
   * Calls waiting on Redis, oldest first. All share one timeout, so the oldest is the next to time
   * out, and one timer, set for it, watches them all.
   */
  readonly #pending = new Set<PendingCall>()
  #watch: NodeJS.Timeout | undefined
  readonly #unsubscribe: () => void

  constructor(
    private readonly inner: RedisStore,
    private readonly client: RedisCommandClient,
    private readonly breakers: Breakers,
    private readonly timeoutMs: number,
    private readonly stats: LimiterStats,
  ) {
    this.prefix = inner.prefix
    this.#unsubscribe = breakers.onEach((health, healthy) => {
      if (healthy) return
      const lost = [...this.#pending].filter((call) => call.health === health)
      failEach(lost, () => new StoreUnavailableError('Redis became unavailable'))
    })
  }

  /** Stops listening to the breaker. */
  dispose(): void {
    this.#unsubscribe()
  }

  /** Called by express-rate-limit without awaiting: a failure here only opens the breaker. */
  async init(options: Options): Promise<void> {
    this.#windowMs = options.windowMs
    this.inner.windowMs = options.windowMs
    if (!this.breakers.healthy) return
    // On a cluster a failed broadcast says nothing about any one master: the calls will tell.
    await this.reloadScripts(this.timeoutMs).catch((error: unknown) => {
      if (this.breakers.single) this.breakers.for().failure(error)
    })
  }

  /**
   * Loads the scripts again (after an outage, or a Redis restarted empty). rate-limit-redis keeps
   * the promise of its first SCRIPT LOAD; a rejected one would fail every later call.
   */
  async reloadScripts(timeoutMs: number): Promise<void> {
    this.inner.windowMs = this.#windowMs
    this.inner.incrementScriptSha = this.inner.loadIncrementScript()
    this.inner.getScriptSha = this.inner.loadGetScript()
    await withTimeout(Promise.all([this.inner.incrementScriptSha, this.inner.getScriptSha]), timeoutMs)
  }

  increment(key: string): Promise<IncrementResponse> {
    return this.#guard(key, () => this.inner.increment(key), true)
  }

  get(key: string): Promise<ClientRateLimitInfo | undefined> {
    return this.#guard(key, () => this.inner.get(key))
  }

  async decrement(key: string): Promise<void> {
    const redisKey = this.inner.prefixKey(key)
    await this.#guard(key, () => this.client.call('EVAL', SAFE_DECREMENT_SCRIPT, '1', redisKey))
  }

  async resetKey(key: string): Promise<void> {
    await this.#guard(key, () => this.inner.resetKey(key))
  }

  /**
   * Runs `call` against Redis unless the breaker is open; fails it after `timeoutMs`, or at once
   * when the breaker opens meanwhile (ioredis drops, without settling, commands that were in flight
   * when a connection closed and are not to be resent). This is every allowed request's path: one
   * promise per call, and no timer of its own.
   */
  #guard<T>(key: string, call: () => Promise<T>, timed = false): Promise<T> {
    const health = this.breakers.for(this.inner.prefixKey(key))
    if (!health.healthy) return Promise.reject(new StoreUnavailableError('Redis is unavailable (circuit open)'))
    const generation = health.generation
    const start = performance.now()
    return new Promise<T>((resolve, reject) => {
      let settled = false
      const settle = (): boolean => {
        if (settled) return false
        settled = true
        this.#pending.delete(watched)
        // Nothing left to watch: the timer would only keep the process up.
        if (this.#pending.size === 0 && this.#watch !== undefined) {
          clearTimeout(this.#watch)
          this.#watch = undefined
        }
        return true
      }
      const fail = (error: unknown): void => {
        if (!settle()) return
        const timeout = error instanceof StoreTimeoutError
        // A call abandoned because the circuit opened is the other failure's consequence, not one more.
        if (timeout) this.stats.storeErrors.timeout++
        else if (!(error instanceof StoreUnavailableError)) this.stats.storeErrors.error++
        // The caller first: whatever the breaker's listeners do, this call is settled.
        reject(
          error instanceof StoreUnavailableError
            ? error
            : new StoreUnavailableError('Redis command failed', { cause: error }),
        )
        health.failure(error, { generation, timeout })
      }
      const watched: PendingCall = { health, fail, deadline: start + this.timeoutMs }
      this.#pending.add(watched)
      if (this.#watch === undefined) this.#watchUntil(watched.deadline)
      let pending: Promise<T>
      try {
        pending = call()
      } catch (error) {
        return fail(error)
      }
      pending.then((result) => {
        if (!settle()) return
        health.success(generation)
        if (timed) this.stats.observeStore?.((performance.now() - start) / 1000, 'redis')
        resolve(result)
      }, fail)
    })
  }

  /** Sets the one timer for `deadline`, the oldest pending call's. */
  #watchUntil(deadline: number): void {
    this.#watch = setTimeout(() => this.#expire(), Math.max(0, deadline - performance.now()))
  }

  /** Times out the calls past their deadline, and watches for the next one. */
  #expire(): void {
    this.#watch = undefined
    const now = performance.now()
    const late: PendingCall[] = []
    for (const call of this.#pending) {
      if (call.deadline > now) {
        this.#watchUntil(call.deadline)
        break
      }
      this.#pending.delete(call)
      late.push(call)
    }
    if (late.length === 0) return
    // setImmediate lets I/O that is already waiting run first: after an event-loop stall the reply
    // may be in the socket although the deadline has passed, and it should win.
    setImmediate(() => failEach(late, () => new StoreTimeoutError(`Redis did not answer within ${this.timeoutMs} ms`)))
  }
}
