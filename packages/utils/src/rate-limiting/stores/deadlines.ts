// How long a call may wait on Redis: the errors a late or impossible call fails with, and the one
// timer that watches every pending call and judges a deadline only once Redis itself is late.
import type { LimiterStats } from '../observability/stats.js'
import type { CircuitBreaker } from '../resilience/circuit-breaker.js'
import { settleEach } from './batched-calls.js'

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
  readonly breaker: CircuitBreaker
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
export class PendingCalls {
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

  /** The calls that went through `breaker`. */
  through(breaker: CircuitBreaker): PendingCall[] {
    return [...this.#calls].filter((call) => call.breaker === breaker)
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
