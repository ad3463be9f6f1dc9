// Holds at most one ioredis client: connects it once, reconnects it forever, closes it once.
import type { Redis } from 'ioredis'

import { ERROR_CODES, RateLimitError } from '../errors.js'
import { MAX_RECONNECT_DELAY_MS } from '../config/schema.js'
import { consoleLogger, debug, type RateLimitLogger } from '../observability/logger.js'
import { describeError } from '../observability/redact.js'
import { CONNECTION_NAME, createRedisClient, MAX_RETRIES_PER_REQUEST, type RedisClient } from './client-factory.js'
import { describeTarget, redisTargetFromEnv, type RedisTarget, type Topology } from './topology.js'
import { checkInjected, whenReady } from './injected-client.js'

export { CONNECTION_NAME, MAX_RETRIES_PER_REQUEST }
export type { RedisClient }

/** How the first connection is made. Later reconnects never give up. */
export interface RedisConnectOptions {
  /** Where `[Redis] ...` lines go. @default console */
  readonly logger?: RateLimitLogger
  /** Reconnect attempts allowed before the first successful connection. @default 3 */
  readonly connectRetries?: number
  /** How long the first connection may take in all, in ms. @default 10000 */
  readonly connectTimeoutMs?: number
  /**
   * Keep reconnecting even when the first connect fails (the limiters then start degraded and
   * switch to Redis when it appears). Without it, a failed first connect ends the client.
   * @default false
   */
  readonly persistent?: boolean
}

/** Retry lines are logged for the first attempts, then once a minute or so, not once a second for hours. */
const LOGGED_ATTEMPTS = 10
const LOG_EVERY_NTH_ATTEMPT = 60
const QUIT_TIMEOUT_MS = 1000

/** True when the environment names a Redis: REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES. */
export function redisConfiguredInEnv(): boolean {
  return ['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'].some((name) => (process.env[name] ?? '').trim() !== '')
}

/** The guide's back-off: 100, 200, 300 ... ms, capped (at 1 s, see MAX_RECONNECT_DELAY_MS). */
export function reconnectDelay(attempt: number): number {
  return Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS)
}

type Held =
  | { readonly kind: 'injected'; readonly client: Redis; readonly logger: RateLimitLogger }
  | {
      readonly kind: 'owned'
      readonly client: RedisClient
      readonly logger: RateLimitLogger
      readonly target: RedisTarget
      readonly ready: Promise<RedisClient>
      readonly abort: (error: RateLimitError) => void
      readonly persistent: boolean
    }

export class RedisConnection {
  #held: Held | undefined
  #closing: Promise<void> | undefined

  /**
   * The connected client. Without `url`, REDIS_URL is used. Concurrent callers share one connect;
   * a failed connect is torn down completely, so the next call starts afresh.
   */
  async get(url?: string, options: RedisConnectOptions = {}): Promise<RedisClient> {
    if (this.#closing !== undefined) {
      throw new RateLimitError(ERROR_CODES.REDIS_CLOSED, 'Redis connection is closing; no new connection is made')
    }
    const held = this.#held
    if (held?.kind === 'injected') {
      checkInjected(held.client, url)
      return whenReady(held.client, options.connectTimeoutMs ?? 10_000)
    }
    const source = url === undefined ? 'REDIS_URL' : 'redisUrl'
    const target = redisTargetFromEnv(process.env, url)
    if (target === undefined) {
      // No Redis named: the client this process already holds is the one meant.
      if (held !== undefined) return held.ready
      throw new RateLimitError(
        ERROR_CODES.REDIS_URL_MISSING,
        'Redis URL not provided. Set REDIS_URL environment variable.',
        { option: 'REDIS_URL' },
      )
    }
    if (held !== undefined) {
      if (describeTarget(held.target) !== describeTarget(target)) {
        throw new RateLimitError(
          ERROR_CODES.REDIS_CLIENT_CONFLICT,
          `${source} asks for ${describeTarget(target)}, but this process already uses ` +
            `${describeTarget(held.target)}; one process holds one Redis connection`,
          { option: source },
        )
      }
      // A persistent client may be connected by now although its first connect gave up.
      return held.client.status === 'ready' ? held.client : held.ready
    }
    return this.#connect(target, source, options)
  }

