// POST /api/v1/session: a login-style route. It checks an API token sent in the body, behind a
// strict limiter of its own (`login`), so that guessing tokens is slow whoever tries.
import express, { Router, type RequestHandler } from 'express'
import type { Registry } from 'prom-client'

import { requestErrorHandler, SERVICE_KEY_PREFIX, SERVICE_METRICS_NAMESPACE } from '@universo/metaverses-srv'
import type { RateLimitConfig, RateLimitLogger, RateLimitRequestHandler } from '@universo/utils/rate-limiting'

import { MAX_TOKEN_LENGTH, tokenHash, type ServerConfig, type TokenTable } from './config.js'
import { sendJsonError } from './responses.js'

/** The largest body POST /api/v1/session accepts; more gets 413. */
export const SESSION_BODY_LIMIT_BYTES = 1024

/**
 * The options of the `login` limiter: the environment's store and policy options (REDIS_URL,
 * RATE_LIMIT_ALGORITHM, ...), with RATE_LIMIT_LOGIN_MAX per RATE_LIMIT_LOGIN_WINDOW_MS. Counters are
 * the service's (`metaverses-srv:login:<ip>`), reported as type `login`. Admins are not skipped:
 * a login is made before anyone is known.
 */
export function loginLimiterOptions(
  config: Pick<ServerConfig, 'rateLimit' | 'login'>,
  logger: RateLimitLogger,
  metricsRegistry?: Registry,
): RateLimitConfig {
  // The environment's read and write limits are the service's: a named limiter draws from custom's.
  return {
    ...config.rateLimit,
    keyPrefix: SERVICE_KEY_PREFIX,
    metricsNamespace: SERVICE_METRICS_NAMESPACE,
    maxCustom: config.login.max,
    windowMs: config.login.windowMs,
    logger,
    ...(metricsRegistry === undefined ? {} : { metricsRegistry }),
  }
}

const requireJson: RequestHandler = (req, res, next) => {
  if (!req.is('application/json')) {
    sendJsonError(res, 415, 'UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json')
    return
  }
  next()
}

/**
 * The route, limiter first: every attempt counts, whatever its body. Mount it before the
 * identification middleware, so that the limiter keys every attempt by the client's IP.
 */
export function createSessionRoute(login: RateLimitRequestHandler, tokens: TokenTable): Router {
  const router = Router()
  router.post('/api/v1/session', login, requireJson, express.json({ limit: SESSION_BODY_LIMIT_BYTES }), (req, res) => {
    const token: unknown = (req.body as { token?: unknown } | undefined)?.token
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
      sendJsonError(
        res,
        400,
        'INVALID_BODY',
        `The body must be { "token": "<API token of 1 to ${MAX_TOKEN_LENGTH} characters>" }`,
      )
      return
    }
    const user = tokens.get(tokenHash(token))
    if (user === undefined) {
      sendJsonError(res, 401, 'INVALID_CREDENTIALS', 'The token is not valid')
      return
    }
    res.json({ success: true, user: { id: user.id, isAdmin: user.isAdmin } })
  })
  // Malformed, oversized or unreadable bodies: the service's 4xx answers (INVALID_JSON, PAYLOAD_TOO_LARGE, ...).
  router.use(requestErrorHandler)
  return router
}
