// The server's /metrics (open or behind METRICS_TOKEN, never rate-limited) and its admin skip.
import { createInMemoryDataSource, disposeRateLimiters, initializeRateLimiters } from '@universo/metaverses-srv'
import request from 'supertest'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { createApp, createMetricsRegistry, loadConfig, serverRateLimitOptions } from '../../src/index.js'
import { sampleValue as sample } from '../process/support/promql.js'

const TOKEN_ALICE = 'tok-alice-0123456789'
const TOKEN_ROOT = 'tok-root-abcdefghijk'
const METRICS_TOKEN = 'scrape-0123456789abcdef'

async function boot(env: Record<string, string> = {}) {
  const lines: string[] = []
  const log = (line: string) => void lines.push(line)
  const logger = { info: log, warn: log, error: log }
  const config = loadConfig({ API_TOKENS: `${TOKEN_ALICE}:alice,${TOKEN_ROOT}:root:admin`, ...env })
  const metricsRegistry = createMetricsRegistry()
  await initializeRateLimiters(serverRateLimitOptions(config, logger, metricsRegistry))
  const app = createApp({ config, dataSource: createInMemoryDataSource(), logger, metricsRegistry })
  return { app, lines }
}

const READ = '{namespace="metaverses",type="read"}'

beforeEach(() => {
  vi.stubEnv('REDIS_URL', '')
})
afterEach(async () => {
  await disposeRateLimiters()
  vi.unstubAllEnvs()
})

describe('GET /metrics', () => {
  it('serves the limiters’ metrics, request latency and Node’s default metrics, in the Prometheus format', async () => {
    const { app } = await boot({ RATE_LIMIT_READ_MAX: '2' })
    for (let i = 0; i < 3; i++) await request(app).get('/api/v1/metaverses')
    // Probes and scrapes are left out of the request latency: they would only dilute it.
    await request(app).get('/health').expect(200)
    await request(app).get('/ready').expect(200)
    await request(app).get('/metrics').expect(200)
    const res = await request(app).get('/metrics').expect(200)
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/)
    expect(res.headers['ratelimit']).toBeUndefined()
    expect(sample(res.text, `rate_limit_requests_total${READ}`)).toBe(3)
    expect(sample(res.text, `rate_limit_rejections_total${READ}`)).toBe(1)
    expect(sample(res.text, `rate_limit_requests_total{namespace="metaverses",type="write"}`)).toBe(0)
    expect(sample(res.text, 'redis_connection_pool_size')).toBe(0)
    expect(sample(res.text, 'http_request_duration_seconds_count{method="GET",status="2xx"}')).toBe(2)
    expect(sample(res.text, 'http_request_duration_seconds_count{method="GET",status="4xx"}')).toBe(1)
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(res.text).toContain(`# TYPE ${name} `)
    }
  })

  it('is never rate-limited', async () => {
    const { app } = await boot({ RATE_LIMIT_READ_MAX: '1' })
    for (let i = 0; i < 50; i++) await request(app).get('/metrics').expect(200)
    const res = await request(app).get('/metrics').expect(200)
    expect(sample(res.text, `rate_limit_requests_total${READ}`)).toBe(0)
  })

  it('wants Authorization: Bearer <METRICS_TOKEN> when METRICS_TOKEN is set', async () => {
    const { app } = await boot({ METRICS_TOKEN })
    const none = await request(app).get('/metrics').expect(401)
    expect(none.headers['www-authenticate']).toBe('Bearer realm="metrics"')
    expect(none.body).toEqual({
      success: false,
      code: 'UNAUTHORIZED',
      error: 'Send the metrics token: Authorization: Bearer <METRICS_TOKEN>',
    })
    expect(none.text).not.toContain('rate_limit')
    await request(app).get('/metrics').set('Authorization', `Bearer ${METRICS_TOKEN}x`).expect(401)
    await request(app)
      .get('/metrics')
      .set('Authorization', `Bearer ${METRICS_TOKEN.slice(1)}`)
      .expect(401)
    await request(app).get('/metrics').set('Authorization', METRICS_TOKEN).expect(401)
    // An API token is not the metrics token, not even an admin's.
    await request(app).get('/metrics').set('Authorization', `Bearer ${TOKEN_ROOT}`).expect(401)
    const ok = await request(app).get('/metrics').set('Authorization', `Bearer ${METRICS_TOKEN}`).expect(200)
    expect(ok.text).toContain('rate_limit_requests_total')
  })
})

describe('admins', () => {
  it('bypass the limiters by default, and are counted as skipped', async () => {
    const { app } = await boot({ RATE_LIMIT_READ_MAX: '2' })
    for (let i = 0; i < 10; i++) {
      const res = await request(app).get('/api/v1/metaverses').set('Authorization', `Bearer ${TOKEN_ROOT}`)
      expect(res.status).toBe(200)
    }
    const alice = []
    for (let i = 0; i < 3; i++) {
      alice.push((await request(app).get('/api/v1/metaverses').set('Authorization', `Bearer ${TOKEN_ALICE}`)).status)
    }
    expect(alice).toEqual([200, 200, 429])
    const metrics = (await request(app).get('/metrics')).text
    expect(sample(metrics, `rate_limit_skipped_total${READ}`)).toBe(10)
    expect(sample(metrics, `rate_limit_requests_total${READ}`)).toBe(3)
  })

  it('are limited like anyone with RATE_LIMIT_SKIP_ADMINS=false', async () => {
    const { app } = await boot({ RATE_LIMIT_READ_MAX: '2', RATE_LIMIT_SKIP_ADMINS: 'false' })
    const root = []
    for (let i = 0; i < 3; i++) {
      root.push((await request(app).get('/api/v1/metaverses').set('Authorization', `Bearer ${TOKEN_ROOT}`)).status)
    }
    expect(root).toEqual([200, 200, 429])
  })
})
