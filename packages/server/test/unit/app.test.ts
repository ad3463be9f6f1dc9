import {
  createInMemoryDataSource,
  createMetaversesServiceRoutes,
  disposeRateLimiters,
  getRateLimiters,
  initializeRateLimiters,
} from '@universo/metaverses-srv'
import {
  createRateLimiter,
  type RateLimitRequestHandler,
  type RateLimitStoreStatus,
} from '@universo/utils/rate-limiting'
import express, { type Express } from 'express'
import request from 'supertest'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { createApp, loadConfig, loginLimiterOptions, SESSION_BODY_LIMIT_BYTES } from '../../src/index.js'

const TOKEN_ALICE = 'tok-alice-0123456789'
const TOKEN_BOB = 'tok-bob-abcdefghijkl'
const API_TOKENS = `${TOKEN_ALICE}:alice,${TOKEN_BOB}:bob:admin`

function recorder() {
  const lines: string[] = []
  const log = (line: string) => void lines.push(line)
  return { lines, logger: { info: log, warn: log, error: log } }
}

async function boot(env: Record<string, string> = {}) {
  const { logger, lines } = recorder()
  const config = loadConfig({ API_TOKENS, ...env })
  await initializeRateLimiters({ ...config.rateLimit, logger })
  return { app: createApp({ config, dataSource: createInMemoryDataSource(), logger }), lines }
}

beforeEach(() => {
  vi.stubEnv('REDIS_URL', '')
})
afterEach(async () => {
  await disposeRateLimiters()
  vi.unstubAllEnvs()
})

describe('boot order', () => {
  it('fails at boot, with the guide’s message, when the limiters were not initialised', () => {
    expect(() =>
      createApp({ config: loadConfig({}), dataSource: createInMemoryDataSource(), logger: recorder().logger }),
    ).toThrow('Rate limiters not initialized. Call initializeRateLimiters() first.')
  })
})

describe('lazy mounting', () => {
  it('builds the service router on the first API request, once, as the guide shows', async () => {
    const { logger } = recorder()
    const config = loadConfig({})
    await initializeRateLimiters({ logger })
    let built = 0
    const app = createApp({
      config,
      dataSource: createInMemoryDataSource(),
      logger,
      createRoutes: (ensureAuth, getDataSource) => {
        built++
        return createMetaversesServiceRoutes(ensureAuth, getDataSource)
      },
    })
    await request(app).get('/health').expect(200)
    expect(built).toBe(0)
    await request(app).get('/api/v1/metaverses').expect(200)
    await request(app).post('/api/v1/metaverses').send({ name: 'a' }).expect(201)
    expect(built).toBe(1)
  })
})

describe('errors that reach the app', () => {
  async function appWhoseRoutesThrow(error: unknown) {
    const { logger, lines } = recorder()
    await initializeRateLimiters({ logger })
    const app = createApp({
      config: loadConfig({}),
      dataSource: createInMemoryDataSource(),
      logger,
      createRoutes: () =>
        express.Router().use(() => {
          throw error
        }),
    })
    return { app, lines }
  }

  it('answers a client error (a path that does not decode, say) with its JSON 4xx, not 500', async () => {
    const { app } = await appWhoseRoutesThrow(new URIError('URI malformed'))
    const res = await request(app).get('/api/v1/anything').expect(400)
    expect(res.body).toEqual({ success: false, code: 'BAD_REQUEST', error: 'The request could not be understood' })
  })

  it('answers a fault of ours with a JSON 500 and logs it without credentials', async () => {
    const { app, lines } = await appWhoseRoutesThrow(new Error('boom at redis://:hunter2@host:6379'))
    const res = await request(app).get('/api/v1/anything').expect(500)
    expect(res.body).toEqual({ success: false, code: 'INTERNAL_ERROR', error: 'Internal server error' })
    expect(lines).toContain('[Server] GET /api/v1/anything failed: boom at redis://:***@host:6379')
  })
})

