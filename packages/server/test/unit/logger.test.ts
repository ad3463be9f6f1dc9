// The server's pino logger: JSON lines, the library's words in msg, details as fields, no credentials.
import { Writable } from 'node:stream'

import { describe, expect, it } from 'vitest'

import { createServerLogger } from '../../src/index.js'

function capture() {
  const lines: string[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(
        ...chunk
          .toString()
          .split('\n')
          .filter((line) => line !== ''),
      )
      done()
    },
  })
  return { stream, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>), raw: lines }
}

describe('createServerLogger', () => {
  it('writes one JSON object per line, with the message as msg and object details as fields', () => {
    const out = capture()
    const logger = createServerLogger('info', out.stream)
    logger.info('[RateLimit:read] Using Redis store (distributed mode)')
    logger.warn('[RateLimit:read] Rate limit exceeded', { event: 'rate_limit_exceeded', limit: 5 }, 'extra')
    expect(out.records()).toEqual([
      expect.objectContaining({ level: 'info', msg: '[RateLimit:read] Using Redis store (distributed mode)' }),
      expect.objectContaining({
        level: 'warn',
        msg: '[RateLimit:read] Rate limit exceeded',
        event: 'rate_limit_exceeded',
        limit: 5,
        details: ['extra'],
      }),
    ])
    expect(Number.isNaN(Date.parse(out.records()[0]!.time as string))).toBe(false)
  })

  it('keeps only type, code, message and stack of an error, with credentials redacted', () => {
    const out = capture()
    const logger = createServerLogger('info', out.stream)
    const error = Object.assign(new Error('AUTH failed for redis://:hunter2@cache:6379'), {
      code: 'WRONGPASS',
      command: { name: 'auth', args: ['default', 'hunter2'] },
    })
    logger.error('[Redis] Connection error', error)
    logger.warn('[Server] odd detail', { err: 'not an error at redis://:hunter2@x' })
    logger.error('[Server] many', new AggregateError([new Error('redis://:hunter2@a:1')], 'both'))
    const text = out.raw.join('\n')
    expect(text).not.toContain('hunter2')
    const [first, second, third] = out.records()
    expect(first!.err).toEqual({
      type: 'Error',
      code: 'WRONGPASS',
      message: 'AUTH failed for redis://:***@cache:6379',
      stack: expect.stringContaining('redis://:***@cache:6379'),
    })
    expect(second!.err).toEqual({ message: 'not an error at redis://:***@x' })
    expect(third!.err).toMatchObject({ aggregateErrors: [expect.objectContaining({ message: 'redis://:***@a:1' })] })
  })

  it('writes nothing below its level', () => {
    const out = capture()
    const logger = createServerLogger('warn', out.stream)
    logger.info('quiet')
    logger.warn('loud')
    expect(out.records().map((r) => r.msg)).toEqual(['loud'])
  })
})
