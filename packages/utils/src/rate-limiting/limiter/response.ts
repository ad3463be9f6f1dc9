// The 429 answer (or, in shadow mode, the request let through), and the same 429 for a known-blocked client.
import { STATUS_CODES } from 'node:http'

import type { NextFunction, Request, Response } from 'express'
import type { Options, RateLimitInfo } from 'express-rate-limit'

import type { ExceededHandlerFunction, MessageFunction } from '../config/types.js'
import type { AuditLog } from '../observability/audit.js'
import type { CheckedLimit, LimitState } from '../policies/limits.js'
import type { BlockedKey, BlockedKeys } from './blocked-keys.js'
import type { RateLimitHeaders } from './headers.js'
import type { LimiterStats, StoreKind } from '../observability/stats.js'

const JSON_TYPE = 'application/json; charset=utf-8'
const PROBLEM_JSON = 'application/problem+json'

/** The code in every 429 body, for clients to branch on. */
export const RATE_LIMIT_EXCEEDED = 'RATE_LIMIT_EXCEEDED'

/**
 * The problem type of a 429 answered as RFC 9457 problem details: where the status is defined
 * (RFC 6585, section 4), so that the type says no more than the status does.
 */
export const PROBLEM_TYPE = 'https://www.rfc-editor.org/rfc/rfc6585#section-4'

/** One limit a refused request met, as a problem-details body lists it. */
export interface ExceededLimit {
  readonly name: string
  readonly limit: number
  readonly windowMs: number
  readonly remaining: number
}

export interface ExceededOptions {
  /** The limiter's name: the one limit of a limiter without a policy is called so. */
  readonly name: string
  /** The body: a string is our body's `error`, an object the body itself, a function answers either. */
  readonly message: string | Readonly<Record<string, unknown>> | MessageFunction
  /** The status of a refused request. */
  readonly statusCode: number
  /** Answers in place of our body, once the headers are written (express-rate-limit's `handler`). */
  readonly handler?: ExceededHandlerFunction | undefined
  /** Answer as RFC 9457 problem details (`application/problem+json`) instead of our JSON body. */
  readonly problemDetails: boolean
  /** A policy's limits; undefined for the default's one window. */
  readonly limits?: readonly CheckedLimit[] | undefined
  /** Let the request through instead of answering 429 (it is still counted, reported and logged). */
  readonly shadow: boolean
  readonly stats: LimiterStats
  readonly audit: AuditLog | undefined
  readonly store: StoreKind
  /** Where to remember the client as blocked until its reset; undefined to not remember it. */
  readonly blocked: BlockedKeys | undefined
  readonly headers: RateLimitHeaders
  /** Also sets the decision on `request[property]` (requestPropertyName). */
  readonly property?: string | undefined
}

/** The handler of a request over the limit, as express-rate-limit calls it. */
export type ExceededHandler = (request: Request, response: Response, next: NextFunction, options: Options) => void

/**
 * An express-rate-limit handler for a request over the limit: counts it, writes the audit line,
 * remembers the client as blocked, then answers `{ success, error, code, retryAfter }` with 429
 * (or lets it through in shadow mode).
 */
export function rateLimitExceededHandler({
  name,
  message,
  statusCode,
  handler,
  problemDetails,
  limits,
  shadow,
  stats,
  audit,
  store,
  blocked,
  headers,
  property,
}: ExceededOptions): ExceededHandler {
  // A RateLimitExceededBody; everything but retryAfter is the same in every answer, so written once.
  const bodyStart = (error: string) =>
    `{"success":false,"error":${JSON.stringify(error)},"code":"${RATE_LIMIT_EXCEEDED}","retryAfter":`
  const fixedStart = typeof message === 'string' ? bodyStart(message) : undefined
  const send = (response: Response, body: string, contentType: string) => {
    response.statusCode = statusCode
    response.setHeader('Content-Type', contentType)
    response.setHeader('Content-Length', Buffer.byteLength(body))
    response.end(body)
  }
  /** Our JSON body with `error`, or an object message as the body. */
  const sendMessage = (response: Response, answer: unknown, retryAfter: number) => {
    if (typeof answer === 'string') return send(response, `${bodyStart(answer)}${retryAfter}}`, JSON_TYPE)
    send(response, JSON.stringify(answer), JSON_TYPE)
  }
  return (request, response, next, options) => {
    const info = (request as Request & { rateLimit?: RateLimitInfo }).rateLimit
    if (info === undefined) return next(new Error('express-rate-limit called the handler without req.rateLimit'))
    if (property !== undefined) (request as unknown as Record<string, unknown>)[property] = info
    const now = Date.now()
    if (audit !== undefined) audit.exceeded(request, info, shadow, store)
    headers.write(response, info, now)
    if (shadow) {
      // The RateLimit headers show the client it is out of budget; Retry-After belongs to a 429.
      stats.shadowRejections++
      return next()
    }
    stats.rejections++
    if (blocked !== undefined) {
      // A policy's client is blocked only while no request of it could pass, whatever its cost.
      const until = info instanceof PolicyInfo ? info.blockedUntil : info.resetTime?.getTime()
      if (until !== undefined) {
        if (info instanceof PolicyInfo) {
          blocked.block(info.key, until, info.limit, info.name, info.policy, info.policyLimits())
        } else blocked.block(info.key, until, info.limit)
      }
    }
    // The body repeats Retry-After.
    const retryAfter = headers.retryAfter(response, info, now)
    if (handler !== undefined) {
      return handler(request, response, next, { statusCode, windowMs: options.windowMs, message })
    }
    // Written directly rather than through res.json: a 429 needs no ETag, and hashing the body for
    // one would cost every rejected request.
    if (fixedStart !== undefined) {
      if (!problemDetails) return send(response, `${fixedStart}${retryAfter}}`, JSON_TYPE)
      const limitsMet = exceededLimits(info, name, options.windowMs, limits)
      return send(response, problemBody(statusCode, message as string, retryAfter, limitsMet), PROBLEM_JSON)
    }
    if (typeof message !== 'function') return sendMessage(response, message, retryAfter)
    let answer: ReturnType<MessageFunction>
    try {
      answer = message(request, response)
    } catch (error) {
      return next(error)
    }
    if (!(answer instanceof Promise)) return sendMessage(response, answer, retryAfter)
    answer.then((resolved) => sendMessage(response, resolved, retryAfter), next)
  }
}

