// A limiter that decides by a policy: an algorithm, several limits and a cost (policies/), in
// memory or in Redis, with the same front, answers, fallback and blocked-clients cache.
import type { NextFunction, Request, Response } from 'express'
import type { ClientRateLimitInfo } from 'express-rate-limit'

import { budgetOf, maxFor, type ResolvedRateLimitConfig } from '../config/options.js'
import type { CostFunction, LimiterName, PolicyLimits, RateLimitStoreStatus } from '../config/types.js'
import { ERROR_CODES, RateLimitError } from '../errors.js'
import type { PolicyAlgorithm } from '../policies/algorithms.js'
import {
  checkCost,
  checkLimits,
  type CheckedLimit,
  type Limit,
  type LimitState,
  type PolicyDecision,
} from '../policies/limits.js'
import { checkTemplates, LimitSet, PolicyPlan, type LimitTemplate, type MaxFunction } from '../policies/plans.js'
import { MemoryPolicyStore } from '../policies/memory-policy-store.js'
import { RedisPolicyStore, type SendCommand } from '../policies/redis-policy-store.js'
import type { RedisBackend } from '../redis/backend.js'
import { degradedHandler, fallbackMax, unlessUnavailable } from '../resilience/degraded.js'
import { batchedCalls, type BatchedSend, type WriteWatch } from '../stores/batched-calls.js'
import { GuardedPolicyStore } from '../stores/guarded-policy-store.js'
import { clusterOf } from '../stores/redis-store.js'
import { Unanswered } from '../stores/round-trips.js'
import type { Decide } from './decision.js'
import type { Chosen } from '../policies/plans.js'
import { handlerOptions, PolicyInfo, type ExceededHandler } from './response.js'
import {
  exceededHandler,
  type LimiterControls,
  type LimiterCore,
  type LimiterParts,
  type RateLimitClientState,
  type RedisLimiterOptions,
} from './variants.js'

/** True when the `type` limiter needs a policy: another algorithm, several limits, a cost, policies or a max function. */
export function usesPolicy(config: ResolvedRateLimitConfig, type: LimiterName): boolean {
  const budget = budgetOf(type)
  return (
    config.algorithm !== 'fixed-window' ||
    config[LIST_OPTION[budget]] !== undefined ||
    config.limits !== undefined ||
    config.cost !== undefined ||
    config.policies !== undefined ||
    typeof maxFor(config, type) === 'function'
  )
}

/** Each budget's own list of limits, and its max. */
const LIST_OPTION = { read: 'limitsRead', write: 'limitsWrite', custom: 'limitsCustom' } as const
const MAX_OPTION = { read: 'maxRead', write: 'maxWrite', custom: 'maxCustom' } as const

/** The options that give a limiter its limits: the set's, or a policy's over them. */
type LimitOptions = Pick<
  ResolvedRateLimitConfig,
  'windowMs' | 'limits' | (typeof LIST_OPTION)[keyof typeof LIST_OPTION]
> & {
  readonly [K in (typeof MAX_OPTION)[keyof typeof MAX_OPTION]]: number | MaxFunction
}

/**
 * The limits `options` give the `type` limiter, unchecked, and the option they came from: its own
 * list, else the shared one, else its max per windowMs, named by the limiter's name.
 */
function givenLimits(options: LimitOptions, type: LimiterName): { limits: readonly Limit[]; option: string } {
  const budget = budgetOf(type)
  // An unnamed limit is named by its limiter and place, so two limiters' headers never share a name.
  const named = (limits: readonly Limit[]) => limits.map((limit, index) => ({ name: `${type}.${index + 1}`, ...limit }))
  const own = options[LIST_OPTION[budget]]
  if (own !== undefined) return { limits: named(own), option: LIST_OPTION[budget] }
  if (options.limits !== undefined) return { limits: named(options.limits), option: 'limits' }
  return {
    limits: [{ name: type, max: options[MAX_OPTION[budget]], windowMs: options.windowMs }],
    option: MAX_OPTION[budget],
  }
}

/** The limits of the `type` limiter (its own, without a policy): those given, or its max per windowMs. */
export function limitsFor(config: ResolvedRateLimitConfig, type: LimiterName): readonly LimitTemplate[] {
  const { limits, option } = givenLimits(config, type)
  return checkTemplates(limits, option)
}

