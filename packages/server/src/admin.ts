// The operator's controls over HTTP, for admins only: a client's state, its reset, and a block,
// on any limiter of the service (docs/server.md, Admin routes).
import express, { Router, type Request, type RequestHandler, type Response } from 'express'

import { requestErrorHandler, SERVICE_METRICS_NAMESPACE } from '@universo/metaverses-srv'
import {
  MAX_CONTROL_KEY_LENGTH,
  RateLimitError,
  type RateLimitClientState,
  type RateLimitLogger,
  type RateLimitRequestHandler,
} from '@universo/utils/rate-limiting'

import type { IdentifiedRequest } from './auth.js'
import { sendJsonError, sendUnauthorized } from './responses.js'

/** The largest body an admin route accepts; more gets 413. */
export const ADMIN_BODY_LIMIT_BYTES = 1024

/** The longest block an admin may set: the longest a limiter's window may be (about 24.8 days). */
export const MAX_ADMIN_BLOCK_MS = 2 ** 31 - 1

/** A key as stored: no control characters (nothing a limiter's key ever holds). */
// eslint-disable-next-line no-control-regex
const KEY = /^[^\u0000-\u001f\u007f]+$/

/** What the admin routes need: the limiters by name, and where the audit lines go. */
export interface AdminRoutesOptions {
  /** Every limiter of the service, by the name `:limiter` gives: read, write, login. */
  readonly limiters: ReadonlyMap<string, RateLimitRequestHandler>
  readonly logger: RateLimitLogger
}

/** 401 without a valid token, 403 for a user who is not an admin. */
const requireAdmin: RequestHandler = (req, res, next) => {
  const user = (req as IdentifiedRequest).user
  if (user === undefined) return sendUnauthorized(res, undefined)
  if (!user.isAdmin)
    return sendJsonError(res, 403, 'FORBIDDEN', 'Only an admin token may use the rate-limit admin routes')
  next()
}

/**
 * The routes under /admin/rate-limits. Mount them after identification and behind the limiters,
 * so that a client guessing admin tokens is limited like any other (admins themselves are skipped).
 */
export function createAdminRoutes({ limiters, logger }: AdminRoutesOptions): Router {
  const router = Router()
  const json = express.json({ limit: ADMIN_BODY_LIMIT_BYTES })

  /** The limiter and key a request names; answers 404 or 400 itself when either is bad. */
  const target = (
    req: Request,
    res: Response,
  ): { name: string; limiter: RateLimitRequestHandler; key: string } | undefined => {
    const name = String(req.params.limiter)
    const limiter = limiters.get(name)
    if (limiter === undefined) {
      sendJsonError(
        res,
        404,
        'UNKNOWN_LIMITER',
        `No limiter ${JSON.stringify(name)}; the limiters are ${[...limiters.keys()].join(', ')}`,
      )
      return undefined
    }
    const key = String(req.params.key)
    if (key.length > MAX_CONTROL_KEY_LENGTH || !KEY.test(key)) {
      sendJsonError(
        res,
        400,
        'INVALID_KEY',
        `The key must be a client key as stored (URL-encoded), 1 to ${MAX_CONTROL_KEY_LENGTH} characters with no control characters`,
      )
      return undefined
    }
    return { name, limiter, key }
  }

  /** Writes the audit line of an admin's change: who did what to which client. */
  const audit = (req: Request, action: string, name: string, key: string, details: Record<string, unknown> = {}) => {
    logger.warn(`[RateLimit:${name}] Operator ${action}`, {
      event: 'rate_limit_operator_action',
      action,
      namespace: SERVICE_METRICS_NAMESPACE,
      type: name,
      key,
      by: (req as IdentifiedRequest).user!.id,
      ...details,
    })
  }

  /** The state after a control, or the 4xx or 503 it failed with. */
  const answer = async (res: Response, name: string, control: () => Promise<RateLimitClientState>) => {
    let state: RateLimitClientState
    try {
      state = await control()
    } catch (error) {
      if (error instanceof RateLimitError) return sendJsonError(res, 400, error.code, error.message)
      // The library's StoreUnavailableError (errors.md): Redis could not be asked.
      if ((error as Error | undefined)?.name === 'StoreUnavailableError') {
        return sendJsonError(
          res,
          503,
          'RATE_LIMIT_STORE_UNAVAILABLE',
          'The shared rate-limit store cannot be reached; try again',
        )
      }
      throw error
    }
    res.json({ success: true, limiter: name, state })
  }

  router.use('/admin/rate-limits', requireAdmin)

  router.get('/admin/rate-limits/:limiter/:key', async (req, res) => {
    const found = target(req, res)
    if (found === undefined) return
    await answer(res, found.name, () => found.limiter.get(found.key))
  })

  router.delete('/admin/rate-limits/:limiter/:key', async (req, res) => {
    const found = target(req, res)
    if (found === undefined) return
    await answer(res, found.name, async () => {
      await found.limiter.reset(found.key)
      audit(req, 'reset', found.name, found.key)
      return found.limiter.get(found.key)
    })
  })

  router.post('/admin/rate-limits/:limiter/:key/block', json, async (req, res) => {
    const found = target(req, res)
    if (found === undefined) return
    const ms: unknown = (req.body as { ms?: unknown } | undefined)?.ms
    if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 1 || ms > MAX_ADMIN_BLOCK_MS) {
      return sendJsonError(
        res,
        400,
        'INVALID_BODY',
        `The body must be { "ms": an integer from 1 to ${MAX_ADMIN_BLOCK_MS} }`,
      )
    }
    await answer(res, found.name, async () => {
      const state = await found.limiter.block(found.key, ms)
      audit(req, 'block', found.name, found.key, { ms })
      return state
    })
  })

  // Malformed, oversized or unreadable bodies: the service's 4xx answers (INVALID_JSON, PAYLOAD_TOO_LARGE, ...).
  router.use(requestErrorHandler)
  return router
}
