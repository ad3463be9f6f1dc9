// Metrics, audit log, skip and shadow mode of the limiters, in memory mode, through real HTTP requests.
import express from 'express'
import { Counter, Registry, register as globalRegistry } from 'prom-client'
import request from 'supertest'
import { afterEach, describe, expect, it } from 'vitest'

import {
  createRateLimiter,
  createRateLimiters,
  ERROR_CODES,
  RATE_LIMIT_METRICS,
  type RateLimitAuditRecord,
  type RateLimitConfig,
} from '#src/index.js'
import { createApp } from '#test/support/app.js'
import { hammer, listen } from '#test/support/http.js'
import { uniquePrefix } from '#test/support/limiter-contract.js'
import { recordingLogger, type RecordingLogger } from '#test/support/logger.js'
import { samples, valueOf } from '#test/support/metrics.js'

const disposers: (() => void)[] = []
afterEach(() => {
  for (const dispose of disposers.splice(0)) dispose()
})

async function limitersWith(config: RateLimitConfig = {}) {
  const registry = new Registry()
  const logger = recordingLogger()
  const limiters = await createRateLimiters({
    keyPrefix: uniquePrefix('obs'),
    metricsNamespace: 'svc',
    metricsRegistry: registry,
    logger,
    ...config,
  })
  disposers.push(() => limiters.dispose())
  return { limiters, registry, logger, app: createApp(limiters) }
}

const read = { namespace: 'svc', type: 'read' }
const write = { namespace: 'svc', type: 'write' }
const from = (ip: string) => ({ 'X-Forwarded-For': ip })

/** The `Rate limit exceeded` lines, with their audit records. */
function auditLines(logger: RecordingLogger): RateLimitAuditRecord[] {
  return logger.lines.filter((l) => l.message.endsWith('] Rate limit exceeded')).map((l) => l.details[0] as never)
}

