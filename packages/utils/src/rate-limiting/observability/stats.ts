// What one limiter counts as requests pass through it: plain numbers, read by the metrics at scrape time.
/** Which store decided a request; `fallback` is the in-memory limiter used while Redis is away. */
export type StoreKind = 'redis' | 'memory' | 'fallback' | 'custom'

/**
 * Running totals of one limiter. The request path only adds to numbers here, so a limiter costs the
 * same with or without metrics; prom-client reads them when it is scraped.
 */
export class LimiterStats {
  /** Requests the limiter counted (skipped ones are not). */
  requests = 0
  /** Requests answered 429. */
  rejections = 0
  /** Requests over the limit that shadow mode let through. */
  shadowRejections = 0
  /** Requests `skip` let through without counting. */
  skipped = 0
  /** Requests allowed with less than NEAR_LIMIT_SHARE of the budget left. */
  nearLimit = 0
  /** Requests decided by the onStoreError policy while Redis could not be used. */
  degraded = 0
  /** Redis calls that failed: answered with an error, or not in time. */
  readonly storeErrors = { error: 0, timeout: 0 }
  /**
   * Redis calls that timed out and were answered afterwards: the policy decided those requests
   * while Redis was in fact reachable. Above zero, storeTimeoutMs is shorter than Redis's answers.
   */
  lateAnswers = 0
  /** Called with the seconds each store increment took; set by the metrics when they are on. */
  observeStore: ((seconds: number, store: StoreKind) => void) | undefined = undefined
}

/** An allowed request with less than this share of its budget left counts as near the limit. */
export const NEAR_LIMIT_SHARE = 0.2

/** True when `remaining` of `limit` is under NEAR_LIMIT_SHARE of it. */
export const isNearLimit = (remaining: number, limit: number): boolean => remaining < limit * NEAR_LIMIT_SHARE
