// Several server processes sharing one real redis-server: one budget, one connection each.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

import { waitFor } from '../../../utils/test/support/http.js'
import {
  libraryConnections,
  redisServerAvailable,
  startRedisServer,
  type TestRedisServer,
} from '../../../utils/test/support/redis-server.js'
import { DEGRADED_READY } from './support/fleet.js'
import { startServer, type ServerProcess } from './support/server-process.js'

const CONNECTION_NAME = 'universo-rate-limit'

describe.runIf(redisServerAvailable())('a fleet on one Redis', () => {
  let redis: TestRedisServer
  const running: ServerProcess[] = []
  beforeAll(async () => {
    redis = await startRedisServer()
  })
  afterEach(async () => {
    await Promise.all(running.splice(0).map((server) => server.stop()))
    await redis.admin.flushall()
  })
  afterAll(async () => {
    await redis?.stop()
  })

  async function fleet(size: number, env: Record<string, string> = {}): Promise<ServerProcess[]> {
    const servers = await Promise.all(Array.from({ length: size }, () => startServer({ REDIS_URL: redis.url, ...env })))
    running.push(...servers)
    return servers
  }

  it('lets a client reset elsewhere through every process within a second, not at its window’s end', async () => {
    // Two processes that each refused the client, and so answer it from memory for 15 minutes'
    // window; then its key goes from Redis, as a reset by any process or operator does.
    const [a, b] = await fleet(2, { RATE_LIMIT_READ_MAX: '2' })
    const status = async (server: ServerProcess) => {
      const response = await fetch(`${server.base}/api/v1/metaverses`)
      await response.arrayBuffer()
      return response.status
    }
    expect([await status(a!), await status(b!), await status(a!), await status(b!)]).toEqual([200, 200, 429, 429])
    expect(await redis.admin.del('metaverses-srv:read:127.0.0.1')).toBe(1)
    // Each asks Redis again at most a second after its last refusal (BLOCKED_RECHECK_MS), with one
    // request; the requests before that are refused from memory and spend nothing.
    await waitFor('the first process to let the client through', async () => (await status(a!)) === 200)
    await waitFor('the second process to let the client through', async () => (await status(b!)) === 200)
    expect(await redis.admin.get('metaverses-srv:read:127.0.0.1')).toBe('2')
  })

  it('blocks a client through one process’s admin route for the whole fleet, and unblocks it through another’s', async () => {
    const ADMIN = 'tok-admin-0123456789abcdef'
    const [a, b] = await fleet(2, { API_TOKENS: `${ADMIN}:ops:admin` })
    const admin = { Authorization: `Bearer ${ADMIN}` }
    const status = async (server: ServerProcess) => {
      const response = await fetch(`${server.base}/api/v1/metaverses`)
      await response.arrayBuffer()
      return response.status
    }
    expect(await status(b!)).toBe(200)
    const blocked = await fetch(`${a!.base}/admin/rate-limits/read/127.0.0.1/block`, {
      method: 'POST',
      headers: { ...admin, 'Content-Type': 'application/json' },
      body: JSON.stringify({ ms: 600_000 }),
    })
    expect(blocked.status).toBe(200)
    expect([await status(a!), await status(b!)]).toEqual([429, 429])
    // Both now answer the client from memory; a reset through the other process reaches both.
    const reset = await fetch(`${b!.base}/admin/rate-limits/read/127.0.0.1`, { method: 'DELETE', headers: admin })
    expect(reset.status).toBe(200)
    expect(await status(b!)).toBe(200)
    await waitFor('the other process to let the client through', async () => (await status(a!)) === 200)
    const state = await (await fetch(`${a!.base}/admin/rate-limits/read/127.0.0.1`, { headers: admin })).json()
    expect(state).toMatchObject({ state: { retryAfterMs: 0, limits: [{ name: 'read', max: 100, remaining: 98 }] } })
  })

  it('lets exactly 100 of 300 concurrent reads on one client through, across three instances', async () => {
    // With the default settings: three cold processes are as exact as one (redis-failures.md, Deadlines).
    const servers = await fleet(3)
    const statuses = await Promise.all(
      Array.from({ length: 300 }, (_, i) => fetch(`${servers[i % 3]!.base}/api/v1/metaverses`).then((r) => r.status)),
    )
    expect(statuses.filter((s) => s === 200)).toHaveLength(100)
    expect(statuses.filter((s) => s === 429)).toHaveLength(200)
    // Every allowed request was counted in Redis; once a process has seen the client refused, it
    // answers the rest from memory, so Redis holds between 101 and 300.
    const counted = Number(await redis.admin.get('metaverses-srv:read:127.0.0.1'))
    expect(counted).toBeGreaterThan(100)
    expect(counted).toBeLessThanOrEqual(300)
  })

  it('holds exactly one Redis connection per instance', async () => {
    const servers = await fleet(3)
    await Promise.all(servers.map((s) => fetch(`${s.base}/api/v1/metaverses`, { method: 'POST', body: '{}' })))
    const connections = await libraryConnections(redis.admin, CONNECTION_NAME)
    expect(connections).toHaveLength(3)
    // And no other, unnamed connection: everything but the test's own admin link is ours.
    const all = ((await redis.admin.client('LIST')) as string).split('\n').filter((line) => line.trim() !== '')
    expect(all.filter((line) => !line.includes(' name=test-admin '))).toHaveLength(3)
  })

  it('logs the Redis store for read and write in every instance', async () => {
    const servers = await fleet(3)
    for (const server of servers) {
      expect(server.lines()).toEqual(
        expect.arrayContaining([
          '[Redis] Client connected successfully',
          '[RateLimit:read] Using Redis store (distributed mode)',
          '[RateLimit:write] Using Redis store (distributed mode)',
        ]),
      )
    }
  })

  it('runs the guide’s verification on Redis: 100 of 110 GETs, then 60 of 65 POSTs', async () => {
    const [server] = await fleet(1)
    const gets: Response[] = []
    for (let i = 0; i < 110; i++) gets.push(await fetch(`${server!.base}/api/v1/metaverses`))
    expect(gets.map((r) => r.status)).toEqual([...Array<number>(100).fill(200), ...Array<number>(10).fill(429)])
    for (const limited of gets.slice(100)) {
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0)
      expect(limited.headers.get('ratelimit')).toMatch(/^"read"; r=0; t=\d+$/)
    }
    const posts: number[] = []
    for (let i = 0; i < 65; i++) {
      const res = await fetch(`${server!.base}/api/v1/metaverses`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{"name":"test"}',
      })
      posts.push(res.status)
    }
    expect(posts).toEqual([...Array<number>(60).fill(201), ...Array<number>(5).fill(429)])
  })

  it('starts a new window once the short window has passed', async () => {
    const [server] = await fleet(1, { RATE_LIMIT_WINDOW_MS: '1000', RATE_LIMIT_READ_MAX: '2' })
    const get = () => fetch(`${server!.base}/api/v1/metaverses`).then((r) => r.status)
    expect([await get(), await get(), await get()]).toEqual([200, 200, 429])
    await waitFor(
      'the window to expire in Redis',
      async () => (await redis.admin.exists('metaverses-srv:read:127.0.0.1')) === 0,
      5000,
    )
    // The 429 said the client is blocked until its reset: Redis's TTL, read when the answer came
    // back, so a few ms after Redis drops the key. Until then the process answers 429 from memory,
    // sending nothing to Redis; then the client starts a fresh window.
    await waitFor('the client let in again', async () => (await get()) === 200, 5000)
    expect(await redis.admin.get('metaverses-srv:read:127.0.0.1')).toBe('1')
  })
})

