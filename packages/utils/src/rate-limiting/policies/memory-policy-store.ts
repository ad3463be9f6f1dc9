// A policy counted in this process: each client's state for the sliding window or the token bucket.
import { MODELS, type AlgorithmModel, type PolicyAlgorithm } from './algorithms.js'
import { OperatorBlocks } from '../stores/operator-blocks.js'
import type { CheckedLimit, PolicyDecision } from './limits.js'

/**
 * The clients of a policy, kept in generations as CompactMemoryStore keeps its windows: every
 * rotation period (the longest window) the oldest of three generations is dropped whole, and a
 * client that comes back moves to the current one. A client's state is kept while it was touched
 * in the last two periods, and no state outlives two windows (a sliding window's counts weigh for
 * two, a bucket is full after one). Memory is bounded by the clients of three periods, and expiry
 * costs nothing per request. The period is one window, not two, so its timer never waits longer
 * than Node allows (MAX_LIMIT_WINDOW_MS).
 */
export class MemoryPolicyStore {
  readonly #model: AlgorithmModel
  /** The current generation first. */
  #generations = [new Map<string, Float64Array>(), new Map<string, Float64Array>(), new Map<string, Float64Array>()]
  readonly #rotation: NodeJS.Timeout

  constructor(
    algorithm: PolicyAlgorithm,
    readonly limits: readonly CheckedLimit[],
    /** Whole ms since the epoch: Date.now, or a test's clock. */
    private readonly now: () => number = Date.now,
    /** The longest window of any limits it will be asked about (policies give others per call). */
    period = Math.max(...limits.map((limit) => limit.windowMs)),
  ) {
    this.#model = MODELS[algorithm]
    this.#rotation = setInterval(() => this.#rotate(), period)
    this.#rotation.unref()
  }

  /**
   * Decides a request of `cost` for `key` by `limits` (the store's own unless given), and spends it
   * if every limit allows it. A limit's state is kept by its place in the list, whatever list a
   * call gives: a client whose policy changes keeps its counts (docs/rate-limiting.md).
   */
  consume(key: string, cost: number, limits: readonly CheckedLimit[] = this.limits, force = false): PolicyDecision {
    const now = this.now()
    if (!force) {
      const until = this.#blocks.until(key, now)
      if (until > 0) return this.#blocked(key, cost, limits, now, until)
    }
    return this.#model.decide(limits, this.#stateOf(key, limits.length), now, cost, force)
  }

  /**
   * Refuses every request of `key` for `ms` (an operator's block), whatever its limits say; its
   * counts stay as they are. Answers when it ends (ms since the epoch).
   */
  block(key: string, ms: number): number {
    const until = this.now() + ms
    this.#blocks.set(key, until)
    return until
  }

  readonly #blocks = new OperatorBlocks()

  /** A blocked client's decision, as the Redis scripts give it: refused until the block ends, nothing spent. */
  #blocked(key: string, cost: number, limits: readonly CheckedLimit[], now: number, until: number): PolicyDecision {
    const state = this.#find(key)
    const copy = () => {
      const fresh = new Float64Array(Math.max(state?.length ?? 0, this.#model.width * limits.length))
      if (state !== undefined) fresh.set(state)
      return fresh
    }
    const probe = this.#model.decide(limits, copy(), now, cost)
    const view = this.#model.decide(limits, copy(), now, 0)
    return {
      allowed: false,
      retryMs: Math.max(probe.allowed ? 0 : probe.retryMs, until - now),
      blockedMs: Math.max(probe.allowed ? 0 : probe.blockedMs, until - now),
      limits: view.limits,
    }
  }

  /** Where `key` stands by `limits`, spending nothing (a cost of 0 fits every limit, and changes nothing). */
  get(key: string, limits: readonly CheckedLimit[] = this.limits): PolicyDecision {
    const now = this.now()
    const until = this.#blocks.until(key, now)
    if (until > 0) return this.#blocked(key, 0, limits, now, until)
    const state = this.#find(key)
    const copy = new Float64Array(Math.max(state?.length ?? 0, this.#model.width * limits.length))
    if (state !== undefined) copy.set(state)
    return this.#model.decide(limits, copy, now, 0)
  }

  /** Forgets every client (the fallback's counts, once Redis is back). */
  resetAll(): void {
    for (const generation of this.#generations) generation.clear()
    this.#blocks.clear()
  }

  /** Forgets `key`'s state and any block of it. */
  resetKey(key: string): void {
    for (const generation of this.#generations) generation.delete(key)
    this.#blocks.delete(key)
  }

  /** How many clients it holds (every generation). */
  get size(): number {
    return this.#generations.reduce((sum, generation) => sum + generation.size, 0)
  }

  shutdown(): void {
    clearInterval(this.#rotation)
    for (const generation of this.#generations) generation.clear()
    this.#blocks.clear()
  }

  #find(key: string): Float64Array | undefined {
    for (const generation of this.#generations) {
      const state = generation.get(key)
      if (state !== undefined) return state
    }
    return undefined
  }

  /** The state of `key` in the current generation, for at least `count` limits: found, moved from an older one, or new. */
  #stateOf(key: string, count: number): Float64Array {
    const [current, ...older] = this.#generations as [Map<string, Float64Array>, ...Map<string, Float64Array>[]]
    const width = this.#model.width * count
    let state = current.get(key)
    if (state !== undefined && state.length >= width) return state
    if (state === undefined) {
      for (const generation of older) {
        state = generation.get(key)
        if (state === undefined) continue
        generation.delete(key)
        break
      }
    }
    if (state === undefined || state.length < width) {
      // A policy with more limits than the client's last: the new ones start whole.
      const wider = new Float64Array(width)
      if (state !== undefined) wider.set(state)
      state = wider
    }
    current.set(key, state)
    return state
  }

  #rotate(): void {
    this.#generations = [new Map<string, Float64Array>(), this.#generations[0]!, this.#generations[1]!]
  }
}
