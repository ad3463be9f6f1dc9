// Prometheus metrics of the limiters, on a prom-client registry the caller hands in. Nothing global.
import type * as PromClient from 'prom-client'
import type { Registry } from 'prom-client'

import { ERROR_CODES, RateLimitError } from '../errors.js'
import { LimiterStats, type StoreKind } from './stats.js'
import type { StoreErrorPolicy } from '../config/types.js'
import type { RateLimitType } from '../config/types.js'

/** Every metric the limiters export, by name. Label values are bounded: no key, IP, user or path. */
export const RATE_LIMIT_METRICS = Object.freeze({
  requests: 'rate_limit_requests_total',
  rejections: 'rate_limit_rejections_total',
  shadowRejections: 'rate_limit_shadow_rejections_total',
  skipped: 'rate_limit_skipped_total',
  nearLimit: 'rate_limit_near_limit_total',
  degraded: 'rate_limit_degraded_requests_total',
  storeErrors: 'rate_limit_store_errors_total',
  lateAnswers: 'rate_limit_store_late_answers_total',
  storeDuration: 'rate_limit_store_duration_seconds',
  fallback: 'rate_limit_fallback_active',
  poolSize: 'redis_connection_pool_size',
  poolActive: 'redis_connection_pool_active',
} as const)

/** Store latency buckets, in seconds: 50 µs to 10 s (storeTimeoutMs goes up to 10 s). */
export const STORE_DURATION_BUCKETS = Object.freeze([
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
])

/** One limiter as the metrics see it. */
export interface MeteredLimiter {
  readonly namespace: string
  readonly type: RateLimitType
  readonly stats: LimiterStats
  /** The onStoreError policy that decides requests while the store cannot be used. */
  readonly policy: StoreErrorPolicy
  /** True while the limiter cannot use the store it was made for. */
  inFallback(): boolean
}

/** Something that holds Redis connections: an ioredis Redis or Cluster, or any other client. */
interface PoolSource {
  readonly status?: unknown
  nodes?(role: 'all'): { status?: unknown }[]
}

type LeaveFn = () => void

/** Counter totals of one label set, kept when its limiters are disposed so that counters never go down. */
interface Totals {
  readonly namespace: string
  readonly type: RateLimitType
  readonly policy: StoreErrorPolicy
  readonly stats: LimiterStats
}

/** The counters' running totals, by the name of the field in LimiterStats. */
const COUNTED = [
  'requests',
  'rejections',
  'shadowRejections',
  'skipped',
  'nearLimit',
  'degraded',
  'lateAnswers',
] as const

/** The limiters' metrics on one registry. Limiters join when created and leave when disposed. */
export class RateLimitMetrics {
  readonly #limiters = new Set<MeteredLimiter>()
  /** What disposed limiters had counted, by label set: added to the live ones at every scrape. */
  readonly #retired = new Map<string, Totals>()
  /** Redis clients in use, with how many limiters use each: one connection is counted once. */
  readonly #pools = new Map<PoolSource, number>()
  /** Store times by label set; only the stores that were used are reported. */
  readonly #times = new Map<
    string,
    { namespace: string; type: RateLimitType; byStore: Record<StoreKind, TimeHistogram> }
  >()
  /** The first metric registered, to tell whether the registry still holds ours (after registry.clear()). */
  #marker: unknown

  private constructor() {}

