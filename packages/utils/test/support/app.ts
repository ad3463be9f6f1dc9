// An Express app with a read and a write route behind the given limiters, for supertest.
import express, { type Express, type RequestHandler } from 'express'

export interface LimitedRoutes {
  readonly read: RequestHandler
  readonly write: RequestHandler
}

/**
 * GET /items is read-limited, POST /items write-limited. `trust proxy` is on so that tests can be
 * different clients through X-Forwarded-For. GET /items echoes `req.rateLimit`; `onFinish` sees it
 * on every response.
 */
export function createApp(limiters: LimitedRoutes, onFinish?: (rateLimit: unknown, status: number) => void): Express {
  const app = express()
  app.set('trust proxy', 1)
  if (onFinish) {
    // Sees req.rateLimit after the response, also when the limiter answered 429 itself.
    app.use((req, res, next) => {
      res.on('finish', () => onFinish((req as { rateLimit?: unknown }).rateLimit, res.statusCode))
      next()
    })
  }
  app.get('/items', limiters.read, (req, res) => {
    res.json({ ok: true, rateLimit: (req as { rateLimit?: unknown }).rateLimit })
  })
  app.post('/items', limiters.write, (_req, res) => {
    res.status(201).json({ ok: true })
  })
  return app
}
