// Clients over their limit are answered from memory, with the very same 429, until their reset.
import express from 'express'
import request from 'supertest'
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest'

import { BLOCKED_RECHECK_MS, BlockedKeys, MAX_BLOCKED_KEYS } from '#src/limiter/blocked-keys.js'
import { createRateLimiters, type RateLimitConfig, type RateLimiters } from '#src/index.js'
import { createApp } from '#test/support/app.js'
import { waitFor } from '#test/support/http.js'
import { uniquePrefix } from '#test/support/limiter-contract.js'
import { recordingLogger } from '#test/support/logger.js'

const created: RateLimiters[] = []
afterEach(() => {
  for (const limiters of created.splice(0)) limiters.dispose()
})

async function limiters(config: RateLimitConfig = {}) {
  const made = await createRateLimiters({ keyPrefix: uniquePrefix('blocked'), logger: recordingLogger(), ...config })
  created.push(made)
  return made
}

/** What a client sees of a 429: status, body and the rate-limit headers (t and Retry-After may tick by 1 s). */
function seen(res: request.Response) {
  return {
    status: res.status,
    body: res.body as unknown,
    contentType: res.headers['content-type'],
    ratelimit: res.headers['ratelimit'],
    policy: res.headers['ratelimit-policy'],
    retryAfter: res.headers['retry-after'],
    legacy: [res.headers['x-ratelimit-limit'], res.headers['x-ratelimit-remaining'], res.headers['x-ratelimit-reset']],
    etag: res.headers['etag'],
  }
}

describe('BlockedKeys', () => {
  it('forgets a key when its reset has passed', () => {
    let now = 1000
    const keys = new BlockedKeys(() => now)
    keys.block('a', 2000, 5)
    expect(keys.get('a')).toEqual({ resetMs: 2000, limit: 5 })
    now = 2000
    expect(keys.get('a')).toBeUndefined()
    expect(keys.size).toBe(0)
  })

  it(`asks the store again after ${BLOCKED_RECHECK_MS} ms, so a reset elsewhere in the fleet is seen within that`, () => {
    let now = 0
    const keys = new BlockedKeys(() => now)
    keys.block('a', 600_000, 5)
    now = BLOCKED_RECHECK_MS - 1
    expect(keys.get('a')).toBeDefined()
    // Due: this one request goes to the store; the next ones are still answered from memory.
    now = BLOCKED_RECHECK_MS
    expect(keys.get('a')).toBeUndefined()
    expect(keys.get('a')).toBeDefined()
    now = 2 * BLOCKED_RECHECK_MS - 1
    expect(keys.get('a')).toBeDefined()
    now = 2 * BLOCKED_RECHECK_MS
    expect(keys.get('a')).toBeUndefined()
  })

  it(`holds at most ${MAX_BLOCKED_KEYS} keys, making room from expired ones at most once a second`, () => {
    let now = 0
    const keys = new BlockedKeys(() => now)
    for (let i = 0; i < MAX_BLOCKED_KEYS; i++) keys.block(`k${i}`, i < 10 ? 500 : 60_000, 1)
    keys.block('late', 60_000, 1)
    expect(keys.get('late')).toBeUndefined()
    now = 600
    keys.block('later', 60_000, 1)
    // The sweep ran at 0 when 'late' did not fit; the next may run a second later.
    expect(keys.get('later')).toBeUndefined()
    now = 1000
    keys.block('latest', 60_000, 1)
    expect(keys.get('latest')).toBeDefined()
    expect(keys.size).toBe(MAX_BLOCKED_KEYS - 10 + 1)
  })
})

describe('a blocked client', () => {
  it.each([false, true])(
    'gets the same 429 from memory as from the store (legacyHeaders %s), without an ETag',
    async (legacyHeaders) => {
      const { read } = await limiters({ maxRead: 2, legacyHeaders })
      const app = createApp({ read, write: read })
      await request(app).get('/items').expect(200)
      await request(app).get('/items').expect(200)
      const fromStore = seen(await request(app).get('/items'))
      const fromMemory = seen(await request(app).get('/items'))
      expect(fromStore.status).toBe(429)
      expect(fromStore.etag).toBeUndefined()
      expect(fromMemory).toEqual(fromStore)
    },
  )

  it('is not counted by the store again until its reset', async () => {
    const { read } = await limiters({ maxRead: 1 })
    const app = createApp({ read, write: read })
    await request(app).get('/items').expect(200)
    for (let i = 0; i < 20; i++) await request(app).get('/items').expect(429)
    // The store saw the first rejection only: 2 hits, not 21.
    expect(await read.getKey('127.0.0.1')).toMatchObject({ totalHits: 2 })
  })

  it('is unblocked at once by resetKey', async () => {
    const { read } = await limiters({ maxRead: 1 })
    const app = createApp({ read, write: read })
    await request(app).get('/items').expect(200)
    await request(app).get('/items').expect(429)
    // In memory the reset is done when resetKey returns; the promise is the same type as on Redis.
    const reset = read.resetKey('127.0.0.1')
    expectTypeOf(reset).toEqualTypeOf<Promise<void>>()
    await request(app).get('/items').expect(200)
    await expect(reset).resolves.toBeUndefined()
  })

  it('is let through again when its window resets', async () => {
    const { read } = await limiters({ maxRead: 1, windowMs: 1000 })
    let resetTime: Date | undefined
    const app = createApp({ read, write: read }, (rateLimit, status) => {
      if (status === 429) resetTime = (rateLimit as { resetTime: Date }).resetTime
    })
    const start = Date.now()
    await request(app).get('/items').expect(200)
    await request(app).get('/items').expect(429)
    expect(resetTime!.getTime()).toBeGreaterThanOrEqual(start + 1000)
    expect(resetTime!.getTime()).toBeLessThanOrEqual(Date.now() + 1000)
    await request(app).get('/items').expect(429)
    // The clock is the condition: the block lasts until the reset its 429 gave, and no longer.
    await waitFor('the reset time the 429 gave', () => Date.now() >= resetTime!.getTime())
    await request(app).get('/items').expect(200)
  })

  it('is never remembered in shadow mode, which never blocks', async () => {
    const { read } = await limiters({ maxRead: 1, shadow: true })
    const app = express()
    app.get('/items', read, (_req, res) => void res.json({ ok: true }))
    for (let i = 0; i < 5; i++) await request(app).get('/items').expect(200)
    expect(await read.getKey('127.0.0.1')).toMatchObject({ totalHits: 5 })
  })
})
