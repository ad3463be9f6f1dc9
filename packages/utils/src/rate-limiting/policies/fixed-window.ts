// The fixed window as a policy: per limit, a window that starts at the client's first spend, as in
// express-rate-limit, with several limits and a cost. policy-scripts.ts runs the same in Lua.
import type { CheckedLimit, LimitState, PolicyDecision } from './limits.js'

/** A client's state: per limit, when its window ends (ms since the epoch, 0 for none) at `2i`, and its count at `2i + 1`. */
export const FIXED_WIDTH = 2

/**
 * Decides a request of `cost` at `now` and, when every limit allows it, spends it in `state`. A
 * limit whose window has ended counts from 0, and its next window starts with the next spend. A
 * limit allows the request when count + cost ≤ max. Unlike express-rate-limit's single limit, a
 * refused request counts nowhere: with several limits, none is spent unless all allow.
 */
export function fixedWindow(
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
    const count = state[2 * i]! > now ? state[2 * i + 1]! : 0
    if (count + cost <= limits[i]!.max) continue
    allowed = false
    // Over the limit only within a window, which then ends: the request fits in the next.
    retryMs = Math.max(retryMs, state[2 * i]! - now)
    if (count + 1 > limits[i]!.max) blockedMs = Math.max(blockedMs, state[2 * i]! - now)
  }
  // A forced spend (an operator's penalty, or a reward's negative cost) is made whatever the limits say.
  if (force) allowed = true
  if (allowed && cost !== 0) {
    for (let i = 0; i < limits.length; i++) {
      if (state[2 * i]! <= now) {
        // A reward has nothing to give back once the window has ended.
        if (cost < 0) continue
        state[2 * i] = now + limits[i]!.windowMs
        state[2 * i + 1] = 0
      }
      state[2 * i + 1] = Math.max(0, state[2 * i + 1]! + cost)
    }
  }
  return { allowed, retryMs, blockedMs, limits: limits.map((limit, i) => stateOf(limit, state, 2 * i, now)) }
}

function stateOf(limit: CheckedLimit, state: Float64Array, at: number, now: number): LimitState {
  const { name, max, windowMs } = limit
  const open = state[at]! > now
  const count = open ? state[at + 1]! : 0
  // Never below 0: a client whose policy changed to a smaller max may have spent more than it holds.
  return { name, max, windowMs, remaining: Math.max(0, max - count), resetMs: open ? state[at]! - now : 0 }
}

/** ms from `now` until a client's state can be forgotten: when its last window ends. */
export function fixedExpiryMs(limits: readonly CheckedLimit[], state: Float64Array, now: number): number {
  let longest = 0
  for (let i = 0; i < limits.length; i++) longest = Math.max(longest, state[2 * i]! - now)
  return longest
}
