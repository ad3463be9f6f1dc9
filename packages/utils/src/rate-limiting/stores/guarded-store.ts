// The Redis store behind a timeout and the circuit breaker: it fails fast instead of waiting on Redis.
import type { ClientRateLimitInfo, IncrementResponse, Options, Store } from 'express-rate-limit'
import type { RedisStore } from 'rate-limit-redis'

import type { Breakers } from '../resilience/breakers.js'
import type { LimiterStats } from '../observability/stats.js'
import type { CircuitBreaker } from '../resilience/circuit-breaker.js'
import type { RedisCommandClient } from '../config/types.js'
import { batchedSendOf, settleEach, writeWatchOf, type BatchedSend, type QueuedCommand } from './batched-calls.js'
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
  readonly health: CircuitBreaker
  readonly fail: (error: unknown) => void
  /** performance.now() past which the call has timed out. */
  readonly deadline: number
}

/**
 * Fails every call, even if failing one throws (a logger of the breaker's, say); then rethrows the
 * first such error. One bad listener must not leave the other calls waiting for ever.
 */
export function failEach(calls: readonly PendingCall[], error: () => Error): void {
  settleEach(calls, (call) => call.fail(error()))
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
 * Calls waiting on Redis, oldest first. All share one timeout, so the oldest is the next to time
 * out, and one timer, set for it, watches them all; it is cleared when none is left.
 *
 * A call past its deadline is failed only once Redis itself has kept a write unanswered for
 * `timeoutMs` (`redisLate`): a call that waited in our own queue, or whose reply sat in our socket
 * while the event loop was busy, waits on. A busy or just-started process is then as exact as a
 * client that waits; a hung Redis still fails every call about `timeoutMs` after its oldest write.
 */
class PendingCalls {
  readonly #calls = new Set<PendingCall>()
  #watch: NodeJS.Timeout | undefined
  /** A judgment is scheduled (setImmediate): the calls are watched, although no timer is set. */
  #judging = false

  constructor(
    readonly timeoutMs: number,
    readonly stats: LimiterStats,
    /** performance.now() of the oldest write Redis has not answered; absent where it cannot be told. */
    private readonly oldestUnanswered?: () => number | undefined,
  ) {}

  add(call: PendingCall): void {
    this.#calls.add(call)
    if (this.#watch === undefined && !this.#judging) this.#watchUntil(call.deadline)
  }

  delete(call: PendingCall): void {
    this.#calls.delete(call)
    // Nothing left to watch: the timer would only keep the process up.
    if (this.#calls.size === 0 && this.#watch !== undefined) {
      clearTimeout(this.#watch)
      this.#watch = undefined
    }
  }

  /** The calls that went through `health`. */
  through(health: CircuitBreaker): PendingCall[] {
    return [...this.#calls].filter((call) => call.health === health)
  }

  /** Sets the one timer for `at` (performance.now() time). */
  #watchUntil(at: number): void {
    this.#watch = setTimeout(() => this.#expire(), Math.max(0, at - performance.now()))
  }

  #expire(): void {
    this.#watch = undefined
    // The calls are judged in setImmediate, after the poll phase that follows this timer: that
    // poll began after `polled`, so it has read every reply that was in the socket by then.
    const polled = performance.now()
    this.#judging = true
    setImmediate(() => {
      this.#judging = false
      this.#judge(polled)
    })
  }

  /**
   * Times out the calls past their deadline if Redis is late, and watches for the next deadline.
   * Redis is late when a write it has not answered was made `timeoutMs` or more before `polled`:
   * its reply did not come in time, or the poll would have read it. A write made later may have its
   * reply in the socket already, unread because the loop was busy; it is judged at a later poll.
   */
  #judge(polled: number): void {
    const now = performance.now()
    const oldest = this.oldestUnanswered?.()
    // Where the writes cannot be seen (a store of someone else's), a call's own wait is all there is.
    const redisLate = this.oldestUnanswered === undefined || (oldest !== undefined && polled - oldest >= this.timeoutMs)
    const late: PendingCall[] = []
    let next: number | undefined
    for (const call of this.#calls) {
      if (call.deadline > now) {
        next = call.deadline
        break
      }
      if (!redisLate) {
        // Redis has kept nothing waiting for timeoutMs: this call waits on us. Look again when the
        // oldest write would be late, or after timeoutMs if all have their answers.
        next = oldest === undefined ? now + this.timeoutMs : oldest + this.timeoutMs
        break
      }
      late.push(call)
    }
    for (const call of late) this.#calls.delete(call)
    if (next !== undefined && this.#watch === undefined) this.#watchUntil(next)
    failEach(late, () => new StoreTimeoutError(`Redis did not answer within ${this.timeoutMs} ms`))
  }
}

/** One guarded call: its promise, and its entry among the pending calls. */
class GuardedCall<T> implements PendingCall {
  readonly promise: Promise<T>
  readonly deadline: number
  readonly #generation: number
  readonly #start = performance.now()
  #done = false
  #timedOut = false
  #resolve!: (value: T) => void
  #reject!: (error: unknown) => void

  constructor(
    private readonly pending: PendingCalls,
    readonly health: CircuitBreaker,
    private readonly timed: boolean,
  ) {
    this.#generation = health.generation
    this.deadline = this.#start + pending.timeoutMs
    this.promise = new Promise<T>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    pending.add(this)
  }

  succeed(value: T): void {
    if (!this.#settle()) {
      // Redis answered after all: the policy decided a request while Redis was reachable.
      if (this.#timedOut) {
        this.#timedOut = false
        this.pending.stats.lateAnswers++
      }
      return
    }
    this.health.success(this.#generation)
    if (this.timed) this.pending.stats.observeStore?.((performance.now() - this.#start) / 1000, 'redis')
    this.#resolve(value)
  }

  fail(error: unknown): void {
    if (!this.#settle()) return
    const timeout = error instanceof StoreTimeoutError
    this.#timedOut = timeout
    const { stats } = this.pending
    // A call abandoned because the circuit opened is the other failure's consequence, not one more.
    if (timeout) stats.storeErrors.timeout++
    else if (!(error instanceof StoreUnavailableError)) stats.storeErrors.error++
    // The caller first: whatever the breaker's listeners do, this call is settled.
    this.#reject(
      error instanceof StoreUnavailableError
        ? error
        : new StoreUnavailableError('Redis command failed', { cause: error }),
    )
    this.health.failure(error, { generation: this.#generation, timeout })
  }

  get settled(): boolean {
    return this.#done
  }

  #settle(): boolean {
    if (this.#done) return false
    this.#done = true
    this.pending.delete(this)
    return true
  }
}

/**
 * An increment on the hot path: one object that is the promise, the pending entry and the command
 * the batched sender sends, which answers through `resolve` and `reject`. Its methods are on the
 * prototype: every allowed request makes one, and nothing else.
 */
class GuardedIncrement extends GuardedCall<IncrementResponse> implements QueuedCommand {
  readonly command = 'EVALSHA'

  constructor(
    pending: PendingCalls,
    health: CircuitBreaker,
    readonly args: readonly string[],
    private readonly key: string,
    /** On NOSCRIPT: loads the script, and sends the call again through rate-limit-redis's increment. */
    private readonly again: (key: string) => Promise<IncrementResponse>,
  ) {
    super(pending, health, true)
  }

  resolve(reply: unknown): void {
    let value: IncrementResponse
    try {
      value = parseIncrement(reply)
    } catch (error) {
      return this.fail(error)
    }
    this.succeed(value)
  }

  reject(error: unknown): void {
    if (!isNoScriptError(error)) return this.fail(error)
    // Timed out or failed meanwhile: the policy has answered that request already.
    if (this.settled) return
    this.again(this.key).then(
      (value) => this.succeed(value),
      (caught: unknown) => this.fail(caught),
    )
  }
}

/** rate-limit-redis's test for a script Redis does not have (after SCRIPT FLUSH or a restart). */
const isNoScriptError = (error: unknown): boolean => error instanceof Error && /^NOSCRIPT(?:\s|$)/.test(error.message)

/**
 * rate-limit-redis's reading of its increment script's reply, `[hits, ms to expiry]`: the same
 * checks, the same answer.
 */
export function parseIncrement(reply: unknown): IncrementResponse {
  if (!Array.isArray(reply)) throw new TypeError('Expected result to be array of values')
  if (reply.length !== 2) throw new Error(`Expected 2 replies, got ${reply.length}`)
  const [hits, ttl] = reply as [unknown, unknown]
  return { totalHits: hits === false ? 0 : toInt(hits), resetTime: new Date(Date.now() + toInt(ttl)) }
}

/** rate-limit-redis's reading of a number in a reply, whatever the client gave. */
const toInt = (input: unknown): number =>
  typeof input === 'number' ? input : Number.parseInt(((input ?? '') as { toString(): string }).toString(), 10)

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
    this.#unsubscribe = breakers.onEach((health, healthy) => {
      if (healthy) return
      // A pipeline in flight when the connection dropped is never answered (batched-calls.ts).
      writes?.forgetUnanswered()
      failEach(this.#pending.through(health), () => new StoreUnavailableError('Redis became unavailable'))
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
    const health = this.breakers.for(redisKey)
    if (!health.healthy) return circuitOpen()
    const args = [sha, '1', redisKey, this.#windowArg]
    const call = new GuardedIncrement(this.#pending, health, args, key, this.#incrementAgain)
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

  /**
   * Runs `call` against Redis unless the breaker is open; fails it after `timeoutMs`, or at once
   * when the breaker opens meanwhile (ioredis drops, without settling, commands that were in flight
   * when a connection closed and are not to be resent).
   */
  #guard<T>(key: string, call: () => Promise<T>, timed = false): Promise<T> {
    const health = this.breakers.for(this.inner.prefixKey(key))
    if (!health.healthy) return circuitOpen()
    const guarded = new GuardedCall<T>(this.#pending, health, timed)
    let pending: Promise<T>
    try {
      pending = call()
    } catch (error) {
      guarded.fail(error)
      return guarded.promise
    }
    pending.then(
      (value) => guarded.succeed(value),
      (error: unknown) => guarded.fail(error),
    )
    return guarded.promise
  }
}

const circuitOpen = (): Promise<never> =>
  Promise.reject(new StoreUnavailableError('Redis is unavailable (circuit open)'))
