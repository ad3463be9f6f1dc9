// A policy's Redis store behind the same deadlines and circuit breakers as the fixed window's.
import type { RedisCommandClient } from '../config/types.js'
import type { LimiterStats } from '../observability/stats.js'
import type { CheckedLimit, PolicyDecision } from '../policies/limits.js'
import type { RedisPolicyStore } from '../policies/redis-policy-store.js'
import type { Breakers } from '../resilience/breakers.js'
import type { BatchedSend, WriteWatch } from './batched-calls.js'
import { failEach, PendingCalls, StoreUnavailableError, withTimeout } from './deadlines.js'
import { circuitOpen, guardedCall, GuardedPolicyCall } from './guarded-calls.js'
import { clusterOf } from './redis-store.js'

/**
 * RedisPolicyStore, guarded as GuardedRedisStore guards rate-limit-redis's: while the key's breaker
 * is open a call fails at once; a call that errors, or that Redis leaves unanswered past
 * `timeoutMs`, fails with StoreUnavailableError, which the limiter turns into its onStoreError
 * policy, and tells the breaker. Its script is loaded when it is made, on every master of a
 * Cluster, and again each time a breaker's probe finds Redis back (redis/backend.ts), so that a
 * request's call is one EVALSHA and not an EVALSHA, its NOSCRIPT, then an EVAL.
 */
export class GuardedPolicyStore {
  readonly #pending: PendingCalls
  readonly #unsubscribe: () => void

  constructor(
    private readonly inner: RedisPolicyStore,
    private readonly client: RedisCommandClient,
    private readonly breakers: Breakers,
    timeoutMs: number,
    stats: LimiterStats,
    writes: WriteWatch | undefined,
    /** The batched sender of a single Redis or Sentinel, for the hot path; none on a Cluster. */
    private readonly batched?: BatchedSend,
  ) {
    this.#pending = new PendingCalls(
      timeoutMs,
      stats,
      writes === undefined ? undefined : () => writes.oldestUnanswered(),
    )
    this.#unsubscribe = breakers.onEach((breaker, healthy) => {
      if (healthy) return
      writes?.forgetUnanswered()
      failEach(this.#pending.through(breaker), () => new StoreUnavailableError('Redis became unavailable'))
    })
  }

  /** SCRIPT LOAD on Redis, or on every master of a Cluster, each within `timeoutMs`. */
  async reloadScripts(timeoutMs: number): Promise<void> {
    const cluster = clusterOf(this.client)
    const targets: RedisCommandClient[] = cluster === undefined ? [this.client] : cluster.nodes('master')
    await Promise.all(targets.map((node) => withTimeout(node.call('SCRIPT', 'LOAD', this.inner.script), timeoutMs)))
  }

  consume(key: string, cost: number, limits: readonly CheckedLimit[] = this.inner.limits): Promise<PolicyDecision> {
    if (this.batched === undefined) return this.#guard(key, () => this.inner.consume(key, cost, limits), true)
    const breaker = this.breakers.for(this.inner.keyOf(key))
    if (!breaker.healthy) return circuitOpen()
    const call = new GuardedPolicyCall(this.#pending, breaker, this.inner, key, cost, limits)
    this.batched.enqueue(call)
    return call.promise
  }

  get(key: string, limits: readonly CheckedLimit[] = this.inner.limits): Promise<PolicyDecision> {
    return this.#guard(key, () => this.inner.get(key, limits))
  }

  async resetKey(key: string): Promise<void> {
    await this.#guard(key, () => this.inner.resetKey(key))
  }

  /** An operator's forced spend of `cost` (a penalty; negative, a reward), whatever the limits say. */
  adjust(key: string, cost: number, limits: readonly CheckedLimit[]): Promise<PolicyDecision> {
    return this.#guard(key, () => this.inner.consume(key, cost, limits, true))
  }

  /** Refuses every request of the client for `ms`; answers when it ends. */
  block(key: string, ms: number): Promise<number> {
    return this.#guard(key, () => this.inner.block(key, ms))
  }

  dispose(): void {
    this.#unsubscribe()
  }

  #guard<T>(key: string, call: () => Promise<T>, timed = false): Promise<T> {
    return guardedCall(this.#pending, this.breakers.for(this.inner.keyOf(key)), call, timed)
  }
}