describe('metrics after known traffic (memory store)', () => {
  it('counts requests, rejections, near-limit requests and store latency, by namespace and type', async () => {
    const { app, registry } = await limitersWith({ maxRead: 5, maxWrite: 10 })
    for (let i = 0; i < 8; i++) await request(app).get('/items').set(from('10.0.0.1'))
    for (let i = 0; i < 3; i++) await request(app).get('/items').set(from('10.0.0.2'))
    for (let i = 0; i < 9; i++) await request(app).post('/items').set(from('10.0.0.3'))

    expect(await valueOf(registry, RATE_LIMIT_METRICS.requests, read)).toBe(11)
    expect(await valueOf(registry, RATE_LIMIT_METRICS.rejections, read)).toBe(3)
    // 20% of 5 is 1: only the request that left 0 of 5 was near the limit (10.0.0.2 kept 2).
    expect(await valueOf(registry, RATE_LIMIT_METRICS.nearLimit, read)).toBe(1)
    expect(await valueOf(registry, RATE_LIMIT_METRICS.requests, write)).toBe(9)
    expect(await valueOf(registry, RATE_LIMIT_METRICS.rejections, write)).toBe(0)
    // 20% of 10 is 2: the 9th write left 1.
    expect(await valueOf(registry, RATE_LIMIT_METRICS.nearLimit, write)).toBe(1)
    expect(await valueOf(registry, RATE_LIMIT_METRICS.skipped, read)).toBe(0)
    expect(await valueOf(registry, RATE_LIMIT_METRICS.shadowRejections, read)).toBe(0)
    // The store counted 9: the 7th and 8th requests of 10.0.0.1 were answered from the blocked-client memory.
    expect(await valueOf(registry, `${RATE_LIMIT_METRICS.storeDuration}_count`, { ...read, store: 'memory' })).toBe(9)
    expect(await valueOf(registry, RATE_LIMIT_METRICS.fallback, read)).toBe(0)
    expect(await valueOf(registry, RATE_LIMIT_METRICS.storeErrors, { ...read, kind: 'timeout' })).toBe(0)
    expect(await valueOf(registry, RATE_LIMIT_METRICS.degraded, { ...read, policy: 'fallback' })).toBe(0)
    // No Redis, no connection.
    expect(await valueOf(registry, RATE_LIMIT_METRICS.poolSize)).toBe(0)
    expect(await valueOf(registry, RATE_LIMIT_METRICS.poolActive)).toBe(0)
  })

  it('registers nothing anywhere without a registry, and only on the given one with it', async () => {
    const plain = await createRateLimiter('custom', { keyPrefix: uniquePrefix('plain'), logger: recordingLogger() })
    disposers.push(() => plain.dispose())
    expect(globalRegistry.getSingleMetric(RATE_LIMIT_METRICS.requests)).toBeUndefined()
    const { registry } = await limitersWith()
    expect(registry.getSingleMetric(RATE_LIMIT_METRICS.requests)).toBeDefined()
    expect(globalRegistry.getMetricsAsArray()).toHaveLength(0)
  })

  it('reports two services on one registry side by side, and keeps a disposed one’s totals', async () => {
    const registry = new Registry()
    const logger = recordingLogger()
    const config = { metricsRegistry: registry, logger }
    const a = await createRateLimiters({ keyPrefix: uniquePrefix('a'), metricsNamespace: 'a', ...config })
    const b = await createRateLimiters({ keyPrefix: uniquePrefix('b'), metricsNamespace: 'b', ...config })
    const b2 = await createRateLimiters({ keyPrefix: uniquePrefix('b2'), metricsNamespace: 'b', ...config })
    disposers.push(() => b.dispose())
    await request(createApp(a)).get('/items')
    await request(createApp(b)).get('/items')
    await request(createApp(b)).get('/items')
    await request(createApp(b2)).get('/items')
    expect(await valueOf(registry, RATE_LIMIT_METRICS.requests, { namespace: 'a', type: 'read' })).toBe(1)
    expect(await valueOf(registry, RATE_LIMIT_METRICS.requests, { namespace: 'b', type: 'read' })).toBe(3)
    // Counters never go down, or Prometheus would take it for a restart and rate() would spike.
    a.dispose()
    b2.dispose()
    expect(await valueOf(registry, RATE_LIMIT_METRICS.requests, { namespace: 'a', type: 'read' })).toBe(1)
    expect(await valueOf(registry, RATE_LIMIT_METRICS.requests, { namespace: 'b', type: 'read' })).toBe(3)
    await request(createApp(b)).get('/items')
    expect(await valueOf(registry, RATE_LIMIT_METRICS.requests, { namespace: 'b', type: 'read' })).toBe(4)
  })

  it('registers once when two limiter sets start together on one registry, and again after registry.clear()', async () => {
    const registry = new Registry()
    const logger = recordingLogger()
    const [one, two] = await Promise.all([
      createRateLimiters({ keyPrefix: uniquePrefix('one'), metricsRegistry: registry, logger }),
      createRateLimiter('custom', { keyPrefix: uniquePrefix('two'), metricsRegistry: registry, logger }),
    ])
    disposers.push(
      () => one.dispose(),
      () => two.dispose(),
    )
    expect(registry.getMetricsAsArray().filter((m) => m.name === RATE_LIMIT_METRICS.requests)).toHaveLength(1)

    registry.clear()
    const three = await createRateLimiters({
      keyPrefix: uniquePrefix('three'),
      metricsNamespace: 'three',
      metricsRegistry: registry,
      logger,
    })
    disposers.push(() => three.dispose())
    await request(createApp(three)).get('/items')
    expect(await valueOf(registry, RATE_LIMIT_METRICS.requests, { namespace: 'three', type: 'read' })).toBe(1)
  })

  it('refuses a registry where someone else registered one of its metric names', async () => {
    const registry = new Registry()
    new Counter({ name: RATE_LIMIT_METRICS.rejections, help: 'theirs', registers: [registry] })
    await expect(
      createRateLimiters({ keyPrefix: uniquePrefix('clash'), metricsRegistry: registry, logger: recordingLogger() }),
    ).rejects.toMatchObject({
      code: ERROR_CODES.METRICS_CONFLICT,
      message: expect.stringContaining('metricsRegistry already has a metric named rate_limit_rejections_total'),
    })
  })

  it('keeps label values bounded with 10,000 distinct clients: namespace and type only, never a key', async () => {
    const { limiters, registry } = await limitersWith({ maxRead: 1, windowMs: 60_000 })
    const http = await listen(createApp(limiters))
    disposers.push(() => void http.close())
    const ipOf = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
    await fetch(`${http.base}/items`, { headers: from(ipOf(0)) })
    const before = (await samples(registry)).length
    // Each client twice: every one of them is also rejected once, and audited once.
    const statuses = await hammer(20_000, 50, (i) =>
      fetch(`${http.base}/items`, { headers: from(ipOf(1 + (i % 10_000))) }),
    )
    expect(statuses.get(429)).toBe(10_000)

    const after = await samples(registry)
    expect(after).toHaveLength(before)
    const labelValues = new Set(after.flatMap(({ sample }) => Object.values(sample.labels).map(String)))
    for (const value of labelValues) expect(value).not.toMatch(/^10\.|127\.0\.0\.1|::/)
    expect(await valueOf(registry, RATE_LIMIT_METRICS.requests, read)).toBe(20_001)
    expect(await valueOf(registry, RATE_LIMIT_METRICS.rejections, read)).toBe(10_000)
  }, 60_000)
})

