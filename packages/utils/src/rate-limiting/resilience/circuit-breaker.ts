// A circuit breaker over the Redis store: errors open it at once, timeouts once they persist,
// and a background probe closes it. Each change is logged once.
import { debug, type RateLimitLogger } from '../observability/logger.js'
import { describeError } from '../observability/redact.js'

export interface CircuitBreakerOptions {
  /** Who is speaking in the log lines, e.g. the keyPrefix. */
  readonly name: string
  /** The line that says what happens while degraded (limits, fail open, fail closed). */
  readonly degradedLine: string
  /** Checks that Redis answers, takes writes, and has our scripts again. Rejects if not. */
  readonly probe: () => Promise<void>
  /** Time between probes while open; doubled (up to MAX_PROBE_INTERVAL_MS) when Redis flaps. */
  readonly probeIntervalMs: number
  /** Timeouts must keep coming for this long before they open the breaker; a short stall does not. */
  readonly stallMs: number
  readonly logger: RateLimitLogger
  /** What the lines call the store: `Redis`, or `The store` for an express-rate-limit Store of the user's. @default 'Redis' */
  readonly subject?: string
}

export interface StoreHealthSnapshot {
  readonly healthy: boolean
  readonly since: Date
}

/** How a store call failed: an error (open at once) or a timeout (open once they persist). */
export interface FailureInfo {
  /** The generation the call started in; a call from an earlier state cannot change this one. */
  readonly generation: number
  readonly timeout: boolean
}

export const MAX_PROBE_INTERVAL_MS = 1000
/** Reopening this soon after closing counts as flapping, and the probe backs off. */
const FLAP_WINDOW_MS = 10_000

export class CircuitBreaker {
  #healthy = true
  #since = new Date()
  #generation = 0
  #timer: NodeJS.Timeout | undefined
  #probing = false
  #disposed = false
  #timeoutsSince: number | undefined
  #interval: number
  #lastClosed = 0
  #probeFailureReported = false
  readonly #listeners = new Set<(healthy: boolean) => void>()

  get #subject(): string {
    return this.options.subject ?? 'Redis'
  }

  constructor(private readonly options: CircuitBreakerOptions) {
    this.#interval = options.probeIntervalMs
  }

  /** True while requests may go to Redis. */
  get healthy(): boolean {
    return this.#healthy
  }

  /** Changes with every transition; store calls carry the one they started in. */
  get generation(): number {
    return this.#generation
  }

  snapshot(): StoreHealthSnapshot {
    return { healthy: this.#healthy, since: this.#since }
  }

  /** Calls `listener` on every transition (false: opened, true: closed). Returns the unsubscribe. */
  onChange(listener: (healthy: boolean) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** A store call succeeded: a run of timeouts, if any, is over. */
  success(generation: number): void {
    if (generation === this.#generation) this.#timeoutsSince = undefined
  }

  /**
   * A store call failed. An error opens the breaker at once; timeouts open it once they have kept
   * coming for `stallMs`, so a short stall (a fork, one slow command) costs a few fallback
   * decisions, not a full outage. A call that started before the last transition changes nothing.
   */
  failure(error: unknown, info?: FailureInfo): void {
    if (!this.#healthy || this.#disposed) return
    if (info !== undefined && info.generation !== this.#generation) return
    if (info?.timeout === true) {
      const now = Date.now()
      this.#timeoutsSince ??= now
      if (now - this.#timeoutsSince < this.options.stallMs) return
    }
    this.#open(error)
  }

  dispose(): void {
    this.#disposed = true
    clearTimeout(this.#timer)
    this.#listeners.clear()
  }

  #open(error: unknown): void {
    const now = Date.now()
    this.#healthy = false
    this.#generation++
    this.#since = new Date(now)
    this.#timeoutsSince = undefined
    this.#probeFailureReported = false
    const flapping = now - this.#lastClosed < FLAP_WINDOW_MS
    this.#interval = flapping ? Math.min(this.#interval * 2, MAX_PROBE_INTERVAL_MS) : this.options.probeIntervalMs
    const { logger, name, degradedLine } = this.options
    logger.error(`[RateLimit] ${name}: ${this.#subject} unavailable (${describeError(error)})`)
    logger.warn(`[RateLimit] ${name}: ${degradedLine}`)
    if (flapping) logger.warn(`[RateLimit] ${name}: ${this.#subject} is flapping; probing every ${this.#interval} ms`)
    this.#notify()
    this.#schedule()
  }

  #close(): void {
    const now = Date.now()
    const seconds = ((now - this.#since.getTime()) / 1000).toFixed(1)
    this.#healthy = true
    this.#generation++
    this.#since = new Date(now)
    this.#lastClosed = now
    this.options.logger.info(
      `[RateLimit] ${this.options.name}: ${this.#subject} back after ${seconds} s, shared limits restored`,
    )
    this.#notify()
  }

  #notify(): void {
    for (const listener of this.#listeners) listener(this.#healthy)
  }

  #schedule(): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => void this.#probe(), this.#interval)
    this.#timer.unref()
  }

  async #probe(): Promise<void> {
    if (this.#healthy || this.#probing || this.#disposed) return
    this.#probing = true
    try {
      await this.options.probe()
      if (!this.#disposed && !this.#healthy) this.#close()
    } catch (error) {
      const reason = describeError(error)
      debug('probe failed: %s', reason)
      // Say once per outage why Redis is still not used: it may answer, but too slowly, or refuse writes.
      if (!this.#probeFailureReported) {
        this.#probeFailureReported = true
        this.options.logger.warn(`[RateLimit] ${this.options.name}: ${this.#subject} still unavailable: ${reason}`)
      }
      if (!this.#disposed) this.#schedule()
    } finally {
      this.#probing = false
    }
  }
}
