// The policy limiters in memory, through Express; and the options that choose them, checked.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

import request from 'supertest'
import { describe, expect, it } from 'vitest'

import {
  createRateLimiter,
  createRateLimiters,
  ERROR_CODES,
  rateLimitConfigFromEnv,
  type RateLimitConfig,
  type RateLimiters,
} from '#src/index.js'
import { createApp } from '#test/support/app.js'
import { uniquePrefix } from '#test/support/limiter-contract.js'
import { recordingLogger } from '#test/support/logger.js'
import { describeControlsContract } from '#test/support/controls-contract.js'
import { describeErlOptionsContract } from '#test/support/erl-options-contract.js'
import { describeRequestLimitsContract } from '#test/support/request-limits-contract.js'
import { describePolicyContract } from '#test/support/policy-contract.js'

describePolicyContract('memory', { store: () => ({}) })
describeRequestLimitsContract('memory', { store: () => ({}) })
describeControlsContract('memory', { store: () => ({}) })
describeErlOptionsContract('memory', { store: () => ({}) })

describe("docs/algorithms.md's example", () => {
  it('runs as shown: the burst limit refuses, and an export costs 10', async () => {
    const page = readFileSync(join(import.meta.dirname, '..', '..', '..', '..', 'docs', 'algorithms.md'), 'utf8')
    const code = /<!-- example: policies[^>]*-->\s*```ts\n([\s\S]*?)\n```/.exec(page)?.[1]
    expect(code).toBeDefined()
    // The example as it is, with the test's prefix and logger added to its options.
    const ours = (config: RateLimitConfig) =>
      createRateLimiters({ ...config, keyPrefix: uniquePrefix('doc'), logger: recordingLogger() })
    // Run as a module of its own, given createRateLimiters, exactly as the page writes it.
    const dir = mkdtempSync(join(tmpdir(), 'doc-example-'))
    const file = join(dir, 'example.mjs')
    writeFileSync(file, `export default async (createRateLimiters) => {\n${code}\nreturn limiters\n}\n`)
    const { default: run } = (await import(pathToFileURL(file).href)) as {
      default: (create: typeof ours) => Promise<RateLimiters>
    }
    rmSync(dir, { recursive: true, force: true })
    const limiters = await run(ours)
    try {
      const app = createApp(limiters)
      app.get('/export', limiters.read, (_req, res) => res.json({ ok: true }))
      const statuses: number[] = []
      for (let i = 0; i < 21; i++) statuses.push((await request(app).get('/items')).status)
      expect(statuses.filter((status) => status === 200)).toHaveLength(20)
      const exported = await request(app).get('/export').set('X-Forwarded-For', '10.4.0.1')
      expect(exported.headers.ratelimit).toMatch(/^"burst"; r=10; t=\d+$/)
    } finally {
      limiters.dispose()
    }
  })
})

