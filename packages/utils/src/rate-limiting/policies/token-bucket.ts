// The token bucket as GCRA: one theoretical arrival time (TAT) per limit, `max` the burst, refilled
// at `max` per `windowMs`. policy-scripts.ts runs the same arithmetic in Lua; docs/algorithms.md has
// the formulas.
import type { CheckedLimit, LimitState, PolicyDecision } from './limits.js'

/**
 * A client's state under the token bucket: two numbers per limit, zeros for a new client. TAT is
 * kept exact as `a + b / max` ms, a whole number of ms at `2i` and b (0 ≤ b < max) at `2i + 1`:
 * one unit takes windowMs / max ms to come back, rarely a whole number, and a rounded TAT would
 * drift by up to a unit per window.
 */
export const BUCKET_WIDTH = 2

/**
 * Decides a request of `cost` at `now` (whole ms since the epoch) and, when every limit allows it,
 * spends it in `state`. Times are counted in 1/max ms, so all of it is exact integer arithmetic:
 * with `ahead` = max(TAT − now, 0) × max, the request fits when ahead + cost × windowMs ≤ max ×
 * windowMs (the bucket holds `cost` units), and spending sets TAT to now + (ahead + cost ×
 * windowMs) / max.
 */
export function tokenBucket(
  limits: readonly CheckedLimit[],
  state: Float64Array,
  now: number,
  cost: number,
  force = false,
): PolicyDecision {
  let allowed = true
  let retryMs = 0
  let blockedMs = 0
  for (let i = 0; i < limits.length; i++) {
    const { max, windowMs } = limits[i]!
    const ahead = aheadOf(state, 2 * i, now, max)
    if (ahead + cost * windowMs <= max * windowMs) continue
    allowed = false
    retryMs = Math.max(retryMs, Math.ceil((ahead + cost * windowMs - max * windowMs) / max))
    blockedMs = Math.max(blockedMs, Math.max(0, Math.ceil((ahead + windowMs - max * windowMs) / max)))
  }
  // A forced spend (a penalty, or a reward's negative cost) is made whatever the limits say; a
  // reward never fills a bucket past full.
  if (force) allowed = true
  if (allowed && cost !== 0) {
    for (let i = 0; i < limits.length; i++) {
      const { max, windowMs } = limits[i]!
      const after = Math.max(0, aheadOf(state, 2 * i, now, max) + cost * windowMs)
      state[2 * i] = now + Math.floor(after / max)
      state[2 * i + 1] = after % max
    }
  }
  return {
    allowed,
    retryMs,
    blockedMs,
    limits: limits.map((limit, i) => stateOf(limit, aheadOf(state, 2 * i, now, limit.max))),
  }
}

/** How far a limit's TAT is ahead of `now`, in 1/max ms; 0 when it is not ahead (the bucket is full). */
function aheadOf(state: Float64Array, at: number, now: number, max: number): number {
  const ms = state[at]!
  return ms < now ? 0 : (ms - now) * max + state[at + 1]!
}

/** A limit's whole units left and ms until full, from how far its TAT is ahead. */
function stateOf(limit: CheckedLimit, ahead: number): LimitState {
  const { name, max, windowMs } = limit
  // Never below 0: after a change of policy to a smaller max, TAT may be further ahead than it holds.
  const remaining = Math.max(0, Math.floor((max * windowMs - ahead) / windowMs))
  return { name, max, windowMs, remaining, resetMs: Math.ceil(ahead / max) }
}

/** ms from `now` until a client's bucket state can be forgotten: when every bucket is full again. */
export function bucketExpiryMs(limits: readonly CheckedLimit[], state: Float64Array, now: number): number {
  let longest = 0
  for (let i = 0; i < limits.length; i++)
    longest = Math.max(longest, Math.ceil(aheadOf(state, 2 * i, now, limits[i]!.max) / limits[i]!.max))
  return longest
}
