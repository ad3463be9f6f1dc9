// Prometheus metrics of the limiters, on a prom-client registry the caller hands in. Nothing global.
import type * as PromClient from 'prom-client'
import type { Registry } from 'prom-client'

import { ERROR_CODES, RateLimitError } from '../errors.js'
import { LimiterStats, type StoreKind } from './stats.js'
import {
  COUNTED,
  RATE_LIMIT_METRICS,
  registerFamilies,
  type MeteredLimiter,
  type PoolSource,
  type Totals,
} from './metric-families.js'
import { TimeHistogram, type StoreTimes } from './store-duration.js'
import type { LimiterName } from '../config/types.js'

type LeaveFn = () => void

/** The limiters' metrics on one registry. Limiters join when created and leave when disposed. */
export class RateLimitMetrics {
  readonly #limiters = new Set<MeteredLimiter>()
  /** What disposed limiters had counted, by label set: added to the live ones at every scrape. */
  readonly #retired = new Map<string, Totals>()
  /** Redis clients in use, with how many limiters use each: one connection is counted once. */
  readonly #pools = new Map<PoolSource, number>()
  /** Store times by label set; only the stores that were used are reported. */
  readonly #times: StoreTimes = new Map()
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
  #timesOf(namespace: string, type: LimiterName): Record<StoreKind, TimeHistogram> {
    const id = `${namespace}\0${type}`
    let entry = this.#times.get(id)
    if (entry === undefined) {
      entry = {
        namespace,
        type,
        byStore: {
          redis: new TimeHistogram(),
          memory: new TimeHistogram(),
          fallback: new TimeHistogram(),
          custom: new TimeHistogram(),
        },
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
    this.#marker = registerFamilies(await loadPromClient(), registry, {
      everyone: () => this.#everyone(),
      limiters: this.#limiters,
      pools: this.#pools,
      times: this.#times,
    })
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
