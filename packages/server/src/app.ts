// Builds the Express app from its dependencies: health, readiness, identity, then the lazily mounted API.
import express, { Router, type ErrorRequestHandler, type Express } from 'express'
import type { Registry } from 'prom-client'

import { createMetaversesServiceRoutes, getRateLimiters, type MetaversesDataSource } from '@universo/metaverses-srv'
import { redactCredentials, type RateLimitLogger, type RateLimitRequestHandler } from '@universo/utils/rate-limiting'

import { createAdminRoutes } from './admin.js'
import { createEnsureAuth, createIdentify } from './auth.js'
import type { ServerConfig } from './config.js'
import { httpMetrics, metricsEndpoint } from './metrics.js'
import { sendJsonError } from './responses.js'
import { createSessionRoute } from './session.js'

/** Methods that read: the read limiter counts them on the admin routes, as on the API. */
const READ_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS'])

export interface AppDependencies {
  readonly config: Pick<ServerConfig, 'trustProxy' | 'authRequired' | 'tokens'> &
    Partial<Pick<ServerConfig, 'metricsTokenHash'>>
  readonly dataSource: MetaversesDataSource
  readonly logger: RateLimitLogger
  /** The registry to serve on GET /metrics (the limiters' and request latency). @default no /metrics */
  readonly metricsRegistry?: Registry
  /** Builds the service router on the first API request. @default createMetaversesServiceRoutes */
  readonly createRoutes?: typeof createMetaversesServiceRoutes
  /** The `login` limiter of POST /api/v1/session (session.ts). @default no such route */
  readonly loginLimiter?: RateLimitRequestHandler
}

/**
 * The app. Call it after `await initializeRateLimiters()`: it checks that at once, so a boot that
 * skipped initialisation fails here instead of answering 500 to every API request.
 */
export function createApp({
  config,
  dataSource,
  logger,
  metricsRegistry,
  createRoutes = createMetaversesServiceRoutes,
  loginLimiter,
}: AppDependencies): Express {
  const limiters = getRateLimiters()
  const app = express()
  app.disable('x-powered-by')
  // Off unless TRUST_PROXY says how many proxies to believe: otherwise X-Forwarded-For would
  // let every client pick a fresh IP, and with it a fresh budget.
  app.set('trust proxy', config.trustProxy)

  // Liveness: the process answers. It never touches Redis and is not rate-limited.
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' })
  })
  // Readiness: should this instance receive traffic? Yes while the store counts, and also while
  // the limiters are degraded under 'fallback' or 'allow', since the API still answers; 503 only
  // under 'deny', which would refuse every API request. Redis is shared, so a 503 there would take
  // the whole fleet out of a load balancer at once. The body still says 'degraded' (and `ready`
  // still means "counts where it should"), for operators and alerts. Not rate-limited either.
  app.get('/ready', (_req, res) => {
    const store = limiters.status()
    res.status(store.state === 'deny' ? 503 : 200).json({ status: store.ready ? 'ready' : 'degraded', ...store })
  })

  if (metricsRegistry !== undefined) {
    // For Prometheus: not rate-limited, and behind METRICS_TOKEN when it is set.
    app.get('/metrics', metricsEndpoint(metricsRegistry, config.metricsTokenHash))
    // Request latency of everything below: probes and scrapes above would only dilute it.
    app.use(httpMetrics(metricsRegistry))
  }

  // Before identification: the login limiter keys each attempt by IP, never by a token's user.
  if (loginLimiter !== undefined) app.use(createSessionRoute(loginLimiter, config.tokens))

  app.use(createIdentify(config.tokens))
  const ensureAuth = createEnsureAuth(config.authRequired)

  // The operator's controls, for admins. Behind the limiters, so that guessing an admin token is
  // limited like any other request (admins' own requests are skipped unless RATE_LIMIT_SKIP_ADMINS=false).
  app.use('/admin/rate-limits', (req, res, next) =>
    (READ_METHODS.has(req.method) ? limiters.read : limiters.write)(req, res, next),
  )
  app.use(
    createAdminRoutes({
      limiters: new Map([
        ['read', limiters.read],
        ['write', limiters.write],
        ...(loginLimiter === undefined ? [] : ([['login', loginLimiter]] as const)),
      ]),
      logger,
    }),
  )

  // Mounted lazily on the first API request, as the deployment guide shows.
  let metaversesRouter: Router | null = null
  const api = Router()
  api.use((req, res, next) => {
    metaversesRouter ??= createRoutes(ensureAuth, () => dataSource)
    metaversesRouter(req, res, next)
  })
  app.use('/api/v1', api)

  app.use((_req, res) => {
    sendJsonError(res, 404, 'NOT_FOUND', 'No such route')
  })
  const onError: ErrorRequestHandler = (error: unknown, req, res, next) => {
    // A client error that reached us (a malformed path, say) is the client's 4xx, not our 500.
    const { status, expose } = error as { status?: unknown; expose?: unknown }
    if (!res.headersSent && (error instanceof URIError || (expose === true && typeof status === 'number'))) {
      const code = typeof status === 'number' && status >= 400 && status < 500 ? status : 400
      return sendJsonError(res, code, 'BAD_REQUEST', 'The request could not be understood')
    }
    logger.error(
      `[Server] ${req.method} ${req.path} failed: ${redactCredentials(String((error as Error)?.message ?? error))}`,
    )
    if (res.headersSent) return next(error)
    sendJsonError(res, 500, 'INTERNAL_ERROR', 'Internal server error')
  }
  app.use(onError)
  return app
}
