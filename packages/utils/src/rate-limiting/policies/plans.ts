// Which limits decide a request: the limiter's own, or those of the named policy a function picks,
// with any max given as a function of the request answered and checked (docs/rate-limiting.md,
// Limits that depend on the request).
import type { Request } from 'express'

import { ERROR_CODES, RateLimitError } from '../errors.js'
import { shownValue } from '../observability/redact.js'
import { checkLimits, type CheckedLimit } from './limits.js'

/** A limit's max from the request: a positive safe integer, at once or as a promise. */
export type MaxFunction = (request: Request) => number | Promise<number>

/** A limit whose max may depend on the request. */
export interface LimitTemplate {
  readonly name: string
  readonly max: number | MaxFunction
  readonly windowMs: number
}

/**
 * Checks limits whose max may be a function, as checkLimits checks numbers: a function's answers
 * are checked on each request instead (LimitSet.resolve).
 */
export function checkTemplates(limits: unknown, option: string): readonly LimitTemplate[] {
  const list: readonly unknown[] = Array.isArray(limits) ? limits : []
  const maxes = list.map((limit) =>
    typeof limit === 'object' && limit !== null ? (limit as { max?: unknown }).max : undefined,
  )
  // A function stands in as 1 for the checks of the rest; its answer is checked as it comes.
  const standIns = Array.isArray(limits)
    ? list.map((limit, i) => (typeof maxes[i] === 'function' ? { ...(limit as object), max: 1 } : limit))
    : limits
  let checked: readonly CheckedLimit[]
  try {
    checked = checkLimits(standIns, option)
  } catch (error) {
    // Here a max may also be a function: the message says so.
    if (error instanceof RateLimitError && error.option?.endsWith('.max')) {
      throw new RateLimitError(
        error.code,
        error.message.replace(
          'must be a positive integer',
          'must be a positive integer, or a function (request) => number',
        ),
        { option: error.option },
      )
    }
    throw error
  }
  return checked.map((limit, i) =>
    typeof maxes[i] === 'function' ? Object.freeze({ ...limit, max: maxes[i] as MaxFunction }) : limit,
  )
}

/** Checked lists remembered per set of limits with a max function, one for each tuple of answers. */
export const MAX_CACHED_LIMIT_SETS = 1000

/**
 * One list of limits, under one policy (or none): its checked limits at once when every max is a
 * number, else from the request's answers, each answer checked.
 */
export class LimitSet {
  /** The checked limits, when no max depends on the request. */
  readonly constant: readonly CheckedLimit[] | undefined
  readonly #checked = new Map<string, readonly CheckedLimit[]>()

  constructor(
    /** The policy's name; undefined for the limiter's own limits. */
    readonly policy: string | undefined,
    readonly templates: readonly LimitTemplate[],
    /** Where the limits were given, for the errors: `limitsRead`, `policies.pro.maxRead`. */
    private readonly option: string,
  ) {
    this.constant = templates.every((limit) => typeof limit.max === 'number')
      ? (templates as readonly CheckedLimit[])
      : undefined
    this.chosen = this.constant === undefined ? undefined : Object.freeze({ policy, limits: this.constant })
  }

  /** What a request under this set is decided by, when no max depends on the request. */
  readonly chosen: Chosen | undefined