  /** The metrics on `registry`, created on first use. Throws if another party registered our names. */
  static async on(registry: Registry): Promise<RateLimitMetrics> {
    const cached = BY_REGISTRY.get(registry)
    if (cached !== undefined) {
      const metrics = await cached
      if (registry.getSingleMetric(RATE_LIMIT_METRICS.requests) === metrics.#marker) return metrics
    }
    // The promise is cached at once, so two limiter sets created together register once.
    const created = (async () => {
      const metrics = new RateLimitMetrics()
      await metrics.#register(registry)
      return metrics
    })()
    BY_REGISTRY.set(registry, created)
    created.catch(() => {
      if (BY_REGISTRY.get(registry) === created) BY_REGISTRY.delete(registry)
    })
    return created
  }

  /**
   * Adds a limiter (and the Redis client it uses, if any) to what is reported. Returns the function
   * that removes it again; its counts stay in the totals.
   */
  join(limiter: MeteredLimiter, client: object | undefined): LeaveFn {
    const times = this.#timesOf(limiter.namespace, limiter.type)
    limiter.stats.observeStore = (seconds, store) => times[store].observe(seconds)
    this.#limiters.add(limiter)
    const pool = client as PoolSource | undefined
    if (pool !== undefined) this.#pools.set(pool, (this.#pools.get(pool) ?? 0) + 1)
    return () => {
      if (!this.#limiters.delete(limiter)) return
      limiter.stats.observeStore = undefined
      this.#retire(limiter)
      if (pool === undefined) return
      const users = (this.#pools.get(pool) ?? 1) - 1
      if (users === 0) this.#pools.delete(pool)
      else this.#pools.set(pool, users)
    }
  }

  #retire({ namespace, type, policy, stats }: MeteredLimiter): void {
    const id = `${namespace}\0${type}\0${policy}`
    let totals = this.#retired.get(id)
    if (totals === undefined) this.#retired.set(id, (totals = { namespace, type, policy, stats: new LimiterStats() }))
    for (const field of COUNTED) totals.stats[field] += stats[field]
    totals.stats.storeErrors.error += stats.storeErrors.error
    totals.stats.storeErrors.timeout += stats.storeErrors.timeout
  }

  /** Live limiters and retired totals: what every counter sums at a scrape. */
  *#everyone(): Iterable<Totals> {
    yield* this.#limiters
    yield* this.#retired.values()
  }

  /** The store-time histograms of a label set, shared by its limiters and kept after they leave. */
  #timesOf(namespace: string, type: RateLimitType): Record<StoreKind, TimeHistogram> {
    const id = `${namespace}\0${type}`
    let entry = this.#times.get(id)
    if (entry === undefined) {
      entry = {
        namespace,
        type,
        byStore: { redis: new TimeHistogram(), memory: new TimeHistogram(), fallback: new TimeHistogram() },
      }
      this.#times.set(id, entry)
    }
    return entry.byStore
  }

  async #register(registry: Registry): Promise<void> {
    for (const name of Object.values(RATE_LIMIT_METRICS)) {
      if (registry.getSingleMetric(name) !== undefined) {
        throw new RateLimitError(
          ERROR_CODES.METRICS_CONFLICT,
          `metricsRegistry already has a metric named ${name}: give the limiters a registry of their own, ` +
            'or the same one only through a single copy of @universo/utils',
          { option: 'metricsRegistry' },
        )
      }
    }
    const { Counter, Gauge } = await loadPromClient()
    const registers = [registry]
    const limiters = this.#limiters
    const everyone = () => this.#everyone()
    const labelNames = ['namespace', 'type'] as const

    /** A counter whose values are the limiters' running totals, read at scrape time. */
    const total = (name: string, help: string, read: (stats: LimiterStats) => number) =>
      new Counter({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset()
          for (const { namespace, type, stats } of everyone()) this.inc({ namespace, type }, read(stats))
        },
      })
    this.#marker = total(
      RATE_LIMIT_METRICS.requests,
      'Requests counted by a rate limiter (skipped ones excluded).',
      (s) => s.requests,
    )
    total(RATE_LIMIT_METRICS.rejections, 'Requests answered 429 by a rate limiter.', (s) => s.rejections)
    total(
      RATE_LIMIT_METRICS.shadowRejections,
      'Requests over the limit that shadow mode let through.',
      (s) => s.shadowRejections,
    )
    total(RATE_LIMIT_METRICS.skipped, 'Requests the skip option let through uncounted.', (s) => s.skipped)
    total(RATE_LIMIT_METRICS.nearLimit, 'Requests allowed with less than 20% of the budget left.', (s) => s.nearLimit)
    total(
      RATE_LIMIT_METRICS.lateAnswers,
      'Redis calls that timed out and were answered afterwards: the onStoreError policy decided while Redis was reachable.',
      (s) => s.lateAnswers,
    )

    new Counter({
      name: RATE_LIMIT_METRICS.degraded,
      help: 'Requests decided by the onStoreError policy while Redis could not be used.',
      labelNames: [...labelNames, 'policy'],
      registers,
      collect() {
        this.reset()
        for (const { namespace, type, policy, stats } of everyone())
          this.inc({ namespace, type, policy }, stats.degraded)
      },
    })
    new Counter({
      name: RATE_LIMIT_METRICS.storeErrors,
      help: 'Redis calls of a rate limiter that failed: kind is error (Redis answered an error or the connection dropped) or timeout.',
      labelNames: [...labelNames, 'kind'],
      registers,
      collect() {
        this.reset()
        for (const { namespace, type, stats } of everyone()) {
          this.inc({ namespace, type, kind: 'error' }, stats.storeErrors.error)
          this.inc({ namespace, type, kind: 'timeout' }, stats.storeErrors.timeout)
        }
      },
    })
    // The histogram is kept in plain arrays (one bucket increment per request) and read here at
    // scrape time: prom-client's own Histogram hashes its labels on every observe.
    const times = this.#times
    const described = {
      name: RATE_LIMIT_METRICS.storeDuration,
      help: 'Time a rate limiter waited for its store to count a request, in seconds.',
      type: 'histogram',
      aggregator: 'sum',
    } as const
    const storeDuration = {
      ...described,
      get: () => ({
        ...described,
        values: [...times.values()].flatMap(({ namespace, type, byStore }) =>
          (Object.entries(byStore) as [StoreKind, TimeHistogram][])
            .filter(([, histogram]) => histogram.count > 0)
            .flatMap(([store, histogram]) =>
              histogram.samples(RATE_LIMIT_METRICS.storeDuration, { namespace, type, store }),
            ),
        ),
      }),
      reset: () => {
        for (const { byStore } of times.values()) for (const histogram of Object.values(byStore)) histogram.reset()
      },
    }
    registry.registerMetric(storeDuration as unknown as Parameters<Registry['registerMetric']>[0])
    new Gauge({
      name: RATE_LIMIT_METRICS.fallback,
      help: '1 while a rate limiter cannot use Redis and runs on its onStoreError policy, else 0.',
      labelNames,
      registers,
      collect() {
        this.reset()
        // Two limiters may share labels (one namespace, two key prefixes): either in fallback shows 1.
        const values = new Map<string, { labels: { namespace: string; type: string }; value: number }>()
        for (const limiter of limiters) {
          const id = `${limiter.namespace}\0${limiter.type}`
          const value = limiter.inFallback() ? 1 : 0
          const held = values.get(id)
          if (held === undefined)
            values.set(id, { labels: { namespace: limiter.namespace, type: limiter.type }, value })
          else held.value = Math.max(held.value, value)
        }
        for (const { labels, value } of values.values()) this.set(labels, value)
      },
    })
    const pools = this.#pools
    new Gauge({
      name: RATE_LIMIT_METRICS.poolSize,
      help: 'Redis connections the rate limiters hold in this process.',
      registers,
      collect() {
        this.set(sum(pools.keys(), (pool) => connections(pool).length))
      },
    })
    new Gauge({
      name: RATE_LIMIT_METRICS.poolActive,
      help: 'Redis connections of the rate limiters that are ready for commands.',
      registers,
      collect() {
        this.set(sum(pools.keys(), (pool) => connections(pool).filter(ready).length))
      },
    })
  }
}

