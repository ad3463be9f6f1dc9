// The sliding window: two aligned fixed windows per limit, the previous one weighted by its overlap.
// policy-scripts.ts runs the same arithmetic in Lua, line for line; docs/algorithms.md has the formulas.
import type { CheckedLimit, LimitState, PolicyDecision } from './limits.js'

/**
 * A client's state under the sliding window: three numbers per limit, zeros for a new client.
 * At `3i`: the index of the window counted at `3i + 1` (floor(time / windowMs)); at `3i + 2`, the
 * count of the window before it.
 */
export const SLIDING_WIDTH = 3

/**
 * Decides a request of `cost` at `now` (ms since the epoch) and, when every limit allows it, spends
 * it in `state`. A limit allows it when, in unit·ms, previous × (W − e) + (current + cost) × W ≤
 * max × W, where e is the time since the current window began: the previous window counts for the
 * share of it that still overlaps the last W ms.
 */
export function slidingWindow(
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
    const { max, windowMs: w } = limits[i]!
    const window = Math.floor(now / w)
    shift(state, 3 * i, window)
    const elapsed = now - window * w
    const current = state[3 * i + 1]!
    const previous = state[3 * i + 2]!
    if (previous * (w - elapsed) + (current + cost) * w <= max * w) continue
    allowed = false
    retryMs = Math.max(retryMs, waitFor(max, w, elapsed, current, previous, cost))
    if (previous * (w - elapsed) + (current + 1) * w > max * w) {
      blockedMs = Math.max(blockedMs, waitFor(max, w, elapsed, current, previous, 1))
    }
  }
  // A forced spend (a penalty, or a reward's negative cost) is made whatever the limits say; a
  // reward gives back from this window's count only, never below 0.
  if (force) allowed = true
  if (allowed) for (let i = 0; i < limits.length; i++) state[3 * i + 1] = Math.max(0, state[3 * i + 1]! + cost)
  return { allowed, retryMs, blockedMs, limits: limits.map((limit, i) => stateOf(limit, state, 3 * i, now)) }
}

/** Moves a limit's counts to `window`: the current becomes the previous, or both start over. */
function shift(state: Float64Array, at: number, window: number): void {
  const stored = state[at]!
  if (stored === window) return
  state[at + 2] = stored === window - 1 ? state[at + 1]! : 0
  state[at + 1] = 0
  state[at] = window
}

/**
 * ms from now until a request of `cost` fits one limit. Within this window it fits once the
 * previous count's weight has fallen enough, which needs current + cost ≤ max; otherwise it fits
 * in the next window, where this window's count is the previous one.
 */
function waitFor(max: number, w: number, elapsed: number, current: number, previous: number, cost: number): number {
  if (current + cost <= max) {
    // previous × (W − e′) ≤ (max − current − cost) × W, for the smallest e′ ≥ e.
    const at = w - Math.floor(((max - current - cost) * w) / previous)
    return at - elapsed
  }
  // In the next window: current × (W − e′) ≤ (max − cost) × W, with current > 0 as cost ≤ max.
  const at = w - Math.floor(((max - cost) * w) / current)
  return w - elapsed + at
}

/** A limit's remaining units and time until whole, from its counts at `now`. */
function stateOf(limit: CheckedLimit, state: Float64Array, at: number, now: number): LimitState {
  const { name, max, windowMs: w } = limit
  const window = state[at]!
  const elapsed = now - window * w
  const current = state[at + 1]!
  const previous = state[at + 2]!
  const remaining = Math.max(0, Math.floor((max * w - previous * (w - elapsed) - current * w) / w))
  // Whole again once no count weighs: this window's after the next, the previous one's after this.
  const resetMs = current > 0 ? 2 * w - elapsed : previous > 0 ? w - elapsed : 0
  return { name, max, windowMs: w, remaining, resetMs }
}

/** ms from `now` until a client's sliding state can be forgotten: when its counts no longer weigh. */
export function slidingExpiryMs(limits: readonly CheckedLimit[], _state: Float64Array, now: number): number {
  let longest = 0
  for (const { windowMs: w } of limits) longest = Math.max(longest, 2 * w - (now - Math.floor(now / w) * w))
  return longest
}
