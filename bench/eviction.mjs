// Which maxmemory-policy suits rate-limit counters: fills a small Redis past maxmemory under each policy and counts what is lost.
//   node bench/eviction.mjs [--clients N]   (pnpm bench:eviction)
// For each policy it starts its own redis-server on a free loopback port, stores another app's
// keys (no TTL, as sessions or a cache would be), then writes one counter per client through
// rate-limit-redis's own script (SET ... PX window on the first hit, as our store does) until
// Redis is well past maxmemory. It then counts the counters that are gone while their window
// was still open (each one is a client let through early, by the time its window still had),
// the other app's keys lost, the writes Redis refused, and what our real limiters do on it.
import { createRateLimiters, RedisClientManager } from '@universo/utils/rate-limiting'
import express from 'express'
import { Redis } from 'ioredis'
import { RedisStore } from 'rate-limit-redis'

import { freePort, startRedis } from './support.mjs'

const POLICIES = ['allkeys-lru', 'volatile-lru', 'volatile-ttl', 'noeviction']
const MAXMEMORY = 16 * 2 ** 20
const flag = (name, fallback) => {
  const at = process.argv.indexOf(name)
  return at === -1 ? fallback : Number(process.argv[at + 1])
}
/** Clients with a live counter: about 1.6 times what fits beside the other app's keys. */
const CLIENTS = flag('--clients', 150_000)
/** The other app's keys: 200-byte values without a TTL, about a quarter of maxmemory. */
const OTHER_KEYS = 15_000
const OTHER_VALUE = 'x'.repeat(200)
/** used_memory is read after this many counters, while they all still fit, for the cost of one. */
const MEASURED = 40_000
/** Counters are written this many at a time (in flight together, so ioredis pipelines them). */
const BATCH = 1000
/** Remaining window of a client's counter: 1 to 15 minutes, as clients arrive across a 15-minute window. */
const WINDOWS_MS = Array.from({ length: 15 }, (_, i) => (i + 1) * 60_000)

/** A seeded PRNG (mulberry32), so every policy sees the same clients in the same order. */
function random(seed) {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

const ipOf = (i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
const usedMemory = async (admin) => Number(/used_memory:(\d+)/.exec(await admin.info('memory'))[1])
const stat = async (admin, name) => Number(new RegExp(`${name}:(\\d+)`).exec(await admin.info('stats'))[1])
const percentile = (sorted, p) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
const seconds = (ms) => Math.round(ms / 100) / 10

/** One store per remaining window, each built and initialised exactly as rate-limit-redis is in production. */
async function counterStores(admin) {
  const stores = WINDOWS_MS.map(
    () => new RedisStore({ prefix: 'metaverses-srv:read:', sendCommand: (...args) => admin.call(...args) }),
  )
  await Promise.all(stores.map((store, i) => store.init({ windowMs: WINDOWS_MS[i] })))
  return stores
}

async function runPolicy(policy) {
  const port = await freePort()
  const redis = await startRedis(port)
  const admin = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 })
  try {
    await admin.config('SET', 'maxmemory', String(MAXMEMORY))
    await admin.config('SET', 'maxmemory-policy', policy)
    const version = /redis_version:(\S+)/.exec(await admin.info('server'))[1]
    const empty = await usedMemory(admin)

    // The other app's keys, written first, as a long-lived shared instance would hold them.
    for (let i = 0; i < OTHER_KEYS; i += BATCH) {
      const pipeline = admin.pipeline()
      for (let j = i; j < Math.min(i + BATCH, OTHER_KEYS); j++) pipeline.set(`session:${j}`, OTHER_VALUE)
      await pipeline.exec()
    }
    const withOther = await usedMemory(admin)
    let otherWritten = OTHER_KEYS
    let otherRefused = 0

    const stores = await counterStores(admin)
    const next = random(8)
    const deadline = new Float64Array(CLIENTS)
    const written = new Uint8Array(CLIENTS)
    let refused = 0
    let firstError
    let bytesPerCounter
    for (let i = 0; i < CLIENTS; i += BATCH) {
      const hits = []
      for (let j = i; j < Math.min(i + BATCH, CLIENTS); j++) {
        const store = stores[Math.floor(next() * stores.length)]
        const started = Date.now()
        hits.push(
          store.increment(ipOf(j)).then(
            () => {
              written[j] = 1
              deadline[j] = started + store.windowMs
            },
            (error) => {
              refused++
              firstError ??= error.message
            },
          ),
        )
      }
      // Meanwhile the other app reads some of its keys and writes a few new ones.
      const other = admin.pipeline()
      for (let k = 0; k < 50; k++) other.get(`session:${Math.floor(next() * otherWritten)}`)
      for (let k = 0; k < 5; k++) other.set(`session:${otherWritten + k}`, OTHER_VALUE)
      const replies = await other.exec()
      otherRefused += replies.slice(50).filter(([error]) => error !== null).length
      otherWritten += 5
      await Promise.all(hits)
      // Before anything is evicted: what one counter costs, all overhead included.
      if (i + BATCH === MEASURED) bytesPerCounter = Math.round(((await usedMemory(admin)) - withOther) / MEASURED)
    }

    // Which counters are gone while their window is still open: clients let through early.
    const checkedAt = Date.now()
    const early = []
    let expired = 0
    for (let i = 0; i < CLIENTS; i += BATCH) {
      const pipeline = admin.pipeline()
      const end = Math.min(i + BATCH, CLIENTS)
      for (let j = i; j < end; j++) pipeline.exists(`metaverses-srv:read:${ipOf(j)}`)
      const replies = await pipeline.exec()
      replies.forEach(([, exists], offset) => {
        const j = i + offset
        if (written[j] === 0 || exists === 1) return
        if (deadline[j] <= checkedAt) expired++
        else early.push(deadline[j] - checkedAt)
      })
    }
    early.sort((a, b) => a - b)
    const otherPipeline = admin.pipeline()
    for (let j = 0; j < otherWritten; j++) otherPipeline.exists(`session:${j}`)
    const otherLost = (await otherPipeline.exec()).filter(([, exists]) => exists === 0).length - otherRefused

    const limiter = await probeLimiters(port)
    const countersWritten = written.reduce((sum, bit) => sum + bit, 0)
    return {
      policy,
      redis: version,
      emptyUsedMemory: empty,
      otherAppBytes: withOther - empty,
      bytesPerCounter,
      memoryUsage: {
        counter: await admin.memory('USAGE', `metaverses-srv:read:${ipOf(CLIENTS - 1)}`),
        otherKey: await admin.memory('USAGE', 'session:0'),
      },
      counters: {
        attempted: CLIENTS,
        written: countersWritten,
        refused,
        firstError,
        evictedLive: early.length,
        evictedLiveShare: Math.round((early.length / CLIENTS) * 1000) / 10,
        expiredNaturally: expired,
        // How much earlier than its window's end each evicted client gets a fresh budget.
        earlySeconds:
          early.length === 0
            ? null
            : {
                min: seconds(early[0]),
                median: seconds(percentile(early, 0.5)),
                p90: seconds(percentile(early, 0.9)),
                max: seconds(early.at(-1)),
                mean: seconds(early.reduce((sum, ms) => sum + ms, 0) / early.length),
              },
        // The sum over evicted clients of the window they still had: client-hours of fresh budget.
        earlyClientHours: Math.round(early.reduce((sum, ms) => sum + ms, 0) / 3_600_000),
      },
      otherApp: { keys: otherWritten, lost: otherLost, writesRefused: otherRefused },
      evictedKeys: await stat(admin, 'evicted_keys'),
      limiter,
    }
  } finally {
    admin.disconnect()
    redis.kill('SIGKILL')
  }
}

