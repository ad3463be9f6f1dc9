// A limiter that decides by a policy: an algorithm, several limits and a cost (policies/), in
// memory or in Redis, with the same front, answers, fallback and blocked-clients cache.
import type { NextFunction, Request, Response } from 'express'
import type { ClientRateLimitInfo } from 'express-rate-limit'

import { budgetOf, maxFor, type ResolvedRateLimitConfig } from '../config/options.js'
import type { CostFunction, LimiterName, RateLimitStoreStatus } from '../config/types.js'
import { ERROR_CODES, RateLimitError } from '../errors.js'
import type { PolicyAlgorithm } from '../policies/algorithms.js'
import { checkCost, checkLimits, type CheckedLimit, type LimitState, type PolicyDecision } from '../policies/limits.js'
import { MemoryPolicyStore } from '../policies/memory-policy-store.js'
import { RedisPolicyStore, type SendCommand } from '../policies/redis-policy-store.js'
import type { RedisBackend } from '../redis/backend.js'
import { degradedHandler, fallbackMax } from '../resilience/degraded.js'
import { batchedCalls, type BatchedSend, type WriteWatch } from '../stores/batched-calls.js'
import { StoreUnavailableError } from '../stores/deadlines.js'
import { GuardedPolicyStore } from '../stores/guarded-policy-store.js'
import { clusterOf } from '../stores/redis-store.js'
import { Unanswered } from '../stores/round-trips.js'
import type { Decide } from './decision.js'
import { handlerOptions, PolicyInfo, type ExceededHandler } from './response.js'
import { exceededHandler, type LimiterCore, type LimiterParts, type RedisLimiterOptions } from './variants.js'

/** True when the `type` limiter needs a policy: another algorithm, several limits, or a cost. */
export function usesPolicy(config: ResolvedRateLimitConfig, type: LimiterName): boolean {
  return config.algorithm !== 'fixed-window' || ownLimits(config, type) !== undefined || config.cost !== undefined
}

/** The limits the `type` limiter's budget was given: its own, else the set's; undefined for none. */
function ownLimits(config: ResolvedRateLimitConfig, type: LimiterName) {
  const own = { read: config.limitsRead, write: config.limitsWrite, custom: config.limitsCustom }[budgetOf(type)]
  return own ?? config.limits
}

