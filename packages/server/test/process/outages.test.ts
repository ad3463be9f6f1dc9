// Two server processes sharing one real Redis through outages: nothing crashes, nothing waits,
// every transition is logged once, and the shared budget is exact again afterwards.
import { afterEach, describe, expect, it } from 'vitest'

import { waitFor } from '../../../utils/test/support/http.js'
import { percentile, startLoad, statusCounts, type Sample } from '../../../utils/test/support/load.js'
import { freePort } from '../../../utils/test/support/ports.js'
import {
  libraryConnections,
  redisServerAvailable,
  startRedisServer,
  type TestRedisServer,
} from '../../../utils/test/support/redis-server.js'
import { DEGRADED_READY } from './support/fleet.js'
import { startServer, type ServerProcess } from './support/server-process.js'

const USERS = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7'] as const
const token = (user: string): string => `tok-${user}-0123456789abcdef`
const API_TOKENS = USERS.map((user) => `${token(user)}:${user}`).join(',')
const MAX_READ = 100
const NO_WAIT_MS = 1000
const RECOVERY_MS = 2000

let redis: TestRedisServer | undefined
let servers: ServerProcess[] = []
afterEach(async () => {
  await Promise.all(servers.map((server) => server.stop()))
  servers = []
  await redis?.stop()
  redis = undefined
})

async function fleet(port: number, env: Record<string, string> = {}): Promise<ServerProcess[]> {
  servers = await Promise.all(
    [0, 1].map(() =>
      startServer({
        REDIS_URL: `redis://127.0.0.1:${port}`,
        RATE_LIMIT_INSTANCES: '2',
        RATE_LIMIT_READ_MAX: String(MAX_READ),
        API_TOKENS,
        ...env,
      }),
    ),
  )
  return servers
}

/** /ready's status code, and whether its body says the limiters count in Redis, and on what. */
const ready = async (server: ServerProcess): Promise<{ status: number; ready: boolean; state: string }> => {
  const res = await fetch(`${server.base}/ready`)
  const body = (await res.json()) as { ready: boolean; state: string }
  return { status: res.status, ready: body.ready, state: body.state }
}

/** Both count in Redis again. (The status code alone cannot tell: it is 200 under fallback too.) */
async function allReady(): Promise<boolean> {
  return (await Promise.all(servers.map(ready))).every((r) => r.status === 200 && r.ready)
}

/** Waits until both are degraded under `policy`, and returns what /ready answered then. */
async function allDegraded(policy: string): Promise<{ status: number; ready: boolean; state: string }[]> {
  let answers: { status: number; ready: boolean; state: string }[] = []
  await waitFor(
    `both to be degraded (${policy})`,
    async () => (answers = await Promise.all(servers.map(ready))).every((r) => r.state === policy),
    3000,
  )
  return answers
}

/** 300 concurrent reads for one fresh user, spread over both processes: exactly MAX_READ pass. */
async function expectExactSharedCounting(user: string): Promise<void> {
  const statuses = await Promise.all(
    Array.from({ length: 300 }, (_, i) =>
      fetch(`${servers[i % 2]!.base}/api/v1/metaverses`, {
        headers: { Authorization: `Bearer ${token(user)}` },
      }).then((res) => res.status),
    ),
  )
  expect(statuses.filter((s) => s === 200)).toHaveLength(MAX_READ)
  expect(statuses.filter((s) => s === 429)).toHaveLength(300 - MAX_READ)
}

