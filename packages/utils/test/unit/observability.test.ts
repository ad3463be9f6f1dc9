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
} from '../../src/rate-limiting/index.js'
import { createApp } from '../support/app.js'
import { hammer, listen } from '../support/http.js'
import { uniquePrefix } from '../support/limiter-contract.js'
import { recordingLogger, type RecordingLogger } from '../support/logger.js'
import { samples, valueOf } from '../support/metrics.js'

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
    expect(await valueOf(registry, `${RATE_LIMIT_METRICS.storeDuration}_count`, { ...read, store: 'memory' })).toBe(11)
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

  it('reports two services on one registry side by side, and forgets a disposed one', async () => {
    const registry = new Registry()
    const logger = recordingLogger()
    const a = await createRateLimiters({
      keyPrefix: uniquePrefix('a'),
      metricsNamespace: 'a',
      metricsRegistry: registry,
      logger,
    })
    const b = await createRateLimiters({
      keyPrefix: uniquePrefix('b'),
      metricsNamespace: 'b',
      metricsRegistry: registry,
      logger,
    })
    disposers.push(() => b.dispose())
    await request(createApp(a)).get('/items')
    await request(createApp(b)).get('/items')
    await request(createApp(b)).get('/items')
    expect(await valueOf(registry, RATE_LIMIT_METRICS.requests, { namespace: 'a', type: 'read' })).toBe(1)
    expect(await valueOf(registry, RATE_LIMIT_METRICS.requests, { namespace: 'b', type: 'read' })).toBe(2)
    a.dispose()
    expect(await valueOf(registry, RATE_LIMIT_METRICS.requests, { namespace: 'a', type: 'read' })).toBeUndefined()
    expect(await valueOf(registry, RATE_LIMIT_METRICS.requests, { namespace: 'b', type: 'read' })).toBe(2)
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
    const { limiters, logger } = await limitersWith({ maxRead: 2, windowMs: 1000 })
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
      windowMs: 1000,
      resetTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      shadow: false,
      store: 'memory',
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    })
    expect(byUser).toMatchObject({ key: 'user:alice', userId: 'alice', ip: '10.1.1.2', route: '/things' })
    expect(logger.lines.find((l) => l.message.endsWith('Rate limit exceeded'))?.level).toBe('warn')

    // A new window: the same client is logged once more.
    await new Promise((done) => setTimeout(done, 1100))
    await hammer(20, 5, () => fetch(`${http.base}/things/42`, { headers: from('10.1.1.1') }))
    expect(auditLines(logger)).toHaveLength(3)
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

  it('logs the hashed key of a client key over 128 bytes', async () => {
    const { limiters, logger } = await limitersWith({ maxRead: 1, keyGenerator: (req) => String(req.headers['x-key']) })
    const app = createApp(limiters)
    const hostile = 'k'.repeat(5000)
    await request(app).get('/items').set('X-Key', hostile)
    const res = await request(app).get('/items').set('X-Key', hostile)
    expect(res.status).toBe(429)
    const [line] = auditLines(logger)
    expect(line?.key).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(logger.text()).not.toContain('kkkkkkkk')
  })

  it('can be turned off', async () => {
    const { app, logger } = await limitersWith({ maxRead: 1, auditLog: false })
    await request(app).get('/items')
    expect((await request(app).get('/items')).status).toBe(429)
    expect(auditLines(logger)).toEqual([])
  })
})
