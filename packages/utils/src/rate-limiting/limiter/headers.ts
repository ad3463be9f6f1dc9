// The rate-limit headers, written as express-rate-limit writes them (draft-8, legacy, Retry-After), but cheaper.
import { createHash } from 'node:crypto'

import type { Response } from 'express'
import type { RateLimitInfo } from 'express-rate-limit'

import type { LimiterName } from '../config/types.js'
import type { CheckedLimit } from '../policies/limits.js'

/** Partition keys remembered, so a returning client's SHA-256 is not computed again. */
export const MAX_CACHED_PARTITION_KEYS = 10_000

/** express-rate-limit's draft-8 `pk`: base64 of the first 12 hex digits of the key's SHA-256. */
export function partitionKey(key: string): string {
  return Buffer.from(createHash('sha256').update(key).digest('hex').slice(0, 12)).toString('base64')
}

export interface HeaderSettings {
  readonly type: LimiterName
  /** The one limit's name in the draft-8 headers, in place of the limiter's (`identifier`). */
  readonly identifier?: string | undefined
  readonly windowMs: number
  readonly legacyHeaders: boolean
  /** Which RateLimit headers: draft-8 (ours, with names), draft-7 or draft-6 (express-rate-limit's), or none. */
  readonly standard?: 'draft-6' | 'draft-7' | 'draft-8' | false
  /**
   * A policy's limits (limiter/policy-limiter.ts): RateLimit-Policy then lists every one by name,
   * and RateLimit names the one `info.name` gives, the closest to refusing.
   */
  readonly limits?: readonly CheckedLimit[]
}

/** req.rateLimit of a policy: which of its limits it tells of, and the limits it was decided by. */
interface NamedInfo {
  readonly name?: string
  policyLimits?(): readonly CheckedLimit[] | undefined
}

/** Each item of RateLimit-Policy up to its `pk`. */
const policyItems = (limits: readonly CheckedLimit[]): readonly string[] =>
  limits.map((limit) => `"${limit.name}"; q=${limit.max}; w=${Math.ceil(limit.windowMs / 1000)}; pk=:`)

/**
 * Writes the headers of one limiter. express-rate-limit computes the draft-8 partition key (a
 * SHA-256) on every request and goes through Express's res.append; this keeps the last
 * MAX_CACHED_PARTITION_KEYS keys' partition keys and sets headers directly, with the same result.
 */
export class RateLimitHeaders {
  readonly #windowSeconds: number
  readonly #partitionKeys = new Map<string, string>()
  /** Each item of RateLimit-Policy up to its `pk`, for a policy's limits. */
  readonly #policyItems: readonly string[] | undefined

  constructor(private readonly settings: HeaderSettings) {
    this.#windowSeconds = Math.ceil(settings.windowMs / 1000)
    this.#policyItems = settings.limits === undefined ? undefined : policyItems(settings.limits)
  }

