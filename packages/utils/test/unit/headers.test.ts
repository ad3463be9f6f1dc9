// Our headers are express-rate-limit's own, request for request: we only write them cheaper.
import express, { type RequestHandler } from 'express'
import { ipKeyGenerator, rateLimit } from 'express-rate-limit'
import request from 'supertest'
import { afterEach, describe, expect, it } from 'vitest'

import { partitionKey } from '#src/limiter/headers.js'
import { createRateLimiter, type RateLimitRequestHandler } from '#src/index.js'
import { uniquePrefix } from '#test/support/limiter-contract.js'
import { recordingLogger } from '#test/support/logger.js'

const created: RateLimitRequestHandler[] = []
afterEach(() => {
  for (const limiter of created.splice(0)) limiter.dispose()
})

function appOf(limiter: RequestHandler) {
  const app = express()
  app.set('trust proxy', 1)
  app.get('/items', limiter, (_req, res) => void res.json({ ok: true }))
  return app
}

const HEADERS = [
  'ratelimit',
  'ratelimit-policy',
  'retry-after',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
]

describe('rate-limit headers', () => {
  it.each([false, true])('are express-rate-limit’s, allowed and refused (legacyHeaders %s)', async (legacyHeaders) => {
    const ours = await createRateLimiter('read', {
      keyPrefix: uniquePrefix('headers'),
      maxRead: 3,
      windowMs: 60_000,
      legacyHeaders,
      logger: recordingLogger(),
    })
    created.push(ours)
    const theirs = rateLimit({
      windowMs: 60_000,
      limit: 3,
      standardHeaders: 'draft-8',
      legacyHeaders,
      identifier: 'read',
      keyGenerator: (req) => ipKeyGenerator(req.ip ?? ''),
    })
    const [a, b] = [appOf(ours), appOf(theirs)]
    for (let i = 0; i < 5; i++) {
      const [mine, reference] = await Promise.all([
        request(a).get('/items').set('X-Forwarded-For', '203.0.113.7'),
        request(b).get('/items').set('X-Forwarded-For', '203.0.113.7'),
      ])
      expect(mine.status, `request ${i + 1}`).toBe(reference.status)
      for (const name of HEADERS)
        expect(mine.headers[name], `${name} of request ${i + 1}`).toBe(reference.headers[name])
    }
  })

  it('computes the draft-8 partition key as express-rate-limit does', () => {
    // base64 of the first 12 hex digits of sha256('127.0.0.1'), as in the README's example.
    expect(partitionKey('127.0.0.1')).toBe('MTJjYTE3YjQ5YWYy')
  })
})
