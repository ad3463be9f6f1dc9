// The original's stack as a user sets it up: express-rate-limit + rate-limit-redis over an ioredis
// client with default options (offline queue on, reconnect forever). One JSON route, like ours.
import express from 'express'
import { rateLimit } from 'express-rate-limit'
import { Redis } from 'ioredis'
import { RedisStore } from 'rate-limit-redis'

const client = new Redis(process.env.REDIS_URL)
// Without a listener an ioredis 'error' event would crash the process; the original logged it.
client.on('error', () => {})

const limiter = rateLimit({
  windowMs: 15 * 60 * 1000,
  limit: Number(process.env.LIMIT ?? 1_000_000),
  standardHeaders: 'draft-8',
  legacyHeaders: false,
  store: new RedisStore({ prefix: 'original:', sendCommand: (command, ...args) => client.call(command, ...args) }),
})

const app = express()
app.get('/api/v1/metaverses', limiter, (_req, res) => res.json([]))
// The original answered store errors through Express's default error handler: a 500.
app.listen(Number(process.env.PORT), () => console.log('listening'))
process.on('SIGTERM', () => process.exit(0))
