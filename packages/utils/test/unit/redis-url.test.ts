import { describe, expect, it } from 'vitest'

import { ERROR_CODES, RateLimitError } from '#src/index.js'
import { redactUrl } from '#src/observability/redact.js'
import { parseRedisUrl } from '#src/redis/url.js'
import { seededRandom } from '#test/support/random.js'

describe('parseRedisUrl', () => {
  it.each([
    ['redis://localhost:6379', { host: 'localhost', port: 6379, db: 0, tls: false, safeUrl: 'redis://localhost:6379' }],
    ['redis://localhost', { port: 6379, safeUrl: 'redis://localhost:6379' }],
    [
      'redis://:s3cret@host:6380/2',
      { password: 's3cret', username: undefined, db: 2, safeUrl: 'redis://:***@host:6380/2' },
    ],
    ['redis://user:s3cret@host:6379', { username: 'user', password: 's3cret', safeUrl: 'redis://user:***@host:6379' }],
    ['redis://user:p%40ss@host:6379', { password: 'p@ss' }],
    ['rediss://host:6380', { tls: true, safeUrl: 'rediss://host:6380' }],
    ['redis://[::1]:6379', { host: '::1', safeUrl: 'redis://[::1]:6379' }],
    ['redis://s3cret@host:6379', { username: 's3cret', safeUrl: 'redis://***@host:6379' }],
  ])('reads %s', (url, expected) => {
    expect(parseRedisUrl(url, 'REDIS_URL')).toMatchObject(expected)
  })

  it.each([
    ['not a url', 'is not a valid URL'],
    ['http://host:6379', 'has unsupported scheme "http:"'],
    ['redis://host:99999', 'is not a valid URL'],
    ['redis://host:6379/abc', 'has an invalid database "/abc"'],
    ['redis://host:6379/0?tls=true', 'must not have a query string'],
    ['redis://', 'has no host'],
    ['', 'must be a non-empty URL'],
  ])('refuses %o with an error naming REDIS_URL and the accepted forms', (url, problem) => {
    let error: unknown
    try {
      parseRedisUrl(url, 'REDIS_URL')
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(RateLimitError)
    expect((error as RateLimitError).code).toBe(ERROR_CODES.REDIS_URL_INVALID)
    expect((error as RateLimitError).option).toBe('REDIS_URL')
    expect((error as RateLimitError).message).toContain(`REDIS_URL ${problem}`)
    expect((error as RateLimitError).message).toContain('expected redis://[user:pass@]host:port[/db]')
  })

  it('refuses malformed percent-encoding with a clear error, not a bare URIError', () => {
    expect(() => parseRedisUrl('redis://:%E0%A4%A@host:6379', 'REDIS_URL')).toThrow(
      expect.objectContaining({
        code: ERROR_CODES.REDIS_URL_INVALID,
        message: expect.stringMatching(/^REDIS_URL has malformed percent-encoding in its user or password/),
      }),
    )
  })

  it('never puts the password in an error', () => {
    for (const url of [
      'ftp://u:s3cret@h',
      'redis://u:s3cret@h:6379/x',
      'u:s3cret@h:6379',
      'redis://:s3cret@h:0',
      'redis://host:6379?password=s3cret',
      'redis://:my"s3cret@host:6379/x',
      "redis://:a b's3cret<>@host:6379/x",
      'redis//:s3cret@host?x=1',
      'redis://:s3cret%E0%A4%A@host:6379',
    ]) {
      expect(() => parseRedisUrl(url, 'REDIS_URL')).toThrow(RateLimitError)
      try {
        parseRedisUrl(url, 'REDIS_URL')
      } catch (error) {
        expect((error as Error).message).not.toContain('s3cret')
      }
    }
  })
})

describe('a password with characters a URL treats as delimiters', () => {
  const ALPHABET = 'abcXYZ0123456789/?#@:+=%-_.'

  // Regression: "redis://default:4242?my-real-secret@host" parsed with host "default" and port
  // 4242, and the error showed the rest of the password as a query key or a database.
  it('never shows a run of 4 or more of its letters and digits, in an error or a redacted URL', () => {
    const next = seededRandom(7)
    for (let n = 0; n < 3_000; n++) {
      const length = 6 + Math.floor(next() * 20)
      const password = Array.from({ length }, () => ALPHABET[Math.floor(next() * ALPHABET.length)]).join('')
      const secrets = password.match(/[a-zA-Z0-9]{4,}/g) ?? []
      for (const url of [`redis://default:${password}@redis-host:6379`, `redis://:${password}@redis-host:6379/1`]) {
        let message = ''
        try {
          parseRedisUrl(url, 'REDIS_URL')
        } catch (error) {
          message = (error as Error).message
        }
        for (const secret of secrets) {
          expect(message, url).not.toContain(secret)
          expect(redactUrl(url), url).not.toContain(secret)
        }
      }
    }
  })

  it('is refused before parsing, with what to do', () => {
    expect(() => parseRedisUrl('redis://default:4242?my-real-secret@redis-host:6379', 'REDIS_URL')).toThrow(
      'REDIS_URL has an "@" after a "/", "?" or "#": percent-encode those characters in the user name and password, got "redis://***@redis-host:6379"',
    )
  })
})