describe.runIf(redisServerAvailable())('readiness follows Redis', () => {
  it('answers /ready 200 with a degraded body while Redis is down, and ready once it is back; /health stays 200', async () => {
    let redis = await startRedisServer()
    const server = await startServer({ REDIS_URL: redis.url })
    try {
      const ready = async () => {
        const res = await fetch(`${server.base}/ready`)
        return { status: res.status, body: (await res.json()) as Record<string, unknown> }
      }
      expect(await ready()).toEqual({
        status: 200,
        body: {
          status: 'ready',
          store: 'redis',
          topology: 'standalone',
          ready: true,
          state: 'redis',
          since: expect.any(String),
        },
      })
      const port = redis.port
      await redis.stop()
      await server.waitForOutput('[Redis] Retrying connection')
      // Under the default policy (fallback) the API still answers, so the instance stays in rotation.
      expect(await ready()).toEqual({ status: 200, body: DEGRADED_READY })
      expect((await fetch(`${server.base}/health`)).status).toBe(200)
      expect((await fetch(`${server.base}/api/v1/metaverses`)).status).toBe(200)
      redis = await startRedisServer({ port })
      await waitFor('/ready to say ready', async () => (await ready()).body.ready === true, 15_000)
      expect(await ready()).toEqual({
        status: 200,
        body: expect.objectContaining({ status: 'ready', ready: true, state: 'redis' }),
      })
    } finally {
      await server.stop()
      await redis.stop()
    }
  })
})
