// A published community store, rate-limit-memcached, on a real memcached that this file starts and
// stops: counted through it under the limiter's prefix, shared by two limiter sets as by two
// processes, and through a memcached crash, decided by the fallback, then counted in it again.
import { MemcachedStore } from 'rate-limit-memcached'
import request from 'supertest'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createRateLimiters } from '#src/index.js'
import { createApp } from '#test/support/app.js'
import { waitFor } from '#test/support/http.js'
import { uniquePrefix } from '#test/support/limiter-contract.js'
import { recordingLogger } from '#test/support/logger.js'
import { memcachedAvailable, startMemcached, type TestMemcached } from '#test/support/memcached-server.js'

describe.runIf(memcachedAvailable())('rate-limit-memcached as the store, on a real memcached', () => {
  let memcached: TestMemcached
  beforeAll(async () => {
    memcached = await startMemcached()
  })
  afterAll(async () => {
    await memcached?.stop()
  })

  /** The store as its README makes it, with a client that reconnects within a second of a restart. */
  const storeOn = (location: string) =>
    new MemcachedStore({ locations: [location], config: { retry: 200, retries: 0, timeout: 1000, remove: false } })

  const setUp = async (keyPrefix = uniquePrefix('mc'), maxRead = 3) => {
    const logger = recordingLogger()
    const limiters = await createRateLimiters({ keyPrefix, store: storeOn(memcached.location), logger, maxRead })
    return { limiters, logger, keyPrefix, app: createApp(limiters) }
  }
  const statuses = async (app: ReturnType<typeof createApp>, n: number, client: string) => {
    const seen: number[] = []
    for (let i = 0; i < n; i++) seen.push((await request(app).get('/items').set('X-Forwarded-For', client)).status)
    return seen
  }

  it('counts a client in memcached, and two sets on the same prefix share its budget as two processes would', async () => {
    const keyPrefix = uniquePrefix('mc')
    const first = await setUp(keyPrefix)
    expect(await statuses(first.app, 2, '10.9.1.1')).toEqual([200, 200])
    first.limiters.dispose()
    const second = await setUp(keyPrefix)
    try {
      expect(await statuses(second.app, 2, '10.9.1.1')).toEqual([200, 429])
      expect(second.limiters.status()).toMatchObject({ store: 'custom', ready: true, state: 'custom' })
    } finally {
      second.limiters.dispose()
    }
  })

  it('decides by the fallback while memcached is down, then counts in it again once it is back', async () => {
    const { app, limiters, logger, keyPrefix } = await setUp(uniquePrefix('mc'), 1000)
    try {
      expect(await statuses(app, 1, '10.9.2.1')).toEqual([200])
      const port = memcached.port
      await memcached.kill()
      await waitFor('the circuit to open', async () => {
        const started = performance.now()
        expect((await request(app).get('/items').set('X-Forwarded-For', '10.9.2.1')).status).toBe(200)
        // Never waited on: the deadline (storeTimeoutMs) or the open circuit answers first.
        expect(performance.now() - started).toBeLessThan(1000)
        return !limiters.status().ready
      })
      expect(logger.messages()).toContainEqual(
        expect.stringMatching(new RegExp(`^\\[RateLimit\\] ${keyPrefix}: Store unavailable \\(`)),
      )
      memcached = await startMemcached(port)
      await waitFor('the store to be used again', () => limiters.status().ready, 10_000)
      expect(await statuses(app, 1, '10.9.2.1')).toEqual([200])
      expect(logger.messages()).toContainEqual(
        expect.stringMatching(new RegExp(`^\\[RateLimit\\] ${keyPrefix}: Store back after \\d+\\.\\d s`)),
      )
    } finally {
      limiters.dispose()
    }
  })
})
