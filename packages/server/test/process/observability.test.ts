// The built server's logs and metrics as operators see them: pino JSON lines, audit, shadow mode, /metrics.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

import {
  redisServerAvailable,
  startRedisServer,
  type TestRedisServer,
} from '../../../utils/test/support/redis-server.js'
import { waitFor } from '../../../utils/test/support/http.js'
import { startServer, type ServerProcess } from './support/server-process.js'
import { sampleValue as sample } from './support/promql.js'

const running: ServerProcess[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.stop()))
})

async function server(env: Record<string, string>): Promise<ServerProcess> {
  const started = await startServer(env)
  running.push(started)
  return started
}

describe('logs', () => {
  it('are one JSON object per line, with level, time and the guide’s words in msg', async () => {
    const s = await server({ RATE_LIMIT_READ_MAX: '1' })
    await fetch(`${s.base}/api/v1/metaverses`)
    await fetch(`${s.base}/api/v1/metaverses`)
    await s.stop()
    const raw = s
      .output()
      .split('\n')
      .filter((line) => line !== '')
    expect(raw.length).toBeGreaterThan(4)
    for (const line of raw) {
      const record = JSON.parse(line) as Record<string, unknown>
      expect(record).toMatchObject({ level: expect.any(String), time: expect.any(String), msg: expect.any(String) })
      expect(Number.isNaN(Date.parse(record.time as string))).toBe(false)
    }
    expect(s.lines()).toEqual(
      expect.arrayContaining([
        '[RateLimit:read] Using MemoryStore (single-instance mode)',
        '[RateLimit:read] Rate limit exceeded',
        '[Server] Shutdown complete',
      ]),
    )
    // The guide's greps still find their lines in the JSON.
    // read, write, and the login limiter of POST /api/v1/session.
    expect(raw.filter((line) => line.includes('Using MemoryStore'))).toHaveLength(3)
  })

  it('write the audit record once per client under a flood, as a warning with its fields', async () => {
    const s = await server({ RATE_LIMIT_READ_MAX: '5', API_TOKENS: 'alice-token-0123456789:alice' })
    const flood = (headers: Record<string, string> = {}) =>
      Promise.all(
        Array.from({ length: 200 }, () =>
          fetch(`${s.base}/api/v1/metaverses/some-id`, { headers }).then((r) => r.status),
        ),
      )
    expect((await flood()).filter((status) => status === 429)).toHaveLength(195)
    await flood({ Authorization: 'Bearer alice-token-0123456789' })
    await s.waitForOutput('"userId":"alice"')

    const audits = s.records().filter((r) => r.msg === '[RateLimit:read] Rate limit exceeded')
    expect(audits).toHaveLength(2)
    expect(audits[0]).toMatchObject({
      level: 'warn',
      event: 'rate_limit_exceeded',
      namespace: 'metaverses',
      type: 'read',
      method: 'GET',
      route: '/api/v1/metaverses/:id',
      limit: 5,
      windowMs: 900_000,
      shadow: false,
      store: 'memory',
      ip: expect.stringContaining('127.0.0.1'),
    })
    expect(audits[1]).toMatchObject({ userId: 'alice', key: 'user:alice' })
    expect(s.output()).not.toContain('alice-token')
    expect(s.output()).not.toContain('some-id')
  })

  it('refuse a bad LOG_LEVEL with one JSON line, and honour a good one', async () => {
    const bad = await startServer({ LOG_LEVEL: 'loud' }, { waitForListening: false })
    running.push(bad)
    expect((await bad.exited).code).toBe(1)
    expect(bad.lines()).toEqual([
      '[Server] Invalid configuration: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    ])

    const quiet = await startServer({ LOG_LEVEL: 'warn', RATE_LIMIT_READ_MAX: '1' }, { waitForListening: false })
    running.push(quiet)
    const base = `http://127.0.0.1:${quiet.port}`
    // The "Listening" line is info, so it is not written: wait for /health instead.
    await waitFor('the quiet server to listen', () =>
      fetch(`${base}/health`).then(
        (r) => r.ok,
        () => false,
      ),
    )
    await fetch(`${base}/api/v1/metaverses`)
    await fetch(`${base}/api/v1/metaverses`)
    await quiet.waitForOutput('Rate limit exceeded')
    expect(quiet.records().map((r) => r.level)).toEqual(['warn'])
  })
})

describe('shadow mode (RATE_LIMIT_SHADOW=true)', () => {
  it('never blocks, but reports in headers, metrics and the audit log', async () => {
    const s = await server({ RATE_LIMIT_SHADOW: 'true', RATE_LIMIT_READ_MAX: '2' })
    const answers = await Promise.all(Array.from({ length: 50 }, () => fetch(`${s.base}/api/v1/metaverses`)))
    expect(answers.map((r) => r.status)).toEqual(Array(50).fill(200))
    expect(answers.some((r) => r.headers.get('ratelimit') === '"read"; r=0; t=900')).toBe(true)
    expect(answers.every((r) => r.headers.get('retry-after') === null)).toBe(true)

    const metrics = await (await fetch(`${s.base}/metrics`)).text()
    expect(sample(metrics, 'rate_limit_shadow_rejections_total{namespace="metaverses",type="read"}')).toBe(48)
    expect(sample(metrics, 'rate_limit_rejections_total{namespace="metaverses",type="read"}')).toBe(0)
    await s.waitForOutput('Rate limit exceeded')
    expect(s.records().filter((r) => r.event === 'rate_limit_exceeded')).toEqual([
      expect.objectContaining({ shadow: true, limit: 2 }),
    ])
    expect(s.lines()).toContain('[RateLimit:read] Shadow mode: requests over the limit are reported, never blocked')
  })
})

describe.runIf(redisServerAvailable())('with Redis', () => {
  let redis: TestRedisServer
  beforeAll(async () => {
    redis = await startRedisServer({ password: 'pw-metrics-secret' })
  })
  afterAll(async () => {
    await redis?.stop()
  })

  it('logs the guide’s lines and shows one ready connection on the token-protected /metrics', async () => {
    const s = await server({ REDIS_URL: redis.url, METRICS_TOKEN: 'metrics-token-0123456789' })
    expect(s.lines()).toEqual(
      expect.arrayContaining([
        '[Redis] Client connected successfully',
        '[RateLimit:read] Using Redis store (distributed mode)',
        '[RateLimit:write] Using Redis store (distributed mode)',
      ]),
    )
    expect((await fetch(`${s.base}/metrics`)).status).toBe(401)
    await fetch(`${s.base}/api/v1/metaverses`)
    const metrics = await (
      await fetch(`${s.base}/metrics`, { headers: { Authorization: 'Bearer metrics-token-0123456789' } })
    ).text()
    expect(sample(metrics, 'redis_connection_pool_size')).toBe(1)
    expect(sample(metrics, 'redis_connection_pool_active')).toBe(1)
    expect(
      sample(metrics, 'rate_limit_store_duration_seconds_count{namespace="metaverses",type="read",store="redis"}'),
    ).toBe(1)
    await s.stop()
    expect(s.output()).not.toContain('pw-metrics-secret')
    expect(s.output()).not.toContain('metrics-token-0123456789')
  })
})