describe('health and readiness', () => {
  it('answers /health and /ready without touching the limiter, however many requests come', async () => {
    const { app } = await boot({ RATE_LIMIT_READ_MAX: '1' })
    for (let i = 0; i < 5; i++) {
      const health = await request(app).get('/health').expect(200)
      expect(health.body).toEqual({ status: 'ok' })
      expect(health.headers['ratelimit']).toBeUndefined()
      const ready = await request(app).get('/ready').expect(200)
      expect(ready.body).toEqual({
        status: 'ready',
        store: 'memory',
        ready: true,
        state: 'memory',
        since: expect.any(String),
      })
    }
    await request(app).get('/api/v1/metaverses').expect(200)
  })

  const SINCE = '2026-11-27T08:14:19.240Z'
  const redis = (ready: boolean, state: 'redis' | 'fallback' | 'allow' | 'deny'): RateLimitStoreStatus => ({
    store: 'redis',
    topology: 'standalone',
    ready,
    state,
    since: SINCE,
  })

  // /ready is "should this instance get traffic": yes unless the API would refuse every request.
  it.each([
    ['while Redis is in use', 200, redis(true, 'redis'), 'ready'],
    [
      'while degraded under fallback (the API answers from per-instance counts)',
      200,
      redis(false, 'fallback'),
      'degraded',
    ],
    ['while degraded under allow (the API answers without limits)', 200, redis(false, 'allow'), 'degraded'],
    ['while degraded under deny (the API answers 503 to everyone)', 503, redis(false, 'deny'), 'degraded'],
  ] as const)('answers /ready %s with %i, and the store’s state in the body', async (_when, code, status, word) => {
    const { app } = await boot()
    vi.spyOn(getRateLimiters(), 'status').mockReturnValue(status)
    const res = await request(app).get('/ready').expect(code)
    // The body keeps saying what the store does, whatever the status code.
    expect(res.body).toEqual({ status: word, ...status })
  })

  it('answers unknown routes with a JSON 404', async () => {
    const { app } = await boot()
    const res = await request(app).get('/nope').expect(404)
    expect(res.body).toEqual({ success: false, code: 'NOT_FOUND', error: 'No such route' })
  })
})

describe('the guide’s rate limit verification (memory)', () => {
  it('lets 100 of 110 GETs through, then answers 429 with Retry-After and RateLimit', async () => {
    const { app } = await boot()
    const statuses: number[] = []
    for (let i = 0; i < 110; i++) {
      const res = await request(app).get('/api/v1/metaverses')
      statuses.push(res.status)
      if (res.status === 429) {
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(0)
        expect(res.headers['ratelimit']).toMatch(/^"read"; r=0; t=\d+$/)
      }
    }
    expect(statuses).toEqual([...Array<number>(100).fill(200), ...Array<number>(10).fill(429)])
  })

  it('lets 60 of 65 POSTs create, then answers 429', async () => {
    const { app } = await boot()
    const statuses: number[] = []
    for (let i = 0; i < 65; i++) {
      statuses.push((await request(app).post('/api/v1/metaverses').send({ name: 'test' })).status)
    }
    expect(statuses).toEqual([...Array<number>(60).fill(201), ...Array<number>(5).fill(429)])
  })
})

describe('RATE_LIMIT_PROBLEM_DETAILS', () => {
  it('answers 429 as RFC 9457 problem details', async () => {
    const { app } = await boot({ RATE_LIMIT_PROBLEM_DETAILS: 'true', RATE_LIMIT_READ_MAX: '1' })
    await request(app).get('/api/v1/metaverses').expect(200)
    const refused = await request(app).get('/api/v1/metaverses').expect(429)
    expect(refused.headers['content-type']).toBe('application/problem+json')
    expect(refused.body).toMatchObject({
      status: 429,
      code: 'RATE_LIMIT_EXCEEDED',
      limits: [{ name: 'read', limit: 1, remaining: 0 }],
    })
  })
})