  /** RateLimit and RateLimit-Policy (draft-8), and the X-RateLimit-* ones when legacyHeaders is on. */
  write(response: Response, info: RateLimitInfo, now = Date.now()): void {
    if (response.headersSent) return
    const seconds = this.secondsLeft(info, now)
    if (this.settings.legacyHeaders) {
      response.setHeader('X-RateLimit-Limit', String(info.limit))
      response.setHeader('X-RateLimit-Remaining', String(info.remaining))
      if (info.resetTime instanceof Date) {
        response.setHeader('Date', new Date(now).toUTCString())
        response.setHeader('X-RateLimit-Reset', String(Math.ceil(info.resetTime.getTime() / 1000)))
      }
    }
    const standard = this.settings.standard ?? 'draft-8'
    if (standard === false) return
    const decidedBy = (info as NamedInfo).policyLimits?.()
    if (standard !== 'draft-8') return this.#olderDraft(response, info, seconds, standard, decidedBy)
    const items = decidedBy === undefined ? this.#policyItems : this.#itemsOf(decidedBy)
    if (items !== undefined) {
      const name = (info as NamedInfo).name ?? (decidedBy ?? this.settings.limits)![0]!.name
      const pk = this.#pk(info.key)
      add(response, 'RateLimit', `"${name}"; r=${info.remaining}; t=${seconds}`)
      add(response, 'RateLimit-Policy', items.map((item) => `${item}${pk}:`).join(', '))
      return
    }
    // Looked up only when an identifier function names each response's limit.
    const name = (this.#named ? this.#names.get(response) : undefined) ?? this.settings.identifier ?? this.settings.type
    add(response, 'RateLimit', `"${name}"; r=${info.remaining}; t=${seconds}`)
    add(
      response,
      'RateLimit-Policy',
      `"${name}"; q=${info.limit}; w=${this.#windowSeconds}; pk=:${this.#pk(info.key)}:`,
    )
  }

  /** Retry-After, in seconds until the reset: set on a 429 only. */
  retryAfter(response: Response, info: RateLimitInfo, now = Date.now()): number {
    const seconds = this.secondsLeft(info, now)
    if (!response.headersSent) response.setHeader('Retry-After', String(seconds))
    return seconds
  }

  /** Whole seconds until the window resets (the window when the store gives no reset time). */
  secondsLeft(info: RateLimitInfo, now: number): number {
    if (info.resetTime === undefined) return this.#windowSeconds
    return Math.max(0, Math.ceil((info.resetTime.getTime() - now) / 1000))
  }

  /**
   * express-rate-limit's draft-6 (RateLimit-Limit, -Remaining, -Reset) and draft-7 (one RateLimit
   * field) headers, with `RateLimit-Policy: <limit>;w=<seconds>`: of the limit closest to refusing,
   * for a policy, since those drafts name no limit.
   */
  #olderDraft(
    response: Response,
    info: RateLimitInfo,
    seconds: number,
    standard: 'draft-6' | 'draft-7',
    decidedBy: readonly CheckedLimit[] | undefined,
  ): void {
    const name = (info as NamedInfo).name
    const windowMs = decidedBy?.find((limit) => limit.name === name)?.windowMs ?? this.settings.windowMs
    response.setHeader('RateLimit-Policy', `${info.limit};w=${Math.ceil(windowMs / 1000)}`)
    if (standard === 'draft-7') {
      response.setHeader('RateLimit', `limit=${info.limit}, remaining=${info.remaining}, reset=${seconds}`)
      return
    }
    response.setHeader('RateLimit-Limit', String(info.limit))
    response.setHeader('RateLimit-Remaining', String(info.remaining))
    response.setHeader('RateLimit-Reset', String(seconds))
  }

  /** RateLimit-Policy's items for a list of limits a request was decided by (a policy's, say). */
  #itemsOf(limits: readonly CheckedLimit[]): readonly string[] {
    if (limits === this.settings.limits) return this.#policyItems!
    let items = this.#itemsByLimits.get(limits)
    if (items === undefined) {
      items = policyItems(limits)
      this.#itemsByLimits.set(limits, items)
    }
    return items
  }

  readonly #itemsByLimits = new WeakMap<readonly CheckedLimit[], readonly string[]>()

  /** Names an identifier function gave each response's limit. */
  readonly #names = new WeakMap<Response, string>()

  #named = false

  /** The name `identifier` answered for this response's one limit. */
  name(response: Response, name: string): void {
    this.#named = true
    this.#names.set(response, name)
  }

  #pk(key: string): string {
    let pk = this.#partitionKeys.get(key)
    if (pk === undefined) {
      pk = partitionKey(key)
      // Full: start afresh. (Evicting the oldest one by one would make V8 skip ever more deleted
      // entries at the head of the Map: quadratic with many distinct clients.)
      if (this.#partitionKeys.size >= MAX_CACHED_PARTITION_KEYS) this.#partitionKeys.clear()
      this.#partitionKeys.set(key, pk)
    }
    return pk
  }
}

/** setHeader, or append when another limiter on the route has set the header already. */
function add(response: Response, name: string, value: string): void {
  const existing = response.getHeader(name)
  if (existing === undefined) response.setHeader(name, value)
  else response.setHeader(name, [...(Array.isArray(existing) ? existing : [String(existing)]), value])
}
