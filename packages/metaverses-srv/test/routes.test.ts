import express, { type ErrorRequestHandler, type RequestHandler } from 'express'
import request from 'supertest'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import {
  createInMemoryDataSource,
  createMetaversesServiceRoutes,
  disposeRateLimiters,
  getRateLimiters,
  initializeRateLimiters,
  type MetaversesDataSource,
  type ServiceRateLimitOptions,
} from '../src/index.js'

const quiet = { info() {}, warn() {}, error() {} }
const allow: RequestHandler = (_req, _res, next) => next()

function buildApp(options: { ensureAuth?: RequestHandler; dataSource?: MetaversesDataSource } = {}) {
  const dataSource = options.dataSource ?? createInMemoryDataSource()
  const app = express()
  app.use(
    '/api/v1',
    createMetaversesServiceRoutes(options.ensureAuth ?? allow, () => dataSource),
  )
  const onError: ErrorRequestHandler = (_error, _req, res, _next) => {
    res.status(500).json({ code: 'INTERNAL_ERROR' })
  }
  app.use(onError)
  return app
}

async function init(options: ServiceRateLimitOptions = {}) {
  return initializeRateLimiters({ logger: quiet, ...options })
}

beforeEach(() => {
  vi.stubEnv('REDIS_URL', '')
})
afterEach(async () => {
  await disposeRateLimiters()
  vi.unstubAllEnvs()
})

describe('initializeRateLimiters', () => {
  it('uses the service’s limits: 100 reads and 60 writes per 15 minutes, keyPrefix metaverses-srv', async () => {
    await init()
    const app = buildApp()
    const read = await request(app).get('/api/v1/metaverses').expect(200)
    expect(read.headers['ratelimit-policy']).toMatch(/^"read"; q=100; w=900;/)
    const write = await request(app).post('/api/v1/metaverses').send({ name: 'a' }).expect(201)
    expect(write.headers['ratelimit-policy']).toMatch(/^"write"; q=60; w=900;/)
  })

  it('lets RATE_LIMIT_READ_MAX, RATE_LIMIT_WRITE_MAX and RATE_LIMIT_WINDOW_MS override them', async () => {
    vi.stubEnv('RATE_LIMIT_READ_MAX', '7')
    vi.stubEnv('RATE_LIMIT_WRITE_MAX', '3')
    vi.stubEnv('RATE_LIMIT_WINDOW_MS', '60000')
    await init()
    const app = buildApp()
    expect((await request(app).get('/api/v1/metaverses')).headers['ratelimit-policy']).toMatch(/q=7; w=60;/)
    expect((await request(app).delete('/api/v1/metaverses/x')).headers['ratelimit-policy']).toMatch(/q=3; w=60;/)
  })

  it('lets options in code override the environment', async () => {
    vi.stubEnv('RATE_LIMIT_READ_MAX', '7')
    await init({ maxRead: 9 })
    expect((await request(buildApp()).get('/api/v1/metaverses')).headers['ratelimit-policy']).toMatch(/q=9;/)
  })

  it('is safe to call twice, and concurrent calls share one initialisation', async () => {
    const lines: string[] = []
    const logger = { ...quiet, info: (line: string) => lines.push(line) }
    const [a, b] = await Promise.all([init({ logger }), init({ logger })])
    const c = await init({ logger })
    expect(a).toBe(b)
    expect(a).toBe(c)
    expect(getRateLimiters()).toBe(a)
    expect(lines).toEqual([
      '[RateLimit:read] Using MemoryStore (single-instance mode)',
      '[RateLimit:write] Using MemoryStore (single-instance mode)',
    ])
  })

  it('warns when called again with other limits, and keeps the first', async () => {
    const warnings: string[] = []
    const logger = { ...quiet, warn: (line: string) => warnings.push(line) }
    const first = await init({ maxRead: 5, logger })
    expect(await init({ maxRead: 5, logger })).toBe(first)
    expect(warnings).toEqual([])
    expect(await init({ maxRead: 6, logger })).toBe(first)
    expect(warnings).toEqual([
      "[RateLimit] initializeRateLimiters() was called again with other options; the first call's limiters stay",
    ])
  })

  it('abandons an initialisation that disposeRateLimiters() overtakes', async () => {
    const pending = init()
    await disposeRateLimiters()
    await expect(pending).rejects.toThrow('Rate limiters not initialized')
    expect(() => getRateLimiters()).toThrow('Rate limiters not initialized')
    const fresh = await init()
    expect(getRateLimiters()).toBe(fresh)
  })

  it('can be retried after a failed initialisation', async () => {
    vi.stubEnv('RATE_LIMIT_READ_MAX', 'lots')
    await expect(init()).rejects.toThrow('RATE_LIMIT_READ_MAX must be a positive integer, got "lots"')
    expect(() => getRateLimiters()).toThrow('Rate limiters not initialized')
    vi.stubEnv('RATE_LIMIT_READ_MAX', '5')
    const limiters = await init()
    expect(getRateLimiters()).toBe(limiters)
  })
})

