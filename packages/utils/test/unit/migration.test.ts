// Moving from express-rate-limit: its README's example runs against our factory, every option of
// its Options type has a row in docs/migrating-from-express-rate-limit.md, and the options that
// cannot mean the same thing here are refused with what to use instead.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { runInNewContext } from 'node:vm'

import express from 'express'
import request from 'supertest'
import { afterEach, describe, expect, it } from 'vitest'

import { UNSUPPORTED_OPTIONS } from '#src/config/options.js'
import { createRateLimiter, ERROR_CODES, type RateLimitConfig, type RateLimitRequestHandler } from '#src/index.js'
import { uniquePrefix } from '#test/support/limiter-contract.js'
import { recordingLogger } from '#test/support/logger.js'

const ERL = join(dirname(createRequire(import.meta.url).resolve('express-rate-limit')), '..')
const ROOT = join(import.meta.dirname, '..', '..', '..', '..')
const GUIDE = readFileSync(join(ROOT, 'docs', 'migrating-from-express-rate-limit.md'), 'utf8')

/** The options object of the first `rateLimit({ ... })` in express-rate-limit's README, evaluated. */
function readmeOptions(): Record<string, unknown> {
  const readme = readFileSync(join(ERL, 'readme.md'), 'utf8')
  const start = readme.indexOf('rateLimit({')
  const end = readme.indexOf('\n})', start)
  expect(start).toBeGreaterThan(-1)
  const literal = readme.slice(start + 'rateLimit('.length, end + 2)
  // A plain object literal with comments: evaluated on its own, with nothing of ours in scope.
  return runInNewContext(`(${literal})`) as Record<string, unknown>
}

/** The top-level keys of express-rate-limit's `Options` type. */
function erlOptionNames(): string[] {
  const types = readFileSync(join(ERL, 'dist', 'index.d.ts'), 'utf8')
  const start = types.indexOf('export type Options = {')
  const body = types.slice(start, types.indexOf('\n};', start))
  return [...body.matchAll(/^\t(\w+)\??:/gm)].map((match) => match[1]!)
}

const made: RateLimitRequestHandler[] = []
afterEach(() => {
  for (const limiter of made.splice(0)) limiter.dispose()
})

describe("express-rate-limit's README example", () => {
  it('runs against createRateLimiter with the same meaning', async () => {
    const options = readmeOptions()
    expect(Object.keys(options)).toEqual(['windowMs', 'limit', 'standardHeaders', 'legacyHeaders', 'ipv6Subnet'])
    const limiter = await createRateLimiter('api', {
      keyPrefix: uniquePrefix('readme'),
      logger: recordingLogger(),
      ...(options as RateLimitConfig),
    })
    made.push(limiter)
    const app = express()
    app.use(limiter)
    app.get('/', (_req, res) => res.json({ ok: true }))
    const first = await request(app).get('/').expect(200)
    expect(first.headers['ratelimit-policy']).toMatch(/^"api"; q=100; w=900; pk=:[^:]+:$/)
    expect(first.headers['x-ratelimit-limit']).toBeUndefined()
    for (let i = 1; i < 100; i++) await request(app).get('/').expect(200)
    const refused = await request(app).get('/').expect(429)
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(890)
  })

  it('groups IPv6 clients by the ipv6Subnet asked for', async () => {
    const limiter = await createRateLimiter('api', {
      keyPrefix: uniquePrefix('subnet'),
      logger: recordingLogger(),
      limit: 1,
      ipv6Subnet: 64,
    })
    made.push(limiter)
    const app = express()
    app.set('trust proxy', 1)
    app.use(limiter)
    app.get('/', (_req, res) => res.json({ ok: true }))
    const from = (ip: string) => request(app).get('/').set('X-Forwarded-For', ip)
    await from('2001:db8:1:2:aaaa::1').expect(200)
    // The same /64: refused. Another /64 of the same /56: its own budget.
    await from('2001:db8:1:2:bbbb::1').expect(429)
    await from('2001:db8:1:3::1').expect(200)
    expect(await limiter.get('2001:db8:1:2::/64')).toMatchObject({ limits: [{ remaining: 0 }] })
  })
})

describe('docs/migrating-from-express-rate-limit.md', () => {
  const rows = new Set([...GUIDE.matchAll(/^\| `(\w+)` +\|/gm)].map((match) => match[1]!))

  it("has a row for every option of express-rate-limit 8's Options type", () => {
    const names = erlOptionNames()
    expect(names.length).toBeGreaterThan(15)
    expect(names.filter((name) => !rows.has(name))).toEqual([])
  })

  it('calls refused exactly the options the factory refuses', () => {
    const refused = [...GUIDE.matchAll(/^\| `(\w+)` +\| refused/gm)].map((match) => match[1]!)
    expect(refused.sort()).toEqual(
      Object.keys(UNSUPPORTED_OPTIONS)
        .filter((name) => rows.has(name))
        .sort(),
    )
  })
})

describe('an option that cannot mean the same thing here', () => {
  it.each(Object.entries(UNSUPPORTED_OPTIONS))(
    'refuses %s with ERR_RATE_LIMIT_UNSUPPORTED_OPTION and what to use instead',
    async (option, message) => {
      await expect(createRateLimiter('api', { logger: recordingLogger(), [option]: true })).rejects.toMatchObject({
        code: ERROR_CODES.UNSUPPORTED_OPTION,
        option,
        message,
      })
      expect(message).toMatch(/use |leave |read it/)
    },
  )
})