/** The limits of the `type` limiter: those given, or its max per windowMs, named by its name. */
export function limitsFor(config: ResolvedRateLimitConfig, type: LimiterName): readonly CheckedLimit[] {
  const given = ownLimits(config, type)
  if (given === undefined) return checkLimits([{ name: type, max: maxFor(config, type), windowMs: config.windowMs }])
  const budget = budgetOf(type)
  const option = { read: 'limitsRead', write: 'limitsWrite', custom: 'limitsCustom' }[budget]
  const own = { read: config.limitsRead, write: config.limitsWrite, custom: config.limitsCustom }[budget]
  // An unnamed limit is named by its limiter and place, so two limiters' headers never share a name.
  const named = given.map((limit, index) => ({ name: `${type}.${index + 1}`, ...limit }))
  return checkLimits(named, own === undefined ? 'limits' : option)
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

/** What a request costs: the option's number (checked at creation), or its function's answer, checked each time. */
function costOf(cost: number | CostFunction | undefined, limits: readonly CheckedLimit[]) {
  if (cost === undefined) return () => 1
  if (typeof cost === 'number') {
    checkCostOption(cost, limits)
    return () => cost
  }
  return (request: Request): number | Promise<number> => {
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

/** A policy's decision on requests, from `consume`: req.rateLimit, then next() or the 429 handler. */
function policyDecide(
  consume: (key: string, cost: number) => PolicyDecision | Promise<PolicyDecision>,
  cost: (request: Request) => number | Promise<number>,
  exceeded: ExceededHandler,
  windowMs: number,
): Decide {
  const options = handlerOptions(windowMs)
  const decided = (
    request: Request,
    response: Response,
    next: NextFunction,
    key: string,
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
    )
    ;(request as Request & { rateLimit?: PolicyInfo }).rateLimit = info
    if (!decision.allowed) return exceeded(request, response, next, options)
    next()
  }
  const withCost = (request: Request, response: Response, next: NextFunction, key: string, units: number) => {
    let decision: PolicyDecision | Promise<PolicyDecision>
    try {
      decision = consume(key, units)
    } catch (error) {
      return next(error)
    }
    if (!(decision instanceof Promise)) return decided(request, response, next, key, units, decision)
    decision.then((answer) => decided(request, response, next, key, units, answer)).catch(next)
  }
  return (request, response, next, key) => {
    let units: number | Promise<number>
    try {
      units = cost(request)
    } catch (error) {
      return next(error)
    }
    if (typeof units === 'number') return withCost(request, response, next, key, units)
    units.then((resolved) => withCost(request, response, next, key, resolved), next)
  }
}

/** express-rate-limit's view of a client of a policy: the hits and reset of its closest limit. */
const clientInfo = (decision: PolicyDecision): ClientRateLimitInfo => {
  const limit = closest(decision, 1)
  return { totalHits: limit.max - limit.remaining, resetTime: new Date(Date.now() + limit.resetMs) }
}

/** How long loading a policy's script may take when the limiter is made. */
const SCRIPT_LOAD_TIMEOUT_MS = 1000

/** What a policy limiter is built from, beyond its parts. */
export interface PolicySettings {
  readonly algorithm: PolicyAlgorithm
  readonly limits: readonly CheckedLimit[]
  readonly cost: number | CostFunction | undefined
}

/** A policy limiter counting in this process's memory. */
export function memoryPolicyLimiter(parts: LimiterParts, settings: PolicySettings, since: Date): LimiterCore {
  const store = new MemoryPolicyStore(settings.algorithm, settings.limits)
  const decide = policyDecide(
    (key, cost) => store.consume(key, cost),
    costOf(settings.cost, settings.limits),
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
    getKey: (key: string) => Promise.resolve(clientInfo(store.get(key))),
    status: () => ({ store: 'memory', ready: true, state: 'memory', since: since.toISOString() }),
    dispose: () => store.shutdown(),
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
  const inner = new RedisPolicyStore(send, settings.algorithm, settings.limits, `${options.keyPrefix}:${parts.type}#`)
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
  const cost = costOf(settings.cost, settings.limits)
  const primary = policyDecide(
    (key, units) => store.consume(key, units),
    cost,
    exceededHandler(parts, 'redis'),
    parts.windowMs,
  )
  const fallbackLimits = checkLimits(
    settings.limits.map((limit) => ({ ...limit, max: fallbackMax(limit.max, options.instances) })),
  )
  let fallbackStore: MemoryPolicyStore | undefined
  const policy = degradedHandler(options.onStoreError, parts.shadow, () => {
    const fallback = new MemoryPolicyStore(settings.algorithm, fallbackLimits)
    fallbackStore = fallback
    return policyDecide(
      (key, units) => fallback.consume(key, units),
      costOf(settings.cost, fallbackLimits),
      exceededHandler(parts, 'fallback'),
      parts.windowMs,
    )
  })
  // The outage's counts go when Redis is back: a later outage starts afresh, and memory is freed.
  const stopResetting = breakers.onChange((healthy) => {
    if (healthy) fallbackStore?.resetAll()
  })
  const degraded: Decide = (req, res, next, key) => {
    parts.stats.degraded++
    policy(req, res, next, key)
  }
  return {
    decide(req, res, next, key) {
      if (breakers.single && !breakers.healthy) return degraded(req, res, next, key)
      primary(
        req,
        res,
        (error?: unknown) => {
          if (error instanceof StoreUnavailableError) return degraded(req, res, next, key)
          next(error)
        },
        key,
      )
    },
    async resetKey(key: string): Promise<void> {
      parts.blocked?.delete(key)
      fallbackStore?.resetKey(key)
      await store.resetKey(key)
    },
    getKey: async (key: string) => clientInfo(await store.get(key)),
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
  }
}