/** An RFC 9457 problem-details body of a refused request, with our code and retryAfter beside. */
function problemBody(status: number, detail: string, retryAfter: number, limits: readonly ExceededLimit[]): string {
  return JSON.stringify({
    type: PROBLEM_TYPE,
    title: STATUS_CODES[status] ?? 'Too Many Requests',
    status,
    detail,
    code: RATE_LIMIT_EXCEEDED,
    retryAfter,
    limits,
  })
}

/**
 * The limits a refused request met: those of a policy with less left than it cost, the one that
 * blocked a client answered from memory, or the default's one window.
 */
function exceededLimits(
  info: RateLimitInfo,
  name: string,
  windowMs: number,
  limits: readonly CheckedLimit[] | undefined,
): ExceededLimit[] {
  if (info instanceof PolicyInfo) {
    return info.limits
      .filter((limit) => limit.remaining < info.cost)
      .map((limit) => ({ name: limit.name, limit: limit.max, windowMs: limit.windowMs, remaining: limit.remaining }))
  }
  const blockedBy = (info as { name?: string }).name
  const decidedBy = (info as { policyLimits?: () => readonly CheckedLimit[] | undefined }).policyLimits?.() ?? limits
  const policyLimit = blockedBy === undefined ? undefined : decidedBy?.find((limit) => limit.name === blockedBy)
  if (policyLimit !== undefined) {
    return [{ name: policyLimit.name, limit: policyLimit.max, windowMs: policyLimit.windowMs, remaining: 0 }]
  }
  return [{ name, limit: info.limit, windowMs, remaining: info.remaining }]
}

/**
 * `req.rateLimit` as express-rate-limit builds it. Its deprecated `current` (the same as `used`)
 * is a getter here: read the same, and left out of keys and JSON as there, without redefining a
 * property on every request.
 */
export class LimitInfo implements RateLimitInfo {
  constructor(
    readonly limit: number,
    readonly used: number,
    readonly remaining: number,
    readonly resetTime: Date | undefined,
    readonly key: string,
  ) {}

  get current(): number {
    return this.used
  }
}

/**
 * `req.rateLimit` of a policy (limiter/policy-limiter.ts): express-rate-limit's fields for the limit
 * closest to refusing, that limit's name, and every limit's state. `resetTime` is when the request
 * could pass, for a refused one, and when the limit is whole again, for an allowed one.
 */
export class PolicyInfo extends LimitInfo {
  constructor(
    limit: number,
    used: number,
    remaining: number,
    resetTime: Date,
    key: string,
    /** The limit these fields tell of. */
    readonly name: string,
    /** Every limit of the policy, in its order. */
    readonly limits: readonly LimitState[],
    /** Until when (ms since the epoch) no request of this client can pass; undefined if one could now. */
    readonly blockedUntil: number | undefined,
    /** What the request cost of every limit. */
    readonly cost: number,
    /** The policy that applied (`policies`); undefined for the limiter's own limits. */
    readonly policy: string | undefined,
    checked: readonly CheckedLimit[],
  ) {
    super(limit, used, remaining, resetTime, key)
    this.#checked = checked
  }

  readonly #checked: readonly CheckedLimit[]

  /** The limits the request was decided by, as one list object (the headers cache by it). */
  policyLimits(): readonly CheckedLimit[] {
    return this.#checked
  }
}

/** What express-rate-limit passes its handler; ours reads statusCode only. */
export const handlerOptions = (windowMs: number): Options => ({ statusCode: 429, windowMs }) as Options

/** `req.rateLimit` of a client a policy has blocked, answered from memory: the limit that refused it. */
class BlockedPolicyInfo extends LimitInfo {
  constructor(
    limit: number,
    used: number,
    remaining: number,
    resetTime: Date,
    key: string,
    readonly name: string,
    readonly policy: string | undefined,
    checked: readonly CheckedLimit[] | undefined,
  ) {
    super(limit, used, remaining, resetTime, key)
    this.#checked = checked
  }

  readonly #checked: readonly CheckedLimit[] | undefined

  /** The limits of the decision that blocked the client. */
  policyLimits(): readonly CheckedLimit[] | undefined {
    return this.#checked
  }
}

const noNext: NextFunction = () => undefined

/**
 * Answers a client known to be over its limit without asking the store: `req.rateLimit` as the
 * store would have left it (used: one over), then the same handler as any 429 (headers and body).
 */
export function blockedAnswer(exceeded: ExceededHandler, windowMs: number) {
  const options = handlerOptions(windowMs)
  return (request: Request, response: Response, block: BlockedKey, key: string): void => {
    const info =
      block.name === undefined
        ? new LimitInfo(block.limit, block.limit + 1, 0, new Date(block.resetMs), key)
        : new BlockedPolicyInfo(
            block.limit,
            block.limit + 1,
            0,
            new Date(block.resetMs),
            key,
            block.name,
            block.policy,
            block.limits,
          )
    ;(request as Request & { rateLimit?: RateLimitInfo }).rateLimit = info
    exceeded(request, response, noNext, options)
  }
}
