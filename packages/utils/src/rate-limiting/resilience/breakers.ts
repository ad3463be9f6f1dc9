// The circuits a limiter set's Redis calls go through: one for a single server or Sentinel, and
// one per master for a Cluster, so a lost master sends only its own slots to the policy.
import calculateSlot from 'cluster-key-slot'
import type { Cluster } from 'ioredis'

import type { CircuitBreaker } from './circuit-breaker.js'

export interface Breakers {
  /** The circuit that guards `redisKey`; the set's only one when there is one. */
  for(redisKey?: string): CircuitBreaker
  /** True while every circuit is closed. */
  readonly healthy: boolean
  /** When the set as a whole last turned healthy or not. */
  readonly since: Date
  /** One circuit for everything: requests may skip Redis at once while it is open. */
  readonly single: boolean
  /** Called when the set as a whole turns healthy or not. Returns the unsubscribe. */
  onChange(listener: (healthy: boolean) => void): () => void
  /** Called when any one circuit opens or closes. Returns the unsubscribe. */
  onEach(listener: (breaker: CircuitBreaker, healthy: boolean) => void): () => void
  dispose(): void
}

type MakeHealth = (node: string, probeKey: () => string) => CircuitBreaker

/** A probe key in the same slot as `key`: `universo:probe:<n>` for the first n that hashes there. */
export function probeKeyFor(key: string): string {
  const slot = calculateSlot(key)
  let found = PROBE_KEYS.get(slot)
  if (found === undefined) {
    // 16,384 slots: a few thousand CRC16s at most, once per slot, only while probing.
    for (let n = 0; found === undefined; n++) {
      const candidate = `universo:probe:${n}`
      if (calculateSlot(candidate) === slot) found = candidate
    }
    PROBE_KEYS.set(slot, found)
  }
  return found
}

const PROBE_KEYS = new Map<number, string>()

class BreakerSet implements Breakers {
  readonly #byNode = new Map<string, { breaker: CircuitBreaker; lastKey: string | undefined }>()
  readonly #overall = new Set<(healthy: boolean) => void>()
  readonly #each = new Set<(breaker: CircuitBreaker, healthy: boolean) => void>()
  #healthy = true
  #since = new Date()

  constructor(
    private readonly make: MakeHealth,
    private readonly nodeOf: (key: string | undefined) => string,
    readonly single: boolean,
  ) {}

  get healthy(): boolean {
    return this.#healthy
  }

  get since(): Date {
    return this.#since
  }

  for(redisKey?: string): CircuitBreaker {
    const node = this.nodeOf(redisKey)
    let entry = this.#byNode.get(node)
    if (entry === undefined) {
      const created: { breaker: CircuitBreaker; lastKey: string | undefined } = {
        breaker: this.make(node, () => probeKeyFor(created.lastKey ?? node)),
        lastKey: redisKey,
      }
      created.breaker.onChange((healthy) => this.#changed(created.breaker, healthy))
      this.#byNode.set(node, created)
      entry = created
    }
    if (redisKey !== undefined) entry.lastKey = redisKey
    return entry.breaker
  }

  onChange(listener: (healthy: boolean) => void): () => void {
    this.#overall.add(listener)
    return () => this.#overall.delete(listener)
  }

  onEach(listener: (breaker: CircuitBreaker, healthy: boolean) => void): () => void {
    this.#each.add(listener)
    return () => this.#each.delete(listener)
  }

  dispose(): void {
    for (const { breaker } of this.#byNode.values()) breaker.dispose()
    this.#overall.clear()
    this.#each.clear()
  }

  #changed(breaker: CircuitBreaker, healthy: boolean): void {
    for (const listener of this.#each) listener(breaker, healthy)
    const all = [...this.#byNode.values()].every((entry) => entry.breaker.healthy)
    if (all === this.#healthy) return
    this.#healthy = all
    this.#since = new Date()
    for (const listener of this.#overall) listener(all)
  }
}

/** One circuit for a single server or Sentinel (its master is one server at a time). */
export function singleBreaker(make: MakeHealth): Breakers {
  return new BreakerSet(make, () => 'redis', true)
}

/** One circuit per master, found from the key's slot in the client's slot map. */
export function clusterBreakers(cluster: Cluster, make: MakeHealth): Breakers {
  return new BreakerSet(
    make,
    (key) => (key === undefined ? 'cluster' : (cluster.slots[calculateSlot(key)]?.[0] ?? 'cluster')),
    false,
  )
}