describe('skip', () => {
  it('lets skipped requests through uncounted, and counts them as skipped', async () => {
    const { app, registry } = await limitersWith({
      maxRead: 2,
      skip: (req) => req.headers['x-role'] === 'admin',
    })
    for (let i = 0; i < 5; i++) {
      const res = await request(app).get('/items').set('X-Role', 'admin')
      expect(res.status).toBe(200)
      expect(res.headers['ratelimit']).toBeUndefined()
    }
    const statuses = []
    for (let i = 0; i < 3; i++) statuses.push((await request(app).get('/items')).status)
    expect(statuses).toEqual([200, 200, 429])
    expect(await valueOf(registry, RATE_LIMIT_METRICS.skipped, read)).toBe(5)
    expect(await valueOf(registry, RATE_LIMIT_METRICS.requests, read)).toBe(3)
  })

  it('waits for an async skip, and passes a throwing one to the error handler', async () => {
    const { limiters } = await limitersWith({
      maxRead: 1,
      skip: async (req) => {
        if (req.headers['x-boom'] !== undefined) throw new Error('skip failed')
        return Promise.resolve(req.headers['x-role'] === 'admin')
      },
    })
    const app = express()
    app.get('/items', limiters.read, (_req, res) => void res.json({ ok: true }))
    app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).json({ error: error.message })
    })
    expect((await request(app).get('/items').set('X-Role', 'admin')).status).toBe(200)
    expect((await request(app).get('/items').set('X-Role', 'admin')).status).toBe(200)
    expect((await request(app).get('/items')).status).toBe(200)
    expect((await request(app).get('/items')).status).toBe(429)
    const boom = await request(app).get('/items').set('X-Boom', '1')
    expect(boom.status).toBe(500)
    expect(boom.body).toEqual({ error: 'skip failed' })
  })
})

describe('shadow mode', () => {
  it('never blocks, but sends the headers, counts, and audits what it would have blocked', async () => {
    const { app, registry, logger } = await limitersWith({ maxRead: 3, shadow: true })
    const answers = []
    for (let i = 0; i < 10; i++) answers.push(await request(app).get('/items').set(from('10.9.9.9')))

    expect(answers.map((res) => res.status)).toEqual(Array(10).fill(200))
    const last = answers.at(-1)!
    expect(last.headers['ratelimit']).toMatch(/^"read"; r=0; t=\d+$/)
    expect(last.headers['ratelimit-policy']).toMatch(/^"read"; q=3; w=900; pk=/)
    expect(last.headers['retry-after']).toBeUndefined()
    expect(await valueOf(registry, RATE_LIMIT_METRICS.shadowRejections, read)).toBe(7)
    expect(await valueOf(registry, RATE_LIMIT_METRICS.rejections, read)).toBe(0)
    expect(await valueOf(registry, RATE_LIMIT_METRICS.requests, read)).toBe(10)
    expect(auditLines(logger)).toEqual([expect.objectContaining({ key: '10.9.9.9', shadow: true, limit: 3 })])
    expect(logger.messages()).toContain(
      '[RateLimit:read] Shadow mode: requests over the limit are reported, never blocked',
    )
  })
})

