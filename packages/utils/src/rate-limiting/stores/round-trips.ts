// A sender's writes to Redis and their answers: which are still out, and how long answers take.

/** The writes a sender has handed to the client and not yet had answered, oldest first. */
export class Unanswered {
  readonly #writes = new Set<{ readonly at: number }>()

  /**
   * Records a write made now. The returned function says it has its answer (once is enough) and
   * gives the ms since the write: its round trip.
   */
  written(): () => number {
    const write = { at: performance.now() }
    this.#writes.add(write)
    return () => {
      this.#writes.delete(write)
      return performance.now() - write.at
    }
  }

  oldest(): number | undefined {
    for (const write of this.#writes) return write.at
    return undefined
  }

  forget(): void {
    this.#writes.clear()
  }
}

/**
 * The shortest of the recent round trips, from a write to its answer: Redis's distance. Our own
 * event loop's delays only lengthen a sample, so the shortest of a few dozen is the network's.
 */
export class RoundTrips {
  static readonly BLOCK = 32
  /** The shortest of the last full block; 0 until there is one, so a new client holds back. */
  #previous = 0
  #current = Number.POSITIVE_INFINITY
  #count = 0

  record(ms: number): void {
    if (ms < this.#current) this.#current = ms
    if (++this.#count < RoundTrips.BLOCK) return
    this.#previous = this.#current
    this.#current = Number.POSITIVE_INFINITY
    this.#count = 0
  }

  shortest(): number {
    return Math.min(this.#previous, this.#current)
  }
}
