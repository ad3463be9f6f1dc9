// A policy's limits and a request's cost: their validation, and the decision every algorithm gives.
import { ERROR_CODES, RateLimitError } from '../errors.js'
import { shownValue } from '../observability/redact.js'
import type { MaxFunction } from './plans.js'

/** The algorithms a policy can count with (docs/algorithms.md). */
export const ALGORITHMS = ['fixed-window', 'sliding-window', 'token-bucket'] as const
export type Algorithm = (typeof ALGORITHMS)[number]

/** One limit of a policy: at most `max` units per `windowMs`. */
export interface Limit {
  /** Shown in RateLimit and RateLimit-Policy; the limit's place in the list when not given. */
  readonly name?: string
  /** Units per window: a positive safe integer, or a function of the request that answers one. */
  readonly max: number | MaxFunction
  readonly windowMs: number
}

/** A limit as the algorithms use it: named, and checked. */
export interface CheckedLimit {
  readonly name: string
  readonly max: number
  readonly windowMs: number
}

/** Where a limit stands after a decision. */
export interface LimitState {
  readonly name: string
  readonly max: number
  readonly windowMs: number
  /** Units a request could still spend now, after this decision. */
  readonly remaining: number
  /** ms until the limit is whole again (everything spent has been given back). */
  readonly resetMs: number
}

/** One decision on a request of some cost, against every limit of its policy at once. */
export interface PolicyDecision {
  /** Every limit allowed it, and each spent its cost; otherwise none spent anything. */
  readonly allowed: boolean
  /** ms until a request of the same cost could pass: 0 when allowed. */
  readonly retryMs: number
  /**
   * ms until a request of cost 1 could pass: during it no request of this client passes, whatever
   * its cost, which is how long the blocked-clients cache may answer for it. 0 when one could now.
   */
  readonly blockedMs: number
  readonly limits: readonly LimitState[]
}

/** A limit name: what a RateLimit header's quoted string can carry with no escaping. */
const NAME = /^[A-Za-z0-9_.-]{1,32}$/

/**
 * The limits, checked and named, or a RateLimitError naming `option` and the bad entry. The
 * algorithms count in unit·ms (max × windowMs, and up to twice that before a comparison), which
 * must stay exact in a double, in JavaScript and in Redis's Lua alike.
 */
export function checkLimits(limits: unknown, option = 'limits'): readonly CheckedLimit[] {
  const list: readonly unknown[] = Array.isArray(limits) ? limits : []
  if (list.length === 0 || list.length > MAX_LIMITS) {
    throw invalid(option, `${option} must be a list of 1 to ${MAX_LIMITS} limits, got ${shownList(limits)}`)
  }
  const names = new Set<string>()
  return list.map((limit, index) => {
    const at = `${option}[${index}]`
    if (typeof limit !== 'object' || limit === null || Array.isArray(limit)) {
      throw invalid(at, `${at} must be { max, windowMs }, got ${shownValue(limit)}`)
    }
    const { name = String(index + 1), max, windowMs } = limit as Record<string, unknown>
    if (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 1) {
      throw invalid(`${at}.max`, `${at}.max must be a positive integer, got ${shownValue(max)}`)
    }
    if (
      typeof windowMs !== 'number' ||
      !Number.isSafeInteger(windowMs) ||
      windowMs < 1 ||
      windowMs > MAX_LIMIT_WINDOW_MS
    ) {
      throw invalid(
        `${at}.windowMs`,
        `${at}.windowMs must be an integer of ms from 1 to ${MAX_LIMIT_WINDOW_MS}, got ${shownValue(windowMs)}`,
      )
    }
    if (!Number.isSafeInteger(2 * max * windowMs)) {
      throw invalid(
        at,
        `${at}: 2 × max × windowMs must be at most ${Number.MAX_SAFE_INTEGER}, got 2 × ${max} × ${windowMs}`,
      )
    }
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw invalid(`${at}.name`, `${at}.name must be 1-32 of A-Z a-z 0-9 _ . -, got ${shownValue(name)}`)
    }
    if (names.has(name))
      throw invalid(`${at}.name`, `${at}.name ${shownValue(name)} is already the name of another limit`)
    names.add(name)
    return Object.freeze({ name, max, windowMs })
  })
}

/** The longest window of a limit: the longest a Node timer can wait (about 24.8 days), as for windowMs. */
export const MAX_LIMIT_WINDOW_MS = 2 ** 31 - 1

const shownList = (value: unknown): string => (Array.isArray(value) ? `${value.length} entries` : shownValue(value))

/** More limits than this in one policy is a mistake, and each costs the script a little. */
export const MAX_LIMITS = 8

/** The cost, if every limit could ever allow it; otherwise a RateLimitError with INVALID_COST. */
export function checkCost(cost: unknown, limits: readonly CheckedLimit[]): number {
  if (typeof cost !== 'number' || !Number.isSafeInteger(cost) || cost < 1) {
    throw new RateLimitError(
      ERROR_CODES.INVALID_COST,
      `cost must be a positive safe integer, got ${shownValue(cost)}`,
      {
        option: 'cost',
      },
    )
  }
  const smallest = limits.reduce((low, limit) => (limit.max < low.max ? limit : low))
  if (cost > smallest.max) {
    throw new RateLimitError(
      ERROR_CODES.INVALID_COST,
      `cost ${cost} is more than limit "${smallest.name}" can ever allow (max ${smallest.max})`,
      { option: 'cost' },
    )
  }
  return cost
}

const invalid = (option: string, message: string): RateLimitError =>
  new RateLimitError(ERROR_CODES.INVALID_OPTION, message, { option })
