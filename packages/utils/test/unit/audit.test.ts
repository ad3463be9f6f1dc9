// The audit log's bounds: once per key and window, and a fixed memory however many clients flood.
import type { Request } from 'express'
import type { RateLimitInfo } from 'express-rate-limit'
import { describe, expect, it } from 'vitest'

import { AuditLog, MAX_AUDITED_KEYS } from '#src/observability/audit.js'
import { recordingLogger } from '#test/support/logger.js'

const WINDOW_MS = 60_000

function rig() {
  let now = Date.parse('2026-01-01T00:00:00Z')
  const logger = recordingLogger()
  const audit = new AuditLog({ logger, namespace: 'svc', type: 'read', windowMs: WINDOW_MS, now: () => now })
  const request = { ip: '10.0.0.1', method: 'GET', baseUrl: '/api', route: undefined } as unknown as Request
  const over = (key: string, resetInMs = WINDOW_MS): void => {
    const info: RateLimitInfo = { key, limit: 1, used: 2, remaining: 0, resetTime: new Date(now + resetInMs) }
    audit.exceeded(request, info, false, 'memory')
  }
  return { logger, over, advance: (ms: number) => (now += ms) }
}

const exceeded = (messages: string[]) => messages.filter((m) => m === '[RateLimit:read] Rate limit exceeded').length
const summaries = (messages: string[]) => messages.filter((m) => /one window|did not list/.test(m))

describe('AuditLog', () => {
  it('logs a key again only after its window has reset', () => {
    const { logger, over, advance } = rig()
    over('a', 1000)
    for (let i = 0; i < 100; i++) over('a', 1000)
    expect(exceeded(logger.messages())).toBe(1)
    advance(999)
    over('a', 1)
    expect(exceeded(logger.messages())).toBe(1)
    advance(1)
    over('a')
    expect(exceeded(logger.messages())).toBe(2)
  })

  it(`remembers at most ${MAX_AUDITED_KEYS} keys; past that it says so once, then sums up once per window`, () => {
    const { logger, over, advance } = rig()
    for (let i = 0; i < MAX_AUDITED_KEYS; i++) over(`k${i}`)
    expect(exceeded(logger.messages())).toBe(MAX_AUDITED_KEYS)

    for (let i = 0; i < 5000; i++) over(`late${i}`)
    for (let i = 0; i < 5000; i++) over('late0')
    expect(exceeded(logger.messages())).toBe(MAX_AUDITED_KEYS)
    expect(summaries(logger.messages())).toEqual([
      '[RateLimit:read] Rate limit exceeded by more than 10000 clients in one window: the audit log is full, so further clients are counted (rate_limit_rejections_total) but not logged one by one',
    ])
    // Keys already logged stay quiet; half a window on, still no second line.
    over('k1')
    advance(WINDOW_MS / 2)
    over('later')
    expect(summaries(logger.messages())).toHaveLength(1)

    // A window after the first line, the first windows are over: the left-out requests are summed
    // up, and there is room again, so a new key is logged.
    advance(WINDOW_MS / 2)
    over('fresh')
    expect(summaries(logger.messages())).toEqual([
      expect.any(String),
      '[RateLimit:read] Rate limit exceeded by clients the full audit log did not list: 10000 requests since the last line',
    ])
    expect(exceeded(logger.messages())).toBe(MAX_AUDITED_KEYS + 1)
  })
})
