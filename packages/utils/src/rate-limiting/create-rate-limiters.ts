// createRateLimiter / createRateLimiters: express-rate-limit middlewares on a Redis or memory store.
import type { Request, Response } from 'express'
import type { RateLimitInfo, Store } from 'express-rate-limit'
import type { Registry } from 'prom-client'

import { checkName, maxFor, RATE_LIMIT_TYPES, resolveConfig, type ResolvedRateLimitConfig } from './config/options.js'
import type {
  LimiterName,
  MaxFunction,
  RateLimitType,
  RateLimitConfig,
  RateLimiters,
  RateLimitRequestHandler,
} from './config/types.js'
import { BlockedKeys } from './limiter/blocked-keys.js'
import { limiterFront } from './limiter/front.js'
import { RateLimitHeaders } from './limiter/headers.js'
import { boundedKey, defaultKeyGenerator } from './limiter/keys.js'
import { claimPrefix } from './limiter/prefix-registry.js'
import {
  checkCostOption,
  memoryPolicyLimiter,
  planFor,
  redisPolicyLimiter,
  usesPolicy,
  type PolicySettings,
} from './limiter/policy-limiter.js'
import { operatorControls } from './limiter/controls.js'
import { createProxyChecks } from './limiter/proxy-checks.js'
import { blockedAnswer } from './limiter/response.js'
import {
  customStoreLimiter,
  exceededHandler,
  memoryLimiter,
  redisLimiter,
  type LimiterCore,
  type LimiterParts,
} from './limiter/variants.js'
import { redactCredentials } from './observability/redact.js'
import { AuditLog } from './observability/audit.js'
import { debug } from './observability/logger.js'
import { RateLimitMetrics } from './observability/metrics.js'
import { LimiterStats } from './observability/stats.js'
import { openBackend, PROBE_INTERVAL_MS, STALL_FACTOR, type Backend } from './redis/backend.js'
import { singleBreaker, type Breakers } from './resilience/breakers.js'
import { CircuitBreaker } from './resilience/circuit-breaker.js'
import { GuardedCustomStore } from './stores/custom-store.js'
import { withTimeout } from './stores/deadlines.js'
import { degradedLine } from './resilience/degraded.js'

/** The client key of a request: the key generator's answer, proxy-checked, and hashed when long. */
function clientKeys(type: LimiterName, config: ResolvedRateLimitConfig) {
  const checkProxy = createProxyChecks(config.logger, `[RateLimit:${type}]`)
  const { keyGenerator } = config
  return (request: Request, response: Response): string | Promise<string> => {
    checkProxy(request)
    const key = keyGenerator(request, response)
    return typeof key === 'string' ? boundedKey(key) : Promise.resolve(key).then((k) => boundedKey(String(k)))
  }
}

/**
 * skipSuccessfulRequests and skipFailedRequests, as express-rate-limit has them: a request let
 * through is given back once its response finishes as a success (or a failure), or, for failures,
 * when the client goes away before it ends. Undefined when neither is on: no listener is added.
 */
function givingBack(type: LimiterName, config: ResolvedRateLimitConfig, core: { giveBack: LimiterCore['giveBack'] }) {
  const { skipSuccessfulRequests, skipFailedRequests, logger } = config
  if (!skipSuccessfulRequests && !skipFailedRequests) return undefined
  const succeeded =
    config.requestWasSuccessful ?? ((_request: Request, response: Response) => response.statusCode < 400)
  const failed = (what: string) => (error: unknown) => {
    // During an outage nothing can be given back, and the outage is logged already.
    if ((error as Error | undefined)?.name === 'StoreUnavailableError') return
    logger.error(
      `[RateLimit:${type}] ${what}: ${redactCredentials(String((error as Error | undefined)?.message ?? error))}`,
    )
  }
  return (request: Request, response: Response, key: string, info: RateLimitInfo): void => {
    let given = false
    const give = () => {
      if (given) return
      given = true
      core.giveBack(key, info).catch(failed('Could not give a request back'))
    }
    response.once('finish', () => {
      let verdict: boolean | Promise<boolean>
      try {
        verdict = succeeded(request, response)
      } catch (error) {
        return failed('requestWasSuccessful threw')(error)
      }
      Promise.resolve(verdict).then((success) => {
        if (success ? skipSuccessfulRequests : skipFailedRequests) give()
      }, failed('requestWasSuccessful rejected'))
    })
    if (skipFailedRequests) {
      response.once('close', () => {
        if (!response.writableEnded) give()
      })
    }
  }
}

/** The policy of the `type` limiter, or undefined for the default's one fixed window of max hits. */
function policyOf(type: LimiterName, config: ResolvedRateLimitConfig): PolicySettings | undefined {
  if (!usesPolicy(config, type)) return undefined
  const plan = planFor(config, type)
  for (const set of plan.sets) if (set.constant !== undefined) checkCostOption(config.cost, set.constant)
  return { algorithm: config.algorithm, plan, cost: config.cost }
}

