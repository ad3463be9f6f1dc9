import { describe, expect, it } from 'vitest'

import { ERROR_CODES, rateLimitConfigFromEnv, RateLimitError } from '#src/index.js'

function errorFor(env: Record<string, string>): RateLimitError {
  try {
    rateLimitConfigFromEnv(env)
  } catch (error) {
    expect(error).toBeInstanceOf(RateLimitError)
    return error as RateLimitError
  }
  throw new Error('expected rateLimitConfigFromEnv to throw')
}

describe('rateLimitConfigFromEnv', () => {
  it('returns nothing for an empty environment, so defaults apply', () => {
    expect(rateLimitConfigFromEnv({})).toEqual({})
  })

  it('treats blank variables as unset', () => {
    expect(rateLimitConfigFromEnv({ REDIS_URL: '', RATE_LIMIT_READ_MAX: '  ' })).toEqual({})
  })

  it('reads every variable', () => {
    expect(
      rateLimitConfigFromEnv({
        REDIS_URL: 'redis://:pw@localhost:6379',
        RATE_LIMIT_WINDOW_MS: '60000',
        RATE_LIMIT_READ_MAX: '500',
        RATE_LIMIT_WRITE_MAX: ' 200 ',
      }),
    ).toEqual({ redisUrl: 'redis://:pw@localhost:6379', windowMs: 60_000, maxRead: 500, maxWrite: 200 })
  })

  it('reads the Redis-failure settings', () => {
    expect(
      rateLimitConfigFromEnv({
        RATE_LIMIT_ON_STORE_ERROR: 'deny',
        RATE_LIMIT_INSTANCES: '3',
        RATE_LIMIT_REQUIRE_REDIS: 'TRUE',
        RATE_LIMIT_STORE_TIMEOUT_MS: '100',
      }),
    ).toEqual({ onStoreError: 'deny', instances: 3, requireRedis: true, storeTimeoutMs: 100 })
    expect(rateLimitConfigFromEnv({ RATE_LIMIT_REQUIRE_REDIS: '0' })).toEqual({ requireRedis: false })
  })

  it('reads shadow mode', () => {
    expect(rateLimitConfigFromEnv({ RATE_LIMIT_SHADOW: 'true' })).toEqual({ shadow: true })
    expect(rateLimitConfigFromEnv({ RATE_LIMIT_SHADOW: '0' })).toEqual({ shadow: false })
  })

  it.each([
    ['RATE_LIMIT_READ_MAX', 'abc', 'a positive integer'],
    ['RATE_LIMIT_READ_MAX', '0', 'a positive integer'],
    ['RATE_LIMIT_READ_MAX', '-5', 'a positive integer'],
    ['RATE_LIMIT_READ_MAX', '1.5', 'a positive integer'],
    ['RATE_LIMIT_READ_MAX', '1e3', 'a positive integer'],
    ['RATE_LIMIT_READ_MAX', '99999999999999999999', 'a positive integer'],
    ['RATE_LIMIT_WRITE_MAX', '0x10', 'a positive integer'],
    ['RATE_LIMIT_WINDOW_MS', '999', 'an integer from 1000 to 2147483647'],
    ['RATE_LIMIT_WINDOW_MS', '2147483648', 'an integer from 1000 to 2147483647'],
    ['RATE_LIMIT_WINDOW_MS', '15m', 'an integer from 1000 to 2147483647'],
    ['RATE_LIMIT_ON_STORE_ERROR', 'ignore', 'one of fallback, allow, deny'],
    ['RATE_LIMIT_INSTANCES', '0', 'an integer from 1 to 10000'],
    ['RATE_LIMIT_INSTANCES', '10001', 'an integer from 1 to 10000'],
    ['RATE_LIMIT_REQUIRE_REDIS', 'yes', 'true or false'],
    ['RATE_LIMIT_STORE_TIMEOUT_MS', '0', 'an integer from 1 to 10000'],
    ['RATE_LIMIT_SHADOW', 'maybe', 'true or false'],
  ])('refuses %s=%s, naming the variable, the value and what it accepts', (name, value, allowed) => {
    const error = errorFor({ [name]: value })
    expect(error.code).toBe(ERROR_CODES.INVALID_ENV)
    expect(error.option).toBe(name)
    expect(error.message).toBe(`${name} must be ${allowed}, got ${JSON.stringify(value)}`)
  })

  it('refuses a malformed REDIS_URL without printing its password', () => {
    const error = errorFor({ REDIS_URL: 'redis//:hunter2@host:6379' })
    expect(error.code).toBe(ERROR_CODES.REDIS_URL_INVALID)
    expect(error.message).toMatch(/^REDIS_URL /)
    expect(error.message).not.toContain('hunter2')
  })
})
