// express-rate-limit's options, with the same meaning, through a real Express app, on each store
// (memory, ioredis-mock and a real redis-server): limit and max, message, statusCode, handler,
// standardHeaders, skip and keyGenerator with the response, skipSuccessfulRequests,
// skipFailedRequests and requestWasSuccessful.
import { once } from 'node:events'
import { get as httpGet } from 'node:http'
import type { AddressInfo } from 'node:net'

import express, { type ErrorRequestHandler, type Express } from 'express'
import request from 'supertest'
import { afterEach, describe, expect, it } from 'vitest'

import { createRateLimiter, type RateLimitConfig, type RateLimitRequestHandler } from '#src/index.js'

import { waitFor } from './http.js'
import { uniquePrefix } from './limiter-contract.js'
import { recordingLogger } from './logger.js'
import type { PolicyContractOptions } from './policy-contract.js'

/** The default's fixed window, and a policy (the give-back takes another path there). */
const PATHS: readonly (readonly [string, RateLimitConfig])[] = [
  ['the fixed window (the default)', {}],
  ['the sliding window', { algorithm: 'sliding-window' }],
]

/**
 * An app whose limited routes answer 200 (/ok), 404 (/missing) and 500 (/fail), and /hang, whose
 * client goes away before it answers. Errors answer 400 with their code.
 */
export async function optionsApp(
  config: RateLimitConfig,
): Promise<{ app: Express; limiter: RateLimitRequestHandler; hung: express.Response[] }> {
  const hung: express.Response[] = []
  const limiter = await createRateLimiter('read', {
    keyPrefix: uniquePrefix('erl'),
    logger: recordingLogger(),
    ...config,
  })
  const app = express()
  app.set('trust proxy', 1)
  app.use(limiter)
  app.get('/ok', (req, res) => res.json({ rateLimit: (req as { rateLimit?: unknown }).rateLimit }))
  app.get('/missing', (_req, res) => res.status(404).json({ missing: true }))
  app.get('/fail', (_req, res) => res.status(500).json({ failed: true }))
  app.get('/hang', (_req, res) => void hung.push(res))
  const errors: ErrorRequestHandler = (error: { code?: string; message?: string }, _req, res, _next) => {
    res.status(400).json({ code: error.code, message: error.message })
  }
  app.use(errors)
  return { app, limiter, hung }
}