  /** Which topology the held client speaks to, if one is held (a handed-in client is 'standalone'). */
  topology(): Topology | undefined {
    const held = this.#held
    if (held === undefined) return undefined
    return held.kind === 'owned' ? held.target.kind : 'standalone'
  }

  /**
   * Like get(), but a Redis that is not there is not an error: resolves with the client once it
   * is ready, or once its first connect has used its retries or its timeout. The client then keeps
   * reconnecting until close(). Bad URLs and conflicts still throw.
   */
  async attach(url?: string, options: RedisConnectOptions = {}, retried = false): Promise<RedisClient> {
    try {
      return await this.get(url, { ...options, persistent: true })
    } catch (error) {
      const held = this.#held
      const timedOut = error instanceof RateLimitError && error.code === ERROR_CODES.REDIS_CONNECT_TIMEOUT
      if (timedOut && held !== undefined && (held.kind === 'injected' || held.persistent)) return held.client
      // We joined someone else's plain connect, which gave up and ended its client: start our own.
      if (timedOut && held === undefined && !retried) return this.attach(url, options, true)
      throw error
    }
  }

  /** Hands in a client made elsewhere (tests, custom options). The connection owns it from now on. */
  set(client: Redis, logger: RateLimitLogger = consoleLogger): void {
    if (this.#held !== undefined) {
      throw new RateLimitError(
        ERROR_CODES.REDIS_CLIENT_CONFLICT,
        'RedisClientManager already holds a client; call close() before handing in another',
      )
    }
    this.#held = { kind: 'injected', client, logger }
  }

  /** True when the held client was handed in with set(). */
  holdsInjected(): boolean {
    return this.#held?.kind === 'injected'
  }

  /** True once a client is held: connecting, connected or handed in. */
  holdsClient(): boolean {
    return this.#held !== undefined
  }

  /** True while the client is connected and ready for commands. */
  isConnected(): boolean {
    return this.#held?.client.status === 'ready'
  }

