// The Redis store behind a timeout and the circuit breaker: it fails fast instead of waiting on Redis.
import type { ClientRateLimitInfo, IncrementResponse, Options, Store } from 'express-rate-limit'
import type { RedisStore } from 'rate-limit-redis'

import type { RedisCommandClient } from '../config/types.js'
import type { LimiterStats } from '../observability/stats.js'
import type { Breakers } from '../resilience/breakers.js'
import { batchedSendOf, writeWatchOf, type BatchedSend } from './batched-calls.js'
import { failEach, PendingCalls, StoreUnavailableError, withTimeout } from './deadlines.js'
import { circuitOpen, guardedCall, GuardedIncrement } from './guarded-calls.js'
import { ADJUST_SCRIPT, BLOCKED_HITS, SAFE_DECREMENT_SCRIPT } from './scripts.js'

/**
 * rate-limit-redis's store, guarded. While the breaker is open every call fails at once; a call
 * that errors or outlives `timeoutMs` opens it. Decrement is our own script: rate-limit-redis's
 * plain DECR would create a key at -1, without a TTL, for a client whose window had expired.
 *
 * Increment, every allowed request's call, takes a shorter way once the script is loaded: the
 * same EVALSHA that rate-limit-redis sends, queued straight on the batched sender as one object
 * that is promise, pending entry and command at once, instead of five promises through
 * rate-limit-redis's async layers. On NOSCRIPT it loads the script, as rate-limit-redis would, and
 * sends the call again through rate-limit-redis's increment.
 */
export class GuardedRedisStore implements Store {
  readonly localKeys = false
  readonly prefix: string
  #windowMs = 60_000
  #windowArg = '60000'
  readonly #pending: PendingCalls
  readonly #send: BatchedSend | undefined
  /** The increment script's SHA1, once SCRIPT LOAD has answered. It is the script's hash: it never changes. */
  #incrementSha: string | undefined
  readonly #incrementAgain: (key: string) => Promise<IncrementResponse>
  readonly #unsubscribe: () => void

  constructor(
    private readonly inner: RedisStore,
    private readonly client: RedisCommandClient,
    private readonly breakers: Breakers,
    timeoutMs: number,
    stats: LimiterStats,
  ) {
    this.prefix = inner.prefix
    this.#send = batchedSendOf(inner)
    const writes = writeWatchOf(inner)
    this.#pending = new PendingCalls(
      timeoutMs,
      stats,
      writes === undefined ? undefined : () => writes.oldestUnanswered(),
    )
    this.#incrementAgain = (key) => {
      // As rate-limit-redis does on its own NOSCRIPT: load the script, then send the call again.
      this.inner.incrementScriptSha = this.inner.loadIncrementScript(this.inner.prefixKey(key))
      return this.inner.increment(key)
    }
    this.#unsubscribe = breakers.onEach((breaker, healthy) => {
      if (healthy) return
      // A pipeline in flight when the connection dropped is never answered (batched-calls.ts).
      writes?.forgetUnanswered()
      failEach(this.#pending.through(breaker), () => new StoreUnavailableError('Redis became unavailable'))
    })
  }

  /** Stops listening to the breaker. */
  dispose(): void {
    this.#unsubscribe()
  }

  /** Called by express-rate-limit without awaiting: a failure here only opens the breaker. */
  async init(options: Options): Promise<void> {
    this.#windowMs = options.windowMs
    this.#windowArg = String(options.windowMs)
    this.inner.windowMs = options.windowMs
    if (!this.breakers.healthy) return
    // On a cluster a failed broadcast says nothing about any one master: the calls will tell.
    if (!this.breakers.single) {
      await this.reloadScripts(this.#pending.timeoutMs).catch(() => undefined)
      return
    }
    // Judged as a request's call is: a just-started process that is slow to read the answer is
    // not a slow Redis, and a timeout opens the breaker only once timeouts persist.
    await this.#guard('', () => {
      this.#loadScripts()
      return Promise.all([this.inner.incrementScriptSha, this.inner.getScriptSha])
    }).catch(() => undefined)
  }

  /**
   * Loads the scripts again (after an outage, or a Redis restarted empty). rate-limit-redis keeps
   * the promise of its first SCRIPT LOAD; a rejected one would fail every later call.
   */
  async reloadScripts(timeoutMs: number): Promise<void> {
    this.#loadScripts()
    await withTimeout(Promise.all([this.inner.incrementScriptSha, this.inner.getScriptSha]), timeoutMs)
  }

  /** Sends SCRIPT LOAD for both scripts, and keeps the increment's SHA1 for the hot path. */
  #loadScripts(): void {
    this.inner.windowMs = this.#windowMs
    this.inner.incrementScriptSha = this.inner.loadIncrementScript()
    this.inner.getScriptSha = this.inner.loadGetScript()
    this.inner.incrementScriptSha.then(
      (sha) => (this.#incrementSha = sha),
      () => undefined,
    )
  }

  increment(key: string): Promise<IncrementResponse> {
    const sha = this.#incrementSha
    if (sha === undefined || this.#send === undefined) {
      return this.#guard(key, () => this.inner.increment(key), true)
    }
    const redisKey = this.inner.prefixKey(key)
    const breaker = this.breakers.for(redisKey)
    if (!breaker.healthy) return circuitOpen()
    const args = [sha, '1', redisKey, this.#windowArg]
    const call = new GuardedIncrement(this.#pending, breaker, args, key, this.#incrementAgain)
    this.#send.enqueue(call)
    return call.promise
  }

  get(key: string): Promise<ClientRateLimitInfo | undefined> {
    return this.#guard(key, () => this.inner.get(key))
  }

  async decrement(key: string): Promise<void> {
    const redisKey = this.inner.prefixKey(key)
    // Through the batched sender where there is one, so that its wait is judged as the others are.
    const args = [SAFE_DECREMENT_SCRIPT, '1', redisKey] as const
    await this.#guard(key, () => (this.#send ? this.#send('EVAL', ...args) : this.client.call('EVAL', ...args)))
  }

  async resetKey(key: string): Promise<void> {
    await this.#guard(key, () => this.inner.resetKey(key))
  }

  /** An operator's penalty (`n` > 0) or reward (`n` < 0) of the client's count (ADJUST_SCRIPT). */
  async add(key: string, n: number): Promise<void> {
    const args = [ADJUST_SCRIPT, '1', this.inner.prefixKey(key), String(n), this.#windowArg] as const
    await this.#guard(key, () => this.client.call('EVAL', ...args))
  }

  /** Refuses every request of the client for `ms`: a count over any limit, expiring then. */
  async block(key: string, ms: number): Promise<void> {
    const args = [this.inner.prefixKey(key), String(BLOCKED_HITS), 'PX', String(ms)] as const
    await this.#guard(key, () => this.client.call('SET', ...args))
  }

  #guard<T>(key: string, call: () => Promise<T>, timed = false): Promise<T> {
    return guardedCall(this.#pending, this.breakers.for(this.inner.prefixKey(key)), call, timed)
  }
}
