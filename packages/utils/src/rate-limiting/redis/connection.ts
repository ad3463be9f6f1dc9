// Holds at most one ioredis client: connects it once, reconnects it forever, closes it once.
import type { Redis } from 'ioredis'

import { ERROR_CODES, RateLimitError } from '../errors.js'
import { consoleLogger, type RateLimitLogger } from '../observability/logger.js'
import { CONNECTION_NAME, MAX_RETRIES_PER_REQUEST, type RedisClient } from './client-factory.js'
import { FirstConnect } from './first-connect.js'
import { describeTarget, redisTargetFromEnv, type RedisTarget, type Topology } from './topology.js'
import { checkInjected, whenReady } from './injected-client.js'

export { CONNECTION_NAME, MAX_RETRIES_PER_REQUEST }
export { reconnectDelay } from './first-connect.js'
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

const QUIT_TIMEOUT_MS = 1000

/** True when the environment names a Redis: REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES. */
export function redisConfiguredInEnv(): boolean {
  return ['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'].some((name) => (process.env[name] ?? '').trim() !== '')
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
    const persistent = options.persistent ?? false
    const connect: FirstConnect = new FirstConnect({
      target,
      source,
      logger,
      connectRetries: options.connectRetries ?? 3,
      timeoutMs: options.connectTimeoutMs ?? 10_000,
      persistent,
      dropped: () => {
        if (this.#held?.client === connect.client) this.#held = undefined
      },
    })
    const { client, ready } = connect
    this.#held = { kind: 'owned', client, logger, target, ready, abort: (error) => connect.abort(error), persistent }
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