describe('POST /api/v1/session, behind the login limiter', () => {
  const limiters: RateLimitRequestHandler[] = []
  afterEach(() => {
    for (const limiter of limiters.splice(0)) limiter.dispose()
  })
  async function bootWithLogin(env: Record<string, string> = {}) {
    const { logger, lines } = recorder()
    const config = loadConfig({ API_TOKENS, ...env })
    await initializeRateLimiters({ ...config.rateLimit, logger })
    const loginLimiter = await createRateLimiter('login', loginLimiterOptions(config, logger))
    limiters.push(loginLimiter)
    return { app: createApp({ config, dataSource: createInMemoryDataSource(), logger, loginLimiter }), lines }
  }
  const attempt = (app: Express, token: unknown) => request(app).post('/api/v1/session').send({ token })

  it('answers who a valid token stands for, and 401 for any other', async () => {
    const { app } = await bootWithLogin()
    expect((await attempt(app, TOKEN_BOB).expect(200)).body).toEqual({
      success: true,
      user: { id: 'bob', isAdmin: true },
    })
    expect((await attempt(app, 'tok-guess-0000000000').expect(401)).body).toMatchObject({
      code: 'INVALID_CREDENTIALS',
    })
  })

  it('allows 5 attempts a minute per IP by default, then refuses even the right token until the window ends', async () => {
    const { app, lines } = await bootWithLogin()
    for (let i = 0; i < 5; i++) await attempt(app, `tok-guess-${i}-000000000`).expect(401)
    const refused = await attempt(app, TOKEN_ALICE).expect(429)
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(55)
    expect(refused.headers['ratelimit-policy']).toMatch(/^"login"; q=5; w=60; pk=/)
    expect(lines).toContainEqual(expect.stringMatching(/^\[RateLimit:login\] Rate limit exceeded/))
    // Its own budget: the API's read limiter is untouched.
    await request(app).get('/api/v1/metaverses').expect(200)
    // Without TRUST_PROXY, an X-Forwarded-For header is no way to a fresh budget.
    expect((await attempt(app, TOKEN_ALICE).set('X-Forwarded-For', '10.8.0.1')).status).toBe(429)
  })

  it('keys attempts by IP behind TRUST_PROXY, whatever Authorization header comes with them', async () => {
    const { app } = await bootWithLogin({ TRUST_PROXY: '1', RATE_LIMIT_LOGIN_MAX: '2' })
    const from = (ip: string) =>
      request(app)
        .post('/api/v1/session')
        .set({ 'X-Forwarded-For': ip, Authorization: `Bearer ${TOKEN_ALICE}` })
    await from('10.8.1.1').send({ token: 'x' }).expect(401)
    await from('10.8.1.1').send({ token: 'y' }).expect(401)
    await from('10.8.1.1').send({ token: TOKEN_ALICE }).expect(429)
    await from('10.8.1.2').send({ token: TOKEN_ALICE }).expect(200)
  })

  it('takes its limit and window from RATE_LIMIT_LOGIN_MAX and RATE_LIMIT_LOGIN_WINDOW_MS', async () => {
    const { app } = await bootWithLogin({ RATE_LIMIT_LOGIN_MAX: '1', RATE_LIMIT_LOGIN_WINDOW_MS: '120000' })
    await attempt(app, TOKEN_ALICE).expect(200)
    const refused = await attempt(app, TOKEN_ALICE).expect(429)
    expect(refused.headers['ratelimit-policy']).toMatch(/^"login"; q=1; w=120; pk=/)
  })

  it('counts every attempt before reading it: a bad, non-JSON or oversized body gets its 4xx and spends one', async () => {
    const { app } = await bootWithLogin({ RATE_LIMIT_LOGIN_MAX: '4' })
    await attempt(app, 42).expect(400)
    await request(app).post('/api/v1/session').set('Content-Type', 'text/plain').send('token').expect(415)
    const large = await request(app)
      .post('/api/v1/session')
      .send({ token: 'x'.repeat(SESSION_BODY_LIMIT_BYTES) })
      .expect(413)
    expect(large.body).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' })
    expect((await attempt(app, '').expect(400)).body).toMatchObject({ code: 'INVALID_BODY' })
    await attempt(app, TOKEN_ALICE).expect(429)
  })
})

