// The `store` option: an express-rate-limit Store of the user's, behind our deadline, circuit and
// fallback, with its keys under the limiter's prefix. Here on express-rate-limit's own MemoryStore,
// wrapped so that it can be made to hang or fail; a published community store on a real memcached
// is in integration/memcached-store.test.ts.
import { MemoryStore, type IncrementResponse, type Store } from 'express-rate-limit'
import request from 'supertest'
import { afterEach, describe, expect, it } from 'vitest'

import { createRateLimiters, ERROR_CODES, type RateLimitConfig, type RateLimiters } from '#src/index.js'
import { createApp } from '#test/support/app.js'
import { waitFor } from '#test/support/http.js'
import { uniquePrefix } from '#test/support/limiter-contract.js'
import { recordingLogger } from '#test/support/logger.js'

/** A Store over express-rate-limit's MemoryStore that can be told to hang or to fail. */
class FaultyStore implements Store {
  readonly inner = new MemoryStore()
  mode: 'ok' | 'hang' | 'fail' = 'ok'
  increments = 0

  init(options: Parameters<MemoryStore['init']>[0]): void {
    this.inner.init(options)
  }

  async increment(key: string): Promise<IncrementResponse> {
    this.increments++
    await this.#fault()
    return this.inner.increment(key)
  }

  async get(key: string) {
    await this.#fault()
    return this.inner.get(key)
  }

  async decrement(key: string): Promise<void> {
    await this.#fault()
    await this.inner.decrement(key)
  }

  async resetKey(key: string): Promise<void> {
    await this.#fault()
    await this.inner.resetKey(key)
  }

  shutdown(): void {
    this.inner.shutdown()
  }

  #fault(): Promise<void> {
    if (this.mode === 'hang') return new Promise(() => undefined)
    if (this.mode === 'fail') return Promise.reject(new Error('store down'))
    return Promise.resolve()
  }
}

const made: RateLimiters[] = []
afterEach(() => {
  for (const limiters of made.splice(0)) limiters.dispose()
})

async function setUp(config: RateLimitConfig = {}) {
  const store = new FaultyStore()
  const logger = recordingLogger()
  const keyPrefix = uniquePrefix('store')
  const limiters = await createRateLimiters({ keyPrefix, store, logger, maxRead: 2, maxWrite: 1, ...config })
  made.push(limiters)
  return { store, logger, keyPrefix, limiters, app: createApp(limiters) }
}

describe('the store option', () => {
  it('counts in the store given, each limiter under its own prefix, and says so at start', async () => {
    const { app, store, keyPrefix, logger } = await setUp()
    const statuses: number[] = []
    for (let i = 0; i < 3; i++) statuses.push((await request(app).get('/items')).status)
    expect(statuses).toEqual([200, 200, 429])
    // The write limiter's count is its own.
    await request(app).post('/items').expect(201)
    expect(await store.inner.get(`${keyPrefix}:read:127.0.0.1`)).toMatchObject({ totalHits: 3 })
    expect(await store.inner.get(`${keyPrefix}:write:127.0.0.1`)).toMatchObject({ totalHits: 1 })
    expect(logger.messages()).toContain('[RateLimit:read] Using the store given (FaultyStore)')
  })

  it.each(['hang', 'fail'] as const)(
    'decides by the fallback while the store is away (%s), and counts in it again once it is back',
    async (mode) => {
      const { app, store, limiters, logger, keyPrefix } = await setUp({ maxRead: 100 })
      await request(app).get('/items').expect(200)
      store.mode = mode
      const started = performance.now()
      await request(app).get('/items').expect(200)
      // A hung store is left behind after storeTimeoutMs (100 ms), never waited on for its 5 s.
      expect(performance.now() - started).toBeLessThan(1000)
      // A failure opens the circuit at once; timeouts must keep coming for 3 × storeTimeoutMs.
      await waitFor('the circuit to open', async () => {
        await request(app).get('/items').expect(200)
        return !limiters.status().ready
      })
      expect(limiters.status()).toMatchObject({ store: 'custom', ready: false, state: 'fallback' })
      expect(logger.messages()).toContainEqual(
        expect.stringMatching(new RegExp(`^\\[RateLimit\\] ${keyPrefix}: Store unavailable \\(`)),
      )
      const whileAway = store.increments
      await request(app).get('/items').expect(200)
      // The open circuit does not ask the store.
      expect(store.increments).toBe(whileAway)
      store.mode = 'ok'
      await waitFor('the store to be used again', () => limiters.status().ready, 5000)
      expect(logger.messages()).toContainEqual(
        expect.stringMatching(
          new RegExp(`^\\[RateLimit\\] ${keyPrefix}: Store back after \\d+\\.\\d s, shared limits restored$`),
        ),
      )
      await request(app).get('/items').expect(200)
      expect((await store.inner.get(`${keyPrefix}:read:127.0.0.1`))!.totalHits).toBeGreaterThanOrEqual(2)
    },
  )

  it("answers 503 while the store is away under onStoreError 'deny'", async () => {
    const { app, store } = await setUp({ onStoreError: 'deny' })
    store.mode = 'fail'
    const answer = await request(app).get('/items').expect(503)
    expect(answer.body).toMatchObject({ code: 'RATE_LIMIT_UNAVAILABLE' })
  })

  it('reads, penalises, rewards and resets a client through the store; a block needs Redis or memory', async () => {
    const { app, limiters } = await setUp({ maxRead: 5 })
    await request(app).get('/items').expect(200)
    expect((await limiters.read.get('127.0.0.1')).limits[0]).toMatchObject({ remaining: 4 })
    expect((await limiters.read.penalty('127.0.0.1', 3)).limits[0]).toMatchObject({ remaining: 1 })
    expect((await limiters.read.reward('127.0.0.1', 2)).limits[0]).toMatchObject({ remaining: 3 })
    await limiters.read.reset('127.0.0.1')
    expect((await limiters.read.get('127.0.0.1')).limits[0]).toMatchObject({ remaining: 5 })
    await expect(limiters.read.block('127.0.0.1', 1000)).rejects.toMatchObject({ code: ERROR_CODES.INVALID_ARGUMENT })
  })

  it.each([
    [{ redisUrl: 'redis://127.0.0.1:6379' }, 'redisUrl'],
    [{ algorithm: 'sliding-window' }, 'algorithm'],
    [{ cost: 2 }, 'cost'],
    [{ maxRead: () => 3 }, 'maxRead'],
  ] as const)('refuses %j beside a store, saying to count in Redis or memory', async (config, other) => {
    const error = await createRateLimiters({ logger: recordingLogger(), store: new MemoryStore(), ...config }).then(
      (limiters) => {
        made.push(limiters)
        throw new Error('expected a refusal')
      },
      (caught: unknown) => caught,
    )
    expect(error).toMatchObject({
      code: ERROR_CODES.INVALID_OPTION,
      option: 'store',
      message: expect.stringContaining(`store must be used without ${other}`),
    })
  })

  it('refuses something that is not a Store', async () => {
    await expect(
      createRateLimiters({ logger: recordingLogger(), store: { incr: () => undefined } as unknown as Store }),
    ).rejects.toMatchObject({ code: ERROR_CODES.INVALID_OPTION, option: 'store' })
  })
})