  /** Closes the client once; later and concurrent calls wait for the same close and log nothing. */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing
    const held = this.#held
    if (held === undefined) return Promise.resolve()
    this.#closing = this.#shutDown(held).finally(() => {
      if (this.#held === held) this.#held = undefined
      this.#closing = undefined
    })
    return this.#closing
  }

  async #shutDown(held: Held): Promise<void> {
    held.logger.info('[Redis] Closing connection...')
    if (held.kind === 'owned') {
      held.abort(new RateLimitError(ERROR_CODES.REDIS_CLOSED, 'Redis connection closed before it was ready'))
    }
    await quitOrDisconnect(held.client)
    held.logger.info('[Redis] Connection closed')
  }

  #connect(target: RedisTarget, source: string, options: RedisConnectOptions): Promise<RedisClient> {
    const logger = options.logger ?? consoleLogger
    const connectRetries = options.connectRetries ?? 3
    const timeoutMs = options.connectTimeoutMs ?? 10_000
    const persistent = options.persistent ?? false
    let everReady = false
    let gaveUp = (): void => {}
    let lastError: string | undefined
    let lastErrorObject: unknown

    const where = describeTarget(target)
    const password = target.kind === 'standalone' ? target.endpoint.password : target.password
    const secrets = [password, target.kind === 'sentinel' ? target.sentinelPassword : undefined]
    logger.info(`[Redis] Connecting (${target.kind}): ${where}`)
    if (target.tls?.rejectUnauthorized === false) {
      logger.warn('[Redis] REDIS_TLS_REJECT_UNAUTHORIZED=false: the Redis server certificate is not verified')
    }
    const client = createRedisClient(target, {
      connectTimeoutMs: timeoutMs,
      retryStrategy: (attempt: number) => {
        // Before the first success a bounded number of tries keeps boot short; afterwards an
        // outage never ends the client: it retries until Redis is back or the client is closed.
        if (!everReady && attempt === connectRetries + 1) {
          logger.error(
            persistent
              ? '[Redis] Max retry attempts reached: starting without Redis, still reconnecting'
              : '[Redis] Max retry attempts reached',
          )
          gaveUp()
        }
        if (!everReady && attempt > connectRetries && !persistent) return null
        const delay = reconnectDelay(attempt)
        if (attempt <= LOGGED_ATTEMPTS || attempt % LOG_EVERY_NTH_ATTEMPT === 0) {
          logger.warn(`[Redis] Retrying connection in ${delay}ms (attempt ${attempt})`)
        }
        return delay
      },
      // A master demoted to replica during a failover answers READONLY: reconnect, which finds
      // the new master. The failed command is not resent; its caller falls back.
      reconnectOnError: (error: Error) => /^READONLY\b/.test(error.message),
    })

    client.on('ready', () => {
      everReady = true
      lastError = undefined
      logger.info('[Redis] Client connected successfully')
    })
    client.on('error', (error: unknown) => {
      lastErrorObject = error
      const message = describeError(error, secrets)
      // ioredis reports a failed SELECT and then goes on in database 0: a wrong URL, not an outage.
      if (!everReady && target.kind === 'standalone' && /DB index is out of range/i.test(message)) {
        const { db, safeUrl } = target.endpoint
        abort(
          new RateLimitError(
            ERROR_CODES.REDIS_URL_INVALID,
            `${source} names database ${db}, which ${safeUrl.replace(/\/\d+$/, '')} does not have (${message})`,
            { option: source, cause: error },
          ),
        )
      }
      debug('redis error: %s', message)
      // One line per distinct failure until the next success, not one per reconnect attempt.
      if (message !== lastError) {
        lastError = message
        logger.error(`[Redis] Connection error: ${message}`)
      }
    })

    let abort: (error: RateLimitError) => void = () => {}
    let settled = false
    const ready = new Promise<RedisClient>((resolve, reject) => {
      const timer = setTimeout(() => fail(`no connection to ${where} within ${timeoutMs} ms`), timeoutMs)
      const onReady = (): void => {
        settled = true
        cleanup()
        resolve(client)
      }
      const onEnd = (): void => fail(`gave up on ${where} after ${connectRetries} retries (${lastError ?? 'no reply'})`)
      // A persistent client goes on reconnecting; only the wait for it ends here.
      gaveUp = () => {
        if (persistent) onEnd()
      }
      const cleanup = (): void => {
        clearTimeout(timer)
        client.off('ready', onReady)
        client.off('end', onEnd)
      }
      const fail = (why: string): void =>
        rejectWith(
          new RateLimitError(ERROR_CODES.REDIS_CONNECT_TIMEOUT, `Redis connection timeout: ${why}`, {
            option: source,
            cause: lastErrorObject,
          }),
        )
      const rejectWith = (error: RateLimitError): void => {
        // Only a connect still in progress can fail; a closed, connected client is close()'s job.
        if (settled) return
        settled = true
        cleanup()
        // Never leave a failed client reconnecting in the background, unless it is meant to.
        if (!persistent || error.code !== ERROR_CODES.REDIS_CONNECT_TIMEOUT) {
          client.disconnect()
          if (this.#held?.client === client) this.#held = undefined
        }
        reject(error)
      }
      abort = rejectWith
      client.once('ready', onReady)
      client.once('end', onEnd)
    })
    // Failures arrive through the events above; connect()'s own rejection carries nothing more.
    client.connect().catch(() => {})
    this.#held = { kind: 'owned', client, logger, target, ready, abort, persistent }
    debug('connecting to %s', where)
    return ready
  }
}

/**
 * Ends the client and resolves once its socket is closed, so that "Connection closed" is true when
 * logged. A ready client gets QUIT; one that does not answer within 1 s, or one that is not ready,
 * is disconnected. A client waiting to reconnect has no socket: cancelling its timer ends it.
 */
async function quitOrDisconnect(client: RedisClient): Promise<void> {
  if (client.status === 'end') return
  let timer: NodeJS.Timeout | undefined
  const ended = new Promise<void>((resolve) => {
    client.once('end', resolve)
    timer = setTimeout(resolve, 2 * QUIT_TIMEOUT_MS)
  })
  if (client.status === 'ready') {
    const quitTimer = setTimeout(() => client.disconnect(), QUIT_TIMEOUT_MS)
    await client.quit().catch(() => client.disconnect())
    clearTimeout(quitTimer)
  } else {
    client.disconnect()
  }
  if (client.status !== 'reconnecting') await ended
  clearTimeout(timer)
}