/** A fixed-bucket histogram in plain numbers: observing is a short scan and three additions. */
export class TimeHistogram {
  /** Observations per bucket (not cumulative); the last one is +Inf. */
  readonly #counts = new Float64Array(STORE_DURATION_BUCKETS.length + 1)
  #sum = 0
  count = 0

  observe(seconds: number): void {
    let bucket = 0
    while (bucket < STORE_DURATION_BUCKETS.length && seconds > STORE_DURATION_BUCKETS[bucket]!) bucket++
    this.#counts[bucket]!++
    this.#sum += seconds
    this.count++
  }

  reset(): void {
    this.#counts.fill(0)
    this.#sum = 0
    this.count = 0
  }

  /** The samples of the Prometheus histogram: cumulative _bucket per `le`, then _sum and _count. */
  samples(name: string, labels: Record<string, string>) {
    let cumulative = 0
    const buckets = [...STORE_DURATION_BUCKETS, '+Inf' as const].map((le, index) => {
      cumulative += this.#counts[index]!
      return { labels: { le, ...labels }, value: cumulative, metricName: `${name}_bucket` }
    })
    return [
      ...buckets,
      { labels, value: this.#sum, metricName: `${name}_sum` },
      { labels, value: this.count, metricName: `${name}_count` },
    ]
  }
}

const BY_REGISTRY = new WeakMap<Registry, Promise<RateLimitMetrics>>()

async function loadPromClient(): Promise<typeof PromClient> {
  try {
    return await import('prom-client')
  } catch (error) {
    throw new RateLimitError(
      ERROR_CODES.METRICS_UNAVAILABLE,
      'metricsRegistry needs the prom-client package, which could not be loaded: install prom-client ^15',
      { option: 'metricsRegistry', cause: error },
    )
  }
}

/**
 * The connections a client holds: a Cluster's nodes, or the client itself. A node ioredis created
 * lazily and never connected (`wait`, a replica with reads on masters), or one closed for good
 * (`end`), holds none.
 */
function connections(pool: PoolSource): { status?: unknown }[] {
  const all = typeof pool.nodes === 'function' ? pool.nodes('all') : [pool]
  return all.filter((connection) => connection.status !== 'wait' && connection.status !== 'end')
}

/** ioredis says `ready`; a client without a status (a test adapter) is taken as ready. */
const ready = (connection: { status?: unknown }): boolean =>
  connection.status === undefined || connection.status === 'ready'

function sum<T>(items: Iterable<T>, count: (item: T) => number): number {
  let total = 0
  for (const item of items) total += count(item)
  return total
}
