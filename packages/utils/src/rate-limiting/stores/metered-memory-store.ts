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
    // Without metrics, MemoryStore's own promise as is: no extra await on the request path.
    if (observe === undefined) return super.increment(key)
    const start = performance.now()
    return super.increment(key).then((result) => {
      observe((performance.now() - start) / 1000, this.kind)
      return result
    })
  }
}