/** A limit's max as the log lines show it: a number, or `per request` for a function's. */
const shownMax = (max: number | MaxFunction): number | string => (typeof max === 'number' ? max : 'per request')

/** What every express-rate-limit instance of the `type` limiter shares; logs how it counts. */
function limiterParts(
  type: LimiterName,
  config: ResolvedRateLimitConfig,
  backend: SetBackend,
  policy: PolicySettings | undefined,
): LimiterParts {
  const max = maxFor(config, type)
  const { logger } = config
  logger.info(
    backend.kind === 'redis'
      ? `[RateLimit:${type}] Using Redis store (distributed mode)`
      : backend.kind === 'custom'
        ? `[RateLimit:${type}] Using the store given (${backend.store.constructor.name})`
        : `[RateLimit:${type}] Using MemoryStore (single-instance mode)`,
  )
  if (policy !== undefined) {
    for (const set of policy.plan.sets) {
      const shown = set.templates.map((limit) => `${limit.name} ${shownMax(limit.max)} per ${limit.windowMs} ms`)
      const named = set.policy === undefined ? '' : ` (policy ${set.policy})`
      logger.info(`[RateLimit:${type}] Policy ${policy.algorithm}${named}: ${shown.join(', ')}`)
    }
  }
  if (config.shadow) logger.warn(`[RateLimit:${type}] Shadow mode: requests over the limit are reported, never blocked`)
  debug('%s:%s limit %s per %d ms', config.keyPrefix, type, shownMax(max), config.windowMs)
  const audit = config.auditLog
    ? new AuditLog({
        logger,
        namespace: config.metricsNamespace,
        type,
        windowMs: config.windowMs,
        hashKeys: config.keyGenerator !== defaultKeyGenerator,
        ...(config.auditRoute === undefined ? {} : { route: config.auditRoute }),
      })
    : undefined
  return {
    type,
    // Only the default's path, which has a number here, reads it.
    max: typeof max === 'number' ? max : 1,
    windowMs: config.windowMs,
    message: config.message,
    statusCode: config.statusCode,
    handler: config.handler,
    problemDetails: config.problemDetails,
    limits: policy?.plan.constant,
    shadow: config.shadow,
    logger,
    stats: new LimiterStats(),
    audit,
    // Shadow mode never blocks, so it has no blocked clients to remember.
    blocked: config.shadow ? undefined : new BlockedKeys(),
    property: config.requestPropertyName === 'rateLimit' ? undefined : config.requestPropertyName,
    headers: new RateLimitHeaders({
      type,
      identifier: typeof config.identifier === 'string' ? config.identifier : undefined,
      windowMs: config.windowMs,
      legacyHeaders: config.legacyHeaders,
      // true is draft-6, as express-rate-limit reads it.
      standard: config.standardHeaders === true ? 'draft-6' : config.standardHeaders,
      ...(policy?.plan.constant === undefined ? {} : { limits: policy.plan.constant }),
    }),
  }
}

/** A set counting in an express-rate-limit Store of the user's: one circuit, its limiters' guarded views of it. */
interface CustomBackend {
  readonly kind: 'custom'
  readonly store: Store
  readonly breakers: Breakers
  readonly since: Date
  /** Each limiter's view of the store, under its own key prefix; the first one probes it. */
  readonly views: GuardedCustomStore[]
  dispose(): void
}

type SetBackend = Backend | CustomBackend

function openCustomBackend(
  store: Store,
  config: ResolvedRateLimitConfig,
  setName: string,
  line: string,
): CustomBackend {
  const views: GuardedCustomStore[] = []
  const breakers = singleBreaker(
    () =>
      new CircuitBreaker({
        name: setName,
        subject: 'Store',
        degradedLine: line,
        probeIntervalMs: PROBE_INTERVAL_MS,
        stallMs: STALL_FACTOR * config.storeTimeoutMs,
        logger: config.logger,
        probe: () => withTimeout(views[0]?.probe() ?? Promise.resolve(), config.storeTimeoutMs),
      }),
  )
  return {
    kind: 'custom',
    store,
    breakers,
    since: new Date(),
    views,
    dispose() {
      breakers.dispose()
      void Promise.resolve(store.shutdown?.()).catch(() => undefined)
    },
  }
}

