// Redis failing under the limiters: killed, stopped, hung, restarted empty, down at boot. Real servers.
import { Redis } from 'ioredis'
import { afterEach, describe, expect, it } from 'vitest'

import { createRateLimiters, RedisClientManager, type RateLimitConfig, type RateLimiters } from '#src/index.js'
import { CONNECTION_NAME } from '#src/redis/connection.js'
import { createApp } from '#test/support/app.js'
import { listen, waitFor, type Listening } from '#test/support/http.js'
import { uniquePrefix } from '#test/support/limiter-contract.js'
import { percentile, startLoad, statusCounts } from '#test/support/load.js'
import { recordingLogger, type RecordingLogger } from '#test/support/logger.js'
import { freePort } from '#test/support/ports.js'
import {
  libraryConnections,
  redisServerAvailable,
  startRedisServer,
  type TestRedisServer,
} from '#test/support/redis-server.js'

/** Latency a request may show while Redis is away: the breaker must make it fail fast, not wait. */
const NO_WAIT_MS = 1000
/** How soon after Redis is back the limiters must be using it again. */
const RECOVERY_MS = 2000

interface Rig {
  redis: TestRedisServer
  port: number
  limiters: RateLimiters
  logger: RecordingLogger
  keyPrefix: string
  http: Listening
}

let rig: Rig | undefined
afterEach(async () => {
  if (rig === undefined) return
  rig.limiters.dispose()
  await rig.http.close()
  await RedisClientManager.close()
  await rig.redis.stop()
  rig = undefined
})

async function setUp(config: RateLimitConfig = {}): Promise<Rig> {
  const redis = await startRedisServer()
  const logger = recordingLogger()
  const keyPrefix = uniquePrefix('fail')
  const limiters = await createRateLimiters({ keyPrefix, redisUrl: redis.url, logger, ...config })
  const http = await listen(createApp(limiters))
  rig = { redis, port: redis.port, limiters, logger, keyPrefix, http }
  return rig
}

/** Brings Redis back on the same port, as a fresh process with an empty dataset. */
async function restart(current: Rig): Promise<number> {
  current.redis = await startRedisServer({ port: current.port })
  return Date.now()
}

const count = (logger: RecordingLogger, pattern: RegExp): number =>
  logger.messages().filter((line) => pattern.test(line)).length

