// The metric families on a prom-client registry: counters that sum the limiters' totals, and
// gauges of fallback and connections, all read at scrape time (metrics.ts keeps the limiters).
import type * as PromClient from 'prom-client'
import type { Registry } from 'prom-client'

import type { StoreErrorPolicy, LimiterName } from '../config/types.js'
import type { LimiterStats } from './stats.js'
import { asPromMetric, STORE_DURATION_METRIC, storeDurationMetric, type StoreTimes } from './store-duration.js'

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
  storeDuration: STORE_DURATION_METRIC,
  fallback: 'rate_limit_fallback_active',
  poolSize: 'redis_connection_pool_size',
  poolActive: 'redis_connection_pool_active',
} as const)

/** One limiter as the metrics see it. */
export interface MeteredLimiter {
  readonly namespace: string
  readonly type: LimiterName
  readonly stats: LimiterStats
  /** The onStoreError policy that decides requests while the store cannot be used. */
  readonly policy: StoreErrorPolicy
  /** True while the limiter cannot use the store it was made for. */
  inFallback(): boolean
}

/** Something that holds Redis connections: an ioredis Redis or Cluster, or any other client. */
export interface PoolSource {
  readonly status?: unknown
  nodes?(role: 'all'): { status?: unknown }[]
}

/** Counter totals of one label set, kept when its limiters are disposed so that counters never go down. */
export interface Totals {
  readonly namespace: string
  readonly type: LimiterName
  readonly policy: StoreErrorPolicy
  readonly stats: LimiterStats
}

/** The counters' running totals, by the name of the field in LimiterStats. */
export const COUNTED = [
  'requests',
  'rejections',
  'shadowRejections',
  'skipped',
  'nearLimit',
  'degraded',
  'lateAnswers',
] as const

/** What the metric families read at each scrape. */
export interface MetricSources {
  /** Live limiters and retired totals: what every counter sums. */
  readonly everyone: () => Iterable<Totals>
  readonly limiters: ReadonlySet<MeteredLimiter>
  /** Redis clients in use, each counted once. */
  readonly pools: ReadonlyMap<PoolSource, number>
  readonly times: StoreTimes
}

/** Registers every family on `registry`; returns the first one registered (its marker). */
export function registerFamilies(prom: typeof PromClient, registry: Registry, sources: MetricSources): unknown {
  const first = registerCounters(prom, registry, sources.everyone)
  registry.registerMetric(asPromMetric(storeDurationMetric(sources.times)))
  registerGauges(prom, registry, sources.limiters, sources.pools)
  return first
}

/** The counters that sum one field of the limiters' stats, with no label of their own: name, help, field. */
const PLAIN_COUNTERS: readonly (readonly [string, string, (typeof COUNTED)[number]])[] = [
  [RATE_LIMIT_METRICS.requests, 'Requests counted by a rate limiter (skipped ones excluded).', 'requests'],
  [RATE_LIMIT_METRICS.rejections, 'Requests answered 429 by a rate limiter.', 'rejections'],
  [RATE_LIMIT_METRICS.shadowRejections, 'Requests over the limit that shadow mode let through.', 'shadowRejections'],
  [RATE_LIMIT_METRICS.skipped, 'Requests the skip option let through uncounted.', 'skipped'],
  [RATE_LIMIT_METRICS.nearLimit, 'Requests allowed with less than 20% of the budget left.', 'nearLimit'],
  [
    RATE_LIMIT_METRICS.lateAnswers,
    'Redis calls that timed out and were answered afterwards: the onStoreError policy decided while Redis was reachable.',
    'lateAnswers',
  ],
]

/** The counters, each summing the limiters' running totals at scrape time; returns the first. */
function registerCounters(
  { Counter }: typeof PromClient,
  registry: Registry,
  everyone: () => Iterable<Totals>,
): unknown {
  /** A counter of `name`, whose rows for one limiter's totals are its extra labels and a value. */
  const summed = <Extra extends string>(
    name: string,
    help: string,
    extra: readonly Extra[],
    rows: (totals: Totals) => readonly (readonly [Record<Extra, string>, number])[],
  ) =>
    new Counter({
      name,
      help,
      labelNames: ['namespace', 'type', ...extra],
      registers: [registry],
      collect() {
        this.reset()
        for (const totals of everyone()) {
          const { namespace, type } = totals
          for (const [labels, value] of rows(totals)) this.inc({ namespace, type, ...labels }, value)
        }
      },
    })
  const [first] = PLAIN_COUNTERS.map(([name, help, field]) =>
    summed(name, help, [], ({ stats }) => [[{}, stats[field]]]),
  )
  summed(
    RATE_LIMIT_METRICS.degraded,
    'Requests decided by the onStoreError policy while Redis could not be used.',
    ['policy'],
    ({ policy, stats }) => [[{ policy }, stats.degraded]],
  )
  summed(
    RATE_LIMIT_METRICS.storeErrors,
    'Redis calls of a rate limiter that failed: kind is error (Redis answered an error or the connection dropped) or timeout.',
    ['kind'],
    ({ stats }) => [
      [{ kind: 'error' }, stats.storeErrors.error],
      [{ kind: 'timeout' }, stats.storeErrors.timeout],
    ],
  )
  return first
}

/** The fallback gauge per limiter, and the connection gauges of the process. */
function registerGauges(
  { Gauge }: typeof PromClient,
  registry: Registry,
  limiters: ReadonlySet<MeteredLimiter>,
  pools: ReadonlyMap<PoolSource, number>,
): void {
  const registers = [registry]
  new Gauge({
    name: RATE_LIMIT_METRICS.fallback,
    help: '1 while a rate limiter cannot use Redis and runs on its onStoreError policy, else 0.',
    labelNames: ['namespace', 'type'],
    registers,
    collect() {
      this.reset()
      // Two limiters may share labels (one namespace, two key prefixes): either in fallback shows 1.
      const values = new Map<string, { labels: { namespace: string; type: string }; value: number }>()
      for (const limiter of limiters) {
        const id = `${limiter.namespace}\0${limiter.type}`
        const value = limiter.inFallback() ? 1 : 0
        const held = values.get(id)
        if (held === undefined) values.set(id, { labels: { namespace: limiter.namespace, type: limiter.type }, value })
        else held.value = Math.max(held.value, value)
      }
      for (const { labels, value } of values.values()) this.set(labels, value)
    },
  })
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