describe('audit log', () => {
  it('writes one structured warning per client key and window, however many requests flood in', async () => {
    const { limiters, logger } = await limitersWith({ maxRead: 2, windowMs: 60_000 })
    const app = express()
    app.set('trust proxy', 1)
    app.use((req, _res, next) => {
      const user = req.headers['x-user']
      if (typeof user === 'string') Object.assign(req, { user: { id: user } })
      next()
    })
    app.use('/things', limiters.read, (_req, res) => void res.json({ ok: true }))
    const http = await listen(app)
    disposers.push(() => void http.close())

    const flood = await hammer(500, 20, () => fetch(`${http.base}/things/42?x=1`, { headers: from('10.1.1.1') }))
    expect(flood.get(429)).toBe(498)
    await hammer(50, 10, () => fetch(`${http.base}/things/7`, { headers: { ...from('10.1.1.2'), 'X-User': 'alice' } }))

    const lines = auditLines(logger)
    expect(lines).toHaveLength(2)
    const [byIp, byUser] = lines
    expect(byIp).toEqual({
      event: 'rate_limit_exceeded',
      namespace: 'svc',
      type: 'read',
      key: '10.1.1.1',
      ip: '10.1.1.1',
      method: 'GET',
      route: '/things',
      limit: 2,
      windowMs: 60_000,
      resetTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      shadow: false,
      store: 'memory',
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    })
    expect(byUser).toMatchObject({ key: 'user:alice', userId: 'alice', ip: '10.1.1.2', route: '/things' })
    expect(logger.lines.find((l) => l.message.endsWith('Rate limit exceeded'))?.level).toBe('warn')
    // (A new window logs the key again: audit.test.ts shows it on a controlled clock.)
  })

  it('names the route pattern, not the path with its ids', async () => {
    const { limiters, logger } = await limitersWith({ maxRead: 1 })
    const app = express()
    app.get('/users/:userId/items/:itemId', limiters.read, (_req, res) => void res.json({ ok: true }))
    await request(app).get('/users/123/items/456')
    await request(app).get('/users/123/items/456')
    expect(auditLines(logger)).toEqual([expect.objectContaining({ route: '/users/:userId/items/:itemId' })])
    expect(logger.text()).not.toContain('/users/123')
  })

  it('names path parameters of the mount path by name, not by value', async () => {
    const { limiters, logger } = await limitersWith({ maxRead: 1 })
    const app = express()
    app.use('/users/:uid', limiters.read, (_req, res) => void res.json({ ok: true }))
    await request(app).get('/users/u-9911/items')
    await request(app).get('/users/u-9911/items')
    expect(auditLines(logger)).toEqual([expect.objectContaining({ route: '/users/:uid' })])
    expect(logger.text()).not.toContain('u-9911')
  })

  it('uses auditRoute to name routes when it is given', async () => {
    const { limiters, logger } = await limitersWith({ maxRead: 1, auditRoute: () => '/named' })
    const app = createApp(limiters)
    await request(app).get('/items')
    await request(app).get('/items')
    expect(auditLines(logger)).toEqual([expect.objectContaining({ route: '/named' })])
  })

  it('logs a default key over 128 bytes as its SHA-256 form', async () => {
    const { limiters, logger } = await limitersWith({ maxRead: 1 })
    const app = express()
    const longId = 'u'.repeat(300)
    app.use((req, _res, next) => {
      Object.assign(req, { user: { id: longId } })
      next()
    })
    app.get('/items', limiters.read, (_req, res) => void res.json({ ok: true }))
    await request(app).get('/items')
    expect((await request(app).get('/items')).status).toBe(429)
    const [line] = auditLines(logger)
    expect(line?.key).toMatch(/^sha256:[0-9a-f]{64}$/)
  })

  it('logs only a hash of a custom key, which may be a secret', async () => {
    const { limiters, logger } = await limitersWith({
      maxRead: 1,
      keyGenerator: (req) => String(req.headers['x-api-key']),
    })
    const app = createApp(limiters)
    const apiKey = 'sk_live_0123456789abcdef'
    await request(app).get('/items').set('X-API-Key', apiKey)
    expect((await request(app).get('/items').set('X-API-Key', apiKey)).status).toBe(429)
    const [line] = auditLines(logger)
    expect(line).not.toHaveProperty('key')
    expect(line?.keyHash).toMatch(/^[0-9a-f]{16}$/)
    expect(logger.text()).not.toContain(apiKey)
  })

  it('can be turned off', async () => {
    const { app, logger } = await limitersWith({ maxRead: 1, auditLog: false })
    await request(app).get('/items')
    expect((await request(app).get('/items')).status).toBe(429)
    expect(auditLines(logger)).toEqual([])
  })
})
