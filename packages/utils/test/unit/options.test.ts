import express from 'express'
import request from 'supertest'
import { afterEach, describe, expect, it } from 'vitest'

import {
  createRateLimiter,
  createRateLimiters,
  DEFAULT_RATE_LIMIT_CONFIG,
  ERROR_CODES,
  RateLimitError,
  type RateLimitConfig,
  type RateLimiters,
} from '#src/index.js'
import { resolveConfig } from '#src/config/options.js'
import { recordingLogger } from '#test/support/logger.js'

const created: RateLimiters[] = []
afterEach(() => {
  for (const limiters of created.splice(0)) limiters.dispose()
})

async function rejectionOf(config: unknown): Promise<RateLimitError> {
  const error = await createRateLimiters({ logger: recordingLogger(), ...(config as RateLimitConfig) }).then(
    (limiters) => {
      created.push(limiters)
      throw new Error('expected createRateLimiters to reject')
    },
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(RateLimitError)
  return error as RateLimitError
}

describe('defaults', () => {
  it('are the guide’s: 15 minute window, 100 reads, 60 writes, prefix rate-limit', () => {
    expect(DEFAULT_RATE_LIMIT_CONFIG).toMatchObject({
      windowMs: 900_000,
      maxRead: 100,
      maxWrite: 60,
      maxCustom: 100,
      keyPrefix: 'rate-limit',
      legacyHeaders: false,
      onStoreError: 'fallback',
      instances: 1,
      requireRedis: false,
      storeTimeoutMs: 100,
    })
    expect(Object.isFrozen(DEFAULT_RATE_LIMIT_CONFIG)).toBe(true)
  })
})

describe('option checks', () => {
  it.each([
    ['maxRead', 0, 'a positive integer'],
    ['maxRead', -1, 'a positive integer'],
    ['maxRead', Number.NaN, 'a positive integer'],
    ['maxRead', 1.5, 'a positive integer'],
    ['maxRead', '100', 'a positive integer'],
    ['maxWrite', 0, 'a positive integer'],
    ['maxWrite', Number.POSITIVE_INFINITY, 'a positive integer'],
    ['maxCustom', -5, 'a positive integer'],
    ['windowMs', 0, 'an integer from 1000 to 2147483647'],
    ['windowMs', 999, 'an integer from 1000 to 2147483647'],
    ['windowMs', 2 ** 31, 'an integer from 1000 to 2147483647'],
    ['windowMs', 1500.5, 'an integer from 1000 to 2147483647'],
    ['keyPrefix', '', '1-64 characters'],
    ['keyPrefix', '   ', '1-64 characters'],
    ['keyPrefix', 'my service', '1-64 characters'],
    ['keyPrefix', 'a:b', 'no spaces or colons'],
    ['keyPrefix', 'x'.repeat(65), '1-64 characters'],
    ['message', '', 'a non-empty string'],
    ['message', 42, 'a non-empty string'],
    ['redisUrl', '', 'a redis:// or rediss:// URL'],
    ['redisClient', {}, 'a client with a call'],
    ['redisRetries', -1, 'an integer from 0 to 20'],
    ['redisRetries', 21, 'an integer from 0 to 20'],
    ['redisRetryDelay', -1, 'an integer from 0 to 60000'],
    ['legacyHeaders', 'yes', 'true or false'],
    ['logger', { info() {} }, 'info, warn and error functions'],
    ['onStoreError', 'ignore', 'one of fallback, allow, deny'],
    ['instances', 0, 'an integer from 1 to 10000'],
    ['instances', 2.5, 'an integer from 1 to 10000'],
    ['requireRedis', 'true', 'true or false'],
    ['storeTimeoutMs', 0, 'an integer from 1 to 10000'],
    ['skip', true, 'a function (request) => boolean'],
    ['shadow', 'true', 'true or false'],
    ['auditLog', 1, 'true or false'],
    ['metricsRegistry', {}, 'a prom-client Registry'],
    ['metricsRegistry', 'default', 'a prom-client Registry'],
    ['metricsNamespace', '', '1-64 characters from A-Z a-z 0-9 . _ -'],
    ['metricsNamespace', 'a b', '1-64 characters from A-Z a-z 0-9 . _ -'],
    ['metricsNamespace', 7, '1-64 characters from A-Z a-z 0-9 . _ -'],
  ])('refuses %s = %o, naming the option, the value and what is allowed', async (option, value, allowed) => {
    const error = await rejectionOf({ [option]: value })
    expect(error.code).toBe(ERROR_CODES.INVALID_OPTION)
    expect(error.option).toBe(option)
    expect(error.message).toContain(`${option} must be`)
    expect(error.message).toContain(allowed)
    expect(error.message).toMatch(/, got /)
  })

  it('shows the bad value in the message', async () => {
    expect((await rejectionOf({ maxRead: 0 })).message).toBe(
      'maxRead must be a positive integer, or a function (request) => number, got 0',
    )
    expect((await rejectionOf({ keyPrefix: 'a b' })).message).toContain('got "a b"')
  })

  it('refuses an unknown option key, so a typo never passes silently', async () => {
    const error = await rejectionOf({ maxReads: 10 })
    expect(error.code).toBe(ERROR_CODES.UNKNOWN_OPTION)
    expect(error.option).toBe('maxReads')
    expect(error.message).toContain('Unknown option "maxReads"')
    expect(error.message).toContain('maxRead')
  })

  it('treats undefined values as absent and applies the defaults', async () => {
    const limiters = await createRateLimiters({
      maxRead: undefined,
      windowMs: undefined,
      keyPrefix: 'undef',
      logger: recordingLogger(),
    })
    created.push(limiters)
    const app = express().get('/', limiters.read, (_req, res) => res.end())
    const res = await request(app).get('/').expect(200)
    expect(res.headers['ratelimit-policy']).toMatch(/^"read"; q=100; w=900;/)
  })

  it('refuses redisClient together with redisUrl: only one may say where Redis is', async () => {
    const error = await rejectionOf({ redisClient: { call: () => Promise.resolve(null) }, redisUrl: 'redis://h:6379' })
    expect(error.code).toBe(ERROR_CODES.INVALID_OPTION)
    expect(error.option).toBe('redisClient')
  })

  it('checks redisUrl at creation even when a client is handed in', async () => {
    const error = await rejectionOf({ redisUrl: 'garbage://x' })
    expect(error.code).toBe(ERROR_CODES.REDIS_URL_INVALID)
    expect(error.message).toMatch(/^redisUrl has unsupported scheme "garbage:"/)
  })

  it('never prints a password from a bad redisUrl', async () => {
    const error = await rejectionOf({ redisUrl: 'http://user:hunter2@host:6379' })
    expect(error.code).toBe(ERROR_CODES.REDIS_URL_INVALID)
    expect(error.message).toContain('redisUrl')
    expect(error.message).not.toContain('hunter2')
  })

  it('warns once that redisRetryDelay is ignored', async () => {
    const logger = recordingLogger()
    const limiters = await createRateLimiters({ keyPrefix: 'delay', redisRetryDelay: 1000, logger })
    created.push(limiters)
    expect(logger.lines.filter((l) => l.level === 'warn').map((l) => l.message)).toEqual([
      '[RateLimit] redisRetryDelay is deprecated and ignored: reconnect delays are min(attempt * 100, 1000) ms',
    ])
  })
})

describe("express-rate-limit's option names", () => {
  it.each([
    [true, 'allow'],
    [false, 'deny'],
  ] as const)('maps passOnStoreError %s onto onStoreError %s', (passOnStoreError, onStoreError) => {
    expect(resolveConfig({ passOnStoreError }).onStoreError).toBe(onStoreError)
  })

  it('gives limit to every max not given its own', () => {
    expect(resolveConfig({ limit: 7, maxWrite: 3 })).toMatchObject({ maxRead: 7, maxWrite: 3, maxCustom: 7 })
    expect(resolveConfig({ max: 9 })).toMatchObject({ maxRead: 9, maxWrite: 9, maxCustom: 9 })
  })

  it.each([
    [{ limit: 1, max: 2 }, 'max', 'max must be left out when limit is given (max is its older name), got 2'],
    [
      { passOnStoreError: true, onStoreError: 'fallback' },
      'passOnStoreError',
      'passOnStoreError must be left out when onStoreError is given (it is its express-rate-limit name), got true',
    ],
    [
      { problemDetails: true, message: { error: 'x' } },
      'message',
      'message must be a string with problemDetails (it is the detail), got an object',
    ],
    [{ statusCode: 200 }, 'statusCode', 'statusCode must be an integer from 400 to 599, got 200'],
    [
      { identifier: 'api', limitsRead: [{ max: 1, windowMs: 1000 }] },
      'identifier',
      'identifier must be used without limitsRead: name each limit there ({ name, max, windowMs }), got "api"',
    ],
    [
      { requestPropertyName: '1st' },
      'requestPropertyName',
      'requestPropertyName must be 1-64 letters, digits, _ and $, not starting with a digit, got "1st"',
    ],
    [
      { standardHeaders: 'draft-9' },
      'standardHeaders',
      `standardHeaders must be 'draft-8', 'draft-7', 'draft-6', true (draft-6) or false (none), got "draft-9"`,
    ],
    [
      { message: '' },
      'message',
      'message must be a non-empty string, an object (the body), or a function (request, response) => string | object, got ""',
    ],
  ] as const)('refuses %j', async (config, option, message) => {
    const error = await rejectionOf(config)
    expect(error).toMatchObject({ code: ERROR_CODES.INVALID_OPTION, option, message })
  })
})

describe('name', () => {
  it.each(['', 'a:b', '{tag}', 'read#fw', 'x'.repeat(33), 'café', undefined, 7])(
    'refuses name %o with ERR_RATE_LIMIT_INVALID_TYPE',
    async (name) => {
      const error = await createRateLimiter(name as never, { logger: recordingLogger() }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(RateLimitError)
      expect((error as RateLimitError).code).toBe(ERROR_CODES.INVALID_TYPE)
      expect((error as RateLimitError).message).toMatch(
        /^name must be read, write, custom or another 1 to 32 letters, digits, '_', '-' or '\.', got /,
      )
    },
  )
})

describe('errors', () => {
  it('are RateLimitError with name, code and option', async () => {
    const error = await rejectionOf({ maxWrite: 0 })
    expect(error.name).toBe('RateLimitError')
    expect(error).toBeInstanceOf(Error)
    expect(error.code).toBe('ERR_RATE_LIMIT_INVALID_OPTION')
  })
})
