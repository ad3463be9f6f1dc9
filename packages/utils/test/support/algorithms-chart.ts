// The picture in docs/algorithms.md: one bursty client's requests, allowed or refused by each
// algorithm, decided by the memory store on a clock the traffic sets. test/unit/algorithms-chart.test.ts
// keeps docs/algorithms.svg equal to it (`pnpm --filter @universo/utils docs:algorithms` rewrites it).
import type { PolicyAlgorithm } from '#src/policies/algorithms.js'
import { checkLimits } from '#src/policies/limits.js'
import { MemoryPolicyStore } from '#src/policies/memory-policy-store.js'

/** The limit every row uses: 10 per second. */
export const CHART_LIMIT = { max: 10, windowMs: 1000 }

/**
 * The traffic, in ms: one request at 0 (it starts the fixed window), 30 over the last 200 ms of
 * that window and 30 over the first 200 ms of the next, then one every 40 ms to 3 s.
 */
export function chartTraffic(): number[] {
  const times = [0]
  for (let i = 0; i < 30; i++) times.push(800 + Math.floor((i * 200) / 30))
  for (let i = 0; i < 30; i++) times.push(1000 + Math.floor((i * 200) / 30))
  for (let t = 1200; t < 3000; t += 40) times.push(t)
  return times
}

export const CHART_ALGORITHMS: readonly PolicyAlgorithm[] = ['fixed-window', 'sliding-window', 'token-bucket']

/** Which requests of the traffic each algorithm allows. */
export function chartDecisions(algorithm: PolicyAlgorithm, times: readonly number[]): boolean[] {
  const clock = { now: 0 }
  // A whole second from the epoch's start, so the sliding window's aligned windows begin at 0.
  const start = 1_700_000_000_000
  const store = new MemoryPolicyStore(algorithm, checkLimits([CHART_LIMIT]), () => start + clock.now)
  try {
    return times.map((t) => {
      clock.now = t
      return store.consume('client', 1).allowed
    })
  } finally {
    store.shutdown()
  }
}

/** The most requests allowed in any 1000 ms, from allowed requests' times. */
export function mostInAnySecond(times: readonly number[], allowed: readonly boolean[]): number {
  const passed = times.filter((_, i) => allowed[i])
  let most = 0
  for (let i = 0, j = 0; i < passed.length; i++) {
    while (passed[i]! - passed[j]! >= 1000) j++
    most = Math.max(most, i - j + 1)
  }
  return most
}

/** How many requests from `from` (inclusive) to `to` (exclusive) ms were allowed. */
export function allowedBetween(
  times: readonly number[],
  allowed: readonly boolean[],
  from: number,
  to: number,
): number {
  return times.filter((t, i) => allowed[i] && t >= from && t < to).length
}

const WIDTH = 760
const LEFT = 130
const ROW = 56
const TOP = 40
const SPAN_MS = 3000

/** The SVG: a row per algorithm, a tick per request, dark when allowed. */
export function renderAlgorithmsChart(): string {
  const times = chartTraffic()
  const x = (t: number) => (LEFT + (t / SPAN_MS) * (WIDTH - LEFT - 20)).toFixed(1)
  const height = TOP + CHART_ALGORITHMS.length * ROW + 40
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="${LEFT}" y="20" font-size="13">One client, ${CHART_LIMIT.max} per ${CHART_LIMIT.windowMs} ms: each tick a request, dark if allowed. Left: allowed in 800-1200 ms, and most in any 1 s</text>`,
  ]
  for (let second = 0; second <= SPAN_MS; second += 1000) {
    parts.push(
      `<line x1="${x(second)}" y1="${TOP - 6}" x2="${x(second)}" y2="${TOP + CHART_ALGORITHMS.length * ROW}" stroke="#999999" stroke-dasharray="3,3"/>`,
      `<text x="${x(second)}" y="${TOP + CHART_ALGORITHMS.length * ROW + 16}" text-anchor="middle">${second} ms</text>`,
    )
  }
  CHART_ALGORITHMS.forEach((algorithm, row) => {
    const allowed = chartDecisions(algorithm, times)
    const y = TOP + row * ROW + 10
    parts.push(`<text x="8" y="${y + 14}">${algorithm}</text>`)
    const edge = allowedBetween(times, allowed, 800, 1200)
    parts.push(`<text x="8" y="${y + 30}" fill="#555555">edge ${edge}, 1 s ${mostInAnySecond(times, allowed)}</text>`)
    times.forEach((t, i) => {
      const color = allowed[i] ? '#1f4e99' : '#d0d7e2'
      parts.push(`<rect x="${x(t)}" y="${y}" width="2" height="30" fill="${color}"/>`)
    })
  })
  parts.push('</svg>', '')
  return parts.join('\n')
}
