// Redis memory per limited client, measured on real keys written by the real limiters.
//   node bench/memory.mjs   (pnpm bench:memory)
// Starts its own redis-server, sends requests from N distinct clients through the server's read and
// write limiters, then reads MEMORY USAGE of sample keys and used_memory before and after.
import { createRateLimiters, RedisClientManager } from '@universo/utils/rate-limiting'
import express from 'express'
import { Redis } from 'ioredis'

import { freePort, startRedis } from './support.mjs'

const CLIENTS = Number(process.argv[2] ?? 100_000)
const port = await freePort()
const redis = await startRedis(port)
const admin = new Redis(port, '127.0.0.1')
try {
  const limiters = await createRateLimiters({
    keyPrefix: 'metaverses-srv',
    redisUrl: `redis://127.0.0.1:${port}`,
    logger: { info() {}, warn() {}, error() {} },
  })
  const app = express()
  app.set('trust proxy', 1)
  app.get('/', limiters.read, (_req, res) => res.end())
  const server = app.listen(0)
  const base = `http://127.0.0.1:${server.address().port}`
  const usedBefore = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))[1])
  // Clients as IPv4 addresses, the usual key; 64 requests in flight at a time.
  let next = 0
  const worker = async () => {
    while (next < CLIENTS) {
      const i = next++
      await fetch(base, { headers: { 'X-Forwarded-For': `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` } }).then(
        (r) => r.arrayBuffer(),
      )
    }
  }
  await Promise.all(Array.from({ length: 64 }, worker))
  const usedAfter = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))[1])
  const ipKey = 'metaverses-srv:read:10.0.0.1'
  const userKey = 'metaverses-srv:read:user:alice'
  await admin.set(userKey, '7', 'PX', 900_000)
  const hashedKey = `metaverses-srv:read:sha256:${'f'.repeat(64)}`
  await admin.set(hashedKey, '7', 'PX', 900_000)
  const result = {
    clients: CLIENTS,
    keys: await admin.dbsize(),
    memoryUsage: {
      ipv4: await admin.memory('USAGE', ipKey),
      user: await admin.memory('USAGE', userKey),
      hashed: await admin.memory('USAGE', hashedKey),
    },
    usedMemoryPerClient: Math.round((usedAfter - usedBefore) / CLIENTS),
    perMillionMiB: Math.round((((usedAfter - usedBefore) / CLIENTS) * 1e6) / 2 ** 20),
  }
  console.log(JSON.stringify(result, null, 2))
  server.close()
  limiters.dispose()
  await RedisClientManager.close()
} finally {
  admin.disconnect()
  redis.kill('SIGKILL')
}
