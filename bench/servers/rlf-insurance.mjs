// rate-limiter-flexible's RateLimiterRedis with an in-memory insuranceLimiter, the setup its README
// gives for a fleet that must keep limiting when Redis fails. Without the in-memory block of
// perf-app.mjs's rlf-redis-block, so that it differs from rlf-redis by the insurance alone.
import express from 'express'
import { Redis } from 'ioredis'
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible'

const LIMIT = Number(process.env.LIMIT)
const DURATION_S = 15 * 60
// The README splits the limit over the processes: each one's insurance counts alone.
const INSTANCES = Number(process.env.INSTANCES ?? 1)

const limiter = new RateLimiterRedis({
  storeClient: new Redis(process.env.REDIS_URL),
  points: LIMIT,
  duration: DURATION_S,
  keyPrefix: 'rlfi',
  insuranceLimiter: new RateLimiterMemory({ points: Math.floor(LIMIT / INSTANCES), duration: DURATION_S }),
})

const app = express()
// As perf-app.mjs's flexible(): any rejection, over the limit or a store error, is a 429.
app.get(
  '/r',
  (req, res, next) => {
    limiter.consume(req.ip).then(
      () => next(),
      () => res.status(429).send('Too Many Requests'),
    )
  },
  (_req, res) => res.json({ ok: true }),
)
app.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'))
process.on('SIGTERM', () => process.exit(0))
