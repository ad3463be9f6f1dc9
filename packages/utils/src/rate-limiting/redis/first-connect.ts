// A new client's first connection: the retries it may use, the lines it logs, and the one wait
// that settles when it is ready, gives up, times out or is aborted.
import { MAX_RECONNECT_DELAY_MS } from '../config/schema.js'
import { ERROR_CODES, RateLimitError } from '../errors.js'
import { debug, type RateLimitLogger } from '../observability/logger.js'
import { describeError } from '../observability/redact.js'
import { createRedisClient, type RedisClient } from './client-factory.js'
import { describeTarget, type RedisTarget } from './topology.js'

/** Retry lines are logged for the first attempts, then once a minute or so, not once a second for hours. */
const LOGGED_ATTEMPTS = 10
const LOG_EVERY_NTH_ATTEMPT = 60

/** The guide's back-off: 100, 200, 300 ... ms, capped (at 1 s, see MAX_RECONNECT_DELAY_MS). */
export function reconnectDelay(attempt: number): number {
  return Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS)
}

export interface FirstConnectOptions {
  readonly target: RedisTarget
  /** The option or variable the target came from, for errors: `redisUrl` or `REDIS_URL`. */
  readonly source: string
  readonly logger: RateLimitLogger
  readonly connectRetries: number
  readonly timeoutMs: number
  /** Keep the client reconnecting when the first connect fails; only the wait ends. */
  readonly persistent: boolean
  /** Called when a failed connect has disconnected the client for good. */
  readonly dropped: () => void
}

/**
 * Creates the client and connects it. `ready` resolves with it once it is ready, or rejects with
 * a RateLimitError (a timeout, retries used up, a database the server lacks, or `abort`).
 */
export class FirstConnect {
  readonly client: RedisClient
  readonly ready: Promise<RedisClient>
  readonly #options: FirstConnectOptions
  readonly #where: string
  /** Until the first `ready`, retries are bounded; afterwards an outage never ends the client. */
  #everReady = false
  /** The last error's text, logged once until the next success; and the error itself, as a cause. */
  #lastError: string | undefined
  #lastCause: unknown
  #settled = false
  #resolve!: (client: RedisClient) => void
  #reject!: (error: RateLimitError) => void
  #timer: NodeJS.Timeout | undefined

  constructor(options: FirstConnectOptions) {
    this.#options = options
    const { target, logger, timeoutMs } = options
    this.#where = describeTarget(target)
    logger.info(`[Redis] Connecting (${target.kind}): ${this.#where}`)
    if (target.tls?.rejectUnauthorized === false) {
      logger.warn('[Redis] REDIS_TLS_REJECT_UNAUTHORIZED=false: the Redis server certificate is not verified')
    }
    this.client = createRedisClient(target, {
      connectTimeoutMs: timeoutMs,
      retryStrategy: (attempt: number) => this.#retry(attempt),
      // A master demoted to replica during a failover answers READONLY: reconnect, which finds
      // the new master. The failed command is not resent; its caller falls back.
      reconnectOnError: (error: Error) => /^READONLY\b/.test(error.message),
    })
    this.ready = new Promise<RedisClient>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    this.client.on('ready', () => {
      this.#everReady = true
      this.#lastError = undefined
      logger.info('[Redis] Client connected successfully')
    })
    this.client.on('error', (error: unknown) => this.#error(error))
    this.client.once('ready', this.#onReady)
    this.client.once('end', this.#onEnd)
    this.#timer = setTimeout(() => this.#timeOut(`no connection to ${this.#where} within ${timeoutMs} ms`), timeoutMs)
    // Failures arrive through the events above; connect()'s own rejection carries nothing more.
    this.client.connect().catch(() => {})
    debug('connecting to %s', this.#where)
  }

  /** Fails the wait (close() does, for a client closed before it was ready). */
  abort(error: RateLimitError): void {
    // Only a connect still in progress can fail; a closed, connected client is close()'s job.
    if (this.#settled) return
    this.#settled = true
    this.#stopWaiting()
    // Never leave a failed client reconnecting in the background, unless it is meant to.
    if (!this.#options.persistent || error.code !== ERROR_CODES.REDIS_CONNECT_TIMEOUT) {
      this.client.disconnect()
      this.#options.dropped()
    }
    this.#reject(error)
  }

  /** ioredis's retryStrategy: the delay before attempt `attempt`, or null to end the client. */
  #retry(attempt: number): number | null {
    const { connectRetries, persistent, logger } = this.#options
    if (!this.#everReady && attempt === connectRetries + 1) {
      logger.error(
        persistent
          ? '[Redis] Max retry attempts reached: starting without Redis, still reconnecting'
          : '[Redis] Max retry attempts reached',
      )
      // A persistent client goes on reconnecting; only the wait for it ends here.
      if (persistent) this.#onEnd()
    }
    if (!this.#everReady && attempt > connectRetries && !persistent) return null
    const delay = reconnectDelay(attempt)
    if (attempt <= LOGGED_ATTEMPTS || attempt % LOG_EVERY_NTH_ATTEMPT === 0) {
      logger.warn(`[Redis] Retrying connection in ${delay}ms (attempt ${attempt})`)
    }
    return delay
  }

  #error(error: unknown): void {
    const { target, source, logger } = this.#options
    this.#lastCause = error
    const password = target.kind === 'standalone' ? target.endpoint.password : target.password
    const message = describeError(error, [password, target.kind === 'sentinel' ? target.sentinelPassword : undefined])
    // ioredis reports a failed SELECT and then goes on in database 0: a wrong URL, not an outage.
    if (!this.#everReady && target.kind === 'standalone' && /DB index is out of range/i.test(message)) {
      const { db, safeUrl } = target.endpoint
      this.abort(
        new RateLimitError(
          ERROR_CODES.REDIS_URL_INVALID,
          `${source} names database ${db}, which ${safeUrl.replace(/\/\d+$/, '')} does not have (${message})`,
          { option: source, cause: error },
        ),
      )
    }
    debug('redis error: %s', message)
    // One line per distinct failure until the next success, not one per reconnect attempt.
    if (message !== this.#lastError) {
      this.#lastError = message
      logger.error(`[Redis] Connection error: ${message}`)
    }
  }

  readonly #onReady = (): void => {
    this.#settled = true
    this.#stopWaiting()
    this.#resolve(this.client)
  }

  readonly #onEnd = (): void =>
    this.#timeOut(
      `gave up on ${this.#where} after ${this.#options.connectRetries} retries (${this.#lastError ?? 'no reply'})`,
    )

  #timeOut(why: string): void {
    this.abort(
      new RateLimitError(ERROR_CODES.REDIS_CONNECT_TIMEOUT, `Redis connection timeout: ${why}`, {
        option: this.#options.source,
        cause: this.#lastCause,
      }),
    )
  }

  #stopWaiting(): void {
    clearTimeout(this.#timer)
    this.client.off('ready', this.#onReady)
    this.client.off('end', this.#onEnd)
  }
}
