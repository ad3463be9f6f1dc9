// Steady HTTP load for outage tests: requests at a fixed rate, each with its status and latency.
import { waitFor } from './http.js'

export interface Sample {
  /** When the request was sent, in ms since the load started. */
  readonly at: number
  readonly status: number
  readonly ms: number
}

export interface Load {
  /**
   * Resolves once `count` more requests than so far have their answer (a network error counts),
   * so that a test goes on after that much load rather than after a guessed time.
   */
  waitForAnswers(count: number, what: string, timeoutMs?: number): Promise<void>
  /** Resolves once `count` more requests have been sent (answered or not). */
  waitForSent(count: number, what: string, timeoutMs?: number): Promise<void>
  /** Stops sending and resolves with every sample once the last answer is in. */
  stop(): Promise<Sample[]>
}

/** Sends `perSecond` requests a second to `url` until stopped. A network error is status 0. */
export function startLoad(url: string, perSecond: number, init: RequestInit = {}): Load {
  const samples: Sample[] = []
  const inFlight = new Set<Promise<void>>()
  const started = performance.now()
  let sentCount = 0
  const timer = setInterval(() => {
    const at = performance.now() - started
    const sent = performance.now()
    sentCount++
    const request: Promise<void> = fetch(url, init)
      .then(async (res) => {
        await res.arrayBuffer()
        samples.push({ at, status: res.status, ms: performance.now() - sent })
      })
      .catch(() => {
        samples.push({ at, status: 0, ms: performance.now() - sent })
      })
      .finally(() => inFlight.delete(request))
    inFlight.add(request)
  }, 1000 / perSecond)
  return {
    async waitForAnswers(count, what, timeoutMs) {
      const target = samples.length + count
      await waitFor(`${count} answers of the load ${what}`, () => samples.length >= target, timeoutMs)
    },
    async waitForSent(count, what, timeoutMs) {
      const target = sentCount + count
      await waitFor(`${count} requests of the load sent ${what}`, () => sentCount >= target, timeoutMs, 1)
    },
    async stop() {
      clearInterval(timer)
      await Promise.all([...inFlight])
      return samples.sort((a, b) => a.at - b.at)
    },
  }
}

/** The p-th percentile (0-100) of the latencies. */
export function percentile(samples: readonly Sample[], p: number): number {
  const sorted = samples.map((s) => s.ms).sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0
}

/** How many samples had each status. */
export function statusCounts(samples: readonly Sample[]): Record<number, number> {
  const counts: Record<number, number> = {}
  for (const { status } of samples) counts[status] = (counts[status] ?? 0) + 1
  return counts
}
