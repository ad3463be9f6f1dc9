// REDIS_SENTINELS: a master, a replica and three sentinels, and a forced failover under load.
import { afterEach, describe, expect, it, vi } from 'vitest'

import { createRateLimiters, RedisClientManager } from '#src/index.js'
import { createApp } from '#test/support/app.js'
import { listen, waitFor } from '#test/support/http.js'
import { uniquePrefix } from '#test/support/limiter-contract.js'
import { percentile, startLoad, statusCounts } from '#test/support/load.js'
import { recordingLogger } from '#test/support/logger.js'
import { redisServerAvailable } from '#test/support/redis-server.js'
import { startSentinels, type TestSentinels } from '#test/support/topologies.js'

let setup: TestSentinels | undefined
afterEach(async () => {
  await RedisClientManager.close()
  vi.unstubAllEnvs()
  await setup?.stop()
  setup = undefined
})

/** How often Sentinel sends INFO to the nodes it watches: fixed by Sentinel at 10 s. */
const SENTINEL_INFO_PERIOD_MS = 10_000

describe.runIf(redisServerAvailable())('Redis Sentinel', () => {
  it('counts on the master, and goes on counting on the new one after SENTINEL FAILOVER, with no 5xx', async () => {
    setup = await startSentinels()
    vi.stubEnv('REDIS_URL', '')
    vi.stubEnv('REDIS_SENTINELS', setup.sentinelList)
    vi.stubEnv('REDIS_SENTINEL_MASTER', setup.masterName)
    const logger = recordingLogger()
    const keyPrefix = uniquePrefix('sentinel')
    const limiters = await createRateLimiters({ keyPrefix, maxRead: 1_000_000, logger })
    const http = await listen(createApp(limiters))
    try {
      expect(limiters.status()).toMatchObject({ store: 'redis', topology: 'sentinel', ready: true })
      expect(logger.messages()).toContain(
        `[Redis] Connecting (sentinel): master ${setup.masterName} via ${setup.sentinelList}`,
      )
      for (let i = 0; i < 5; i++) await fetch(`${http.base}/items`)
      const key = `${keyPrefix}:read:127.0.0.1`
      const { Redis } = await import('ioredis')
      const onMaster = new Redis(setup.master.port, '127.0.0.1')
      expect(await onMaster.get(key)).toBe('5')
      onMaster.disconnect()

      const load = startLoad(`${http.base}/items`, 100)
      // Each phase lasts a number of answers of the load (100 a second), not a guessed time.
      await load.waitForAnswers(30, 'on the first master')
      await setup.failover()
      await waitFor('the limiters to count on the new master', () => limiters.status().ready, 10_000)
      await load.waitForAnswers(50, 'from the new master')
      const samples = await load.stop()
      expect(Object.keys(statusCounts(samples))).toEqual(['200'])
      console.info(`sentinel failover: ${samples.length} requests, p99 ${percentile(samples, 99).toFixed(1)} ms`)

      const newMaster = new Redis(await setup.currentMasterPort(), '127.0.0.1')
      const before = Number(await newMaster.get(key))
      await fetch(`${http.base}/items`)
      expect(Number(await newMaster.get(key))).toBe(before + 1)
      expect(await newMaster.pttl(key)).toBeGreaterThan(0)
      newMaster.disconnect()
    } finally {
      limiters.dispose()
      await http.close()
    }
  })

  it.each(['fixed-window', 'sliding-window', 'token-bucket'] as const)(
    'counts a %s policy on the master, exactly, and on the new one after SENTINEL FAILOVER',
    async (algorithm) => {
      setup = await startSentinels()
      vi.stubEnv('REDIS_URL', '')
      vi.stubEnv('REDIS_SENTINELS', setup.sentinelList)
      vi.stubEnv('REDIS_SENTINEL_MASTER', setup.masterName)
      const keyPrefix = uniquePrefix('sentinel')
      const limiters = await createRateLimiters({
        keyPrefix,
        algorithm,
        limitsRead: [
          { name: 'burst', max: 25, windowMs: 600_000 },
          { name: 'hourly', max: 1000, windowMs: 3_600_000 },
        ],
        logger: recordingLogger(),
      })
      const http = await listen(createApp(limiters))
      const tag = { 'fixed-window': 'fw', 'sliding-window': 'sw', 'token-bucket': 'tb' }[algorithm]
      const burst = async (client: string) => {
        const answers = await Promise.all(
          Array.from({ length: 60 }, () => fetch(`${http.base}/items`, { headers: { 'X-Forwarded-For': client } })),
        )
        return answers.filter((answer) => answer.status === 200).length
      }
      try {
        expect(await burst('10.3.0.1')).toBe(25)
        const { Redis } = await import('ioredis')
        const onMaster = new Redis(setup.master.port, '127.0.0.1')
        expect(await onMaster.hgetall(`${keyPrefix}:read#${tag}:10.3.0.1`)).not.toEqual({})
        onMaster.disconnect()
        await setup.failover()
        // Until the old master is a replica it still takes writes; then ours get READONLY, the
        // breaker opens, and the limiters reconnect to the new master. Wait for all of it: a
        // request of a client of its own lands there, with the limiters on Redis.
        const newMaster = new Redis(await setup.currentMasterPort(), '127.0.0.1')
        const oldMaster = new Redis(
          setup.master.port === (await setup.currentMasterPort()) ? setup.replica.port : setup.master.port,
          '127.0.0.1',
        )
        // Sentinel turns the old master into a replica when it next sends it INFO, which it does
        // every 10 s (SENTINEL_INFO_PERIOD_MS, a period Sentinel does not let us set): a wait of
        // Sentinel's, not ours, so it has a deadline of its own.
        await waitFor(
          'Sentinel to turn the old master into a replica',
          async () => (await oldMaster.role())[0] === 'slave',
          3 * SENTINEL_INFO_PERIOD_MS,
          100,
        )
        // Then our writes get READONLY, and the limiters reconnect through the sentinels.
        let probes = 0
        await waitFor(
          'the limiters to count on the new master',
          async () => {
            const client = `10.3.1.${++probes}`
            await fetch(`${http.base}/items`, { headers: { 'X-Forwarded-For': client } })
            return limiters.status().ready && (await newMaster.exists(`${keyPrefix}:read#${tag}:${client}`)) === 1
          },
          20_000,
          100,
        )
        oldMaster.disconnect()
        // The script is loaded on the new master too: a new client's burst is exact there.
        expect(await burst('10.3.0.2')).toBe(25)
        expect(await newMaster.pttl(`${keyPrefix}:read#${tag}:10.3.0.2`)).toBeGreaterThan(0)
        newMaster.disconnect()
      } finally {
        limiters.dispose()
        await http.close()
      }
    },
  )

  it('authenticates to password-protected data nodes with REDIS_PASSWORD, and never prints it', async () => {
    const password = 'sentinel-data-pw-123'
    setup = await startSentinels('secured', password)
    vi.stubEnv('REDIS_URL', '')
    vi.stubEnv('REDIS_SENTINELS', setup.sentinelList)
    vi.stubEnv('REDIS_SENTINEL_MASTER', 'secured')
    vi.stubEnv('REDIS_PASSWORD', password)
    const logger = recordingLogger()
    const limiters = await createRateLimiters({ keyPrefix: uniquePrefix('sauth'), maxRead: 2, logger })
    const http = await listen(createApp(limiters))
    try {
      const statuses: number[] = []
      for (let i = 0; i < 3; i++) statuses.push((await fetch(`${http.base}/items`)).status)
      expect(statuses).toEqual([200, 200, 429])
      expect(limiters.status()).toMatchObject({ topology: 'sentinel', ready: true })
      expect(logger.text()).not.toContain(password)
    } finally {
      limiters.dispose()
      await http.close()
    }
  })

  it('refuses REDIS_SENTINELS without REDIS_SENTINEL_MASTER, and a malformed list', async () => {
    vi.stubEnv('REDIS_URL', '')
    vi.stubEnv('REDIS_SENTINELS', '127.0.0.1:26379')
    await expect(createRateLimiters({ keyPrefix: uniquePrefix(), logger: recordingLogger() })).rejects.toThrow(
      /^REDIS_SENTINEL_MASTER must name the monitored master/,
    )
    vi.stubEnv('REDIS_SENTINEL_MASTER', 'mymaster')
    vi.stubEnv('REDIS_SENTINELS', '127.0.0.1:26379,localhost')
    await expect(createRateLimiters({ keyPrefix: uniquePrefix(), logger: recordingLogger() })).rejects.toThrow(
      /^REDIS_SENTINELS entry 2 must be host:port/,
    )
  })

  it('refuses two topologies at once', async () => {
    vi.stubEnv('REDIS_URL', 'redis://127.0.0.1:6379')
    vi.stubEnv('REDIS_CLUSTER_NODES', '127.0.0.1:7000')
    await expect(createRateLimiters({ keyPrefix: uniquePrefix(), logger: recordingLogger() })).rejects.toThrow(
      'REDIS_URL and REDIS_CLUSTER_NODES are both set; set exactly one',
    )
  })
})
