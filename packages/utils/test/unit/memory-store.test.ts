import request from 'supertest'
import { afterEach, describe, expect, it, vi } from 'vitest'

import { createRateLimiter, createRateLimiters, ERROR_CODES, RateLimitError } from '#src/index.js'
import { createApp } from '#test/support/app.js'
import { describeLimiterContract, uniquePrefix } from '#test/support/limiter-contract.js'
import { recordingLogger } from '#test/support/logger.js'
import { freePort } from '#test/support/ports.js'

describeLimiterContract('MemoryStore', {
  storeLine: 'Using MemoryStore (single-instance mode)',
  options: () => ({}),
})

describe('store choice without Redis', () => {
  it('uses MemoryStore for both limiters when no Redis URL or client is configured', async () => {
    vi.stubEnv('REDIS_URL', '')
    const logger = recordingLogger()
    const limiters = await createRateLimiters({ keyPrefix: uniquePrefix(), logger })
    limiters.dispose()
    vi.unstubAllEnvs()
    expect(logger.messages()).toEqual([
      '[RateLimit:read] Using MemoryStore (single-instance mode)',
      '[RateLimit:write] Using MemoryStore (single-instance mode)',
    ])
  })
})

describe('default logger', () => {
  it('writes the store lines to the console', async () => {
    vi.stubEnv('REDIS_URL', '')
    const info = vi.spyOn(console, 'info').mockImplementation(() => {})
    try {
      const limiters = await createRateLimiters({ keyPrefix: uniquePrefix() })
      limiters.dispose()
      expect(info.mock.calls).toEqual([
        ['[RateLimit:read] Using MemoryStore (single-instance mode)'],
        ['[RateLimit:write] Using MemoryStore (single-instance mode)'],
      ])
    } finally {
      info.mockRestore()
      vi.unstubAllEnvs()
    }
  })
})

describe('windowMs', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('lets a client in again once its window has passed', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    const limiters = await createRateLimiters({
      keyPrefix: uniquePrefix(),
      maxRead: 2,
      windowMs: 60_000,
      logger: recordingLogger(),
    })
    const app = createApp(limiters)
    await request(app).get('/items').expect(200)
    await request(app).get('/items').expect(200)
    await request(app).get('/items').expect(429)
    vi.advanceTimersByTime(59_000)
    await request(app).get('/items').expect(429)
    vi.advanceTimersByTime(1_001)
    const res = await request(app).get('/items').expect(200)
    expect(res.body.rateLimit).toMatchObject({ used: 1, remaining: 1 })
    limiters.dispose()
  })

  it('reports the window in RateLimit-Policy', async () => {
    const limiters = await createRateLimiters({
      keyPrefix: uniquePrefix(),
      windowMs: 120_000,
      logger: recordingLogger(),
    })
    const res = await request(createApp(limiters)).get('/items').expect(200)
    expect(res.headers['ratelimit-policy']).toMatch(/; w=120;/)
    limiters.dispose()
  })
})

describe('keyPrefix', () => {
  it('refuses a second limiter set with the same prefix in one process, because it would double count', async () => {
    const keyPrefix = uniquePrefix()
    const first = await createRateLimiters({ keyPrefix, logger: recordingLogger() })
    const error = await createRateLimiters({ keyPrefix, logger: recordingLogger() }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(RateLimitError)
    expect((error as RateLimitError).code).toBe(ERROR_CODES.DUPLICATE_PREFIX)
    expect((error as RateLimitError).message).toContain(`keyPrefix "${keyPrefix}" already has a read limiter`)
    first.dispose()
  })

  it('refuses a single limiter whose prefix and type a set already holds', async () => {
    const keyPrefix = uniquePrefix()
    const set = await createRateLimiters({ keyPrefix, logger: recordingLogger() })
    await expect(createRateLimiter('write', { keyPrefix, logger: recordingLogger() })).rejects.toMatchObject({
      code: ERROR_CODES.DUPLICATE_PREFIX,
    })
    const custom = await createRateLimiter('custom', { keyPrefix, logger: recordingLogger() })
    custom.dispose()
    set.dispose()
  })

  it('frees the prefix on dispose()', async () => {
    const keyPrefix = uniquePrefix()
    ;(await createRateLimiters({ keyPrefix, logger: recordingLogger() })).dispose()
    const again = await createRateLimiters({ keyPrefix, logger: recordingLogger() })
    again.dispose()
    again.dispose()
  })

  it('frees the prefix when creation fails, so a corrected retry works', async () => {
    const keyPrefix = uniquePrefix()
    await expect(
      createRateLimiters({
        keyPrefix,
        redisUrl: `redis://127.0.0.1:${await freePort()}`,
        redisRetries: 0,
        requireRedis: true,
        logger: recordingLogger(),
      }),
    ).rejects.toMatchObject({ code: ERROR_CODES.REDIS_CONNECT_TIMEOUT })
    const ok = await createRateLimiters({ keyPrefix, logger: recordingLogger() })
    ok.dispose()
  })
})