/**
 * The limits policy `name` gives the `type` limiter: where it gives its budget a list, a shared
 * list or a max, those (over its windowMs, else the set's); otherwise the set's own, over its
 * windowMs if it has one. Each name is headed by the policy's: `pro.read`, `pro.burst`.
 */
function policyLimitsFor(
  config: ResolvedRateLimitConfig,
  type: LimiterName,
  name: string,
  policy: PolicyLimits,
): LimitSet {
  const budget = budgetOf(type)
  const windowMs = policy.windowMs ?? config.windowMs
  const givesBudget =
    policy[LIST_OPTION[budget]] !== undefined || policy.limits !== undefined || policy[MAX_OPTION[budget]] !== undefined
  const options: LimitOptions = givesBudget
    ? {
        windowMs,
        limits: policy.limits,
        limitsRead: policy.limitsRead,
        limitsWrite: policy.limitsWrite,
        limitsCustom: policy.limitsCustom,
        maxRead: policy.maxRead ?? config.maxRead,
        maxWrite: policy.maxWrite ?? config.maxWrite,
        maxCustom: policy.maxCustom ?? config.maxCustom,
      }
    : { ...config, windowMs }
  const { limits, option } = givenLimits(options, type)
  const at = givesBudget ? `policies.${name}.${option}` : option
  for (const limit of limits) {
    const shown = `${name}.${String(limit.name)}`
    if (shown.length > 32) {
      throw new RateLimitError(
        ERROR_CODES.INVALID_OPTION,
        `policies.${name}: the RateLimit headers name its limits "${shown}", longer than 32 characters; shorten the policy's or the limit's name`,
        { option: `policies.${name}` },
      )
    }
  }
  return new LimitSet(
    name,
    checkTemplates(
      limits.map((limit) => ({ ...limit, name: `${name}.${limit.name}` })),
      at,
    ),
    at,
  )
}

/** The `type` limiter's plan: its own limits, and each policy's, with the function that picks one. */
export function planFor(config: ResolvedRateLimitConfig, type: LimiterName): PolicyPlan {
  const ownOption = givenLimits(config, type).option
  const own = new LimitSet(undefined, limitsFor(config, type), ownOption)
  if (config.policies === undefined) return new PolicyPlan(own)
  const sets = new Map(
    Object.entries(config.policies).map(([name, policy]) => [name, policyLimitsFor(config, type, name, policy)]),
  )
  return new PolicyPlan(own, sets, config.policy)
}

/** Checks the cost option, when it is a number, against the limits: an option error at creation. */
export function checkCostOption(cost: number | CostFunction | undefined, limits: readonly CheckedLimit[]): void {
  if (typeof cost !== 'number') return
  try {
    checkCost(cost, limits)
  } catch (error) {
    throw new RateLimitError(ERROR_CODES.INVALID_OPTION, (error as Error).message, { option: 'cost' })
  }
}

/** What a request costs of `limits`: the option's number, or its function's answer, checked each time. */
type CostOf = (request: Request, limits: readonly CheckedLimit[]) => number | Promise<number>

function costOf(cost: number | CostFunction | undefined, plan?: PolicyPlan): CostOf {
  if (cost === undefined) return () => 1
  if (typeof cost === 'number') {
    // Every list of a plan with no max function was checked against it when the limiter was made.
    if (plan?.sets.every((set) => set.constant !== undefined)) return () => cost
    // Otherwise checked once per list of limits.
    const fits = new WeakSet<readonly CheckedLimit[]>()
    return (_request, limits) => {
      if (fits.has(limits)) return cost
      checkCost(cost, limits)
      fits.add(limits)
      return cost
    }
  }
  return (request, limits) => {
    const answer = cost(request)
    return answer instanceof Promise ? answer.then((value) => checkCost(value, limits)) : checkCost(answer, limits)
  }
}

/** The limit `req.rateLimit` tells of: among those that refused, else among all, the one with least left. */
function closest(decision: PolicyDecision, cost: number): LimitState {
  let best: LimitState | undefined
  for (const limit of decision.limits) {
    if (!decision.allowed && limit.remaining >= cost) continue
    if (best === undefined || limit.remaining * best.max < best.remaining * limit.max) best = limit
  }
  return best ?? decision.limits[0]!
}