const LOST = /^\[RateLimit\] fail-\S+: Redis unavailable \(/
const FALLBACK_ON = /^\[RateLimit\] fail-\S+: fallback on: in-memory limits per instance/
const BACK = /^\[RateLimit\] fail-\S+: Redis back after \d+\.\d s, shared limits restored$/

describe.runIf(redisServerAvailable())('when Redis fails (policy fallback, the default)', () => {
  it.each(['SIGKILL', 'SIGTERM'] as const)(
    'keeps answering under load through a %s and an empty restart, then returns to Redis',
    async (signal) => {
      const r = await setUp({ maxRead: 1_000_000 })
      const key = `${r.keyPrefix}:read:127.0.0.1`
      const load = startLoad(`${r.http.base}/items`, 100)
      // Each phase lasts a number of answers of the load (100 a second), not a guessed time.
      await load.waitForAnswers(50, 'on Redis')
      await r.redis.signal(signal)
      await waitFor('the limiters to notice', () => !r.limiters.status().ready, 2000)
      expect(r.limiters.status()).toMatchObject({ store: 'redis', ready: false, state: 'fallback' })
      await load.waitForAnswers(70, 'in fallback, Redis down')
      const back = await restart(r)
      await waitFor('the limiters to use Redis again', () => r.limiters.status().ready, RECOVERY_MS)
      const recoveredIn = Date.now() - back
      await waitFor('30 requests of the load counted in the restarted Redis', async () => {
        return Number(await r.redis.admin.get(key)) >= 30
      })
      const samples = await load.stop()

      expect(statusCounts(samples)).toEqual({ 200: samples.length })
      expect(Math.max(...samples.map((s) => s.ms))).toBeLessThan(NO_WAIT_MS)
      expect(recoveredIn).toBeLessThan(RECOVERY_MS)
      expect(count(r.logger, LOST)).toBe(1)
      expect(count(r.logger, FALLBACK_ON)).toBe(1)
      expect(count(r.logger, BACK)).toBe(1)
      // Counting resumed in the restarted Redis, through reloaded scripts, with a TTL on its key.
      expect(Number(await r.redis.admin.get(key))).toBeGreaterThan(0)
      const ttl = await r.redis.admin.pttl(key)
      expect(ttl).toBeGreaterThan(0)
      expect(await libraryConnections(r.redis.admin, CONNECTION_NAME)).toHaveLength(1)
      console.info(
        `${signal}: ${samples.length} requests, p50 ${percentile(samples, 50).toFixed(1)} ms, p99 ${percentile(samples, 99).toFixed(1)} ms, recovered in ${recoveredIn} ms`,
      )
    },
  )

  it('limits each instance to max / instances while Redis is away', async () => {
    const r = await setUp({ maxRead: 10, instances: 2 })
    await r.redis.signal('SIGKILL')
    await waitFor('the limiters to notice', () => !r.limiters.status().ready, 2000)
    const statuses: number[] = []
    for (let i = 0; i < 7; i++) statuses.push((await fetch(`${r.http.base}/items`)).status)
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429])
    expect(r.logger.messages()).toContainEqual(expect.stringMatching(/read 10 -> 5, write 60 -> 30 \(instances 2\)$/))
  })

  it.each(['fixed-window', 'sliding-window', 'token-bucket'] as const)(
    'splits every limit of a %s policy across the instances while Redis is away, then counts in Redis again',
    async (algorithm) => {
      const r = await setUp({
        algorithm,
        limitsRead: [
          { name: 'burst', max: 10, windowMs: 60_000 },
          { name: 'hourly', max: 100, windowMs: 3_600_000 },
        ],
        instances: 2,
      })
      await r.redis.signal('SIGKILL')
      await waitFor('the limiters to notice', () => !r.limiters.status().ready, 2000)
      const answers: Response[] = []
      for (let i = 0; i < 7; i++) answers.push(await fetch(`${r.http.base}/items`))
      expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200, 429, 429])
      expect(answers[0]!.headers.get('ratelimit-policy')).toMatch(/^"burst"; q=10; w=60; pk=:[^:]+:, "hourly"; q=100;/)
      expect(answers[6]!.headers.get('ratelimit')).toMatch(/^"burst"; r=0; t=\d+$/)
      expect(r.logger.messages()).toContainEqual(
        expect.stringMatching(/read burst 10 -> 5, read hourly 100 -> 50, write 60 -> 30 \(instances 2\)$/),
      )
      await restart(r)
      await waitFor('the limiters to use Redis again', () => r.limiters.status().ready, RECOVERY_MS)
      // Redis's budget again, the fallback's count forgotten: the whole burst limit.
      const tag = { 'fixed-window': 'fw', 'sliding-window': 'sw', 'token-bucket': 'tb' }[algorithm]
      const statuses: number[] = []
      for (let i = 0; i < 11; i++) statuses.push((await fetch(`${r.http.base}/items`)).status)
      expect(statuses.filter((status) => status === 200)).toHaveLength(10)
      expect(await r.redis.admin.hgetall(`${r.keyPrefix}:read#${tag}:127.0.0.1`)).not.toEqual({})
    },
  )

  it("splits the limits of the policy a request picks, and a max function's answer, while Redis is away", async () => {
    const r = await setUp({
      maxRead: (req) => (req.get('x-plan') === 'big' ? 20 : 2),
      policies: { pro: { maxRead: 10 } },
      policy: (req) => (req.get('x-plan') === 'pro' ? 'pro' : undefined),
      instances: 2,
    })
    await r.redis.signal('SIGKILL')
    await waitFor('the limiters to notice', () => !r.limiters.status().ready, 2000)
    const as = async (plan: string, client: string, n: number) => {
      const answers: Response[] = []
      for (let i = 0; i < n; i++) {
        answers.push(await fetch(`${r.http.base}/items`, { headers: { 'x-plan': plan, 'x-forwarded-for': client } }))
      }
      return answers
    }
    const pro = await as('pro', '10.9.0.1', 7)
    expect(pro.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200, 429, 429])
    expect(pro[0]!.headers.get('ratelimit-policy')).toMatch(/^"pro\.read"; q=10; w=/)
    expect((await as('big', '10.9.0.2', 11)).map((answer) => answer.status)).toEqual([
      ...Array<number>(10).fill(200),
      429,
    ])
    expect(r.logger.messages()).toContainEqual(
      expect.stringMatching(/read per request -> \/ 2, write 60 -> 30 \(instances 2\)$/),
    )
  })

  it('never waits on a hung Redis (SIGSTOP), and no command sent then lands later', async () => {
    const r = await setUp({ maxRead: 1_000_000 })
    const key = `${r.keyPrefix}:read:127.0.0.1`
    for (let i = 0; i < 3; i++) await fetch(`${r.http.base}/items`)
    expect(await r.redis.admin.get(key)).toBe('3')
    await r.redis.signal('SIGSTOP')
    const times: number[] = []
    for (let i = 0; i < 20; i++) {
      const started = performance.now()
      expect((await fetch(`${r.http.base}/items`)).status).toBe(200)
      times.push(performance.now() - started)
    }
    expect(Math.max(...times)).toBeLessThan(NO_WAIT_MS)
    expect(r.limiters.status()).toMatchObject({ ready: false, state: 'fallback' })
    const resumed = Date.now()
    await r.redis.signal('SIGCONT')
    await waitFor('the limiters to use Redis again', () => r.limiters.status().ready, RECOVERY_MS)
    expect(Date.now() - resumed).toBeLessThan(RECOVERY_MS)
    // Only the requests that met the hang before the breaker opened (timeouts for 3 x 100 ms, so
    // at most 4 one after another) reached Redis; the rest never left the process.
    expect(Number(await r.redis.admin.get(key))).toBeLessThanOrEqual(3 + 4)
    expect(count(r.logger, LOST)).toBe(1)
    expect(count(r.logger, BACK)).toBe(1)
  })

  it('does not wait on a hung Redis under load either: the breaker opens and requests go on', async () => {
    const r = await setUp({ maxRead: 1_000_000 })
    const load = startLoad(`${r.http.base}/items`, 100)
    await load.waitForAnswers(30, 'on Redis')
    await r.redis.signal('SIGSTOP')
    await waitFor('the breaker to open on the hung Redis', () => !r.limiters.status().ready, 2000)
    await load.waitForAnswers(50, 'in fallback, Redis hung')
    await r.redis.signal('SIGCONT')
    await waitFor('the limiters to use Redis again', () => r.limiters.status().ready, RECOVERY_MS)
    const samples = await load.stop()
    expect(statusCounts(samples)).toEqual({ 200: samples.length })
    expect(Math.max(...samples.map((s) => s.ms))).toBeLessThan(NO_WAIT_MS)
    expect(count(r.logger, LOST)).toBe(1)
    expect(count(r.logger, FALLBACK_ON)).toBe(1)
    expect(count(r.logger, BACK)).toBe(1)
    console.info(
      `SIGSTOP under load: p99 ${percentile(samples, 99).toFixed(1)} ms, max ${Math.max(...samples.map((s) => s.ms)).toFixed(1)} ms`,
    )
  })

  it('rides out a short stall without declaring an outage', async () => {
    // storeTimeoutMs 50: timeouts must persist for 150 ms to open, far above the 20 ms stall, so a
    // busy machine stretching the stall does not make this test flaky.
    const r = await setUp({ maxRead: 1_000_000, storeTimeoutMs: 50 })
    const load = startLoad(`${r.http.base}/items`, 100)
    await load.waitForAnswers(30, 'on Redis')
    await r.redis.signal('SIGSTOP')
    // A stall that two requests meet (about 20 ms at 100/s), far under the 150 ms that would open the breaker.
    await load.waitForSent(2, 'while Redis is stopped')
    await r.redis.signal('SIGCONT')
    // Then 30 answers more (about 300 ms), well past the 150 ms an outage would take to be declared.
    await load.waitForAnswers(30, 'after the stall')
    const samples = await load.stop()
    expect(statusCounts(samples)).toEqual({ 200: samples.length })
    expect(count(r.logger, LOST)).toBe(0)
    expect(r.limiters.status().ready).toBe(true)
  })

  it('stays degraded, without flapping, while Redis answers but refuses writes (OOM)', async () => {
    const r = await setUp({ maxRead: 1_000_000 })
    await fetch(`${r.http.base}/items`)
    await r.redis.admin.config('SET', 'maxmemory-policy', 'noeviction')
    await r.redis.admin.config('SET', 'maxmemory', '1')
    // "Without flapping": requests all along, until the circuit is open and Redis has refused
    // three more of its probes' writes (one each PROBE_INTERVAL_MS).
    const refused = async (): Promise<number> =>
      Number(/errorstat_OOM:count=(\d+)/.exec(await r.redis.admin.info('errorstats'))?.[1] ?? 0)
    const request = async (): Promise<void> => {
      expect((await fetch(`${r.http.base}/items`)).status).toBe(200)
    }
    await waitFor('the first probe refused', async () => {
      await request()
      return r.logger.messages().some((m) => /Redis still unavailable: .*OOM/.test(m))
    })
    const afterFirstProbe = await refused()
    await waitFor('three more probes refused', async () => {
      await request()
      return (await refused()) >= afterFirstProbe + 3
    })
    expect(r.limiters.status()).toMatchObject({ ready: false, state: 'fallback' })
    expect(count(r.logger, LOST)).toBe(1)
    expect(count(r.logger, BACK)).toBe(0)
    expect(r.logger.messages()).toContainEqual(expect.stringMatching(/Redis still unavailable: .*OOM/))
    await r.redis.admin.config('SET', 'maxmemory', '0')
    await waitFor('the limiters to use Redis again', () => r.limiters.status().ready, RECOVERY_MS)
    expect(count(r.logger, BACK)).toBe(1)
  })

  it('survives five outages in a row with one connection and one log line per transition each', async () => {
    const r = await setUp({ maxRead: 1_000_000 })
    for (let outage = 1; outage <= 5; outage++) {
      await fetch(`${r.http.base}/items`)
      await r.redis.signal('SIGKILL')
      await waitFor('the limiters to notice', () => !r.limiters.status().ready, 2000)
      expect((await fetch(`${r.http.base}/items`)).status).toBe(200)
      await restart(r)
      await waitFor('the limiters to use Redis again', () => r.limiters.status().ready, RECOVERY_MS)
    }
    expect((await fetch(`${r.http.base}/items`)).status).toBe(200)
    expect(count(r.logger, LOST)).toBe(5)
    expect(count(r.logger, FALLBACK_ON)).toBe(5)
    expect(count(r.logger, BACK)).toBe(5)
    expect(await libraryConnections(r.redis.admin, CONNECTION_NAME)).toHaveLength(1)
  })
})

