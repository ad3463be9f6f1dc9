// express-rate-limit's MemoryStore, timing each increment for the store latency metric.
import { MemoryStore, type IncrementResponse } from 'express-rate-limit'

import type { LimiterStats, StoreKind } from '../stats.js'

/** A MemoryStore that reports how long each increment took, while metrics are on. */
export class MeteredMemoryStore extends MemoryStore {
  constructor(
    private readonly stats: LimiterStats,
    private readonly kind: StoreKind,
  ) {
    super()
  }

  override increment(key: string): Promise<IncrementResponse> {
    const observe = this.stats.observeStore
    if (observe === undefined) return super.increment(key)
    // MemoryStore counts synchronously, before its promise is returned: timing the call is timing
    // the work, with no extra promise on the request path.
    const start = performance.now()
    const result = super.increment(key)
    observe((performance.now() - start) / 1000, this.kind)
    return result
  }
}