/** Our real limiters on the full Redis: do they still count there, or run on their onStoreError policy? */
async function probeLimiters(port) {
  const lines = []
  const log = (line) => void lines.push(line)
  const limiters = await createRateLimiters({
    keyPrefix: 'metaverses-srv',
    redisUrl: `redis://127.0.0.1:${port}`,
    logger: { info: log, warn: log, error: log },
  })
  const app = express()
  app.set('trust proxy', 1)
  app.get('/', limiters.read, (_req, res) => res.end())
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const base = `http://127.0.0.1:${server.address().port}`
  const statuses = {}
  // 20 new clients and 20 that already have a counter.
  for (const i of [...Array.from({ length: 20 }, (_, k) => CLIENTS + k), ...Array.from({ length: 20 }, (_, k) => k)]) {
    const response = await fetch(base, { headers: { 'X-Forwarded-For': ipOf(i) } })
    await response.arrayBuffer()
    statuses[response.status] = (statuses[response.status] ?? 0) + 1
  }
  const { state } = limiters.status()
  await new Promise((resolve) => server.close(resolve))
  limiters.dispose()
  await RedisClientManager.close()
  return { state, statuses, log: lines.filter((line) => line.startsWith('[RateLimit]')) }
}

const results = []
for (const policy of POLICIES) results.push(await runPolicy(policy))

console.log(
  JSON.stringify(
    { maxmemoryBytes: MAXMEMORY, clients: CLIENTS, otherKeys: OTHER_KEYS, windowsMinutes: '1-15', results },
    null,
    2,
  ),
)
console.error(
  '\npolicy        counters evicted live (share)  early by (median / p90 / max s)  client-hours  writes refused  other app keys lost  limiter',
)
for (const r of results) {
  const c = r.counters
  const early =
    c.earlySeconds === null ? '-' : `${c.earlySeconds.median} / ${c.earlySeconds.p90} / ${c.earlySeconds.max}`
  console.error(
    [
      r.policy.padEnd(13),
      `${c.evictedLive} (${c.evictedLiveShare}%)`.padEnd(30),
      early.padEnd(32),
      String(c.earlyClientHours).padEnd(13),
      String(c.refused + r.otherApp.writesRefused).padEnd(15),
      String(r.otherApp.lost).padEnd(20),
      r.limiter.state,
    ].join(' '),
  )
}
