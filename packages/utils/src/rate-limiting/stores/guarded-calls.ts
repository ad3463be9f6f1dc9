// One call to Redis under guard: it settles once, by its answer, its error, or its deadline, and
// tells the breaker and the stats which. GuardedIncrement is the hot path's one object per request.
import type { IncrementResponse } from 'express-rate-limit'

import type { CheckedLimit, PolicyDecision } from '../policies/limits.js'
import { isNoScript, type RedisPolicyStore } from '../policies/redis-policy-store.js'

import type { CircuitBreaker } from '../resilience/circuit-breaker.js'
import type { QueuedCommand } from './batched-calls.js'
import { StoreTimeoutError, StoreUnavailableError, type PendingCall, type PendingCalls } from './deadlines.js'

/** One guarded call: its promise, and its entry among the pending calls. */
export class GuardedCall<T> implements PendingCall {
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
    readonly breaker: CircuitBreaker,
    private readonly timed: boolean,
  ) {
    this.#generation = breaker.generation
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
    this.breaker.success(this.#generation)
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
    this.breaker.failure(error, { generation: this.#generation, timeout })
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
 * Runs `call` against Redis unless `breaker` is open; fails it after the pending calls' timeout, or
 * at once when the breaker opens meanwhile (ioredis drops, without settling, commands that were in
 * flight when a connection closed and are not to be resent). `timed` calls are observed for the
 * store latency metric.
 */
export function guardedCall<T>(
  pending: PendingCalls,
  breaker: CircuitBreaker,
  call: () => Promise<T>,
  timed = false,
): Promise<T> {
  if (!breaker.healthy) return circuitOpen()
  const guarded = new GuardedCall<T>(pending, breaker, timed)
  let reply: Promise<T>
  try {
    reply = call()
  } catch (error) {
    guarded.fail(error)
    return guarded.promise
  }
  reply.then(
    (value) => guarded.succeed(value),
    (error: unknown) => guarded.fail(error),
  )
  return guarded.promise
}

/** The failure of a call while its circuit is open: the limiter's policy decides instead. */
export const circuitOpen = (): Promise<never> =>
  Promise.reject(new StoreUnavailableError('Redis is unavailable (circuit open)'))

/**
 * An increment on the hot path: one object that is the promise, the pending entry and the command
 * the batched sender sends, which answers through `resolve` and `reject`. Its methods are on the
 * prototype: every allowed request makes one, and nothing else.
 */
export class GuardedIncrement extends GuardedCall<IncrementResponse> implements QueuedCommand {
  readonly command = 'EVALSHA'

  constructor(
    pending: PendingCalls,
    breaker: CircuitBreaker,
    readonly args: readonly string[],
    private readonly key: string,
    /** On NOSCRIPT: loads the script, and sends the call again through rate-limit-redis's increment. */
    private readonly again: (key: string) => Promise<IncrementResponse>,
  ) {
    super(pending, breaker, true)
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

/**
 * A policy's decision on the hot path, as GuardedIncrement is the fixed window's: the promise, the
 * pending entry and the EVALSHA in one object. On NOSCRIPT it sends the script itself.
 */
export class GuardedPolicyCall extends GuardedCall<PolicyDecision> implements QueuedCommand {
  readonly command = 'EVALSHA'
  readonly args: readonly string[]

  constructor(
    pending: PendingCalls,
    breaker: CircuitBreaker,
    private readonly store: RedisPolicyStore,
    private readonly key: string,
    private readonly cost: number,
    private readonly limits: readonly CheckedLimit[],
  ) {
    super(pending, breaker, true)
    this.args = store.evalshaArgs(key, cost, limits)
  }

  resolve(reply: unknown): void {
    let decision: PolicyDecision
    try {
      decision = this.store.decision(reply, this.limits)
    } catch (error) {
      return this.fail(error)
    }
    this.succeed(decision)
  }

  reject(error: unknown): void {
    if (!isNoScript(error)) return this.fail(error)
    if (this.settled) return
    this.store.consumeByEval(this.key, this.cost, this.limits).then(
      (decision) => this.succeed(decision),
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
