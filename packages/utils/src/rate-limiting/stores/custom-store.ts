// An express-rate-limit Store of the user's (Memcached, Postgres, ...), behind the same deadlines and
// circuit as our Redis store: a call that fails or hangs past storeTimeoutMs goes to the limiter's
// onStoreError policy, and a probe brings the store back.
import type { ClientRateLimitInfo, IncrementResponse, Options, Store } from 'express-rate-limit'

import type { LimiterStats } from '../observability/stats.js'
import type { Breakers } from '../resilience/breakers.js'
import { PendingCalls } from './deadlines.js'
import { guardedCall } from './guarded-calls.js'

/** The key a probe asks the store about while its circuit is open. */
export const CUSTOM_STORE_PROBE_KEY = 'universo:probe'

/** The user's Store, each call guarded; a Store itself, so express-rate-limit counts through it. */
export class GuardedCustomStore implements Store {
  readonly #pending: PendingCalls
  readonly localKeys: boolean
  readonly prefix: string | undefined

  constructor(
    private readonly inner: Store,
    /** Put before each client key, so the limiters of a set never share a count: `{keyPrefix}:{name}:`. */
    private readonly keyPrefix: string,
    private readonly breakers: Breakers,
    timeoutMs: number,
    stats: LimiterStats,
  ) {
    this.#pending = new PendingCalls(timeoutMs, stats)
    this.localKeys = inner.localKeys ?? false
    this.prefix = inner.prefix
  }

  async init(options: Options): Promise<void> {
    await this.inner.init?.(options)
  }

  increment(key: string): Promise<IncrementResponse> {
    return this.#guard(() => this.inner.increment(this.keyPrefix + key), true)
  }

  get(key: string): Promise<ClientRateLimitInfo | undefined> {
    const get = this.inner.get?.bind(this.inner)
    if (get === undefined) return Promise.resolve(undefined)
    return this.#guard(() => get(this.keyPrefix + key))
  }

  async decrement(key: string): Promise<void> {
    await this.#guard(() => this.inner.decrement(this.keyPrefix + key))
  }

  async resetKey(key: string): Promise<void> {
    await this.#guard(() => this.inner.resetKey(this.keyPrefix + key))
  }

  /** Whether the store answers: a `get` where it has one, else an increment of the probe's own key. */
  async probe(): Promise<void> {
    if (this.inner.get !== undefined) await this.inner.get(CUSTOM_STORE_PROBE_KEY)
    else await this.inner.increment(CUSTOM_STORE_PROBE_KEY)
  }

  #guard<T>(call: () => T | Promise<T>, timed = false): Promise<T> {
    return guardedCall(this.#pending, this.breakers.for(), async () => call(), timed)
  }
}
