// The server's Prometheus registry, GET /metrics (optionally behind METRICS_TOKEN), and request latency.
import { timingSafeEqual } from 'node:crypto'

import type { RequestHandler } from 'express'
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client'

import { tokenHash } from './config.js'
import { sendJsonError } from './responses.js'

/** Request latency buckets, in seconds: 1 ms to 10 s. */
export const HTTP_DURATION_BUCKETS = Object.freeze([
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
])

/** Methods reported as themselves; any other is `other`, so a client cannot invent label values. */
const METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

/** A registry with Node's default metrics (process_*, nodejs_*) on it. The limiters add theirs. */
export function createMetricsRegistry(): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  return registry
}

/**
 * Observes every response in `http_request_duration_seconds{method, status}`, where status is the
 * class (2xx, 4xx, ...): labels never carry a path, an id or anything a client picks.
 */
export function httpMetrics(registry: Registry): RequestHandler {
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from a request to its response, in seconds.',
    labelNames: ['method', 'status'],
    buckets: [...HTTP_DURATION_BUCKETS],
    registers: [registry],
  })
  return (req, res, next) => {
    const start = performance.now()
    res.once('finish', () => {
      const method = METHODS.has(req.method) ? req.method : 'other'
      duration.observe({ method, status: `${Math.floor(res.statusCode / 100)}xx` }, (performance.now() - start) / 1000)
    })
    next()
  }
}

const BEARER = /^Bearer +(\S{1,512})\s*$/i

/**
 * GET /metrics in the Prometheus text format. With a token hash (METRICS_TOKEN), a request without
 * `Authorization: Bearer <token>` gets 401. Never rate-limited: a scraper must always get through.
 */
export function metricsEndpoint(registry: Registry, tokenHashWanted: string | undefined): RequestHandler {
  const wanted = tokenHashWanted === undefined ? undefined : Buffer.from(tokenHashWanted, 'hex')
  return (req, res, next) => {
    if (wanted !== undefined) {
      const token = BEARER.exec(req.headers.authorization ?? '')?.[1]
      // Compared as SHA-256 digests, in constant time: equal lengths, and nothing learnt from timing.
      if (token === undefined || !timingSafeEqual(Buffer.from(tokenHash(token), 'hex'), wanted)) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="metrics"')
        return sendJsonError(res, 401, 'UNAUTHORIZED', 'Send the metrics token: Authorization: Bearer <METRICS_TOKEN>')
      }
    }
    registry.metrics().then((text) => {
      res.setHeader('Content-Type', registry.contentType)
      res.setHeader('Cache-Control', 'no-store')
      res.send(text)
    }, next)
  }
}