describe('createMetaversesServiceRoutes', () => {
  it('throws the guide’s message when called before initializeRateLimiters()', () => {
    expect(() => createMetaversesServiceRoutes(allow, () => createInMemoryDataSource())).toThrow(
      expect.objectContaining({
        message: 'Rate limiters not initialized. Call initializeRateLimiters() first.',
        code: 'ERR_RATE_LIMITERS_NOT_INITIALIZED',
      }),
    )
  })

  it.each<[string, string, string]>([
    ['OPTIONS', '/api/v1/metaverses', 'read'],
    ['PATCH', '/api/v1/metaverses/some-id', 'write'],
    ['GET', '/api/v1/metaverses/%ZZ', 'read'],
    ['DELETE', '/api/v1/metaverses/%E0%A4%A', 'write'],
    ['GET', '/api/v1/metaverses/a/b/c', 'read'],
  ])(
    'counts %s %s on the %s budget too: nothing under /metaverses escapes a limiter',
    async (method: string, path: string) => {
      await init({ maxRead: 1, maxWrite: 1 })
      const app = buildApp()
      const first = await request(app)[method.toLowerCase() as 'get'](path)
      expect(first.status).toBeLessThan(500)
      const second = await request(app)[method.toLowerCase() as 'get'](path)
      expect(second.status).toBe(429)
    },
  )

  it('answers a path that does not percent-decode with 400 INVALID_PATH, not 500', async () => {
    await init()
    const res = await request(buildApp()).get('/api/v1/metaverses/%ZZ').expect(400)
    expect(res.body).toEqual({ success: false, code: 'INVALID_PATH', error: 'The path is not valid percent-encoding' })
    expect(res.headers['ratelimit']).toMatch(/^"read"; r=99;/)
  })

  it.each([
    ['get', '/api/v1/metaverses', 'read'],
    ['get', '/api/v1/metaverses/some-id', 'read'],
    ['post', '/api/v1/metaverses', 'write'],
    ['put', '/api/v1/metaverses/some-id', 'write'],
    ['delete', '/api/v1/metaverses/some-id', 'write'],
  ] as const)('answers 429 on %s %s once the %s budget is spent', async (method, path, type) => {
    await init({ maxRead: 2, maxWrite: 2 })
    const app = buildApp()
    for (let i = 0; i < 2; i++) {
      const res = await request(app)[method](path).send({ name: 'n' })
      expect(res.status).not.toBe(429)
    }
    const res = await request(app)[method](path).send({ name: 'n' }).expect(429)
    expect(res.headers['ratelimit']).toMatch(new RegExp(`^"${type}"; r=0;`))
    expect(res.body.code).toBe('RATE_LIMIT_EXCEEDED')
  })
})

describe('authentication', () => {
  it('counts requests that ensureAuth refuses, so unauthenticated floods still reach 429', async () => {
    await init({ maxRead: 3 })
    const refuse: RequestHandler = (_req, res) => {
      res.status(401).json({ code: 'UNAUTHORIZED' })
    }
    const app = buildApp({ ensureAuth: refuse })
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) statuses.push((await request(app).get('/api/v1/metaverses')).status)
    expect(statuses).toEqual([401, 401, 401, 429, 429])
  })
})

describe('CRUD', () => {
  it('creates, reads, lists, replaces and deletes a metaverse', async () => {
    await init()
    const app = buildApp()
    const created = await request(app)
      .post('/api/v1/metaverses')
      .send({ name: '  Alpha  ', description: 'first' })
      .expect(201)
    expect(created.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      name: 'Alpha',
      description: 'first',
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    })
    const id = created.body.id as string
    expect((await request(app).get(`/api/v1/metaverses/${id}`).expect(200)).body).toEqual(created.body)
    expect((await request(app).get('/api/v1/metaverses').expect(200)).body).toEqual([created.body])
    const replaced = await request(app).put(`/api/v1/metaverses/${id}`).send({ name: 'Beta' }).expect(200)
    expect(replaced.body).toMatchObject({ id, name: 'Beta', description: null })
    await request(app).delete(`/api/v1/metaverses/${id}`).expect(204)
    await request(app).get(`/api/v1/metaverses/${id}`).expect(404)
  })

  it('pages the list with limit and offset', async () => {
    await init()
    const app = buildApp()
    for (const name of ['a', 'b', 'c']) await request(app).post('/api/v1/metaverses').send({ name })
    const page = await request(app).get('/api/v1/metaverses?limit=1&offset=1').expect(200)
    expect((page.body as { name: string }[]).map((m) => m.name)).toEqual(['b'])
  })
})

