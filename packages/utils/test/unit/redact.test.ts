import { describe, expect, it } from 'vitest'

import { resolveConfig } from '#src/config/options.js'
import { rateLimitConfigFromEnv, redactCredentials } from '#src/index.js'
import { redactUrl, SHOWN_VALUE_CHARS, shownValue } from '#src/observability/redact.js'

describe('redactCredentials', () => {
  it.each([
    ['redis://user:hunter2@host:6379', 'redis://user:***@host:6379'],
    ['rediss://:hunter2@host:6380/2', 'rediss://:***@host:6380/2'],
    ['redis://:p@ss@host:6379/0', 'redis://:***@host:6379/0'],
    ['rediss://hunter2@host', 'rediss://***@host'],
    ['http://user:hunter2@host:6379', 'http://user:***@host:6379'],
    ['user:hunter2@host:6379', '***@host:6379'],
    ['got "redis://a:hunter2@h1,redis://c:hunter2@h2" here', 'got "redis://***@h2" here'],
    ['redis://u:hunter2@h/1 and redis://v:hunter2@h2', 'redis://u:***@h/1 and redis://v:***@h2'],
    ['redis://host:6379', 'redis://host:6379'],
    ['no url here', 'no url here'],
    // Regression: Redis's OOM error names the script as "@user_script"; that @ hides no credential.
    [
      'OOM command not allowed when used memory > maxmemory. script: abc, on @user_script:4.',
      'OOM command not allowed when used memory > maxmemory. script: abc, on @user_script:4.',
    ],
    ['redis://h:6379?password=hunter2&db=1', 'redis://h:6379?password=***&db=1'],
  ])('turns %s into %s', (input, expected) => {
    const out = redactCredentials(input)
    expect(out).toBe(expected)
    expect(out).not.toContain('hunter2')
  })
})

describe('redactUrl', () => {
  it.each([
    ['redis://user:hunter2@host:6379/2', 'redis://user:***@host:6379/2'],
    ['redis://host:6379?password=hunter2', 'redis://host:6379?***'],
    ['redis://:my"hunter2@host:6379', 'redis://:***@host:6379'],
    ['user:hunter2@host:6379', '<22 characters without a scheme://>'],
    ['redis//:hunter2@host?pw=hunter2', '<31 characters without a scheme://>'],
    ['hunter2', '<7 characters without a scheme://>'],
    ['redis://:hunter2@[bad', 'redis://***@[bad'],
    ['rediss://host', 'rediss://host'],
  ])('shows %s as %s', (input, expected) => {
    expect(redactUrl(input)).toBe(expected)
  })
})

describe('shownValue: the one way an error quotes a bad value', () => {
  it.each([
    ['a short string', 'abc', '"abc"'],
    ['a number', 0, '0'],
    ['NaN', Number.NaN, 'NaN'],
    ['a boolean', false, 'false'],
    ['null', null, 'null'],
    ['a bigint', 10n, '10n'],
    ['a function', () => 1, 'a function'],
    ['an array', [1, 2], 'an array'],
    ['an object', { password: 'hunter2' }, 'an object'],
    ['a URL with a password', 'redis://u:hunter2@h:6379', '"redis://u:***@h:6379"'],
  ])('%s', (_name, value, expected) => {
    expect(shownValue(value)).toBe(expected)
  })

  it(`cuts a long string to ${SHOWN_VALUE_CHARS} characters, quotes included, after removing credentials`, () => {
    const shown = shownValue(`redis://u:hunter2@${'h'.repeat(200)}`)
    expect(shown).toHaveLength(SHOWN_VALUE_CHARS)
    expect(shown).toMatch(/^"redis:\/\/u:\*\*\*@h+\.\.\."$/)
    expect(shownValue('x'.repeat(SHOWN_VALUE_CHARS - 2))).toBe(`"${'x'.repeat(SHOWN_VALUE_CHARS - 2)}"`)
  })

  it('is what an option, a variable and a node list show', () => {
    const long = `pass:hunter2@${'y'.repeat(100)}`
    const messages = [
      () => resolveConfig({ keyPrefix: long }),
      () => rateLimitConfigFromEnv({ RATE_LIMIT_SHADOW: long }),
      () => rateLimitConfigFromEnv({ RATE_LIMIT_WINDOW_MS: long }),
      () => rateLimitConfigFromEnv({ REDIS_CLUSTER_NODES: long }),
    ].map((call) => {
      try {
        call()
      } catch (error) {
        return (error as Error).message
      }
      throw new Error('no error')
    })
    for (const message of messages) {
      expect(message).toContain(shownValue(long))
      expect(message).not.toContain('hunter2')
    }
  })
})