describe('the admin routes', () => {
  const admin = { Authorization: `Bearer ${TOKEN_BOB}` }
  const alice = { Authorization: `Bearer ${TOKEN_ALICE}` }

  it("reads a client's state, blocks it, and resets it, writing who did each change to the audit log", async () => {
    const { app, lines } = await boot({ RATE_LIMIT_READ_MAX: '5' })
    await request(app).get('/api/v1/metaverses').set(alice).expect(200)
    await request(app).get('/api/v1/metaverses').set(alice).expect(200)
    const state = await request(app).get('/admin/rate-limits/read/user%3Aalice').set(admin).expect(200)
    expect(state.body).toMatchObject({
      success: true,
      limiter: 'read',
      state: { key: 'user:alice', retryAfterMs: 0, limits: [{ name: 'read', max: 5, remaining: 3 }] },
    })

    const blocked = await request(app)
      .post('/admin/rate-limits/read/user%3Aalice/block')
      .set(admin)
      .send({ ms: 60_000 })
      .expect(200)
    expect(blocked.body.state.retryAfterMs).toBeGreaterThan(59_000)
    const refused = await request(app).get('/api/v1/metaverses').set(alice).expect(429)
    expect(Number(refused.headers['retry-after'])).toBe(60)
    expect(lines).toContainEqual('[RateLimit:read] Operator block')

    await request(app).delete('/admin/rate-limits/read/user%3Aalice').set(admin).expect(200)
    await request(app).get('/api/v1/metaverses').set(alice).expect(200)
    expect(lines).toContainEqual('[RateLimit:read] Operator reset')
  })

  it('audits each change with the admin, the limiter, the key and the time asked', async () => {
    const records: unknown[] = []
    const logger = {
      info: () => undefined,
      error: () => undefined,
      warn: (_line: string, record?: unknown) => void records.push(record),
    }
    const config = loadConfig({ API_TOKENS })
    await initializeRateLimiters({ ...config.rateLimit, logger })
    const app = createApp({ config, dataSource: createInMemoryDataSource(), logger })
    await request(app).post('/admin/rate-limits/write/10.0.0.9/block').set(admin).send({ ms: 5000 }).expect(200)
    expect(records).toContainEqual({
      event: 'rate_limit_operator_action',
      action: 'block',
      namespace: 'metaverses',
      type: 'write',
      key: '10.0.0.9',
      by: 'bob',
      ms: 5000,
    })
  })

  it('takes a key as stored, URL-encoded: an IPv6 /56 key', async () => {
    const { app } = await boot()
    const answer = await request(app)
      .get('/admin/rate-limits/read/2001%3Adb8%3A1%3A2300%3A%3A%2F56')
      .set(admin)
      .expect(200)
    expect(answer.body.state.key).toBe('2001:db8:1:2300::/56')
  })

  it('answers 401 without a valid admin token and 403 for a user who is not an admin', async () => {
    const { app } = await boot()
    await request(app).get('/admin/rate-limits/read/user%3Aalice').expect(401)
    await request(app)
      .get('/admin/rate-limits/read/user%3Aalice')
      .set('Authorization', 'Bearer tok-nobody-0000000000')
      .expect(401)
    const forbidden = await request(app).delete('/admin/rate-limits/read/user%3Aalice').set(alice).expect(403)
    expect(forbidden.body).toMatchObject({ code: 'FORBIDDEN' })
  })

  it('limits clients guessing admin tokens like any other client', async () => {
    const { app } = await boot({ RATE_LIMIT_READ_MAX: '2' })
    const guess = () =>
      request(app).get('/admin/rate-limits/read/x').set('Authorization', 'Bearer tok-guess-0000000000')
    expect([(await guess()).status, (await guess()).status, (await guess()).status]).toEqual([401, 401, 429])
  })

  it.each([
    ['an unknown limiter', 'get', '/admin/rate-limits/search/user%3Aalice', undefined, 404, 'UNKNOWN_LIMITER'],
    ['a key with a control character', 'get', '/admin/rate-limits/read/a%00b', undefined, 400, 'INVALID_KEY'],
    ['a key that is too long', 'delete', `/admin/rate-limits/read/${'k'.repeat(1025)}`, undefined, 400, 'INVALID_KEY'],
    ['a key that does not decode', 'get', '/admin/rate-limits/read/%E0%A4%A', undefined, 400, 'INVALID_PATH'],
    ['a block of 0 ms', 'post', '/admin/rate-limits/read/k/block', { ms: 0 }, 400, 'INVALID_BODY'],
    ['a block of a string', 'post', '/admin/rate-limits/read/k/block', { ms: '60000' }, 400, 'INVALID_BODY'],
    ['a block past 2^31-1 ms', 'post', '/admin/rate-limits/read/k/block', { ms: 2 ** 31 }, 400, 'INVALID_BODY'],
    ['a block with no body', 'post', '/admin/rate-limits/read/k/block', undefined, 400, 'INVALID_BODY'],
    ['a body that is not JSON', 'post', '/admin/rate-limits/read/k/block', '{"ms":', 400, 'INVALID_JSON'],
    [
      'a huge body',
      'post',
      '/admin/rate-limits/read/k/block',
      { ms: 1, pad: 'x'.repeat(2000) },
      413,
      'PAYLOAD_TOO_LARGE',
    ],
  ] as const)('answers %s with a %s and a clear body, never a 500', async (_what, method, path, body, status, code) => {
    const { app } = await boot()
    let call = request(app)[method](path).set(admin)
    if (typeof body === 'string') call = call.set('Content-Type', 'application/json').send(body)
    else if (body !== undefined) call = call.send(body)
    const answer = await call
    expect(answer.status).toBe(status)
    expect(answer.body).toMatchObject({ success: false, code })
    expect(typeof answer.body.error).toBe('string')
  })

  it('reaches the login limiter when the server has one', async () => {
    const { logger } = recorder()
    const config = loadConfig({ API_TOKENS })
    await initializeRateLimiters({ ...config.rateLimit, logger })
    const loginLimiter = await createRateLimiter('login', loginLimiterOptions(config, logger))
    try {
      const app = createApp({ config, dataSource: createInMemoryDataSource(), logger, loginLimiter })
      await request(app).post('/api/v1/session').send({ token: 'nope' }).expect(401)
      const state = await request(app).get('/admin/rate-limits/login/%3A%3Affff%3A127.0.0.1').set(admin).expect(200)
      expect(state.body.state.limits).toMatchObject([{ name: 'login', max: 5 }])
    } finally {
      loginLimiter.dispose()
    }
  })
})

