// Every algorithm, with several limits, on a fleet of real server processes sharing one Redis:
// exact under a burst, and deciding by Redis's clock, so one process's clock being off changes
// nothing (docs/algorithms.md, Time).
import { join } from 'node:path'

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

import {
  redisServerAvailable,
  startRedisServer,
  type TestRedisServer,
} from '../../../utils/test/support/redis-server.js'
import { startServer, type ServerProcess } from './support/server-process.js'

const SHIFTED_CLOCK = join(import.meta.dirname, 'support', 'shifted-clock.mjs')
const BURST = 300

describe.runIf(redisServerAvailable())('the algorithms on a fleet', () => {
  let redis: TestRedisServer
  let servers: ServerProcess[] = []
  beforeAll(async () => {
    redis = await startRedisServer()
  })
  afterEach(async () => {
    await Promise.all(servers.map((server) => server.stop()))
    servers = []
    await redis.admin.flushall()
  })
  afterAll(async () => {
    await redis?.stop()
  })

  const fleet = async (count: number, env: Record<string, string>, shifted: Record<number, number> = {}) => {
    servers = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        startServer({
          REDIS_URL: redis.url,
          RATE_LIMIT_INSTANCES: String(count),
          ...env,
          ...(shifted[i] === undefined
            ? {}
            : { NODE_OPTIONS: `--import ${SHIFTED_CLOCK}`, CLOCK_SHIFT_MS: String(shifted[i]) }),
        }),
      ),
    )
    return servers
  }

  const read = async (server: ServerProcess) => {
    const response = await fetch(`${server.base}/api/v1/metaverses`)
    await response.arrayBuffer()
    return response
  }

  it.each(['fixed-window', 'sliding-window', 'token-bucket'])(
    'lets exactly the burst limit of %s through three processes that have just started',
    async (algorithm) => {
      const three = await fleet(3, {
        RATE_LIMIT_ALGORITHM: algorithm,
        RATE_LIMIT_READ_LIMITS: 'burst=100/15m,daily=1000/1d',
      })
      const statuses = await Promise.all(
        Array.from({ length: BURST }, (_, i) => read(three[i % 3]!).then((r) => r.status)),
      )
      expect(statuses.filter((status) => status === 200)).toHaveLength(100)
      expect(statuses.filter((status) => status === 429)).toHaveLength(BURST - 100)
      const refused = await read(three[0]!)
      expect(refused.headers.get('ratelimit-policy')).toMatch(
        /^"burst"; q=100; w=900; pk=:[^:]+:, "daily"; q=1000; w=86400;/,
      )
      expect(refused.headers.get('ratelimit')).toMatch(/^"burst"; r=0; t=\d+$/)
    },
  )

  it("decides by Redis's clock: a process whose clock is 2 s ahead sees the same bucket", async () => {
    // 10 per 20 s: one unit back every 2 s. By its own clock the shifted process would find one.
    const [onTime, ahead] = await fleet(
      2,
      { RATE_LIMIT_ALGORITHM: 'token-bucket', RATE_LIMIT_READ_LIMITS: '10/20s' },
      { 1: 2000 },
    )
    const redisNow = async () => {
      const [seconds, micros] = await redis.admin.time()
      return Number(seconds) * 1000 + Number(micros) / 1000
    }
    const start = await redisNow()
    for (let i = 0; i < 10; i++) expect((await read(onTime!)).status).toBe(200)
    const fromAhead = await read(ahead!)
    const fromOnTime = await read(onTime!)
    const elapsed = (await redisNow()) - start
    // Only real time refills the bucket: by Redis's clock less than 2 s have passed, so both refuse.
    if (elapsed < 2000) {
      expect([fromAhead.status, fromOnTime.status]).toEqual([429, 429])
      // And both tell the same wait, what is left of the 2 s, each by its own clock and Redis's answer.
      const waits = [fromAhead, fromOnTime].map((response) => Number(response.headers.get('retry-after')))
      for (const wait of waits) expect(wait).toBeGreaterThanOrEqual(1)
      for (const wait of waits) expect(wait).toBeLessThanOrEqual(2)
    } else {
      // The machine stalled for 2 s: a unit came back for real, and the first to ask took it.
      expect(fromAhead.status).toBe(200)
    }
  })
})
