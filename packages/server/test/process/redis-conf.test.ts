// Starts a real redis-server with deploy/redis/redis.conf: its settings load, it wants the password or fails closed without one, and a full Redis evicts as decided.
import { networkInterfaces } from 'node:os'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'

import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  redisServerAvailable,
  startRedisServer,
  type TestRedisServer,
} from '../../../utils/test/support/redis-server.js'

const CONF = fileURLToPath(new URL('../../../../deploy/redis/redis.conf', import.meta.url))
const PASSWORD = 'redis-conf-test-password'

/** The first reply a bare client gets to PING, as any client on the network would send it. */
function firstReply(port: number, host: string, localAddress?: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const socket = connect({ port, host, localAddress }, () => socket.write('PING\r\n'))
    socket.once('data', (chunk) => {
      resolve(chunk.toString())
      socket.destroy()
    })
    socket.once('error', reject)
  })
}

/** An address of this machine that is not loopback (what another host or container would come from). */
function nonLoopbackAddress(): string | undefined {
  const addresses = Object.values(networkInterfaces())
    .flatMap((entries) => entries ?? [])
    .filter((entry) => !entry.internal && !entry.address.startsWith('fe80:'))
  return (addresses.find((entry) => entry.family === 'IPv4') ?? addresses[0])?.address
}

describe.runIf(redisServerAvailable())('deploy/redis/redis.conf on a real redis-server', () => {
  // As docker-compose.yml runs it: the file, then --requirepass; port, bind and dir are the test's.
  let server: TestRedisServer
  let admin: Redis

  beforeAll(async () => {
    server = await startRedisServer({ configFile: CONF, password: PASSWORD })
    admin = server.admin
  })
  afterAll(async () => {
    await server?.stop()
  })

  const setting = async (name: string): Promise<string> => ((await admin.config('GET', name)) as string[])[1]!

  it.each([
    ['maxmemory', String(256 * 2 ** 20)],
    ['maxmemory-policy', 'volatile-lfu'],
    ['save', ''],
    ['appendonly', 'no'],
    ['protected-mode', 'yes'],
  ])('loads %s = %j', async (name, expected) => {
    expect(await setting(name)).toBe(expected)
  })

  it('refuses a client without the password', async () => {
    expect(await firstReply(server.port, '127.0.0.1')).toMatch(/^-NOAUTH /)
  })

  it('when full, evicts rarely used counters before busy ones, keeps keys without a TTL and refuses no write', async () => {
    const range = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}${i}`)
    const run = async (commands: (string | number)[][]) => {
      for (let i = 0; i < commands.length; i += 10_000) {
        const pipeline = admin.pipeline(commands.slice(i, i + 10_000))
        for (const [error] of (await pipeline.exec())!) expect(error).toBeNull()
      }
    }
    // Another app's keys, without a TTL. Then busy counters (an abuser's, a heavy user's): written
    // first, with the least time left, and hit 100 times each; then rarely used ones, written
    // later with more time left and hit once. LRU would evict the busy ones first (used longest
    // ago), volatile-ttl too (closest to their reset); only LFU keeps them.
    const persistent = range('session:', 2000)
    const busy = range('metaverses-srv:read:busy:', 2000)
    const rare = range('metaverses-srv:read:rare:', 10_000)
    await run(persistent.map((key) => ['set', key, 'x'.repeat(100)]))
    await run(busy.map((key) => ['set', key, '1', 'PX', 600_000]))
    await run(Array.from({ length: 100 }, () => busy.map((key) => ['incr', key])).flat())
    await run(rare.map((key) => ['set', key, '1', 'PX', 900_000]))
    // Room for a little more (on this server of ours); the policy stays the file's. Then more
    // counters than that room holds: Redis must evict.
    const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1])
    await admin.config('SET', 'maxmemory', String(used + 256 * 1024))
    await run(range('metaverses-srv:read:more:', 10_000).map((key) => ['set', key, '1', 'PX', 900_000]))
    const present = async (keys: string[]) => {
      const pipeline = admin.pipeline(keys.map((key) => ['exists', key]))
      return (await pipeline.exec())!.filter(([, exists]) => exists === 1).length
    }
    expect(Number(/evicted_keys:(\d+)/.exec(await admin.info('stats'))?.[1])).toBeGreaterThan(0)
    expect(await present(persistent)).toBe(persistent.length)
    const rareLost = rare.length - (await present(rare))
    const busyLost = busy.length - (await present(busy))
    expect(rareLost).toBeGreaterThan(1000)
    // LFU samples keys, so a busy one may go now and then; the rarely used ones go first.
    expect(busyLost).toBeLessThan(rareLost / 50)
  })
})

describe.runIf(redisServerAvailable())('deploy/redis/redis.conf started without --requirepass', () => {
  it('fails closed: a client from another address gets DENIED (protected mode), loopback still works', async () => {
    const address = nonLoopbackAddress()
    if (address === undefined) {
      throw new Error('this machine has no non-loopback address, so protected mode cannot be checked here')
    }
    // Listening on that address too, as Redis in a container listens on its network.
    const server = await startRedisServer({ configFile: CONF, bind: ['127.0.0.1', address] })
    try {
      expect(await server.admin.ping()).toBe('PONG')
      const answer = await firstReply(server.port, address, address)
      expect(answer).toMatch(/^-DENIED Redis is running in protected mode/)
    } finally {
      await server.stop()
    }
  })
})