/** `loginTransitions`: outages the idle login limiter notices (a lost connection; a hung Redis only times out calls). */
function expectHealthyProcesses(transitions: number, loginTransitions = transitions): void {
  for (const server of servers) {
    expect(server.child.exitCode).toBeNull()
    const out = server.output()
    expect(out).not.toMatch(/Unhandled|uncaught|ERR_UNHANDLED|Error: .* at /i)
    const lines = server.lines()
    expect(lines.filter((l) => /^\[RateLimit\] metaverses-srv: Redis unavailable \(/.test(l))).toHaveLength(transitions)
    expect(lines.filter((l) => /^\[RateLimit\] metaverses-srv: fallback on: /.test(l))).toHaveLength(transitions)
    expect(lines.filter((l) => /^\[RateLimit\] metaverses-srv: Redis back after /.test(l))).toHaveLength(transitions)
    // The login limiter is a set of its own, with its own circuit, and says so.
    expect(lines.filter((l) => /^\[RateLimit\] metaverses-srv\/login: Redis unavailable \(/.test(l))).toHaveLength(
      loginTransitions,
    )
  }
}

/** 50 requests a second to each process; `answered` waits for `count` more answers from each. */
function loadBoth(): { answered(count: number, what: string): Promise<void>; stop(): Promise<Sample[]> } {
  const loads = servers.map((server) => startLoad(`${server.base}/api/v1/metaverses`, 50))
  return {
    answered: async (count, what) => {
      await Promise.all(loads.map((load) => load.waitForAnswers(count, what)))
    },
    stop: async () => (await Promise.all(loads.map((l) => l.stop()))).flat(),
  }
}

describe.runIf(redisServerAvailable())('two processes through Redis outages (policy fallback)', () => {
  it.each(['SIGKILL', 'SIGTERM'] as const)(
    'a %s under load, then an empty restart: no 5xx, no waiting, exact again after',
    async (signal) => {
      redis = await startRedisServer()
      const port = redis.port
      await fleet(port)
      await expectExactSharedCounting('u1')
      const load = loadBoth()
      await load.answered(20, 'on Redis')
      await redis.signal(signal)
      // Degraded, and still in rotation: under fallback the API answers, so /ready says 200.
      expect(await allDegraded('fallback')).toEqual([
        { status: 200, ready: false, state: 'fallback' },
        { status: 200, ready: false, state: 'fallback' },
      ])
      await load.answered(30, 'in fallback')
      redis = await startRedisServer({ port })
      const back = Date.now()
      await waitFor('both to use Redis again', allReady, RECOVERY_MS)
      expect(Date.now() - back).toBeLessThan(RECOVERY_MS)
      await load.answered(10, 'on Redis again')
      const samples = await load.stop()
      // Anonymous load shares one IP: after 100 reads it is 429, never 5xx.
      expect(Object.keys(statusCounts(samples)).every((s) => s === '200' || s === '429')).toBe(true)
      expect(Math.max(...samples.map((s) => s.ms))).toBeLessThan(NO_WAIT_MS)
      console.info(`fleet ${signal}: ${samples.length} requests, p99 ${percentile(samples, 99).toFixed(1)} ms`)
      await expectExactSharedCounting('u2')
      expectHealthyProcesses(1)
      expect(await libraryConnections(redis.admin, 'universo-rate-limit')).toHaveLength(2)
    },
  )

  it('a hung Redis (SIGSTOP, then SIGCONT): no waiting, then exact again', async () => {
    redis = await startRedisServer()
    await fleet(redis.port)
    const load = loadBoth()
    await load.answered(15, 'on Redis')
    await redis.signal('SIGSTOP')
    // The hang lasts until both have noticed it, and answered from the fallback meanwhile.
    await allDegraded('fallback')
    await load.answered(20, 'while Redis hangs')
    await redis.signal('SIGCONT')
    const resumed = Date.now()
    await waitFor('both to use Redis again', allReady, RECOVERY_MS)
    expect(Date.now() - resumed).toBeLessThan(RECOVERY_MS)
    const samples = await load.stop()
    expect(Object.keys(statusCounts(samples)).every((s) => s === '200' || s === '429')).toBe(true)
    expect(Math.max(...samples.map((s) => s.ms))).toBeLessThan(NO_WAIT_MS)
    await expectExactSharedCounting('u3')
    expectHealthyProcesses(1, 0)
    expect(await libraryConnections(redis.admin, 'universo-rate-limit')).toHaveLength(2)
  })

  it('Redis down at boot: both boot degraded, say so on /ready, and switch when it appears', async () => {
    const port = await freePort()
    await fleet(port)
    for (const server of servers) {
      const res = await fetch(`${server.base}/ready`)
      expect(res.status).toBe(200)
      expect(await res.json()).toEqual(DEGRADED_READY)
      expect((await fetch(`${server.base}/api/v1/metaverses`)).status).toBe(200)
    }
    redis = await startRedisServer({ port })
    const up = Date.now()
    await waitFor('both to use Redis', allReady, RECOVERY_MS + 1000)
    expect(Date.now() - up).toBeLessThan(RECOVERY_MS + 1000)
    await expectExactSharedCounting('u4')
    expectHealthyProcesses(1)
  })

  it('five outages in a row: still one connection per process, five of each log line', async () => {
    redis = await startRedisServer()
    const port = redis.port
    await fleet(port)
    for (let outage = 0; outage < 5; outage++) {
      await redis.signal('SIGKILL')
      for (const answer of await allDegraded('fallback')) expect(answer.status).toBe(200)
      redis = await startRedisServer({ port })
      await waitFor('both to use Redis again', allReady, RECOVERY_MS)
    }
    await expectExactSharedCounting('u5')
    expectHealthyProcesses(5)
    expect(await libraryConnections(redis.admin, 'universo-rate-limit')).toHaveLength(2)
  })
})

describe.runIf(redisServerAvailable())('the policy from RATE_LIMIT_ON_STORE_ERROR', () => {
  it('deny: 503 with Retry-After while Redis is away, normal answers after', async () => {
    redis = await startRedisServer()
    const port = redis.port
    await fleet(port, { RATE_LIMIT_ON_STORE_ERROR: 'deny' })
    await redis.signal('SIGKILL')
    // Every API request would be refused: /ready says 503, so a load balancer may stop sending them.
    expect(await allDegraded('deny')).toEqual([
      { status: 503, ready: false, state: 'deny' },
      { status: 503, ready: false, state: 'deny' },
    ])
    for (const server of servers) {
      const res = await fetch(`${server.base}/api/v1/metaverses`)
      expect(res.status).toBe(503)
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      expect(((await res.json()) as { code: string }).code).toBe('RATE_LIMIT_UNAVAILABLE')
    }
    redis = await startRedisServer({ port })
    await waitFor('both to use Redis again', allReady, RECOVERY_MS)
    await expectExactSharedCounting('u6')
  })

  it("answers the admin routes 503 while Redis is away: the operator's controls act on the shared budget or not at all", async () => {
    redis = await startRedisServer()
    const port = redis.port
    const ADMIN = 'tok-ops-0123456789abcdef'
    await fleet(port, { API_TOKENS: `${API_TOKENS},${ADMIN}:ops:admin` })
    await redis.signal('SIGKILL')
    await allDegraded('fallback')
    const answer = await fetch(`${servers[0]!.base}/admin/rate-limits/read/user%3Au1`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${ADMIN}` },
    })
    expect(answer.status).toBe(503)
    expect(await answer.json()).toMatchObject({ success: false, code: 'RATE_LIMIT_STORE_UNAVAILABLE' })
    redis = await startRedisServer({ port })
    await waitFor('both to use Redis again', allReady, RECOVERY_MS)
    const back = await fetch(`${servers[0]!.base}/admin/rate-limits/read/user%3Au1`, {
      headers: { Authorization: `Bearer ${ADMIN}` },
    })
    expect(back.status).toBe(200)
  })

  it('allow: every request passes while Redis is away', async () => {
    redis = await startRedisServer()
    const port = redis.port
    await fleet(port, { RATE_LIMIT_ON_STORE_ERROR: 'allow', RATE_LIMIT_READ_MAX: '1' })
    await redis.signal('SIGKILL')
    expect(await allDegraded('allow')).toEqual([
      { status: 200, ready: false, state: 'allow' },
      { status: 200, ready: false, state: 'allow' },
    ])
    const statuses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => fetch(`${servers[i % 2]!.base}/api/v1/metaverses`).then((r) => r.status)),
    )
    expect(statuses.every((s) => s === 200)).toBe(true)
  })

  it('RATE_LIMIT_REQUIRE_REDIS=true refuses to boot without Redis', async () => {
    const port = await freePort()
    const server = await startServer(
      { REDIS_URL: `redis://127.0.0.1:${port}`, RATE_LIMIT_REQUIRE_REDIS: 'true' },
      { waitForListening: false },
    )
    servers = [server]
    expect((await server.exited).code).toBe(1)
    expect(server.output()).toContain('refuses to start the limiters without Redis')
  })
})