export function describeErlOptionsContract(name: string, { store }: PolicyContractOptions): void {
  describe(`express-rate-limit's options: ${name}`, () => {
    const made: RateLimitRequestHandler[] = []
    afterEach(() => {
      for (const limiter of made.splice(0)) limiter.dispose()
    })
    const setUp = async (config: RateLimitConfig) => {
      const built = await optionsApp({ windowMs: 60_000, ...store(), ...config })
      made.push(built.limiter)
      const get = (path: string, client: string) => request(built.app).get(path).set('X-Forwarded-For', client)
      const statuses = async (path: string, client: string, n: number) => {
        const seen: number[] = []
        for (let i = 0; i < n; i++) seen.push((await get(path, client)).status)
        return seen
      }
      return { ...built, get, statuses }
    }

    it.each([
      ['limit', { limit: 2 }],
      ['max', { max: 2 }],
      ['a limit function', { limit: () => Promise.resolve(2) }],
    ] as const)('takes %s as the max', async (_what, config) => {
      const { statuses } = await setUp(config)
      expect(await statuses('/ok', '10.7.0.1', 3)).toEqual([200, 200, 429])
    })

    it("lets a limiter's own max win over limit", async () => {
      const { statuses } = await setUp({ limit: 1, maxRead: 2 })
      expect(await statuses('/ok', '10.7.0.2', 3)).toEqual([200, 200, 429])
    })

    it('answers with statusCode, and our body', async () => {
      const { get } = await setUp({ limit: 1, statusCode: 503 })
      await get('/ok', '10.7.1.1').expect(200)
      const refused = await get('/ok', '10.7.1.1').expect(503)
      expect(refused.body).toMatchObject({ code: 'RATE_LIMIT_EXCEEDED' })
      expect(refused.headers['retry-after']).toBeDefined()
    })

    it.each([
      ['an object', { error: 'slow down', plan: 'free' }, { error: 'slow down', plan: 'free' }],
      [
        'a function answering an object',
        (req: express.Request) => Promise.resolve({ path: req.path }),
        { path: '/ok' },
      ],
      [
        'a function answering a string',
        () => 'Wait a minute.',
        { success: false, error: 'Wait a minute.', code: 'RATE_LIMIT_EXCEEDED', retryAfter: 'as Retry-After' },
      ],
    ] as const)('sends message as %s', async (_what, message, body) => {
      const { get } = await setUp({ limit: 1, message: message as RateLimitConfig['message'] })
      await get('/ok', '10.7.2.1').expect(200)
      const refused = await get('/ok', '10.7.2.1').expect(429)
      expect(refused.headers['content-type']).toMatch(/^application\/json/)
      const retryAfter = Number(refused.headers['retry-after'])
      expect(refused.body).toEqual('retryAfter' in body ? { ...body, retryAfter } : body)
    })

    it('answers through handler, with the headers written, from the store and from memory alike', async () => {
      const calls: unknown[] = []
      const { get } = await setUp({
        limit: 1,
        statusCode: 418,
        handler: (_req, res, _next, options) => {
          calls.push(options)
          res.status(options.statusCode).send('teapot')
        },
      })
      await get('/ok', '10.7.3.1').expect(200)
      for (let i = 0; i < 2; i++) {
        const refused = await get('/ok', '10.7.3.1').expect(418)
        expect(refused.text).toBe('teapot')
        expect(refused.headers['retry-after']).toBeDefined()
        expect(refused.headers.ratelimit).toMatch(/^"read"; r=0; t=\d+$/)
      }
      expect(calls).toEqual([
        expect.objectContaining({ statusCode: 418, windowMs: 60_000 }),
        expect.objectContaining({ statusCode: 418, windowMs: 60_000 }),
      ])
    })

    it.each([
      ['draft-6', { 'ratelimit-policy': '3;w=60', 'ratelimit-limit': '3', 'ratelimit-remaining': '2' }],
      [true, { 'ratelimit-policy': '3;w=60', 'ratelimit-limit': '3', 'ratelimit-remaining': '2' }],
      ['draft-7', { 'ratelimit-policy': '3;w=60' }],
    ] as const)('sends the standardHeaders of %s', async (standardHeaders, headers) => {
      const { get } = await setUp({ limit: 3, standardHeaders })
      const answer = await get('/ok', '10.7.4.1').expect(200)
      expect(answer.headers).toMatchObject(headers)
      if (standardHeaders === 'draft-7') expect(answer.headers.ratelimit).toMatch(/^limit=3, remaining=2, reset=\d+$/)
      else expect(answer.headers['ratelimit-reset']).toMatch(/^\d+$/)
    })

    it('sends no RateLimit headers with standardHeaders false, and Retry-After on a 429 still', async () => {
      const { get } = await setUp({ limit: 1, standardHeaders: false })
      const allowed = await get('/ok', '10.7.4.2').expect(200)
      expect(Object.keys(allowed.headers).filter((header) => header.startsWith('ratelimit'))).toEqual([])
      const refused = await get('/ok', '10.7.4.2').expect(429)
      expect(refused.headers.ratelimit).toBeUndefined()
      expect(refused.headers['retry-after']).toBeDefined()
    })

    it('names the limit in the draft-8 headers by identifier, a string or a function of the request', async () => {
      const fixed = await setUp({ limit: 2, identifier: 'api-2-per-min' })
      const answer = await fixed.get('/ok', '10.7.9.1').expect(200)
      expect(answer.headers.ratelimit).toMatch(/^"api-2-per-min"; r=1; t=\d+$/)
      expect(answer.headers['ratelimit-policy']).toMatch(/^"api-2-per-min"; q=2; w=60; pk=/)
      const perRequest = await setUp({
        limit: 1,
        identifier: (req) => Promise.resolve(`plan-${req.get('x-plan') ?? 'free'}`),
      })
      const first = await perRequest.get('/ok', '10.7.9.2').set('X-Plan', 'pro').expect(200)
      expect(first.headers.ratelimit).toMatch(/^"plan-pro"; r=0; t=\d+$/)
      // The refused request's headers too.
      const refused = await perRequest.get('/ok', '10.7.9.2').expect(429)
      expect(refused.headers.ratelimit).toMatch(/^"plan-free"; r=0; t=\d+$/)
      // A bad answer goes to the error handler.
      const bad = await setUp({ identifier: () => 'has "quotes"' })
      expect((await bad.get('/ok', '10.7.9.3')).body).toMatchObject({ code: 'ERR_RATE_LIMIT_INVALID_OPTION' })
    })

    it('sets the decision on requestPropertyName too, for requests let through and refused', async () => {
      const seen: unknown[] = []
      const { app, limiter } = await optionsApp({
        windowMs: 60_000,
        ...store(),
        limit: 1,
        requestPropertyName: 'quota',
        handler: (req, res) => {
          seen.push((req as unknown as { quota?: unknown }).quota)
          res.status(429).end()
        },
      })
      made.push(limiter)
      app.get('/quota', (req, res) => res.json({ quota: (req as unknown as { quota?: unknown }).quota }))
      const allowed = await request(app).get('/quota').set('X-Forwarded-For', '10.7.10.1').expect(200)
      expect(allowed.body.quota).toMatchObject({ limit: 1, used: 1, remaining: 0, key: '10.7.10.1' })
      await request(app).get('/quota').set('X-Forwarded-For', '10.7.10.1').expect(429)
      expect(seen).toEqual([expect.objectContaining({ limit: 1, remaining: 0, key: '10.7.10.1' })])
    })

    it('calls skip and keyGenerator with the response too', async () => {
      const seen: boolean[] = []
      const { statuses } = await setUp({
        limit: 1,
        skip: (_req, res) => {
          seen.push(typeof res.setHeader === 'function')
          return false
        },
        keyGenerator: (req, res) => {
          seen.push(typeof res.setHeader === 'function')
          return `k:${req.ip}`
        },
      })
      expect(await statuses('/ok', '10.7.5.1', 2)).toEqual([200, 429])
      expect(seen).toEqual([true, true, true, true])
    })

    describe.each(PATHS)('giving requests back: %s', (_label, config) => {
      /** Waits until `key` has `remaining` left: a request is given back once its response finishes. */
      const settled = async (limiter: RateLimitRequestHandler, key: string, remaining: number) => {
        await waitFor(`${key} to have ${remaining} left`, async () => {
          return (await limiter.get(key)).limits[0]!.remaining === remaining
        })
      }

      it('gives back every successful request with skipSuccessfulRequests, never below nothing spent', async () => {
        const { limiter, get } = await setUp({ ...config, limit: 2, skipSuccessfulRequests: true })
        for (let i = 0; i < 4; i++) {
          await get('/ok', '10.7.6.1').expect(200)
          await settled(limiter, '10.7.6.1', 2)
        }
        // Failures count.
        await get('/fail', '10.7.6.1').expect(500)
        await get('/missing', '10.7.6.1').expect(404)
        expect((await get('/ok', '10.7.6.1')).status).toBe(429)
      })

      it('gives back failed requests, and those whose client went away, with skipFailedRequests', async () => {
        const { limiter, get } = await setUp({ ...config, limit: 2, skipFailedRequests: true })
        for (let i = 0; i < 3; i++) {
          await get('/fail', '10.7.7.1').expect(500)
          await settled(limiter, '10.7.7.1', 2)
        }
        await get('/ok', '10.7.7.1').expect(200)
        await get('/ok', '10.7.7.1').expect(200)
        expect((await get('/ok', '10.7.7.1')).status).toBe(429)
      })

      it('gives back a request whose client went away before it was answered, with skipFailedRequests', async () => {
        const { app, limiter, hung } = await setUp({ ...config, limit: 2, skipFailedRequests: true })
        const server = app.listen(0, '127.0.0.1')
        await once(server, 'listening')
        try {
          const { port } = server.address() as AddressInfo
          const client = httpGet({ host: '127.0.0.1', port, path: '/hang', headers: { 'X-Forwarded-For': '10.7.7.2' } })
          client.on('error', () => undefined)
          await waitFor('the request to reach its route', () => hung.length === 1)
          expect((await limiter.get('10.7.7.2')).limits[0]).toMatchObject({ remaining: 1 })
          client.destroy()
          await settled(limiter, '10.7.7.2', 2)
        } finally {
          server.close()
        }
      })

      it('decides success by requestWasSuccessful', async () => {
        const { limiter, get } = await setUp({
          ...config,
          limit: 2,
          skipFailedRequests: true,
          requestWasSuccessful: (_req, res) => Promise.resolve(res.statusCode !== 500),
        })
        await get('/fail', '10.7.8.1').expect(500)
        await settled(limiter, '10.7.8.1', 2)
        // A 404 is a success here: it counts.
        await get('/missing', '10.7.8.1').expect(404)
        await get('/missing', '10.7.8.1').expect(404)
        expect((await get('/ok', '10.7.8.1')).status).toBe(429)
      })
    })
  })
}
