// The shared budget is exact on a healthy Redis however busy the fleet is: two processes that have
// just started take a burst of 400 concurrent reads for one client, and exactly 100 pass. With the
// default settings, also while busy loops hold every CPU, and under onStoreError deny no request
// gets a 503. Only Redis itself being slow may hand a decision to the policy (redis-failures.md).
import { spawn, type ChildProcess } from 'node:child_process'
import { availableParallelism } from 'node:os'

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

import {
  redisServerAvailable,
  startRedisServer,
  type TestRedisServer,
} from '../../../utils/test/support/redis-server.js'
import { startServer, type ServerProcess } from './support/server-process.js'

const MAX_READ = 100
const BURST = 400

describe.runIf(redisServerAvailable())('the shared budget on a busy, just-started fleet', () => {
  let redis: TestRedisServer
  let servers: ServerProcess[] = []
  let busy: ChildProcess[] = []
  beforeAll(async () => {
    redis = await startRedisServer()
  })
  afterEach(async () => {
    stopBusyLoops()
    await Promise.all(servers.map((server) => server.stop()))
    servers = []
    await redis.admin.flushall()
  })
  afterAll(async () => {
    await redis?.stop()
  })

  /** Two processes, just started, with every setting but the limit and the fleet size at its default. */
  async function freshFleet(env: Record<string, string> = {}): Promise<ServerProcess[]> {
    servers = await Promise.all(
      [0, 1].map(() =>
        startServer({
          REDIS_URL: redis.url,
          RATE_LIMIT_INSTANCES: '2',
          RATE_LIMIT_READ_MAX: String(MAX_READ),
          ...env,
        }),
      ),
    )
    return servers
  }

  /** BURST concurrent reads for one client, alternating between the processes: each one's status. */
  const burst = (fleet: readonly ServerProcess[]): Promise<number[]> =>
    Promise.all(
      Array.from({ length: BURST }, (_, i) =>
        fetch(`${fleet[i % fleet.length]!.base}/api/v1/metaverses`).then(async (res) => {
          await res.arrayBuffer()
          return res.status
        }),
      ),
    )

  /** One busy loop per CPU, in processes of their own; ended by pid in afterEach. */
  async function saturateCpus(): Promise<void> {
    busy = Array.from({ length: availableParallelism() }, () =>
      spawn(process.execPath, ['-e', 'process.send("spinning"); for (;;) {}'], {
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      }),
    )
    // Spinning, not just spawned: each says so from inside the loop's process.
    await Promise.all(busy.map((child) => new Promise((resolve) => child.once('message', resolve))))
  }

  function stopBusyLoops(): void {
    for (const child of busy) if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
    busy = []
  }

  const counts = (statuses: readonly number[]): Record<number, number> => {
    const byStatus: Record<number, number> = {}
    for (const status of statuses) byStatus[status] = (byStatus[status] ?? 0) + 1
    return byStatus
  }

  it('lets exactly 100 of 400 concurrent reads through on two processes that have just started', async () => {
    const statuses = await burst(await freshFleet())
    expect(counts(statuses)).toEqual({ 200: MAX_READ, 429: BURST - MAX_READ })
  })

  it('lets exactly 100 through while busy loops hold every CPU', async () => {
    await saturateCpus()
    const statuses = await burst(await freshFleet())
    expect(counts(statuses)).toEqual({ 200: MAX_READ, 429: BURST - MAX_READ })
  })

  it('answers no 503 under onStoreError deny while Redis is healthy, on a busy machine', async () => {
    await saturateCpus()
    const statuses = await burst(await freshFleet({ RATE_LIMIT_ON_STORE_ERROR: 'deny' }))
    expect(counts(statuses)).toEqual({ 200: MAX_READ, 429: BURST - MAX_READ })
  })
})
