// One small JSON route behind the limiter named by SCENARIO, set up as a user of that library would.
// KEYING says who a client is, the same for every scenario:
// - `ip` (the default): the app trusts one proxy hop, so the client is the X-Forwarded-For address;
// - `header`: no proxy is trusted, and a keyGenerator reads the client's API key from X-Api-Key, as
//   a service keys authenticated users (the metaverses server keys `user:<id>`).
import { Session } from 'node:inspector/promises'
import { PerformanceObserver } from 'node:perf_hooks'

import express from 'express'
import { MemoryStore, rateLimit } from 'express-rate-limit'
import { Redis } from 'ioredis'
import { Registry } from 'prom-client'
import { RedisStore } from 'rate-limit-redis'
import { BurstyRateLimiter, RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible'

import { createRateLimiter, RedisClientManager } from '@universo/utils/rate-limiting'

const { SCENARIO, PORT, REDIS_URL, KEYING = 'ip' } = process.env
if (KEYING !== 'ip' && KEYING !== 'header') throw new Error(`KEYING must be ip or header, got ${KEYING}`)
/** The client key of a request under KEYING=header, for every library's keyGenerator. */
const apiKey = (req) => `key:${req.get('x-api-key')}`
/** A keyGenerator option for the header setup; none (the library's IP default) for the IP one. */
const keyed = KEYING === 'header' ? { keyGenerator: apiKey } : {}
const LIMIT = Number(process.env.LIMIT)
const WINDOW_MS = 15 * 60 * 1000
const silent = { info() {}, warn() {}, error() {} }

/** The limiter middleware of each scenario (none for bare). */
const scenarios = {
  bare: async () => undefined,
  // Not a limiter: a middleware that only awaits once, to show what answering a tick later costs.
  'noop-async': async () => async (_req, _res, next) => {
    await undefined
    next()
  },
  'noop-sync': async () => (_req, _res, next) => next(),
  'probe-ip4': async () => (req, _res, next) => {
    let n = 0
    for (let i = 0; i < 4; i++) n += req.ip.length
    req.n = n
    next()
  },
  'probe-headers': async () => (_req, res, next) => {
    res.append('RateLimit', '"read"; r=99; t=900')
    res.append('RateLimit-Policy', '"read"; q=100; w=900; pk=:abc:')
    next()
  },
  // express-rate-limit alone, its defaults plus the draft-8 headers we send too.
  'erl-memory': async () =>
    rateLimit({
      windowMs: WINDOW_MS,
      limit: LIMIT,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      store: new MemoryStore(),
      ...keyed,
    }),
  // The original's stack: express-rate-limit + rate-limit-redis over one ioredis client.
  'erl-redis': async () => {
    const client = new Redis(REDIS_URL)
    return rateLimit({
      windowMs: WINDOW_MS,
      limit: LIMIT,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      store: new RedisStore({ prefix: 'erl:', sendCommand: (command, ...args) => client.call(command, ...args) }),
      ...keyed,
    })
  },
  // Ours as the server runs it: metrics on a registry, audit log on, default keys.
  'ours-memory': async () =>
    createRateLimiter('read', {
      keyPrefix: 'bench',
      maxRead: LIMIT,
      logger: silent,
      metricsRegistry: new Registry(),
      ...keyed,
    }),
  'ours-redis': async () =>
    createRateLimiter('read', {
      keyPrefix: 'bench',
      maxRead: LIMIT,
      redisUrl: REDIS_URL,
      logger: silent,
      metricsRegistry: new Registry(),
      ...keyed,
    }),
  // Ours with the other algorithms, as the server runs them (RATE_LIMIT_ALGORITHM).
  'ours-redis-sliding': async () =>
    createRateLimiter('read', {
      keyPrefix: 'bench',
      maxRead: LIMIT,
      algorithm: 'sliding-window',
      redisUrl: REDIS_URL,
      logger: silent,
      metricsRegistry: new Registry(),
      ...keyed,
    }),
  'ours-redis-bucket': async () =>
    createRateLimiter('read', {
      keyPrefix: 'bench',
      maxRead: LIMIT,
      algorithm: 'token-bucket',
      redisUrl: REDIS_URL,
      logger: silent,
      metricsRegistry: new Registry(),
      ...keyed,
    }),
  // The token bucket's anchor: rate-limiter-flexible's BurstyRateLimiter, a limit and a burst
  // allowance on top, as its wiki sets it up (here both LIMIT per window).
  'rlf-redis-bursty': async () => {
    const storeClient = new Redis(REDIS_URL)
    return flexible(
      new BurstyRateLimiter(
        new RateLimiterRedis({ storeClient, points: LIMIT, duration: WINDOW_MS / 1000, keyPrefix: 'rlfr' }),
        new RateLimiterRedis({ storeClient, points: LIMIT, duration: WINDOW_MS / 1000, keyPrefix: 'rlfburst' }),
      ),
      { headers: true },
    )
  },
  // rate-limiter-flexible as its README's Express example sets it up.
  'rlf-redis': async () =>
    flexible(
      new RateLimiterRedis({
        storeClient: new Redis(REDIS_URL),
        points: LIMIT,
        duration: WINDOW_MS / 1000,
        keyPrefix: 'rlf',
      }),
    ),
  // ... with a middleware that writes the draft-8 RateLimit headers ours sends, from its answer.
  'rlf-redis-headers': async () =>
    flexible(
      new RateLimiterRedis({
        storeClient: new Redis(REDIS_URL),
        points: LIMIT,
        duration: WINDOW_MS / 1000,
        keyPrefix: 'rlfh',
      }),
      { headers: true },
    ),
  // ... with the in-memory block for keys over their limit, and an in-memory insurance limiter.
  'rlf-redis-block': async () =>
    flexible(
      new RateLimiterRedis({
        storeClient: new Redis(REDIS_URL),
        points: LIMIT,
        duration: WINDOW_MS / 1000,
        keyPrefix: 'rlfb',
        inMemoryBlockOnConsumed: LIMIT,
        insuranceLimiter: new RateLimiterMemory({ points: LIMIT, duration: WINDOW_MS / 1000 }),
      }),
    ),
}

/**
 * rate-limiter-flexible's Express middleware, as its README writes it. With `headers`, it also
 * writes the draft-8 `RateLimit` and `RateLimit-Policy` headers that ours sends, and Retry-After.
 */
function flexible(limiter, { headers = false } = {}) {
  const policy = `"read"; q=${LIMIT}; w=${WINDOW_MS / 1000}`
  const write = (res, answer) => {
    const reset = Math.ceil(answer.msBeforeNext / 1000)
    res.setHeader('RateLimit-Policy', policy)
    res.setHeader('RateLimit', `"read"; r=${answer.remainingPoints}; t=${reset}`)
    return reset
  }
  const keyOf = KEYING === 'header' ? apiKey : (req) => req.ip
  return (req, res, next) => {
    limiter.consume(keyOf(req)).then(
      (answer) => {
        if (headers) write(res, answer)
        next()
      },
      // A Redis error rejects too, with no answer to write headers from: a 429 all the same, as
      // the README's example answers every rejection.
      (answer) => {
        if (headers && !(answer instanceof Error)) res.setHeader('Retry-After', String(write(res, answer)))
        res.status(429).send('Too Many Requests')
      },
    )
  }
}

const make = scenarios[SCENARIO]
if (make === undefined) throw new Error(`SCENARIO must be one of ${Object.keys(scenarios).join(', ')}, got ${SCENARIO}`)
const limiter = await make()

/**
 * How long the limiter holds each request: from entering it to its next(), or to its call of
 * res.end() for a 429 (not the write itself). Recorded only while the latency probe runs (it calls
 * GET /hold/start after its warm-up; /hold/stop answers the percentiles). It is wall-clock time in
 * the server: it leaves out the client, the network and the load generator, not the scheduler.
 */
let holding = false
/** Each held request's [start, end], in performance.now() ms. */
let holds = []
/** The garbage collector's pauses since /hold/start, [start, end]: a pause stops the server whole. */
let pauses = []
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) pauses.push([entry.startTime, entry.startTime + entry.duration])
}).observe({ entryTypes: ['gc'] })
/**
 * A PING to Redis every 5 ms while holding, on a connection of its own: the round trip this machine
 * gives any Redis call from this process, whatever the limiter (bare and memory setups too).
 */
