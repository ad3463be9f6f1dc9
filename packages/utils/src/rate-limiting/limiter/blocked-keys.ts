// Clients known to be over their limit, until their window resets: answered 429 without the store.

import type { CheckedLimit } from '../policies/limits.js'

/** Blocked clients remembered per limiter. Past it, a blocked client is decided by the store as usual. */
export const MAX_BLOCKED_KEYS = 10_000

/**
 * How long a blocked client is answered from memory before the store is asked again. It bounds how
 * long a process goes on refusing a client that an operator reset or rewarded elsewhere in the
 * fleet, at one store call a second per blocked client.
 */
export const BLOCKED_RECHECK_MS = 1000

/** One blocked client: until when, and what its 429 says. */
export interface BlockedKey {
  /** When the client's window resets (ms since the epoch). */
  readonly resetMs: number
  readonly limit: number
  /** The name of a policy's limit that refused it (RateLimit names it); undefined outside policies. */
  readonly name?: string | undefined
  /** The policy of the decision that blocked it (`policies`), if one applied. */
  readonly policy?: string | undefined
  /** The limits of that decision, for the RateLimit-Policy header. */
  readonly limits?: readonly CheckedLimit[] | undefined
}

/**
 * A bounded map of blocked client keys. A flood from one client over its limit then costs a Map
 * lookup: no store call, no Redis round trip, no express-rate-limit pass. The decision is the one
 * the store made: the client stays over its limit until the reset the store gave, whatever other
 * processes count meanwhile.
 */
export class BlockedKeys {
  readonly #blocked = new Map<string, BlockedKey>()
  #nextSweep = 0

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * The block of `key`, while it is still blocked; undefined once it has ended, and, once every
   * BLOCKED_RECHECK_MS, for the one request that asks the store again.
   */
  get(key: string): BlockedKey | undefined {
    const found = this.#blocked.get(key)
    if (found === undefined) return undefined
    const now = this.now()
    if (found.resetMs <= now) {
      this.delete(key)
      return undefined
    }
    if (now < this.#checkAfter.get(key)!) return found
    // Due: this one request goes to the store, the others are still answered from here. If the
    // store lets it through, the limiter forgets the key (limiter/front.ts); if it refuses, the
    // block stands, checked again a BLOCKED_RECHECK_MS later.
    this.#checkAfter.set(key, now + BLOCKED_RECHECK_MS)
    return undefined
  }

  /** When each block must be checked with the store again. */
  readonly #checkAfter = new Map<string, number>()

  /** Remembers that `key` is over `limit` (of a policy, `name`) until `resetMs`, if there is room. */
  block(
    key: string,
    resetMs: number,
    limit: number,
    name?: string,
    policy?: string,
    limits?: readonly CheckedLimit[],
  ): void {
    const now = this.now()
    if (resetMs <= now) return
    const known = this.#blocked.get(key)
    if (
      known !== undefined &&
      known.resetMs === resetMs &&
      known.limit === limit &&
      known.name === name &&
      known.limits === limits
    )
      return
    if (this.#blocked.size >= MAX_BLOCKED_KEYS && !this.#blocked.has(key)) {
      if (now < this.#nextSweep) return
      this.#nextSweep = now + 1000
      for (const [blockedKey, { resetMs: until }] of this.#blocked) {
        if (until > now) continue
        this.#blocked.delete(blockedKey)
        this.#checkAfter.delete(blockedKey)
      }
      if (this.#blocked.size >= MAX_BLOCKED_KEYS) return
    }
    this.#blocked.set(key, name === undefined ? { resetMs, limit } : { resetMs, limit, name, policy, limits })
    this.#checkAfter.set(key, now + BLOCKED_RECHECK_MS)
  }

  /** Forgets `key` (resetKey), or every key. */
  delete(key?: string): void {
    if (key === undefined) {
      this.#blocked.clear()
      this.#checkAfter.clear()
    } else {
      this.#blocked.delete(key)
      this.#checkAfter.delete(key)
    }
  }

  get size(): number {
    return this.#blocked.size
  }
}
