// Reference models of the policies, written from their definitions and not from the code under
// test: the fixed and the sliding window recount a log of every spend, the token bucket
// counts tokens (the dual of the GCRA the code runs) in BigInt. Times until a request could pass
// are found by search. Slow and plain on purpose: the property tests hold the memory store and
// Redis to these.
import fc from 'fast-check'

import type { PolicyAlgorithm } from '#src/policies/algorithms.js'
import type { CheckedLimit, PolicyDecision } from '#src/policies/limits.js'

export interface ReferenceModel {
  decide(key: string, now: number, cost: number): PolicyDecision
}

/** The smallest t in [from, to] for which `fits(t)` holds, when fits is false then true for good. */
function firstFit(from: number, to: number, fits: (t: number) => boolean): number {
  let low = from
  let high = to
  if (!fits(high)) throw new Error(`reference: nothing fits by ${to}`)
  while (low < high) {
    const mid = Math.floor((low + high) / 2)
    if (fits(mid)) high = mid
    else low = mid + 1
  }
  return low
}

/** The sliding window: each spend logged; a limit's counts are the logged costs in its aligned windows. */
export function slidingReference(limits: readonly CheckedLimit[]): ReferenceModel {
  const logs = new Map<string, { at: number; cost: number }[]>()
  const counts = (log: { at: number; cost: number }[], w: number, t: number) => {
    const window = Math.floor(t / w)
    let current = 0
    let previous = 0
    for (const spend of log) {
      const of = Math.floor(spend.at / w)
      if (of === window) current += spend.cost
      else if (of === window - 1) previous += spend.cost
    }
    return { current, previous, elapsed: t - window * w }
  }
  const fits = (log: { at: number; cost: number }[], limit: CheckedLimit, t: number, cost: number) => {
    const { current, previous, elapsed } = counts(log, limit.windowMs, t)
    const w = BigInt(limit.windowMs)
    return BigInt(previous) * (w - BigInt(elapsed)) + BigInt(current + cost) * w <= BigInt(limit.max) * w
  }
  return {
    decide(key, now, cost) {
      const log = logs.get(key) ?? []
      logs.set(key, log)
      const allowed = limits.every((limit) => fits(log, limit, now, cost))
      const longest = Math.max(...limits.map((limit) => limit.windowMs))
      const waitFor = (units: number) =>
        firstFit(now, now + 3 * longest, (t) => limits.every((limit) => fits(log, limit, t, units))) - now
      const retryMs = allowed ? 0 : waitFor(cost)
      const blockedMs = allowed ? 0 : waitFor(1)
      if (allowed && cost > 0) log.push({ at: now, cost })
      return {
        allowed,
        retryMs,
        blockedMs,
        limits: limits.map((limit) => {
          const { name, max, windowMs: w } = limit
          const { current, previous, elapsed } = counts(log, w, now)
          const left = BigInt(max * w) - BigInt(previous) * BigInt(w - elapsed) - BigInt(current * w)
          const remaining = left <= 0n ? 0 : Number(left / BigInt(w))
          const resetMs = current > 0 ? 2 * w - elapsed : previous > 0 ? w - elapsed : 0
          return { name, max, windowMs: w, remaining, resetMs }
        }),
      }
    },
  }
}

/**
 * The token bucket: per limit, tokens × windowMs held as a BigInt (exact), full at max × windowMs,
 * refilled by max for every ms; a request takes cost × windowMs.
 */
