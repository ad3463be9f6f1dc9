import express from 'express'
import request from 'supertest'
import { describe, expect, it } from 'vitest'

import { createRateLimiters, type RateLimitConfig } from '#src/index.js'
import { CHECKED_REQUESTS } from '#src/limiter/proxy-checks.js'
import { uniquePrefix } from '#test/support/limiter-contract.js'
import { recordingLogger } from '#test/support/logger.js'

async function appWith(trustProxy: boolean | number) {
  const logger = recordingLogger()
  const limiters = await createRateLimiters({ keyPrefix: uniquePrefix('proxy'), logger })
  const app = express()
  app.set('trust proxy', trustProxy)
  app.get('/', limiters.read, (_req, res) => res.end())
  const warnings = () => logger.lines.filter((l) => l.level === 'warn').map((l) => l.message)
  return { app, warnings, limiters }
}

describe('proxy checks', () => {
  it('warns once that X-Forwarded-For is ignored while trust proxy is off', async () => {
    const { app, warnings, limiters } = await appWith(false)
    await request(app).get('/').set('X-Forwarded-For', '198.51.100.1')
    await request(app).get('/').set('X-Forwarded-For', '198.51.100.2')
    expect(warnings()).toEqual([expect.stringMatching(/^\[RateLimit:read\] ERR_ERL_UNEXPECTED_X_FORWARDED_FOR: /)])
    limiters.dispose()
  })

  it('warns once that trust proxy = true lets clients choose their IP', async () => {
    const { app, warnings, limiters } = await appWith(true)
    await request(app).get('/')
    await request(app).get('/')
    expect(warnings()).toEqual([expect.stringMatching(/ERR_ERL_PERMISSIVE_TRUST_PROXY/)])
    limiters.dispose()
  })

  it('warns about a Forwarded header that Express does not read', async () => {
    const { app, warnings, limiters } = await appWith(1)
    await request(app).get('/').set('Forwarded', 'for=198.51.100.1')
    expect(warnings()).toEqual([expect.stringMatching(/ERR_ERL_FORWARDED_HEADER/)])
    limiters.dispose()
  })

  it('says nothing for a correct setup', async () => {
    const { app, warnings, limiters } = await appWith(1)
    await request(app).get('/').set('X-Forwarded-For', '198.51.100.1')
    await request(app).get('/')
    expect(warnings()).toEqual([])
    limiters.dispose()
  })

  it(`checks the first ${CHECKED_REQUESTS} requests only, as express-rate-limit checks its first`, async () => {
    const { app, warnings, limiters } = await appWith(false)
    for (let i = 0; i < CHECKED_REQUESTS; i++) await request(app).get('/')
    await request(app).get('/').set('X-Forwarded-For', '198.51.100.1')
    // (The 101st request is over the default limit of 100: its audit line is not a proxy finding.)
    expect(warnings().filter((line) => line.includes('ERR_ERL_'))).toEqual([])
    limiters.dispose()
  })

  it.each([
    ['the default fixed window', {}],
    ['a policy', { algorithm: 'sliding-window' }],
  ] as const)('warns once when %s counts one request twice, and not for two routes', async (_name, options) => {
    const logger = recordingLogger()
    const limiters = await createRateLimiters({
      keyPrefix: uniquePrefix('twice'),
      logger,
      ...(options as RateLimitConfig),
    })
    const app = express()
    app.set('trust proxy', 1)
    // One limiter on two routes: each request is counted once.
    app.get('/a', limiters.read, (_req, res) => res.end())
    app.get('/b', limiters.read, (_req, res) => res.end())
    await request(app).get('/a')
    await request(app).get('/b')
    const doubles = () => logger.lines.filter((l) => l.message.includes('ERR_ERL_DOUBLE_COUNT'))
    expect(doubles()).toEqual([])
    // Mounted twice on one route: app-wide and on the route.
    const twice = express()
    twice.set('trust proxy', 1)
    twice.use(limiters.read)
    twice.get('/', limiters.read, (_req, res) => res.end())
    await request(twice).get('/')
    await request(twice).get('/')
    expect(doubles()).toEqual([
      expect.objectContaining({
        level: 'warn',
        message: expect.stringMatching(/^\[RateLimit:read\] ERR_ERL_DOUBLE_COUNT: /),
      }),
    ])
    limiters.dispose()
  })
})
