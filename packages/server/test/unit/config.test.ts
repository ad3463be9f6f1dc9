import { describe, expect, it } from 'vitest'

import { ConfigError, loadConfig, tokenHash } from '../../src/index.js'

const TOKEN_A = 'tok-alice-0123456789'
const TOKEN_B = 'tok-bob-abcdefghijkl'

function failure(env: Record<string, string>): Error & { code?: string } {
  try {
    loadConfig(env)
  } catch (error) {
    return error as Error & { code?: string }
  }
  throw new Error('expected loadConfig to throw')
}

describe('loadConfig', () => {
  it('has the documented defaults for an empty environment', () => {
    const config = loadConfig({})
    expect(config).toMatchObject({
      port: 3000,
      nodeEnv: 'development',
      trustProxy: false,
      authRequired: false,
      skipAdmins: true,
      metricsTokenHash: undefined,
      logLevel: 'info',
    })
    expect(config.tokens.size).toBe(0)
    expect(config.rateLimit).toEqual({})
  })

  it('reads every variable', () => {
    const config = loadConfig({
      PORT: '8080',
      NODE_ENV: 'production',
      TRUST_PROXY: '2',
      AUTH_REQUIRED: 'true',
      API_TOKENS: `${TOKEN_A}:alice, ${TOKEN_B}:bob:admin`,
      REDIS_URL: 'redis://localhost:6379',
      RATE_LIMIT_WINDOW_MS: '60000',
      RATE_LIMIT_READ_MAX: '500',
      RATE_LIMIT_WRITE_MAX: '200',
    })
    expect(config).toMatchObject({ port: 8080, nodeEnv: 'production', trustProxy: 2, authRequired: true })
    expect(config.rateLimit).toEqual({
      redisUrl: 'redis://localhost:6379',
      windowMs: 60_000,
      maxRead: 500,
      maxWrite: 200,
    })
    expect(config.tokens.get(tokenHash(TOKEN_A))).toEqual({ id: 'alice', isAdmin: false })
    expect(config.tokens.get(tokenHash(TOKEN_B))).toEqual({ id: 'bob', isAdmin: true })
    expect([...config.tokens.keys()].join()).not.toContain(TOKEN_A)
  })

  it('reads the login limit, 5 a minute unless RATE_LIMIT_LOGIN_MAX and RATE_LIMIT_LOGIN_WINDOW_MS say otherwise', () => {
    expect(loadConfig({}).login).toEqual({ max: 5, windowMs: 60_000 })
    expect(loadConfig({ RATE_LIMIT_LOGIN_MAX: '10', RATE_LIMIT_LOGIN_WINDOW_MS: '300000' }).login).toEqual({
      max: 10,
      windowMs: 300_000,
    })
  })

  it.each([
    ['TRUST_PROXY', 'false', false],
    ['TRUST_PROXY', '0', false],
    ['TRUST_PROXY', '1', 1],
    ['TRUST_PROXY', 'False', false],
    ['AUTH_REQUIRED', 'false', false],
    ['AUTH_REQUIRED', 'TRUE', true],
    ['AUTH_REQUIRED', '1', true],
    ['NODE_ENV', 'staging', 'staging'],
    ['PORT', ' 3001 ', 3001],
    ['RATE_LIMIT_SKIP_ADMINS', 'false', false],
    ['RATE_LIMIT_SKIP_ADMINS', '1', true],
    ['LOG_LEVEL', 'debug', 'debug'],
    ['LOG_LEVEL', 'silent', 'silent'],
    ['METRICS_TOKEN', TOKEN_A, tokenHash(TOKEN_A)],
  ])('reads %s=%s', (name, value, expected) => {
    const key = {
      TRUST_PROXY: 'trustProxy',
      AUTH_REQUIRED: 'authRequired',
      NODE_ENV: 'nodeEnv',
      PORT: 'port',
      RATE_LIMIT_SKIP_ADMINS: 'skipAdmins',
      LOG_LEVEL: 'logLevel',
      METRICS_TOKEN: 'metricsTokenHash',
    }[name]!
    expect(loadConfig({ [name]: value })).toHaveProperty(key, expected)
  })

  it.each([
    ['PORT', 'abc', 'PORT must be an integer from 1 to 65535, got "abc"'],
    ['RATE_LIMIT_LOGIN_MAX', '0', 'RATE_LIMIT_LOGIN_MAX must be an integer from 1 to 10000, got "0"'],
    ['RATE_LIMIT_LOGIN_MAX', '5.5', 'RATE_LIMIT_LOGIN_MAX must be an integer from 1 to 10000, got "5.5"'],
    [
      'RATE_LIMIT_LOGIN_WINDOW_MS',
      '999',
      'RATE_LIMIT_LOGIN_WINDOW_MS must be an integer from 1000 to 86400000, got "999"',
    ],
    [
      'RATE_LIMIT_LOGIN_WINDOW_MS',
      '1m',
      'RATE_LIMIT_LOGIN_WINDOW_MS must be an integer from 1000 to 86400000, got "1m"',
    ],
    ['PORT', '0', 'PORT must be an integer from 1 to 65535, got "0"'],
    ['PORT', '65536', 'PORT must be an integer from 1 to 65535, got "65536"'],
    ['PORT', '80.5', 'PORT must be an integer from 1 to 65535, got "80.5"'],
    ['PORT', '-1', 'PORT must be an integer from 1 to 65535, got "-1"'],
    ['NODE_ENV', 'prod', 'NODE_ENV must be one of development, production, staging, test, got "prod"'],
    ['TRUST_PROXY', 'true', 'TRUST_PROXY must be the number of proxies in front of the server (1 to 10) or false'],
    ['TRUST_PROXY', '11', 'got "11"'],
    ['TRUST_PROXY', 'loopback', 'got "loopback"'],
    ['AUTH_REQUIRED', 'yes', 'AUTH_REQUIRED must be true or false, got "yes"'],
    ['RATE_LIMIT_WINDOW_MS', '10', 'RATE_LIMIT_WINDOW_MS must be an integer from 1000 to 2147483647, got "10"'],
    ['RATE_LIMIT_READ_MAX', '0', 'RATE_LIMIT_READ_MAX must be a positive integer, got "0"'],
    ['RATE_LIMIT_WRITE_MAX', 'many', 'RATE_LIMIT_WRITE_MAX must be a positive integer, got "many"'],
    ['REDIS_URL', 'localhost:6379', 'REDIS_URL has unsupported scheme "localhost:"'],
    ['RATE_LIMIT_SKIP_ADMINS', 'no', 'RATE_LIMIT_SKIP_ADMINS must be true or false, got "no"'],
    ['RATE_LIMIT_SHADOW', 'on', 'RATE_LIMIT_SHADOW must be true or false, got "on"'],
    ['LOG_LEVEL', 'verbose', 'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"'],
  ])('refuses %s=%s with one line naming it', (name, value, message) => {
    const error = failure({ [name]: value })
    expect(error.message).toContain(message)
    expect(error.message).toMatch(new RegExp(`^${name} `))
    expect(error.message).not.toContain('\n')
  })

  it.each([
    ['too short', 'short-secret', 'got a value of 12 characters'],
    ['too long', 's'.repeat(600), 'got a value of 600 characters'],
    ['with a space', 'a secret with spaces in it', 'got a value of 26 characters with other characters'],
  ])('refuses a METRICS_TOKEN %s without printing it', (_what, token, shown) => {
    const error = failure({ METRICS_TOKEN: token })
    expect(error.message).toMatch(/^METRICS_TOKEN must be 16-512 characters from /)
    expect(error.message).toContain(shown)
    expect(error.message).not.toContain(token)
  })

  it('explains why TRUST_PROXY=true is refused', () => {
    expect(failure({ TRUST_PROXY: 'true' }).message).toContain('true would let any client choose its own IP')
  })

  it.each([
    ['a short token', 'shrt:alice', 'entry 1', 'its token is shorter than 16 characters'],
    ['no user id', `${TOKEN_A}`, 'entry 1', 'it has no userId'],
    ['a bad flag', `${TOKEN_A}:alice:root`, 'entry 1', 'its third field is not admin'],
    ['an empty entry', `${TOKEN_A}:alice,,${TOKEN_B}:bob`, 'entry 2', 'it is empty'],
    ['a user id with spaces', `${TOKEN_A}:al ice`, 'entry 1', 'its userId is not 1-64 characters'],
    ['too many fields', `${TOKEN_A}:alice:admin:${TOKEN_B}`, 'entry 1', 'it has 4 fields (at most 3)'],
    ['token and user swapped', `alice:${TOKEN_A}`, 'entry 1', 'its token is shorter than 16 characters'],
    ['a token over 512 characters', `${'t'.repeat(513)}:alice`, 'entry 1', 'its token is longer than 512 characters'],
    ['a token with a space', `tok with space 0123456:alice`, 'entry 1', 'its token has characters outside'],
  ])('refuses API_TOKENS with %s, and prints none of its fields', (_what, value, entry, problem) => {
    const error = failure({ API_TOKENS: value })
    expect(error).toBeInstanceOf(ConfigError)
    expect(error.code).toBe('ERR_SERVER_INVALID_ENV')
    expect(error.message).toMatch(new RegExp(`^API_TOKENS ${entry} must be token:userId or token:userId:admin`))
    expect(error.message).toContain(`, but ${problem}`)
    for (const secret of [TOKEN_A, TOKEN_B, 'shrt', 'alice', 'tok with space']) {
      expect(error.message).not.toContain(secret)
    }
  })

  it('refuses the same token twice', () => {
    expect(failure({ API_TOKENS: `${TOKEN_A}:alice,${TOKEN_A}:bob` }).message).toBe(
      'API_TOKENS entries 1 and 2 have the same token',
    )
  })

  it('never prints a REDIS_URL password', () => {
    const error = failure({ REDIS_URL: 'redis//:hunter2-secret@host:6379' })
    expect(error.message).toMatch(/^REDIS_URL /)
    expect(error.message).not.toContain('hunter2-secret')
  })
})