describe.runIf(redisServerAvailable())('the other policies', () => {
  it('allow lets every request through while Redis is away, without rate-limit headers', async () => {
    const r = await setUp({ maxRead: 1, onStoreError: 'allow' })
    await r.redis.signal('SIGKILL')
    await waitFor('the limiters to notice', () => !r.limiters.status().ready, 2000)
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${r.http.base}/items`)
      expect(res.status).toBe(200)
      expect(res.headers.get('ratelimit')).toBeNull()
    }
    expect(r.limiters.status()).toMatchObject({ ready: false, state: 'allow' })
    expect(count(r.logger, /failing open \(onStoreError allow\)/)).toBe(1)
    expect(count(r.logger, LOST)).toBe(1)
    await restart(r)
    await waitFor('the limiters to use Redis again', () => r.limiters.status().ready, RECOVERY_MS)
    expect(count(r.logger, BACK)).toBe(1)
    expect(await libraryConnections(r.redis.admin, CONNECTION_NAME)).toHaveLength(1)
  })

  it('deny answers 503 with Retry-After, saying nothing about the store', async () => {
    const r = await setUp({ onStoreError: 'deny' })
    await r.redis.signal('SIGKILL')
    await waitFor('the limiters to notice', () => !r.limiters.status().ready, 2000)
    const res = await fetch(`${r.http.base}/items`)
    expect(res.status).toBe(503)
    const retryAfter = Number(res.headers.get('retry-after'))
    expect(retryAfter).toBeGreaterThanOrEqual(1)
    expect(retryAfter).toBeLessThanOrEqual(5)
    const text = await res.text()
    expect(JSON.parse(text)).toEqual({
      success: false,
      error: 'Service temporarily unavailable, please try again later.',
      code: 'RATE_LIMIT_UNAVAILABLE',
      retryAfter,
    })
    expect(text.toLowerCase()).not.toMatch(/redis|store|circuit/)
    await restart(r)
    await waitFor('the limiters to use Redis again', () => r.limiters.status().ready, RECOVERY_MS)
    expect((await fetch(`${r.http.base}/items`)).status).toBe(200)
    expect(count(r.logger, /failing closed \(onStoreError deny\)/)).toBe(1)
    expect(count(r.logger, LOST)).toBe(1)
    expect(count(r.logger, BACK)).toBe(1)
    expect(await libraryConnections(r.redis.admin, CONNECTION_NAME)).toHaveLength(1)
  })
})

describe.runIf(redisServerAvailable())('Redis down when the limiters are created', () => {
  it('starts degraded within the connect retries, serves, and switches to Redis when it appears', async () => {
    const port = await freePort()
    const logger = recordingLogger()
    const keyPrefix = uniquePrefix('boot')
    const started = Date.now()
    const limiters = await createRateLimiters({ keyPrefix, redisUrl: `redis://127.0.0.1:${port}`, logger })
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(limiters.status()).toMatchObject({ store: 'redis', ready: false, state: 'fallback' })
    const http = await listen(createApp(limiters))
    let redis: TestRedisServer | undefined
    try {
      expect((await fetch(`${http.base}/items`)).status).toBe(200)
      expect(logger.messages()).toContain(
        '[Redis] Max retry attempts reached: starting without Redis, still reconnecting',
      )
      redis = await startRedisServer({ port })
      const up = Date.now()
      await waitFor('the limiters to use Redis', () => limiters.status().ready, RECOVERY_MS)
      expect(Date.now() - up).toBeLessThan(RECOVERY_MS)
      expect(await libraryConnections(redis.admin, CONNECTION_NAME)).toHaveLength(1)
      expect((await fetch(`${http.base}/items`)).status).toBe(200)
      expect(await redis.admin.get(`${keyPrefix}:read:127.0.0.1`)).toBe('1')
      expect(logger.messages().filter((line) => line.includes('Redis back after'))).toHaveLength(1)
    } finally {
      limiters.dispose()
      await http.close()
      await RedisClientManager.close()
      await redis?.stop()
    }
  })
})

describe.runIf(redisServerAvailable())('a client handed in with ioredis defaults', () => {
  it('gets a warning that it may queue and resend commands during an outage', async () => {
    const redis = await startRedisServer()
    const client = new Redis(redis.port, '127.0.0.1')
    const logger = recordingLogger()
    try {
      const limiters = await createRateLimiters({ keyPrefix: uniquePrefix('own'), redisClient: client, logger })
      expect(limiters.status().ready).toBe(true)
      expect(logger.lines.filter((l) => l.level === 'warn').map((l) => l.message)).toEqual([
        expect.stringMatching(/the handed-in Redis client has enableOfflineQueue and autoResendUnfulfilledCommands on/),
      ])
      limiters.dispose()
    } finally {
      client.disconnect()
      await redis.stop()
    }
  })
})
