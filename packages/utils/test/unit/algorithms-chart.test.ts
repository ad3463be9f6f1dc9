// docs/algorithms.svg is the picture renderAlgorithmsChart draws from the algorithms as they are;
// UPDATE_DOCS=1 (pnpm --filter @universo/utils docs:algorithms) writes it again.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { describe, expect, it } from 'vitest'

import {
  allowedBetween,
  chartDecisions,
  chartTraffic,
  mostInAnySecond,
  renderAlgorithmsChart,
} from '#test/support/algorithms-chart.js'

const SVG = join(import.meta.dirname, '..', '..', '..', '..', 'docs', 'algorithms.svg')

describe('docs/algorithms.svg', () => {
  it('is the picture the algorithms draw today', () => {
    const drawn = renderAlgorithmsChart()
    if (process.env.UPDATE_DOCS === '1') writeFileSync(SVG, drawn)
    expect(readFileSync(SVG, 'utf8')).toBe(drawn)
  })

  it('shows what docs/algorithms.md says of it', () => {
    const times = chartTraffic()
    const figures = (algorithm: Parameters<typeof chartDecisions>[0]) => {
      const allowed = chartDecisions(algorithm, times)
      return { edge: allowedBetween(times, allowed, 800, 1200), second: mostInAnySecond(times, allowed) }
    }
    // The fixed window lets 9 through before its edge and 10 after it: nearly twice the limit.
    expect(figures('fixed-window')).toEqual({ edge: 19, second: 19 })
    // The sliding window lets the limit through around the edge; over a second its estimate, which
    // takes the previous window's 10 as spread evenly, lets 16 through.
    expect(figures('sliding-window')).toEqual({ edge: 10, second: 16 })
    // The bucket: its burst of 10, then one every 100 ms.
    expect(figures('token-bucket')).toEqual({ edge: 13, second: 19 })
  })
})
