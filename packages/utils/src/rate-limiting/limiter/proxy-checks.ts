// Warns once per limiter when the proxy setup makes client IPs wrong (what express-rate-limit's own
// checks do, which only run inside its default key generator, and ours replaces it), or when one
// request is counted twice.
import type { Request } from 'express'

import type { RateLimitLogger } from '../observability/logger.js'

type Check = (request: Request, ip: string | undefined) => string | undefined

/**
 * Requests checked per limiter. express-rate-limit checks only the first; a few more catch a proxy
 * that sends its headers only sometimes. Past them the checks cost nothing: `req.ip` parses
 * X-Forwarded-For on every read.
 */
export const CHECKED_REQUESTS = 100

const CHECKS: readonly Check[] = [
  (_request, ip) =>
    ip === undefined
      ? 'ERR_ERL_UNDEFINED_IP_ADDRESS: req.ip is undefined (the socket closed early?); such requests share one budget'
      : undefined,
  (request) =>
    request.app.get('trust proxy') === true
      ? "ERR_ERL_PERMISSIVE_TRUST_PROXY: Express's trust proxy is true, so any client can pick its IP (and budget) " +
        'through X-Forwarded-For; set it to the number of proxies in front of the app'
      : undefined,
  (request) =>
    request.headers['x-forwarded-for'] !== undefined && request.app.get('trust proxy') === false
      ? "ERR_ERL_UNEXPECTED_X_FORWARDED_FOR: X-Forwarded-For is set but Express's trust proxy is off, so " +
        'clients are keyed by the address that connected; if a proxy is in front, set trust proxy to its hop count'
      : undefined,
  (request) =>
    request.headers.forwarded !== undefined && request.headers['x-forwarded-for'] === undefined
      ? 'ERR_ERL_FORWARDED_HEADER: the Forwarded header is not read by Express; clients behind that proxy share ' +
        'its address unless it also sends X-Forwarded-For'
      : undefined,
]

/** The one check that needs memory: a request this limiter has counted already. */
const DOUBLE_COUNT =
  'ERR_ERL_DOUBLE_COUNT: this limiter counted one request twice, so every client gets half its budget; ' +
  'it is mounted twice on the route (app.use and router.use, say): mount it once'

/**
 * A function that runs every check on the first CHECKED_REQUESTS requests, and logs each finding
 * once per limiter. Besides the proxy's, it looks for a request counted twice by this limiter, as
 * express-rate-limit's singleCount validation would: that one never sees the second pass, which
 * is decided without its middleware (decision.ts), and a policy limiter never reaches it at all.
 */
export function createProxyChecks(logger: RateLimitLogger, tag: string): (request: Request) => void {
  const reported = new Set<number>()
  let left = CHECKED_REQUESTS
  const seen = new WeakSet<Request>()
  let doubleCounted = false
  return (request) => {
    if (left === 0) return
    left--
    if (!doubleCounted) {
      if (seen.has(request)) {
        doubleCounted = true
        logger.warn(`${tag} ${DOUBLE_COUNT}`)
      } else {
        seen.add(request)
      }
    }
    if (reported.size === CHECKS.length) return
    const ip = request.ip
    CHECKS.forEach((check, index) => {
      if (reported.has(index)) return
      const finding = check(request, ip)
      if (finding === undefined) return
      reported.add(index)
      logger.warn(`${tag} ${finding}`)
    })
  }
}