export function bucketReference(limits: readonly CheckedLimit[]): ReferenceModel {
  const buckets = new Map<string, { tokens: bigint[]; at: number }>()
  const full = (limit: CheckedLimit) => BigInt(limit.max) * BigInt(limit.windowMs)
  const tokensAt = (bucket: { tokens: bigint[]; at: number }, i: number, t: number) => {
    const limit = limits[i]!
    const refilled = bucket.tokens[i]! + BigInt(t - bucket.at) * BigInt(limit.max)
    return refilled > full(limit) ? full(limit) : refilled
  }
  return {
    decide(key, now, cost) {
      const bucket = buckets.get(key) ?? { tokens: limits.map(full), at: now }
      buckets.set(key, bucket)
      const need = (i: number, units = cost) => BigInt(units) * BigInt(limits[i]!.windowMs)
      const fitsAt = (t: number, units = cost) => limits.every((_, i) => tokensAt(bucket, i, t) >= need(i, units))
      const allowed = fitsAt(now)
      const longest = Math.max(...limits.map((limit) => limit.windowMs))
      const retryMs = allowed ? 0 : firstFit(now, now + 2 * longest, fitsAt) - now
      const blockedMs = allowed ? 0 : firstFit(now, now + 2 * longest, (t) => fitsAt(t, 1)) - now
      const tokens = limits.map((_, i) => tokensAt(bucket, i, now) - (allowed ? need(i) : 0n))
      bucket.tokens = tokens
      bucket.at = now
      return {
        allowed,
        retryMs,
        blockedMs,
        limits: limits.map((limit, i) => {
          const missing = full(limit) - tokens[i]!
          const max = BigInt(limit.max)
          return {
            name: limit.name,
            max: limit.max,
            windowMs: limit.windowMs,
            remaining: Number(tokens[i]! / BigInt(limit.windowMs)),
            resetMs: Number((missing + max - 1n) / max),
          }
        }),
      }
    },
  }
}

/**
 * The fixed window: each spend logged. A limit's window opens at a spend when none is open, and
 * lasts windowMs; its count is what was spent in it.
 */
export function fixedReference(limits: readonly CheckedLimit[]): ReferenceModel {
  const logs = new Map<string, number[]>()
  const costs = new Map<string, number[]>()
  /** The window of a limit open at `t` ([start, count]), from the log, or undefined. */
  const openAt = (times: number[], spent: number[], w: number, t: number) => {
    let start: number | undefined
    let count = 0
    for (let k = 0; k < times.length; k++) {
      if (start === undefined || times[k]! >= start + w) {
        start = times[k]!
        count = 0
      }
      count += spent[k]!
    }
    return start !== undefined && start + w > t ? { end: start + w, count } : undefined
  }
  return {
    decide(key, now, cost) {
      const times = logs.get(key) ?? []
      const spent = costs.get(key) ?? []
      logs.set(key, times)
      costs.set(key, spent)
      const countOf = (i: number, t: number) => openAt(times, spent, limits[i]!.windowMs, t)?.count ?? 0
      const fitsAt = (t: number, units: number) => limits.every((limit, i) => countOf(i, t) + units <= limit.max)
      const allowed = fitsAt(now, cost)
      const longest = Math.max(...limits.map((limit) => limit.windowMs))
      const retryMs = allowed ? 0 : firstFit(now, now + longest, (t) => fitsAt(t, cost)) - now
      const blockedMs = allowed ? 0 : firstFit(now, now + longest, (t) => fitsAt(t, 1)) - now
      if (allowed && cost > 0) {
        times.push(now)
        spent.push(cost)
      }
      return {
        allowed,
        retryMs,
        blockedMs,
        limits: limits.map((limit) => {
          const open = openAt(times, spent, limit.windowMs, now)
          return {
            name: limit.name,
            max: limit.max,
            windowMs: limit.windowMs,
            remaining: limit.max - (open?.count ?? 0),
            resetMs: open === undefined ? 0 : open.end - now,
          }
        }),
      }
    },
  }
}

/** Random traffic: limits, then steps of (ms later, which client, what cost). */
export const traffic = fc
  .array(fc.record({ max: fc.integer({ min: 1, max: 12 }), windowMs: fc.integer({ min: 1, max: 3000 }) }), {
    minLength: 1,
    maxLength: 3,
  })
  .chain((limits) =>
    fc.record({
      limits: fc.constant(limits),
      start: fc.integer({ min: 0, max: 2 ** 41 }),
      steps: fc.array(
        fc.record({
          dt: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 7000 })),
          client: fc.constantFrom('a', 'b'),
          cost: fc.integer({ min: 1, max: Math.min(...limits.map((limit) => limit.max)) }),
        }),
        { maxLength: 40 },
      ),
    }),
  )

/** Each algorithm's reference model. */
export const REFERENCES: Record<PolicyAlgorithm, typeof slidingReference> = {
  'fixed-window': fixedReference,
  'sliding-window': slidingReference,
  'token-bucket': bucketReference,
}