/** Spends `cost` of `limits` for `key`, and decides: the store's consume. */
type Consume = (key: string, cost: number, limits: readonly CheckedLimit[]) => PolicyDecision | Promise<PolicyDecision>

/**
 * A policy's decision on requests: the request's limits (its policy's, with any max function
 * answered), its cost of them, then `consume`; then req.rateLimit, and next() or the 429 handler.
 * Every step may be sync or async; an error at any of them goes to next(error).
 */
function policyDecide(
  plan: PolicyPlan,
  consume: Consume,
  cost: CostOf,
  exceeded: ExceededHandler,
  windowMs: number,
): Decide {
  const options = handlerOptions(windowMs)
  const decided = (
    request: Request,
    response: Response,
    next: NextFunction,
    key: string,
    chosen: Chosen,
    units: number,
    decision: PolicyDecision,
  ) => {
    const limit = closest(decision, units)
    const now = Date.now()
    const info = new PolicyInfo(
      limit.max,
      limit.max - limit.remaining,
      limit.remaining,
      new Date(now + (decision.allowed ? limit.resetMs : decision.retryMs)),
      key,
      limit.name,
      decision.limits,
      decision.blockedMs > 0 ? now + decision.blockedMs : undefined,
      units,
      chosen.policy,
      chosen.limits,
    )
    ;(request as Request & { rateLimit?: PolicyInfo }).rateLimit = info
    if (!decision.allowed) return exceeded(request, response, next, options)
    next()
  }
  const withCost = (
    request: Request,
    response: Response,
    next: NextFunction,
    key: string,
    chosen: Chosen,
    units: number,
  ) => {
    let decision: PolicyDecision | Promise<PolicyDecision>
    try {
      decision = consume(key, units, chosen.limits)
    } catch (error) {
      return next(error)
    }
    if (!(decision instanceof Promise)) return decided(request, response, next, key, chosen, units, decision)
    decision.then((answer) => decided(request, response, next, key, chosen, units, answer)).catch(next)
  }
  const withLimits = (request: Request, response: Response, next: NextFunction, key: string, chosen: Chosen) => {
    let units: number | Promise<number>
    try {
      units = cost(request, chosen.limits)
    } catch (error) {
      return next(error)
    }
    if (typeof units === 'number') return withCost(request, response, next, key, chosen, units)
    units.then((resolved) => withCost(request, response, next, key, chosen, resolved), next)
  }
  if (plan.constant !== undefined) {
    const chosen = plan.own.chosen!
    return (request, response, next, key) => withLimits(request, response, next, key, chosen)
  }
  return (request, response, next, key) => {
    let chosen: Chosen | Promise<Chosen>
    try {
      chosen = plan.choose(request)
    } catch (error) {
      return next(error)
    }
    if (!(chosen instanceof Promise)) return withLimits(request, response, next, key, chosen)
    chosen.then((resolved) => withLimits(request, response, next, key, resolved), next)
  }
}

/**
 * express-rate-limit's view of a client of a policy: the hits and reset of its closest limit, by
 * the limits getKey reports against (PolicySettings.reported).
 */
const clientInfo = (decision: PolicyDecision): ClientRateLimitInfo => {
  const limit = closest(decision, 1)
  return { totalHits: limit.max - limit.remaining, resetTime: new Date(Date.now() + limit.resetMs) }
}

/** How long loading a policy's script may take when the limiter is made. */
const SCRIPT_LOAD_TIMEOUT_MS = 1000

/** What a policy limiter is built from, beyond its parts. */
export interface PolicySettings {
  readonly algorithm: PolicyAlgorithm
  readonly plan: PolicyPlan
  readonly cost: number | CostFunction | undefined
}

/**
 * The limits getKey reports against: the limiter's own, or, where a max of them is a function, the
 * limits of the last request it decided (before any, such a max counts as 1).
 */
function reportedLimits(plan: PolicyPlan) {
  const own = plan.own.constant
  let last: readonly CheckedLimit[] | undefined
  const before =
    own ??
    checkLimits(plan.own.templates.map((limit) => ({ ...limit, max: typeof limit.max === 'number' ? limit.max : 1 })))
  return {
    seen(limits: readonly CheckedLimit[]): void {
      if (own === undefined && plan.own.templates.length === limits.length) last = limits
    },
    get: (): readonly CheckedLimit[] => own ?? last ?? before,
  }
}