describe('the policy options', () => {
  it.each([
    [
      { algorithm: 'leaky' },
      'algorithm',
      'algorithm must be one of fixed-window, sliding-window, token-bucket, got "leaky"',
    ],
    [
      { limits: [{ max: 0, windowMs: 1000 }] },
      'limits[0].max',
      'limits[0].max must be a positive integer, or a function (request) => number, got 0',
    ],
    [
      { limitsRead: [{ max: 5 }] },
      'limitsRead[0].windowMs',
      'limitsRead[0].windowMs must be an integer of ms from 1 to 2147483647, got undefined',
    ],
    [{ limits: 'fast' }, 'limits', 'limits must be a list of 1 to 8 { name?, max, windowMs } limits, got "fast"'],
    [{ cost: 0 }, 'cost', 'cost must be a positive safe integer, or a function (request) => number, got 0'],
    [{ maxRead: 5, cost: 6 }, 'cost', 'cost 6 is more than limit "read" can ever allow (max 5)'],
    [
      { policies: { 'a b': {} }, policy: (): undefined => undefined },
      'policies',
      'policies\' names must be 1-32 of A-Z a-z 0-9 _ . -, got "a b"',
    ],
    [
      { policies: { pro: { maxReads: 5 } }, policy: (): undefined => undefined },
      'policies.pro.maxReads',
      'policies.pro may give windowMs, maxRead, maxWrite, maxCustom, limits, limitsRead, limitsWrite, limitsCustom, not "maxReads"',
    ],
    [
      { policies: { pro: { maxRead: 0 } }, policy: (): undefined => undefined },
      'policies.pro.maxRead',
      'policies.pro.maxRead must be a positive integer, or a function (request) => number, got 0',
    ],
    [
      { policies: { pro: { limitsRead: [{ max: 5, windowMs: 0 }] } }, policy: (): undefined => undefined },
      'policies.pro.limitsRead[0].windowMs',
      'policies.pro.limitsRead[0].windowMs must be an integer of ms from 1 to 2147483647, got 0',
    ],
    [
      { policies: { pro: 5 }, policy: (): undefined => undefined },
      'policies.pro',
      'policies.pro must be an object of windowMs, maxRead, maxWrite, maxCustom, limits, limitsRead, limitsWrite, limitsCustom, got 5',
    ],
    [
      { policies: { pro: { maxRead: 5 } } },
      'policy',
      'policy must be a function (request) => policy name, given with policies, got undefined',
    ],
    [
      { policy: (): string => 'pro' },
      'policies',
      'policies must be the named policies the policy function picks from, given with policy, got undefined',
    ],
    [
      { policies: { 'a-very-long-policy-name-of-26': {} }, policy: (): undefined => undefined },
      'policies.a-very-long-policy-name-of-26',
      'policies.a-very-long-policy-name-of-26: the RateLimit headers name its limits "a-very-long-policy-name-of-26.read", longer than 32 characters; shorten the policy\'s or the limit\'s name',
    ],
    [
      { policies: { pro: { maxRead: 5 } }, policy: (): undefined => undefined, cost: 6 },
      'cost',
      'cost 6 is more than limit "pro.read" can ever allow (max 5)',
    ],
  ])('refuses %j, naming %s', async (config, option, message) => {
    await expect(
      createRateLimiter('read', { keyPrefix: uniquePrefix('bad'), logger: recordingLogger(), ...(config as object) }),
    ).rejects.toMatchObject({ code: ERROR_CODES.INVALID_OPTION, option, message })
  })

  it('gives read and write their own limits, and names unnamed ones by type and place', async () => {
    const logger = recordingLogger()
    const limiters = await createRateLimiters({
      keyPrefix: uniquePrefix('own'),
      logger,
      algorithm: 'sliding-window',
      limitsRead: [
        { max: 10, windowMs: 1000 },
        { max: 500, windowMs: 3_600_000 },
      ],
      limitsWrite: [{ name: 'writes', max: 3, windowMs: 60_000 }],
    })
    try {
      expect(logger.lines.filter((line) => line.level === 'info').map((line) => line.message)).toEqual(
        expect.arrayContaining([
          '[RateLimit:read] Policy sliding-window: read.1 10 per 1000 ms, read.2 500 per 3600000 ms',
          '[RateLimit:write] Policy sliding-window: writes 3 per 60000 ms',
        ]),
      )
    } finally {
      limiters.dispose()
    }
  })

  it('reads the algorithm and the limits from the environment', () => {
    expect(
      rateLimitConfigFromEnv({
        RATE_LIMIT_ALGORITHM: 'token-bucket',
        RATE_LIMIT_READ_LIMITS: 'burst=10/1s, hourly=1000/1h',
        RATE_LIMIT_WRITE_LIMITS: '5/250ms',
      }),
    ).toEqual({
      algorithm: 'token-bucket',
      limitsRead: [
        { name: 'burst', max: 10, windowMs: 1000 },
        { name: 'hourly', max: 1000, windowMs: 3_600_000 },
      ],
      limitsWrite: [{ max: 5, windowMs: 250 }],
    })
  })

  it.each(['10', '10/0s', 'a b=1/1s', '0/1s', '5/1w'])('refuses RATE_LIMIT_READ_LIMITS=%s, naming it', (text) => {
    expect(() => rateLimitConfigFromEnv({ RATE_LIMIT_READ_LIMITS: text })).toThrow(
      expect.objectContaining({ code: ERROR_CODES.INVALID_ENV, option: 'RATE_LIMIT_READ_LIMITS' }),
    )
  })
})
