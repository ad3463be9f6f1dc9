// RedisConnection without a server: URL handling, and a first connect that cannot succeed.
import { Redis } from 'ioredis'
import { afterEach, describe, expect, it, vi } from 'vitest'

import { ERROR_CODES, RedisClientManager } from '#src/index.js'
import { reconnectDelay, RedisConnection } from '#src/redis/connection.js'
import { recordingLogger } from '#test/support/logger.js'
import { freePort } from '#test/support/ports.js'

afterEach(() => {
  vi.unstubAllEnvs()
})

describe('reconnectDelay', () => {
  it('grows by 100 ms per attempt and caps at 1 s, so recovery takes at most about 1 s', () => {
    expect([1, 2, 3, 9, 10, 11, 1000].map(reconnectDelay)).toEqual([100, 200, 300, 900, 1000, 1000, 1000])
  })
})

describe('RedisConnection.get', () => {
  it('without an argument or REDIS_URL, throws the original message', async () => {
    vi.stubEnv('REDIS_URL', '')
    await expect(new RedisConnection().get()).rejects.toMatchObject({
      code: ERROR_CODES.REDIS_URL_MISSING,
      message: 'Redis URL not provided. Set REDIS_URL environment variable.',
    })
  })

  it('names REDIS_URL when the environment holds a malformed URL, without its password', async () => {
    vi.stubEnv('REDIS_URL', 'redis//:hunter2@host')
    const error = await new RedisConnection().get().catch((e: unknown) => e)
    expect(error).toMatchObject({ code: ERROR_CODES.REDIS_URL_INVALID, option: 'REDIS_URL' })
    expect((error as Error).message).toMatch(/^REDIS_URL /)
    expect((error as Error).message).not.toContain('hunter2')
  })

  it('retries 100, 200, 300 ms, then gives up the first connect with "Redis connection timeout"', async () => {
    const logger = recordingLogger()
    const port = await freePort()
    const connection = new RedisConnection()
    const error = await connection.get(`redis://:hunter2@127.0.0.1:${port}`, { logger }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: ERROR_CODES.REDIS_CONNECT_TIMEOUT })
    expect((error as Error).message).toMatch(
      /^Redis connection timeout: gave up on redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ after 3 retries/,
    )
    expect(logger.messages().filter((m) => m.startsWith('[Redis] Retrying'))).toEqual([
      '[Redis] Retrying connection in 100ms (attempt 1)',
      '[Redis] Retrying connection in 200ms (attempt 2)',
      '[Redis] Retrying connection in 300ms (attempt 3)',
    ])
    expect(logger.messages()).toContain('[Redis] Max retry attempts reached')
    expect(logger.messages().filter((m) => m.startsWith('[Redis] Connection error:'))).toHaveLength(1)
    expect(logger.text()).not.toContain('hunter2')
    expect((error as Error).message).not.toContain('hunter2')
    expect(connection.holdsClient()).toBe(false)
    expect(connection.isConnected()).toBe(false)
  })

  it('retries exactly connectRetries times before giving up', async () => {
    const logger = recordingLogger()
    await expect(
      new RedisConnection().get(`redis://127.0.0.1:${await freePort()}`, { logger, connectRetries: 2 }),
    ).rejects.toMatchObject({ code: ERROR_CODES.REDIS_CONNECT_TIMEOUT, cause: expect.any(Error) })
    expect(logger.messages().filter((m) => m.startsWith('[Redis] Retrying'))).toHaveLength(2)
  })

  it('gives up after connectTimeoutMs even if retries remain', async () => {
    const connection = new RedisConnection()
    const error = await connection
      .get(`redis://127.0.0.1:${await freePort()}`, {
        logger: recordingLogger(),
        connectRetries: 20,
        connectTimeoutMs: 250,
      })
      .catch((e: unknown) => e)
    expect(error).toMatchObject({ code: ERROR_CODES.REDIS_CONNECT_TIMEOUT })
    expect((error as Error).message).toMatch(/within 250 ms/)
    expect(connection.holdsClient()).toBe(false)
  })

  it('rejects a waiting caller with ERR_REDIS_CLOSED when close() comes first', async () => {
    const logger = recordingLogger()
    const connection = new RedisConnection()
    const pending = connection.get(`redis://127.0.0.1:${await freePort()}`, { logger, connectRetries: 20 })
    await connection.close()
    await expect(pending).rejects.toMatchObject({ code: ERROR_CODES.REDIS_CLOSED })
    expect(logger.messages().filter((m) => /Closing connection|Connection closed/.test(m))).toEqual([
      '[Redis] Closing connection...',
      '[Redis] Connection closed',
    ])
  })
})

describe('RedisConnection.set', () => {
  it('refuses an explicit URL for another server than the handed-in client', async () => {
    const connection = new RedisConnection()
    const client = new Redis({ lazyConnect: true, host: '127.0.0.1', port: 6390 })
    connection.set(client, recordingLogger())
    // The check comes first, so this lazy client never connects anywhere.
    await expect(connection.get('redis://127.0.0.1:6391')).rejects.toMatchObject({
      code: ERROR_CODES.REDIS_CLIENT_CONFLICT,
    })
    await connection.close()
  })

  it('refuses a second client while one is held, and takes one again after close()', async () => {
    const connection = new RedisConnection()
    const lazy = (): Redis => new Redis({ lazyConnect: true, port: 1 })
    const first = lazy()
    connection.set(first, recordingLogger())
    expect(connection.holdsClient()).toBe(true)
    expect(() => connection.set(lazy())).toThrow(expect.objectContaining({ code: ERROR_CODES.REDIS_CLIENT_CONFLICT }))
    await connection.close()
    expect(first.status).toBe('end')
    connection.set(lazy(), recordingLogger())
    await connection.close()
  })
})

describe('RedisClientManager', () => {
  it('cannot be constructed, only used through its static methods', () => {
    const Manager = RedisClientManager as unknown as new () => unknown
    expect(() => new Manager()).toThrow('RedisClientManager has only static methods')
    expect(RedisClientManager.isConnected()).toBe(false)
  })

  it('close() without a client does nothing and logs nothing', async () => {
    await expect(RedisClientManager.close()).resolves.toBeUndefined()
  })
})