/** A policy limiter's store, as the operator's controls use it. */
interface PolicyControlStore {
  get(key: string, limits: readonly CheckedLimit[]): PolicyDecision | Promise<PolicyDecision>
  adjust(key: string, cost: number, limits: readonly CheckedLimit[]): PolicyDecision | Promise<PolicyDecision>
  block(key: string, ms: number): number | Promise<number>
}

/**
 * The operator's controls of a policy limiter: under the limiter's own limits, or a named policy's
 * (where a max is a function, the limits getKey reports against).
 */
function policyControls(
  parts: LimiterParts,
  plan: PolicyPlan,
  reported: { get(): readonly CheckedLimit[] },
  store: PolicyControlStore,
): LimiterControls {
  const limitsOf = (policy: string | undefined): readonly CheckedLimit[] => {
    if (policy === undefined) return reported.get()
    const set = plan.sets.find((candidate) => candidate.policy === policy)
    if (set === undefined) {
      const known = plan.sets.flatMap((candidate) => (candidate.policy === undefined ? [] : [candidate.policy]))
      throw new RateLimitError(
        ERROR_CODES.INVALID_ARGUMENT,
        known.length === 0
          ? `policy: this limiter has no policies, got ${JSON.stringify(policy)}`
          : `policy must be one of ${known.join(', ')}, got ${JSON.stringify(policy)}`,
        { option: 'policy' },
      )
    }
    return (
      set.constant ??
      checkLimits(set.templates.map((limit) => ({ ...limit, max: typeof limit.max === 'number' ? limit.max : 1 })))
    )
  }
  const stateOf = (key: string, policy: string | undefined, decision: PolicyDecision): RateLimitClientState => ({
    key,
    policy,
    retryAfterMs: decision.blockedMs,
    limits: decision.limits,
  })
  return {
    async inspect(key, policy) {
      return stateOf(key, policy, await store.get(key, limitsOf(policy)))
    },
    async adjust(key, n, policy) {
      const limits = limitsOf(policy)
      await store.adjust(key, n, limits)
      if (n < 0) parts.blocked?.delete(key)
      return stateOf(key, policy, await store.get(key, limits))
    },
    async block(key, ms) {
      const until = await store.block(key, ms)
      const limits = limitsOf(undefined)
      parts.blocked?.block(key, until, limits[0]!.max, limits[0]!.name)
      return stateOf(key, undefined, await store.get(key, limits))
    },
    async giveBack(key, info) {
      // What the request spent, of the limits it was decided by.
      if (!(info instanceof PolicyInfo)) return
      await store.adjust(key, -info.cost, info.policyLimits())
    },
  }
}

/** A policy limiter counting in this process's memory. */
export function memoryPolicyLimiter(parts: LimiterParts, settings: PolicySettings, since: Date): LimiterCore {
  const { plan } = settings
  const store = new MemoryPolicyStore(settings.algorithm, plan.own.constant ?? [], Date.now, plan.longestWindowMs)
  const reported = reportedLimits(plan)
  const decide = policyDecide(
    plan,
    (key, cost, limits) => {
      reported.seen(limits)
      return store.consume(key, cost, limits)
    },
    costOf(settings.cost, plan),
    exceededHandler(parts, 'memory'),
    parts.windowMs,
  )
  return {
    decide,
    resetKey(key: string): Promise<void> {
      parts.blocked?.delete(key)
      store.resetKey(key)
      return Promise.resolve()
    },
    getKey: (key: string) => Promise.resolve(clientInfo(store.get(key, reported.get()))),
    status: () => ({ store: 'memory', ready: true, state: 'memory', since: since.toISOString() }),
    dispose: () => store.shutdown(),
    ...policyControls(parts, plan, reported, {
      get: (key, limits) => store.get(key, limits),
      adjust: (key, cost, limits) => store.consume(key, cost, limits, true),
      block: (key, ms) => store.block(key, ms),
    }),
  }
}

