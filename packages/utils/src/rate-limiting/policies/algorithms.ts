// The algorithms that decide in this process (the memory store, and the model the tests hold Redis
// to): each one's state layout, its decision, and how long a client's state must be kept.
import type { CheckedLimit, PolicyDecision } from './limits.js'
import { FIXED_WIDTH, fixedExpiryMs, fixedWindow } from './fixed-window.js'
import { FIXED_WINDOW_SCRIPT, SLIDING_WINDOW_SCRIPT, TOKEN_BUCKET_SCRIPT } from './policy-scripts.js'
import { SLIDING_WIDTH, slidingExpiryMs, slidingWindow } from './sliding-window.js'
import { BUCKET_WIDTH, bucketExpiryMs, tokenBucket } from './token-bucket.js'

/**
 * The algorithms as policies: several limits and a cost. A fixed window with one limit and a cost
 * of 1 is counted by rate-limit-redis's script and our compact store instead (the default's path).
 */
export type PolicyAlgorithm = 'fixed-window' | 'sliding-window' | 'token-bucket'

export interface AlgorithmModel {
  /** Numbers of state per limit. */
  readonly width: number
  /**
   * Decides a request of `cost` at `now`, spending it in `state` when every limit allows it, or
   * whatever they say when `force` (a penalty; a negative cost is a reward, never below nothing spent).
   */
  decide(
    limits: readonly CheckedLimit[],
    state: Float64Array,
    now: number,
    cost: number,
    force?: boolean,
  ): PolicyDecision
  /** ms from `now` until the state can be forgotten (it would decide as a new client's). */
  expiryMs(limits: readonly CheckedLimit[], state: Float64Array, now: number): number
  /** The same decision in Lua, for Redis (policy-scripts.ts). */
  readonly script: string
  /** What the algorithm's Redis keys carry after the limiter's prefix, apart from other algorithms'. */
  readonly tag: string
}

export const MODELS: Readonly<Record<PolicyAlgorithm, AlgorithmModel>> = Object.freeze({
  'fixed-window': {
    width: FIXED_WIDTH,
    decide: fixedWindow,
    expiryMs: fixedExpiryMs,
    script: FIXED_WINDOW_SCRIPT,
    tag: 'fw',
  },
  'sliding-window': {
    width: SLIDING_WIDTH,
    decide: slidingWindow,
    expiryMs: slidingExpiryMs,
    script: SLIDING_WINDOW_SCRIPT,
    tag: 'sw',
  },
  'token-bucket': {
    width: BUCKET_WIDTH,
    decide: tokenBucket,
    expiryMs: bucketExpiryMs,
    script: TOKEN_BUCKET_SCRIPT,
    tag: 'tb',
  },
})
