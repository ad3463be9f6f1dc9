// The built server as a process: boot order, bad environments, Redis down at boot, port in use.
import { afterEach, describe, expect, it } from 'vitest'

import { freePort } from '../../../utils/test/support/ports.js'
import { startServer, type ServerProcess } from './support/server-process.js'

const running: ServerProcess[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.stop()))
})

async function start(env: Record<string, string> = {}, waitForListening = true): Promise<ServerProcess> {
  const server = await startServer(env, { waitForListening })
  running.push(server)
  return server
}

describe('boot', () => {
  it('initialises the limiters before it listens, then serves a rate-limited API', async () => {
    const server = await start()
    const lines = server.lines()
    const listening = lines.findIndex((line) => line.startsWith('[Server] Listening on'))
    expect(lines.indexOf('[RateLimit:read] Using MemoryStore (single-instance mode)')).toBeGreaterThanOrEqual(0)
    expect(lines.indexOf('[RateLimit:read] Using MemoryStore (single-instance mode)')).toBeLessThan(listening)
    expect(lines.indexOf('[RateLimit:write] Using MemoryStore (single-instance mode)')).toBeLessThan(listening)
    const res = await fetch(`${server.base}/api/v1/metaverses`)
    expect(res.status).toBe(200)
    expect(res.headers.get('ratelimit')).toBe('"read"; r=99; t=900')
  })

  it('warns once and loudly when NODE_ENV=production has no REDIS_URL', async () => {
    const server = await start({ NODE_ENV: 'production' })
    const warnings = server.lines().filter((line) => line.includes('without REDIS_URL'))
    expect(warnings).toEqual([
      '[RateLimit] WARNING: NODE_ENV=production without REDIS_URL: every instance counts on its own, so N ' +
        'instances allow N times the limit. Set REDIS_URL to share one budget across the fleet.',
    ])
  })
})

describe('the production warning', () => {
  it('is not given when the fleet shares a Sentinel or Cluster instead of REDIS_URL', async () => {
    const server = await start({ NODE_ENV: 'production', REDIS_CLUSTER_NODES: `127.0.0.1:${await freePort()}` })
    expect(server.output()).not.toContain('without REDIS_URL')
  })
})

describe('a bad environment', () => {
  const secret = 'tok-s3cret-0123456789'
  it.each([
    ['PORT', 'abc'],
    ['PORT', '99999'],
    ['NODE_ENV', 'prod'],
    ['TRUST_PROXY', 'true'],
    ['AUTH_REQUIRED', 'maybe'],
    ['RATE_LIMIT_WINDOW_MS', '5'],
    ['RATE_LIMIT_READ_MAX', '-1'],
    ['RATE_LIMIT_WRITE_MAX', '1.5'],
    ['REDIS_URL', `redis//:${secret}@localhost:6379`],
    ['API_TOKENS', `${secret}:alice:superuser`],
  ])('%s=%s exits 1 before listening, with one line naming it and no credential', async (name, value) => {
    const server = await start({ [name]: value }, false)
    const exit = await server.exited
    expect(exit.code).toBe(1)
    const lines = server.lines()
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(new RegExp(`^\\[Server\\] Invalid configuration: ${name} `))
    expect(server.output()).not.toContain(secret)
  })
})

describe('Redis unreachable at boot', () => {
  it('with RATE_LIMIT_REQUIRE_REDIS=true, exits 1 with "Redis connection timeout", without the password', async () => {
    const port = await freePort()
    const server = await start(
      { REDIS_URL: `redis://:pw-never-shown@127.0.0.1:${port}`, RATE_LIMIT_REQUIRE_REDIS: 'true' },
      false,
    )
    const exit = await server.exited
    expect(exit.code).toBe(1)
    const lines = server.lines()
    expect(lines).toEqual(
      expect.arrayContaining([
        '[Redis] Retrying connection in 100ms (attempt 1)',
        '[Redis] Retrying connection in 200ms (attempt 2)',
        '[Redis] Retrying connection in 300ms (attempt 3)',
        '[Redis] Max retry attempts reached',
      ]),
    )
    expect(lines.at(-1)).toMatch(/^\[Server\] Failed to start: Redis connection timeout: gave up on redis:\/\/:\*\*\*@/)
    expect(lines.at(-1)).toContain(
      'requireRedis (RATE_LIMIT_REQUIRE_REDIS) refuses to start the limiters without Redis',
    )
    expect(lines.at(-1)).toMatch(
      /requireRedis \(RATE_LIMIT_REQUIRE_REDIS\) refuses to start the limiters without Redis$/,
    )
    expect(server.output()).not.toContain('pw-never-shown')
    expect(server.output()).not.toContain('Listening')
    expect(server.output()).not.toContain('MemoryStore')
  })
})

describe('PORT already in use', () => {
  it('exits 1 with a line that says so', async () => {
    const first = await start()
    const second = await startServer({}, { port: first.port, waitForListening: false })
    running.push(second)
    expect((await second.exited).code).toBe(1)
    expect(second.output()).toContain(`[Server] Cannot listen: PORT ${first.port} is already in use`)
  })
})
