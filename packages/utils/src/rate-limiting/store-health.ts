// A circuit breaker over the Redis store: one failure opens it, a background probe closes it.
import { debug, type RateLimitLogger } from './logger.js'
import { describeError } from './redact.js'

/** What a limiter set does while Redis cannot be used. */
export type StoreErrorPolicy = 'fallback' | 'allow' | 'deny'

export interface StoreHealthOptions {
  /** Who is speaking in the log lines, e.g. the keyPrefix. */
  readonly name: string
  readonly policy: StoreErrorPolicy
  /** The line that says what happens while degraded (limits, fail open, fail closed). */
  readonly degradedLine: string
  /** Checks that Redis answers again and reloads what it forgot (scripts). Rejects if not. */
  readonly probe: () => Promise<void>
  readonly probeIntervalMs: number
  readonly logger: RateLimitLogger
}

export interface StoreHealthSnapshot {
  readonly healthy: boolean
  readonly since: Date
}

/**
 * While healthy, requests go to Redis. The first failure (an error or a timeout) makes it
 * degraded: requests stop going to Redis at once (fast-fail), and a probe runs every
 * `probeIntervalMs` until Redis answers, which makes it healthy again. Each change is logged once.
 */
export class StoreHealth {
  #healthy = true
  #since = new Date()
  #timer: NodeJS.Timeout | undefined
  #probing = false
  #disposed = false

  constructor(private readonly options: StoreHealthOptions) {}

  /** True while requests may go to Redis. */
  get healthy(): boolean {
    return this.#healthy
  }

  snapshot(): StoreHealthSnapshot {
    return { healthy: this.#healthy, since: this.#since }
  }

  /** A store call failed: stop using Redis until a probe succeeds. */
  failure(error: unknown): void {
    if (!this.#healthy || this.#disposed) return
    this.#healthy = false
    this.#since = new Date()
    const { logger, name, degradedLine } = this.options
    logger.error(`[RateLimit] ${name}: Redis unavailable (${describeError(error)})`)
    logger.warn(`[RateLimit] ${name}: ${degradedLine}`)
    this.#schedule()
  }

  /** Starts degraded (Redis not reachable when the limiters were created). */
  startDegraded(error: unknown): void {
    this.failure(error)
  }

  dispose(): void {
    this.#disposed = true
    clearTimeout(this.#timer)
  }

  #schedule(): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => void this.#probe(), this.options.probeIntervalMs)
    this.#timer.unref()
  }

  async #probe(): Promise<void> {
    if (this.#healthy || this.#probing || this.#disposed) return
    this.#probing = true
    try {
      await this.options.probe()
      if (this.#disposed) return
      const seconds = ((Date.now() - this.#since.getTime()) / 1000).toFixed(1)
      this.#healthy = true
      this.#since = new Date()
      this.options.logger.info(
        `[RateLimit] ${this.options.name}: Redis back after ${seconds} s, shared limits restored`,
      )
    } catch (error) {
      debug('probe failed: %s', describeError(error))
      this.#schedule()
    } finally {
      this.#probing = false
    }
  }
}
