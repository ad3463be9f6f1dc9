// Limiter sets counting in ioredis-mock, for unit tests: each test's sets are disposed after it.
import RedisMock from 'ioredis-mock'
import { afterEach } from 'vitest'

import { createRateLimiters, type RateLimitConfig, type RateLimiters } from '#src/index.js'
import { createIoredisMockAdapter } from '#src/testing/index.js'
import { uniquePrefix } from './limiter-contract.js'
import { recordingLogger } from './logger.js'

export interface MockLimiters {
  /** The ioredis-mock the sets count in, for looking at keys and TTLs. */
  readonly mock: InstanceType<typeof RedisMock>
  /** A set on the mock, with a fresh prefix (`name` in it) and a quiet logger unless `options` say otherwise. */
  create(name?: string, options?: RateLimitConfig): Promise<RateLimiters & { readonly keyPrefix: string }>
}

/** Call inside a describe: the sets it creates are disposed after each test. */
export function mockLimiters(mock = new RedisMock()): MockLimiters {
  const made: RateLimiters[] = []
  afterEach(() => {
    for (const limiters of made.splice(0)) limiters.dispose()
  })
  return {
    mock,
    async create(name, options = {}) {
      const keyPrefix = uniquePrefix(name)
      const limiters = await createRateLimiters({
        keyPrefix,
        redisClient: createIoredisMockAdapter(mock),
        logger: recordingLogger(),
        ...options,
      })
      made.push(limiters)
      return Object.assign(limiters, { keyPrefix })
    },
  }
}
