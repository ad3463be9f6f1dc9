// The audit log: one structured warning per client key and window over the limit, however hard it floods.
import { createHash } from 'node:crypto'

import type { Request } from 'express'
import type { RateLimitInfo } from 'express-rate-limit'

import type { RateLimitLogger } from './logger.js'
import type { StoreKind } from './stats.js'
import type { LimiterName } from '../config/types.js'

/** The details of one `Rate limit exceeded` line. */
export interface RateLimitAuditRecord {
  readonly event: 'rate_limit_exceeded'
  readonly namespace: string
  readonly type: LimiterName
  /**
   * The client key the request was counted under (`user:<id>`, an IP or IPv6 /56, or `sha256:` of a
   * long key), with the default key generator. Absent with a custom one: see keyHash.
   */
  readonly key?: string
  /**
   * With a custom keyGenerator, the first 16 hex digits of the key's SHA-256 instead of the key: a
   * custom key may be a secret (an API key). Enough to tell clients apart and to match a known key.
   */
  readonly keyHash?: string
  /** `req.user.id`, when the request was authenticated. */
  readonly userId?: string
  readonly ip: string | undefined
  readonly method: string
  /** Where the limiter is mounted (`req.baseUrl`, plus the route pattern when used on a route): never ids. */
  readonly route: string
  readonly limit: number
  readonly windowMs: number
  /** When the client's window resets (ISO 8601); the next line for this key comes after it at the earliest. */
  readonly resetTime: string | undefined
  /** True when shadow mode let the request through. */
  readonly shadow: boolean
  /** Which store counted it: redis, memory, or the in-memory fallback during a Redis outage. */
  readonly store: StoreKind
  readonly timestamp: string
}

/** Client keys remembered per limiter, so each is logged once per window. Past it, clients are summed up. */
export const MAX_AUDITED_KEYS = 10_000

export interface AuditLogOptions {
  readonly logger: RateLimitLogger
  readonly namespace: string
  readonly type: LimiterName
  readonly windowMs: number
  /** Log a hash of the client key instead of the key (for custom key generators). @default false */
  readonly hashKeys?: boolean
  /** How a request's route is named. @default defaultAuditRoute */
  readonly route?: (request: Request) => string
  readonly now?: () => number
}

/**
 * Writes `[RateLimit:<type>] Rate limit exceeded` with a RateLimitAuditRecord, once per client key
 * until that key's window resets. Memory is bounded by MAX_AUDITED_KEYS: past it, clients are not
 * logged one by one, and one summary line per window says how many were left out.
 */
export class AuditLog {
  /** Client key -> until when it has been logged (ms since the epoch). */
  readonly #logged = new Map<string, number>()
  #nextSweep = 0
  /** Set once the log has been full: the first left-out client says so. */
  #full = false
  /** Requests over the limit from clients left out since the last summary. */
  #left = 0
  #nextSummary = 0
  readonly #now: () => number
  readonly #tag: string
  readonly #route: (request: Request) => string

  constructor(private readonly options: AuditLogOptions) {
    this.#now = options.now ?? Date.now
    this.#tag = `[RateLimit:${options.type}]`
    this.#route = options.route ?? defaultAuditRoute
  }

  /** Records one request over the limit; writes a line only for a key not logged in this window. */
  exceeded(request: Request, info: RateLimitInfo, shadow: boolean, store: StoreKind): void {
    const now = this.#now()
    if (this.#full && now >= this.#nextSummary) {
      // A window has passed since the last line: sum up who was left out, or end the episode.
      if (this.#left > 0) this.#summary(now)
      else this.#full = false
    }
    const until = this.#logged.get(info.key)
    if (until !== undefined && until > now) return
    if (until === undefined && !this.#room(now)) return this.#leftOut(now)
    this.#logged.set(info.key, info.resetTime?.getTime() ?? now + this.options.windowMs)
    this.options.logger.warn(`${this.#tag} Rate limit exceeded`, this.#record(request, info, shadow, store, now))
  }

  #record(request: Request, info: RateLimitInfo, shadow: boolean, store: StoreKind, now: number): RateLimitAuditRecord {
    const { namespace, type, windowMs } = this.options
    const userId = userIdOf(request)
    return {
      event: 'rate_limit_exceeded',
      namespace,
      type,
      ...(this.options.hashKeys === true ? { keyHash: keyHash(info.key) } : { key: info.key }),
      ...(userId === undefined ? {} : { userId }),
      ip: request.ip,
      method: request.method,
      route: this.#route(request),
      limit: info.limit,
      windowMs,
      resetTime: info.resetTime?.toISOString(),
      shadow,
      store,
      timestamp: new Date(now).toISOString(),
    }
  }

  /** Whether one more key fits; when full, drops expired keys (at most once a second, so a flood stays cheap). */
  #room(now: number): boolean {
    if (this.#logged.size < MAX_AUDITED_KEYS) return true
    if (now < this.#nextSweep) return false
    this.#nextSweep = now + 1000
    for (const [key, until] of this.#logged) if (until <= now) this.#logged.delete(key)
    return this.#logged.size < MAX_AUDITED_KEYS
  }

  /** A request from a client that did not fit: said once when the log fills, then summed up once per window. */
  #leftOut(now: number): void {
    if (!this.#full) {
      this.#full = true
      this.#nextSummary = now + this.options.windowMs
      this.options.logger.warn(
        `${this.#tag} Rate limit exceeded by more than ${MAX_AUDITED_KEYS} clients in one window: ` +
          'the audit log is full, so further clients are counted (rate_limit_rejections_total) but not logged one by one',
      )
      return
    }
    this.#left++
  }

  #summary(now: number): void {
    this.options.logger.warn(
      `${this.#tag} Rate limit exceeded by clients the full audit log did not list: ${this.#left} requests since the last line`,
    )
    this.#left = 0
    this.#nextSummary = now + this.options.windowMs
  }
}

const keyHash = (key: string): string => createHash('sha256').update(key).digest('hex').slice(0, 16)

function userIdOf(request: Request): string | undefined {
  const id = (request as { user?: { id?: unknown } }).user?.id
  if (typeof id === 'string' && id !== '') return id
  if (typeof id === 'number' && Number.isFinite(id)) return String(id)
  return undefined
}

/**
 * The mount path and route pattern, never the concrete path: a segment of the mount path that holds
 * a path parameter (`app.use('/users/:uid', limiter)`) is shown as `:uid`, so ids stay out of logs.
 */
export function defaultAuditRoute(request: Request): string {
  const params = (request.params ?? {}) as Record<string, unknown>
  const nameOf = new Map<string, string>()
  for (const [name, value] of Object.entries(params))
    if (typeof value === 'string' && value !== '') nameOf.set(value, name)
  const base =
    nameOf.size === 0
      ? request.baseUrl
      : request.baseUrl
          .split('/')
          .map((segment) => {
            const name = nameOf.get(decoded(segment))
            return name === undefined ? segment : `:${name}`
          })
          .join('/')
  const pattern: unknown = (request as { route?: { path?: unknown } }).route?.path
  const route = base + (typeof pattern === 'string' ? pattern : '')
  return route === '' ? '/' : route
}

function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}
