// The store-duration histogram: observed in plain numbers on the hot path, read by prom-client at scrape time.
import type { Registry } from 'prom-client'

import type { LimiterName } from '../config/types.js'
import type { StoreKind } from './stats.js'

/** The histogram's name (RATE_LIMIT_METRICS.storeDuration). */
export const STORE_DURATION_METRIC = 'rate_limit_store_duration_seconds'

/** Store latency buckets, in seconds: 50 µs to 10 s (storeTimeoutMs goes up to 10 s). */
export const STORE_DURATION_BUCKETS = Object.freeze([
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
])

/** Store times by label set (namespace and type); only the stores that were used are reported. */
export type StoreTimes = Map<
  string,
  { readonly namespace: string; readonly type: LimiterName; readonly byStore: Record<StoreKind, TimeHistogram> }
>

/**
 * The store-time histogram. It is kept in plain arrays (one bucket increment per request) and
 * read here at scrape time: prom-client's own Histogram hashes its labels on every observe.
 */
export function storeDurationMetric(times: StoreTimes): CollectedMetric {
  const described = {
    name: STORE_DURATION_METRIC,
    help: 'Time a rate limiter waited for its store to count a request, in seconds.',
    type: 'histogram',
    aggregator: 'sum',
  } as const
  return {
    ...described,
    get: () => ({
      ...described,
      values: [...times.values()].flatMap(({ namespace, type, byStore }) =>
        (Object.entries(byStore) as [StoreKind, TimeHistogram][])
          .filter(([, histogram]) => histogram.count > 0)
          .flatMap(([store, histogram]) => histogram.samples(STORE_DURATION_METRIC, { namespace, type, store })),
      ),
    }),
    reset: () => {
      for (const { byStore } of times.values()) for (const histogram of Object.values(byStore)) histogram.reset()
    },
  }
}

/** A metric of our own making, as a prom-client registry reads one: its description, get and reset. */
interface CollectedMetric {
  readonly name: string
  readonly help: string
  readonly type: 'histogram'
  readonly aggregator: 'sum'
  get(): { name: string; help: string; type: string; aggregator: string; values: unknown[] }
  reset(): void
}

/**
 * `metric` typed as prom-client's Metric. Its types name only prom-client's own classes, while
 * Registry reads no more of a metric than CollectedMetric has (name, help, type, aggregator, get,
 * reset): the one cast the registration needs.
 */
export const asPromMetric = (metric: CollectedMetric) => metric as unknown as Parameters<Registry['registerMetric']>[0]

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