describe('bad input never gives a 500', () => {
  beforeEach(async () => {
    await init({ maxRead: 1000, maxWrite: 1000 })
  })

  it.each([
    ['no body', undefined, /^The body must be a JSON object with a name, got nothing$/],
    ['a missing name', { description: 'x' }, /^name must be a non-blank string of at most 200 characters, got none$/],
    ['a blank name', { name: '   ' }, /got a blank string$/],
    ['a name of 201 characters', { name: 'x'.repeat(201) }, /got a string of 201 characters$/],
    ['a name that is a number', { name: 42 }, /got a number$/],
    ['an array body', [{ name: 'a' }], /got an array$/],
    [
      'an unknown field',
      { name: 'a', owner: 'me' },
      /^Unknown field "owner"; allowed fields are name and description$/,
    ],
    ['a description of 2001 characters', { name: 'a', description: 'd'.repeat(2001) }, /^description must be/],
  ])('answers 400 with a JSON error for %s', async (_what, body, message) => {
    const app = buildApp()
    const post = request(app).post('/api/v1/metaverses')
    const res = await (body === undefined ? post : post.send(body)).expect(400)
    expect(res.body).toEqual({ success: false, code: 'INVALID_BODY', error: expect.stringMatching(message) })
  })

  it('accepts a name of exactly 200 characters', async () => {
    await request(buildApp())
      .post('/api/v1/metaverses')
      .send({ name: 'x'.repeat(200) })
      .expect(201)
  })

  it('answers 400 INVALID_JSON for malformed JSON', async () => {
    const res = await request(buildApp())
      .post('/api/v1/metaverses')
      .set('Content-Type', 'application/json')
      .send('{"name": ')
      .expect(400)
    expect(res.body).toEqual({ success: false, code: 'INVALID_JSON', error: 'The request body is not valid JSON' })
  })

  it.each(['null', '"a string"', '42'])(
    'answers 400 INVALID_JSON for the JSON value %s (objects only)',
    async (raw) => {
      const res = await request(buildApp())
        .post('/api/v1/metaverses')
        .set('Content-Type', 'application/json')
        .send(raw)
        .expect(400)
      expect(res.body.code).toBe('INVALID_JSON')
    },
  )

  it('answers 413 for a body over 16 KiB', async () => {
    const res = await request(buildApp())
      .post('/api/v1/metaverses')
      .send({ name: 'a', description: 'd'.repeat(17 * 1024) })
      .expect(413)
    expect(res.body.code).toBe('PAYLOAD_TOO_LARGE')
  })

  it.each(['gzip', 'deflate', 'br'])('answers 400 for a %s body that does not inflate', async (encoding) => {
    const res = await request(buildApp())
      .post('/api/v1/metaverses')
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', encoding)
      .send('this is not compressed')
      .expect(400)
    expect(res.body).toEqual({ success: false, code: 'INVALID_BODY', error: 'The request body could not be read' })
  })

  it('answers 415 for a body that is not JSON', async () => {
    const res = await request(buildApp())
      .post('/api/v1/metaverses')
      .set('Content-Type', 'text/plain')
      .send('name=a')
      .expect(415)
    expect(res.body.code).toBe('UNSUPPORTED_MEDIA_TYPE')
  })

  it.each([
    ['get', '/api/v1/metaverses/00000000-0000-0000-0000-000000000000'],
    ['put', '/api/v1/metaverses/unknown'],
    ['delete', '/api/v1/metaverses/unknown'],
    ['get', `/api/v1/metaverses/${'%E2%82%AC'.repeat(50)}`],
  ] as const)('answers 404 for %s of an unknown id', async (method, path) => {
    const res = await request(buildApp())[method](path).send({ name: 'a' }).expect(404)
    expect(res.body).toEqual({ success: false, code: 'NOT_FOUND', error: 'No metaverse has this id' })
  })

  it.each(['limit=0', 'limit=101', 'limit=abc', 'offset=-1', 'limit=1&limit=2', 'offset=1e3'])(
    'answers 400 INVALID_QUERY for ?%s',
    async (query) => {
      const res = await request(buildApp()).get(`/api/v1/metaverses?${query}`).expect(400)
      expect(res.body.code).toBe('INVALID_QUERY')
      expect(res.body.error).toMatch(/^(limit|offset) must be an integer/)
    },
  )

  it('answers 507 when the data source is full', async () => {
    const app = buildApp({ dataSource: createInMemoryDataSource(1) })
    await request(app).post('/api/v1/metaverses').send({ name: 'a' }).expect(201)
    const res = await request(app).post('/api/v1/metaverses').send({ name: 'b' }).expect(507)
    expect(res.body.code).toBe('STORAGE_FULL')
  })
})
