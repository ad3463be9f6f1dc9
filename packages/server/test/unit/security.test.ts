// Bypass prevention in the app: how client keys are formed from IPv6 addresses, mapped IPv4
// addresses and user ids, so that no client can buy itself a fresh budget (docs/security.md).
import { createInMemoryDataSource, disposeRateLimiters, initializeRateLimiters } from '@universo/metaverses-srv'
import { redisTargetFromEnv } from '@universo/utils/rate-limiting'
import request from 'supertest'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { createApp, loadConfig } from '../../src/index.js'

const TOKEN = 'tok-ip-lookalike-0123'

/** The app as the server builds it, and the audit records its limiters write. */
async function boot(env: Record<string, string>) {
  const audits: Record<string, unknown>[] = []
  const log = (_message: string, ...details: unknown[]) => {
    for (const detail of details) {
      if (typeof detail === 'object' && detail !== null) audits.push(detail as Record<string, unknown>)
    }
  }
  const logger = { info: log, warn: log, error: log }
  const config = loadConfig(env)
  await initializeRateLimiters({ ...config.rateLimit, logger })
  return { app: createApp({ config, dataSource: createInMemoryDataSource(), logger }), audits }
}

beforeEach(() => {
  vi.stubEnv('REDIS_URL', '')
})
afterEach(async () => {
  await disposeRateLimiters()
  vi.unstubAllEnvs()
})

/** The statuses of GETs from these client addresses, as a proxy in front would report them. */
async function statusesFrom(app: Parameters<typeof request>[0], addresses: string[]): Promise<number[]> {
  const statuses: number[] = []
  for (const address of addresses) {
    statuses.push((await request(app).get('/api/v1/metaverses').set('X-Forwarded-For', address)).status)
  }
  return statuses
}

describe('IPv6 clients', () => {
  it('share one budget per /56: rotating through the addresses of one /56 buys nothing', async () => {
    const { app, audits } = await boot({ TRUST_PROXY: '1', RATE_LIMIT_READ_MAX: '2' })
    expect(
      await statusesFrom(app, [
        '2001:db8:abcd:1200::1',
        '2001:db8:abcd:12ff:ffff:ffff:ffff:fffe',
        '2001:db8:abcd:1234::9',
        '2001:db8:abcd:1200:5:6:7:8',
      ]),
    ).toEqual([200, 200, 429, 429])
    expect(audits.map((record) => record.key)).toEqual(['2001:db8:abcd:1200::/56'])
  })

  it('in another /56 have their own budget', async () => {
    const { app } = await boot({ TRUST_PROXY: '1', RATE_LIMIT_READ_MAX: '1' })
    expect(await statusesFrom(app, ['2001:db8:abcd:1200::1', '2001:db8:abcd:1300::1'])).toEqual([200, 200])
  })
})

describe('IPv4 clients', () => {
  it('are the same client whether written as IPv4 or as IPv4-mapped IPv6', async () => {
    const { app, audits } = await boot({ TRUST_PROXY: '1', RATE_LIMIT_READ_MAX: '1' })
    expect(await statusesFrom(app, ['203.0.113.9', '::ffff:203.0.113.9'])).toEqual([200, 429])
    expect(audits.map((record) => record.key)).toEqual(['203.0.113.9'])
  })
})

describe('X-Forwarded-For without TRUST_PROXY', () => {
  it('is ignored for IPv6 too: every address counts against the connecting one', async () => {
    const { app } = await boot({ RATE_LIMIT_READ_MAX: '2' })
    expect(await statusesFrom(app, ['2001:db8::1', '2001:db8:1::1', '2001:db8:2::1'])).toEqual([200, 200, 429])
  })
})

describe('user keys', () => {
  it('never share a budget with an IP, even for a user id that looks like one', async () => {
    const { app, audits } = await boot({
      TRUST_PROXY: '1',
      RATE_LIMIT_READ_MAX: '1',
      API_TOKENS: `${TOKEN}:203.0.113.9`,
    })
    const asUser = () =>
      request(app).get('/api/v1/metaverses').set('Authorization', `Bearer ${TOKEN}`).set('X-Forwarded-For', '10.0.0.1')
    expect((await asUser()).status).toBe(200)
    expect((await asUser()).status).toBe(429)
    expect(await statusesFrom(app, ['203.0.113.9'])).toEqual([200])
    expect(audits.map((record) => record.key)).toEqual(['user:203.0.113.9'])
  })
})

describe('a Redis password in REDIS_URL', () => {
  const base64 = 'Zk9/v+Qx3==' // what openssl rand -base64 prints may hold / + =

  it('with a "/" breaks the URL, and the error shows none of it', () => {
    expect(() => loadConfig({ REDIS_URL: `redis://:${base64}@redis-host:6379` })).toThrow(
      'REDIS_URL has an "@" after a "/", "?" or "#": percent-encode those characters in the user name and password, got "redis://***@redis-host:6379"',
    )
  })

  it('percent-encoded, is read back exactly', () => {
    const target = redisTargetFromEnv({ REDIS_URL: `redis://:${encodeURIComponent(base64)}@redis-host:6379` })
    expect(target).toMatchObject({
      kind: 'standalone',
      endpoint: { password: base64, safeUrl: 'redis://:***@redis-host:6379' },
    })
  })

  it('of hex digits (openssl rand -hex 32) needs no encoding', () => {
    const hex = 'a3f1'.repeat(16)
    const target = redisTargetFromEnv({ REDIS_URL: `redis://:${hex}@redis-host:6379` })
    expect(target).toMatchObject({ endpoint: { password: hex } })
  })
})

describe('a Redis password with an unencoded "?"', () => {
  const url = 'redis://:s3cr3t?x@redis-host:6379'

  it('is refused before parsing, with what to do', () => {
    expect(() => loadConfig({ REDIS_URL: url })).toThrow(
      /^REDIS_URL has an "@" after a "\/", "\?" or "#": percent-encode those characters/,
    )
  })

  // Regression: the fallback for a URL that does not parse cut the query before the userinfo, and
  // showed the password up to its "?" (got "redis://:s3cr3t?***").
  it('never shows any of the password in the error', () => {
    const message = (() => {
      try {
        loadConfig({ REDIS_URL: url })
        return ''
      } catch (error) {
        return (error as Error).message
      }
    })()
    expect(message).not.toContain('s3cr3t')
  })
})