const pinger = process.env.PING_URL === undefined ? undefined : new Redis(process.env.PING_URL)
let pings = []
setInterval(() => {
  if (!holding || pinger === undefined) return
  const start = performance.now()
  void pinger.ping().then(() => pings.push(performance.now() - start))
}, 5).unref()
function held(middleware) {
  return (req, res, next) => {
    if (!holding) return middleware(req, res, next)
    const start = performance.now()
    let recorded = false
    const record = () => {
      if (recorded) return
      recorded = true
      holds.push([start, performance.now()])
    }
    const end = res.end
    res.end = function (...args) {
      record()
      return end.apply(this, args)
    }
    return middleware(req, res, (error) => {
      record()
      next(error)
    })
  }
}

const app = express()
if (KEYING === 'ip') app.set('trust proxy', 1)
const handlers = limiter === undefined ? [] : [held(limiter)]
app.get('/r', ...handlers, (_req, res) => {
  res.json({ ok: true })
})
// After /r, so that the route the load asks for is matched first, as in bare.
app.get('/hold/start', (_req, res) => {
  holding = true
  holds = []
  pauses = []
  pings = []
  res.json({ ok: true })
})
app.get('/hold/stop', (_req, res) => {
  holding = false
  // Held requests a GC pause fell inside: the pause, not the limiter, made them wait.
  const paused = ([start, end]) => pauses.some(([from, to]) => from < end && to > start)
  const all = holds.map(([start, end]) => end - start)
  const outsideGc = holds.filter((hold) => !paused(hold)).map(([start, end]) => end - start)
  const slow = holds.filter(([start, end]) => end - start > 1)
  const lengths = pauses.map(([from, to]) => to - from)
  res.json({
    count: all.length,
    p50us: percentile(all, 0.5) * 1000,
    p99us: percentile(all, 0.99) * 1000,
    maxUs: percentile(all, 1) * 1000,
    p99OutsideGcUs: percentile(outsideGc, 0.99) * 1000,
    overOneMs: slow.length,
    overOneMsWithGc: slow.filter(paused).length,
    gcPauses: lengths.length,
    gcP50Ms: percentile(lengths, 0.5),
    gcMaxMs: percentile(lengths, 1),
    gcTotalMs: lengths.reduce((sum, ms) => sum + ms, 0),
    pings: pings.length,
    pingP50us: percentile(pings, 0.5) * 1000,
    pingP99us: percentile(pings, 0.99) * 1000,
    pingsOverOneMs: pings.filter((ms) => ms > 1).length,
  })
})

/**
 * An allocation profile, for bench/profile.mjs: V8's sampling heap profiler between /heap/start and
 * /heap/stop, keeping the objects the collector has already freed, so that it tells what each
 * request allocates, not what stays. /heap/stop answers the profile.
 */
const inspector = new Session()
app.get('/heap/start', async (_req, res) => {
  inspector.connect()
  await inspector.post('HeapProfiler.startSampling', {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  })
  res.json({ ok: true })
})
app.get('/heap/stop', async (_req, res) => {
  const { profile } = await inspector.post('HeapProfiler.stopSampling')
  inspector.disconnect()
  res.json(profile)
})

function percentile(values, q) {
  const sorted = Float64Array.from(values).sort()
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}
const server = app.listen(Number(PORT), '127.0.0.1', () => console.log('listening'))
process.on('SIGTERM', () => {
  server.close()
  pinger?.disconnect()
  void RedisClientManager.close().finally(() => process.exit(0))
})