describe('identity', () => {
  it('keys by user id: two users from one IP get separate budgets', async () => {
    const { app } = await boot({ RATE_LIMIT_READ_MAX: '2' })
    const get = (token?: string) => {
      const req = request(app).get('/api/v1/metaverses')
      return token === undefined ? req : req.set('Authorization', `Bearer ${token}`)
    }
    expect((await get(TOKEN_ALICE)).status).toBe(200)
    expect((await get(TOKEN_ALICE)).status).toBe(200)
    expect((await get(TOKEN_ALICE)).status).toBe(429)
    expect((await get(TOKEN_BOB)).status).toBe(200)
    expect((await get()).status).toBe(200)
    expect((await get()).status).toBe(200)
    expect((await get()).status).toBe(429)
  })

  it('with AUTH_REQUIRED, answers 401 without a token and still counts it against the IP', async () => {
    const { app } = await boot({ AUTH_REQUIRED: 'true', RATE_LIMIT_READ_MAX: '3' })
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) statuses.push((await request(app).get('/api/v1/metaverses')).status)
    expect(statuses).toEqual([401, 401, 401, 429, 429])
    const res = await request(app).get('/api/v1/metaverses').set('Authorization', `Bearer ${TOKEN_ALICE}`)
    expect(res.status).toBe(200)
  })

  it('with AUTH_REQUIRED, counts refused writes too', async () => {
    const { app } = await boot({ AUTH_REQUIRED: 'true', RATE_LIMIT_WRITE_MAX: '2' })
    const statuses: number[] = []
    for (let i = 0; i < 4; i++)
      statuses.push((await request(app).post('/api/v1/metaverses').send({ name: 'a' })).status)
    expect(statuses).toEqual([401, 401, 429, 429])
  })

  it('answers 401 with the RFC 6750 challenge', async () => {
    const { app } = await boot({ AUTH_REQUIRED: 'true' })
    const res = await request(app).get('/api/v1/metaverses').expect(401)
    expect(res.headers['www-authenticate']).toBe('Bearer')
    expect(res.body).toEqual({
      success: false,
      code: 'UNAUTHORIZED',
      error: 'Authentication required: send Authorization: Bearer <token>',
    })
  })

  it.each([
    ['an unknown token', 'Bearer tok-nobody-000000000000', 'Bearer error="invalid_token"'],
    ['another scheme', 'Basic YWxpY2U6cHc=', 'Bearer error="invalid_request"'],
    ['a bare Bearer', 'Bearer', 'Bearer error="invalid_request"'],
    ['a huge header', `Bearer ${'x'.repeat(5000)}`, 'Bearer error="invalid_request"'],
  ])('answers 401 for %s even when auth is optional, counted by IP', async (_what, header, challenge) => {
    const { app } = await boot({ RATE_LIMIT_READ_MAX: '1' })
    const first = await request(app).get('/api/v1/metaverses').set('Authorization', header).expect(401)
    expect(first.headers['www-authenticate']).toBe(challenge)
    await request(app).get('/api/v1/metaverses').set('Authorization', header).expect(429)
  })
})

