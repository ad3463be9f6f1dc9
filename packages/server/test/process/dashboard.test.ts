// The Grafana dashboard asks only for metric names and labels that a running server really exports.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  redisServerAvailable,
  startRedisServer,
  type TestRedisServer,
} from '../../../utils/test/support/redis-server.js'
import { exported, namesIn } from './support/promql.js'
import { REPO_ROOT, startServer, type ServerProcess } from './support/server-process.js'

interface Target {
  readonly expr: string
  readonly legendFormat?: string
}
interface Panel {
  readonly title: string
  readonly targets: readonly Target[]
}
interface Dashboard {
  readonly panels: readonly Panel[]
  readonly templating: { readonly list: readonly { readonly name: string; readonly definition: string }[] }
}

const DASHBOARD = join(REPO_ROOT, 'docs', 'grafana', 'rate-limiting.json')
const ALERTS = join(REPO_ROOT, 'docs', 'prometheus', 'alerts.yml')
const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard

/** The guide's four planned panels, by title. */
const GUIDE_PANELS = [
  'Rate-limit usage per endpoint',
  'Redis connection health',
  '429 rate over time',
  'Latency percentiles (p50, p95, p99)',
]

// On Redis, so that store="redis" series exist too (without redis-server, CI=true fails the run).
describe.runIf(redisServerAvailable())('against a running server on Redis', () => {
  let redis: TestRedisServer
  let server: ServerProcess
  let metrics: Map<string, Map<string, Set<string>>>
  beforeAll(async () => {
    redis = await startRedisServer()
    server = await startServer({
      REDIS_URL: redis.url,
      RATE_LIMIT_READ_MAX: '2',
      API_TOKENS: 'admin-token-0123456789:root:admin',
    })
    // Some of everything: counted, rejected, skipped, written.
    for (let i = 0; i < 3; i++) await fetch(`${server.base}/api/v1/metaverses`)
    await fetch(`${server.base}/api/v1/metaverses`, { headers: { Authorization: 'Bearer admin-token-0123456789' } })
    await fetch(`${server.base}/api/v1/metaverses`, { method: 'POST' })
    metrics = exported(await (await fetch(`${server.base}/metrics`)).text())
  })
  afterAll(async () => {
    await server?.stop()
    await redis?.stop()
  })

  describe('the Grafana dashboard', () => {
    it('has the guide’s four panels', () => {
      expect(dashboard.panels.map((p) => p.title)).toEqual(expect.arrayContaining(GUIDE_PANELS))
    })

    it.each(dashboard.panels.flatMap((panel) => panel.targets.map((target) => [panel.title, target] as const)))(
      '%s: uses only exported metrics and their labels',
      (_title, { expr, legendFormat }) => {
        const { metrics: used, labels, equals } = namesIn(expr)
        expect(used.size).toBeGreaterThan(0)
        for (const name of used) {
          expect([...metrics.keys()], `metric ${name} in ${expr}`).toContain(name)
          for (const label of labels)
            expect([...metrics.get(name)!.keys()], `label ${label} of ${name}`).toContain(label)
          for (const { label, value } of equals) {
            expect([...(metrics.get(name)!.get(label) ?? [])], `${label}="${value}" on ${name}`).toContain(value)
          }
        }
        for (const [, label] of (legendFormat ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g)) {
          expect([...labels], `legend label ${label} of ${expr}`).toContain(label)
        }
      },
    )

    it('fills its namespace variable from an exported label', () => {
      for (const variable of dashboard.templating.list) {
        const [, metric, label] = /^label_values\((\w+),\s*(\w+)\)$/.exec(variable.definition) ?? []
        expect(metrics.get(metric!), variable.definition).toBeDefined()
        expect([...metrics.get(metric!)!.keys()]).toContain(label)
      }
    })
  })

  describe('the Prometheus alert rules', () => {
    const rules = [...readFileSync(ALERTS, 'utf8').matchAll(/^\s*- alert: (\w+)\n(?:\s*#.*\n)*\s*expr: (.+)$/gm)]

    it('are all read', () => {
      expect(rules.map(([, name]) => name)).toEqual([
        'RateLimit429RateHigh',
        'RateLimitFallback',
        'RateLimitRedisConnectionsNotReady',
        'RateLimitRedisConnectionsHigh',
        'RateLimitStoreSlow',
      ])
    })

    it.each(rules.map(([, name, expr]) => [name!, expr!]))(
      '%s uses only exported metrics and their labels',
      (_name, expr) => {
        // `instance` is the label Prometheus adds to every scraped series.
        const { metrics: used, labels, equals } = namesIn(expr)
        for (const name of used) {
          expect([...metrics.keys()], `metric ${name}`).toContain(name)
          for (const label of labels) {
            if (label !== 'instance') {
              expect([...metrics.get(name)!.keys()], `label ${label} of ${name}`).toContain(label)
            }
          }
          for (const { label, value } of equals) {
            expect([...(metrics.get(name)!.get(label) ?? [])], `${label}="${value}" on ${name}`).toContain(value)
          }
        }
      },
    )
  })
})

describe('the dashboard picture', () => {
  it('is drawn, up to date, in docs/grafana/rate-limiting.svg', () => {
    const check = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'dashboard-diagram.mjs'), '--check'], {
      encoding: 'utf8',
    })
    expect(check.stderr).toBe('')
    expect(check.status).toBe(0)
  })
})

describe('the PromQL reader the check relies on', () => {
  it('finds metric names and labels, and skips functions, ranges, strings and variables', () => {
    const { metrics: used, labels } = namesIn(
      'histogram_quantile(0.99, sum by (le, store) (rate(x_bucket{namespace=~"$namespace"}[$__rate_interval]))) / sum(y)',
    )
    expect([...used]).toEqual(['x_bucket', 'y'])
    expect([...labels].sort()).toEqual(['le', 'namespace', 'store'])
    expect(namesIn('x{store="redis",ns=~"$v"}').equals).toEqual([{ label: 'store', value: 'redis' }])
  })

  it('reads sample lines with and without labels', () => {
    const names = exported('# HELP a x\n# TYPE a counter\na{b="1",c="x,y"} 3\nd 4\n')
    expect([...names.keys()]).toEqual(['a', 'd'])
    expect([...names.get('a')!.keys()]).toEqual(['b', 'c'])
    expect([...names.get('a')!.get('c')!]).toEqual(['x,y'])
  })
})
