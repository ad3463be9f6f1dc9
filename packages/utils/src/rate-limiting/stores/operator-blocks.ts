// Operators' blocks of clients in a memory store (limiter/controls.ts): until when each is refused.
// Few, so a Map beside the counts, each swept as it is read, and no lookup while there is none.

export class OperatorBlocks {
  readonly #until = new Map<string, number>()

  /** Until when (ms since the epoch) `key` is refused; 0 when it is not blocked at `now`. */
  until(key: string, now: number): number {
    if (this.#until.size === 0) return 0
    const until = this.#until.get(key)
    if (until === undefined) return 0
    if (until > now) return until
    this.#until.delete(key)
    return 0
  }

  set(key: string, untilMs: number): void {
    this.#until.set(key, untilMs)
  }

  delete(key: string): void {
    this.#until.delete(key)
  }

  clear(): void {
    this.#until.clear()
  }
}