  /**
   * The limits for `request`, for a set with a max function (a constant set's are `chosen`): the
   * same list object for the same answers, so callers may cache by it.
   */
  resolve(request: Request): readonly CheckedLimit[] | Promise<readonly CheckedLimit[]> {
    const answers: (number | Promise<number>)[] = this.templates.map((limit) =>
      typeof limit.max === 'number' ? limit.max : limit.max(request),
    )
    if (answers.some((answer) => answer instanceof Promise)) {
      return Promise.all(answers.map(async (answer) => answer)).then((resolved) => this.#listFor(resolved))
    }
    return this.#listFor(answers as number[])
  }

  #listFor(maxes: readonly number[]): readonly CheckedLimit[] {
    const id = maxes.join(',')
    let list = this.#checked.get(id)
    if (list !== undefined) return list
    this.templates.forEach((limit, i) => {
      if (typeof limit.max === 'function') this.#checkAnswer(maxes[i], limit.windowMs, i)
    })
    list = Object.freeze(this.templates.map((limit, i) => Object.freeze({ ...limit, max: maxes[i]! })))
    // Full: start afresh (a handful of plans fill it with a handful of lists).
    if (this.#checked.size >= MAX_CACHED_LIMIT_SETS) this.#checked.clear()
    this.#checked.set(id, list)
    return list
  }

  #checkAnswer(max: unknown, windowMs: number, index: number): void {
    const at =
      this.templates.length === 1 && this.option.startsWith('max') ? this.option : `${this.option}[${index}].max`
    if (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 1 || !Number.isSafeInteger(2 * max * windowMs)) {
      throw new RateLimitError(
        ERROR_CODES.INVALID_LIMIT,
        `${at} (a function of the request) must answer a positive safe integer with 2 × max × windowMs at most ${Number.MAX_SAFE_INTEGER}, got ${shownValue(max)}`,
        { option: at },
      )
    }
  }
}

/** What a request is decided by: the policy that applied (undefined for the limiter's own) and its limits. */
export interface Chosen {
  readonly policy: string | undefined
  readonly limits: readonly CheckedLimit[]
}

/** Picks a request's policy by name: undefined for the limiter's own limits. */
export type PolicySelector = (request: Request) => string | undefined | Promise<string | undefined>

/**
 * A limiter's limits: its own, and those of each named policy, one of which `select` picks for a
 * request. With no policies and no max function it is one constant list.
 */
export class PolicyPlan {
  readonly #sets: ReadonlyMap<string, LimitSet>

  constructor(
    readonly own: LimitSet,
    policies: ReadonlyMap<string, LimitSet> = new Map(),
    private readonly select?: PolicySelector,
  ) {
    this.#sets = policies
  }

  /** Every list of limits it may decide by: the limiter's own first. */
  get sets(): readonly LimitSet[] {
    return [this.own, ...this.#sets.values()]
  }

  /** The one list of limits, when nothing depends on the request. */
  get constant(): readonly CheckedLimit[] | undefined {
    return this.select === undefined ? this.own.constant : undefined
  }

  /** The longest window of any limit it may decide by. */
  get longestWindowMs(): number {
    return Math.max(...this.sets.flatMap((set) => set.templates.map((limit) => limit.windowMs)))
  }

  /** The request's policy and limits. Throws (or rejects) a RateLimitError for an unknown policy or a bad max. */
  choose(request: Request): Chosen | Promise<Chosen> {
    if (this.select === undefined) return this.#chosen(this.own, request)
    const name = this.select(request)
    if (name instanceof Promise) return name.then((resolved) => this.#chosen(this.#setNamed(resolved), request))
    return this.#chosen(this.#setNamed(name), request)
  }

  #setNamed(name: unknown): LimitSet {
    if (name === undefined) return this.own
    const set = typeof name === 'string' ? this.#sets.get(name) : undefined
    if (set === undefined) {
      throw new RateLimitError(
        ERROR_CODES.INVALID_POLICY,
        `policy must answer one of ${[...this.#sets.keys()].join(', ')} (or undefined for the limiter's own limits), got ${shownValue(name)}`,
        { option: 'policy' },
      )
    }
    return set
  }

  #chosen(set: LimitSet, request: Request): Chosen | Promise<Chosen> {
    if (set.chosen !== undefined) return set.chosen
    const limits = set.resolve(request)
    if (limits instanceof Promise) return limits.then((resolved) => ({ policy: set.policy, limits: resolved }))
    return { policy: set.policy, limits }
  }
}