describe('X-Forwarded-For', () => {
  const rotate = async (app: Parameters<typeof request>[0]) => {
    const statuses: number[] = []
    for (let i = 1; i <= 4; i++) {
      statuses.push((await request(app).get('/api/v1/metaverses').set('X-Forwarded-For', `198.51.100.${i}`)).status)
    }
    return statuses
  }

  it('is ignored without TRUST_PROXY: rotating it buys no fresh budget', async () => {
    const { app, lines } = await boot({ RATE_LIMIT_READ_MAX: '2' })
    expect(await rotate(app)).toEqual([200, 200, 429, 429])
    // express-rate-limit says once that it saw the header and ignored it.
    expect(lines.filter((l) => l.includes('ERR_ERL_UNEXPECTED_X_FORWARDED_FOR'))).toHaveLength(1)
  })

  it('is the client address with TRUST_PROXY=1, so each address has its own budget', async () => {
    const { app } = await boot({ RATE_LIMIT_READ_MAX: '2', TRUST_PROXY: '1' })
    expect(await rotate(app)).toEqual([200, 200, 200, 200])
  })

  it('with TRUST_PROXY=1, takes only the last hop: a spoofed first entry changes nothing', async () => {
    const { app } = await boot({ RATE_LIMIT_READ_MAX: '1', TRUST_PROXY: '1' })
    const send = (spoof: string) =>
      request(app).get('/api/v1/metaverses').set('X-Forwarded-For', `${spoof}, 203.0.113.9`)
    expect((await send('10.0.0.1')).status).toBe(200)
    expect((await send('10.0.0.2')).status).toBe(429)
  })
})
