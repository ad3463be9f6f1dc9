// Clients handed in from outside (setClient, the redisClient option): checked, and waited for.
import type { Redis } from 'ioredis'

import { ERROR_CODES, RateLimitError } from '../errors.js'
import { parseRedisUrl } from './url.js'

/** The part of an ioredis Redis or Cluster that waiting for it needs. */
export type ReadyClient = Pick<Redis, 'status' | 'once' | 'off'> & { connect(): Promise<unknown> }

/** A handed-in client serves every call, but an explicit URL for another server is a conflict, not a silent swap. */
export function checkInjected(client: Redis, url: string | undefined): void {
  if (url === undefined) return
  const endpoint = parseRedisUrl(url, 'redisUrl')
  const { host = 'localhost', port = 6379, db = 0 } = client.options
  const same = endpoint.port === port && endpoint.db === db && sameHost(endpoint.host, host)
  if (!same) {
    throw new RateLimitError(
      ERROR_CODES.REDIS_CLIENT_CONFLICT,
      `redisUrl asks for ${endpoint.safeUrl}, but the client handed to RedisClientManager.setClient ` +
        `connects to ${host}:${port}/${db}; one process holds one Redis connection`,
      { option: 'redisUrl' },
    )
  }
}

/** A client made elsewhere, connected: started if it is lazy, waited for if it is connecting. */
export async function whenReady<C extends ReadyClient>(client: C, timeoutMs: number): Promise<C> {
  if (client.status === 'ready') return client
  if (client.status === 'wait') client.connect().catch(() => undefined)
  await new Promise<void>((resolve, reject) => {
    const done = (error?: Error): void => {
      clearTimeout(timer)
      client.off('ready', onReady)
      client.off('end', onEnd)
      if (error) reject(error)
      else resolve()
    }
    const onReady = (): void => done()
    const onEnd = (): void => done(timeoutError('the handed-in client ended before it was ready'))
    const timer = setTimeout(
      () => done(timeoutError(`the handed-in client was not ready within ${timeoutMs} ms`)),
      timeoutMs,
    )
    client.once('ready', onReady)
    client.once('end', onEnd)
  })
  return client
}

const timeoutError = (why: string): RateLimitError =>
  new RateLimitError(ERROR_CODES.REDIS_CONNECT_TIMEOUT, `Redis connection timeout: ${why}`)

const LOCAL_NAMES = new Set(['localhost', '127.0.0.1', '::1'])
const sameHost = (a: string, b: string): boolean => a === b || (LOCAL_NAMES.has(a) && LOCAL_NAMES.has(b))