/** The sender of a policy's Redis calls, and what sees its writes: batched, or one by one on a Cluster. */
function policySender(
  backend: RedisBackend,
  timeoutMs: number,
): { send: SendCommand; writes: WriteWatch; batched?: BatchedSend } {
  const cluster = clusterOf(backend.client)
  if (cluster === undefined) {
    const send = batchedCalls(backend.client, timeoutMs)
    return { send, writes: send, batched: send }
  }
  // One key per call: ioredis routes each to its slot's master, and follows MOVED and ASK.
  const unanswered = new Unanswered()
  const watch = { oldestUnanswered: () => unanswered.oldest(), forgetUnanswered: () => unanswered.forget() }
  const send: SendCommand = (command, ...args) => {
    const reply = cluster.call(command, ...args)
    const answered = unanswered.written()
    reply.then(answered, answered)
    return reply
  }
  return { send, writes: watch }
}

/**
 * A policy limiter counting in Redis while it is healthy, and by the onStoreError policy while it
 * is not: the fallback counts in memory with every limit's max split across the instances.
 */
export function redisPolicyLimiter(
  parts: LimiterParts,
  settings: PolicySettings,
  backend: RedisBackend,
  options: RedisLimiterOptions,
): LimiterCore {
  const { breakers } = backend
  const { send, writes, batched } = policySender(backend, options.storeTimeoutMs)
  const { plan } = settings
  const inner = new RedisPolicyStore(
    send,
    settings.algorithm,
    plan.own.constant ?? [],
    `${options.keyPrefix}:${parts.type}#`,
  )
  const store = new GuardedPolicyStore(
    inner,
    backend.client,
    breakers,
    options.storeTimeoutMs,
    parts.stats,
    writes,
    batched,
  )
  backend.stores.push(store)
  // Loaded before the first request, as the fixed window's scripts are; a failure here only means
  // the first call meets NOSCRIPT and sends the script itself.
  if (breakers.healthy) store.reloadScripts(SCRIPT_LOAD_TIMEOUT_MS).catch(() => undefined)
  const cost = costOf(settings.cost, plan)
  // The fallback's limits are other lists (max / instances): its cost is checked against them.
  const fallbackCost = costOf(settings.cost)
  const reported = reportedLimits(plan)
  const primary = policyDecide(
    plan,
    (key, units, limits) => {
      reported.seen(limits)
      return store.consume(key, units, limits)
    },
    cost,
    exceededHandler(parts, 'redis'),
    parts.windowMs,
  )
  let fallbackStore: MemoryPolicyStore | undefined
  const policy = degradedHandler(options.onStoreError, parts.shadow, () => {
    const fallback = new MemoryPolicyStore(settings.algorithm, [], Date.now, plan.longestWindowMs)
    fallbackStore = fallback
    // Each list of limits as the fallback counts it: every max split across the instances.
    const split = new WeakMap<readonly CheckedLimit[], readonly CheckedLimit[]>()
    const fallbackLimits = (limits: readonly CheckedLimit[]): readonly CheckedLimit[] => {
      let found = split.get(limits)
      if (found === undefined) {
        found = checkLimits(limits.map((limit) => ({ ...limit, max: fallbackMax(limit.max, options.instances) })))
        split.set(limits, found)
      }
      return found
    }
    return policyDecide(
      plan,
      (key, units, limits) => fallback.consume(key, units, fallbackLimits(limits)),
      (request, limits) => fallbackCost(request, fallbackLimits(limits)),
      exceededHandler(parts, 'fallback'),
      parts.windowMs,
    )
  })
  // The outage's counts go when Redis is back: a later outage starts afresh, and memory is freed.
  const stopResetting = breakers.onChange((healthy) => {
    if (healthy) fallbackStore?.resetAll()
  })
  return {
    decide: unlessUnavailable(primary, policy, breakers, parts.stats),
    async resetKey(key: string): Promise<void> {
      parts.blocked?.delete(key)
      fallbackStore?.resetKey(key)
      await store.resetKey(key)
    },
    getKey: async (key: string) => clientInfo(await store.get(key, reported.get())),
    status: (): RateLimitStoreStatus => {
      const { healthy, since } = breakers
      return {
        store: 'redis',
        topology: backend.topology,
        ready: healthy,
        state: healthy ? 'redis' : options.onStoreError,
        since: since.toISOString(),
      }
    },
    dispose(): void {
      stopResetting()
      fallbackStore?.shutdown()
    },
    ...policyControls(parts, plan, reported, store),
  }
}