/** The `type` limiter on `backend`: its kind of limiter, behind the front middleware, with metrics. */
function buildLimiter(
  type: LimiterName,
  config: ResolvedRateLimitConfig,
  backend: SetBackend,
  metrics: RateLimitMetrics | undefined,
  policy: PolicySettings | undefined,
  release: () => void,
): RateLimitRequestHandler {
  const parts = limiterParts(type, config, backend, policy)
  const { keyPrefix, storeTimeoutMs, onStoreError, instances } = config
  const redisOptions = { keyPrefix, storeTimeoutMs, onStoreError, instances }
  let core
  if (backend.kind === 'custom') {
    const view = new GuardedCustomStore(
      backend.store,
      `${keyPrefix}:${type}:`,
      backend.breakers,
      storeTimeoutMs,
      parts.stats,
    )
    backend.views.push(view)
    core = customStoreLimiter(parts, view, backend.breakers, redisOptions)
  } else if (policy === undefined) {
    core = backend.kind === 'memory' ? memoryLimiter(parts, backend.since) : redisLimiter(parts, backend, redisOptions)
  } else {
    core =
      backend.kind === 'memory'
        ? memoryPolicyLimiter(parts, policy, backend.since)
        : redisPolicyLimiter(parts, policy, backend, redisOptions)
  }
  const inFallback = (): boolean => backend.kind !== 'memory' && !backend.breakers.healthy
  const leaveMetrics = metrics?.join(
    { namespace: config.metricsNamespace, type, stats: parts.stats, policy: config.onStoreError, inFallback },
    backend.kind === 'redis' ? backend.client : undefined,
  )
  const front = limiterFront({
    decide: core.decide,
    stats: parts.stats,
    skip: config.skip,
    keyOf: clientKeys(type, config),
    giveBack: givingBack(type, config, core),
    property: parts.property,
    identify: typeof config.identifier === 'function' ? config.identifier : undefined,
    blocked: parts.blocked,
    answerBlocked: blockedAnswer(exceededHandler(parts, backend.kind), config.windowMs),
    headers: parts.headers,
  })
  return Object.assign(front, {
    ...operatorControls(core),
    resetKey: (key: string) => core.resetKey(key),
    getKey: core.getKey,
    status: () => core.status(),
    dispose(): void {
      release()
      leaveMetrics?.()
      core.dispose()
    },
  })
}

/**
 * Creates the limiters of `types` on one backend, claiming each prefix first. The backend is
 * released when the last of them is disposed.
 */
async function createLimiters(types: readonly LimiterName[], config: ResolvedRateLimitConfig) {
  // Checked before anything is claimed or opened, as every other option is.
  const policies = types.map((type) => policyOf(type, config))
  const releases: (() => void)[] = []
  try {
    for (const type of types) releases.push(claimPrefix(config.keyPrefix, type))
    const metrics =
      config.metricsRegistry === undefined
        ? undefined
        : await RateLimitMetrics.on(config.metricsRegistry as unknown as Registry)
    const { redisClient, redisUrl, requireRedis, redisRetries, keyPrefix, storeTimeoutMs, logger } = config
    // What the fallback line shows: each limiter's max, or each limit of its policy.
    const limits = types.flatMap((type, index) =>
      (policies[index]?.plan.own.templates ?? [{ name: type, max: maxFor(config, type) }]).map((limit) => ({
        type: limit.name === type ? type : `${type} ${limit.name}`,
        max: shownMax(limit.max),
      })),
    )
    const setName =
      types.length === 1 && !RATE_LIMIT_TYPES.includes(types[0] as RateLimitType)
        ? `${keyPrefix}/${types[0]}`
        : keyPrefix
    const backend: SetBackend =
      config.store !== undefined
        ? openCustomBackend(config.store, config, setName, degradedLine(config, limits))
        : await openBackend({
            redisClient,
            redisUrl,
            requireRedis,
            redisRetries,
            keyPrefix,
            // A named limiter made on its own has its own circuit: its lines say which (`metaverses-srv/login`).
            setName,
            storeTimeoutMs,
            logger,
            degradedLine: degradedLine(config, limits),
          })
    let open = types.length
    return types.map((type, index) =>
      buildLimiter(type, config, backend, metrics, policies[index], () => {
        releases[index]!()
        if (--open === 0 && backend.kind !== 'memory') backend.dispose()
      }),
    )
  } catch (error) {
    for (const release of releases) release()
    throw error
  }
}

/**
 * One limiter, by name: `read`, `write` and `custom` draw from their own budgets, every other name
 * from custom's (maxCustom, limitsCustom) with counters of its own. Options are checked before
 * anything else happens; a bad one throws a RateLimitError naming it.
 */
export async function createRateLimiter(name: LimiterName, config?: RateLimitConfig): Promise<RateLimitRequestHandler> {
  const resolved = resolveConfig(config)
  const [limiter] = await createLimiters([checkName(name)], resolved)
  return limiter!
}

/** A service's read and write limiters, on the same store, with separate budgets. */
export async function createRateLimiters(config?: RateLimitConfig): Promise<RateLimiters> {
  const resolved = resolveConfig(config)
  const [read, write] = (await createLimiters(['read', 'write'], resolved)) as [
    RateLimitRequestHandler,
    RateLimitRequestHandler,
  ]
  return {
    read,
    write,
    status: () => read.status(),
    dispose(): void {
      read.dispose()
      write.dispose()
    },
  }
}
