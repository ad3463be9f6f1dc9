// Parses and checks a Redis URL (redis:// or rediss://) into ioredis connection options.
import { ERROR_CODES, RateLimitError } from '../errors.js'
import { hasAtAfterHost, redactUrl } from '../observability/redact.js'

/** The connection facts a URL gives, ready to spread into ioredis options. */
export interface RedisEndpoint {
  readonly host: string
  readonly port: number
  readonly db: number
  readonly username: string | undefined
  readonly password: string | undefined
  readonly tls: boolean
  /** The URL with its password replaced by `***`: the only form that may be printed. */
  readonly safeUrl: string
}

const ACCEPTED = 'redis://[user:pass@]host:port[/db] or rediss://[user:pass@]host:port[/db] (TLS)'
const DEFAULT_PORT = 6379
const MAX_DB = 2 ** 31 - 1

/**
 * Parses `url`. `source` names where it came from (REDIS_URL or the redisUrl option) so that the
 * error tells the operator what to fix. The password never appears in an error.
 */
export function parseRedisUrl(url: string, source: string): RedisEndpoint {
  const fail = (problem: string): never => {
    throw new RateLimitError(
      ERROR_CODES.REDIS_URL_INVALID,
      `${source} ${problem}, got "${redactUrl(url)}"; expected ${ACCEPTED}`,
      { option: source },
    )
  }

  if (typeof url !== 'string' || url.trim() === '') fail('must be a non-empty URL')
  // Before parsing: the parser would read such a password's tail as the database or a query.
  if (hasAtAfterHost(url.trim())) {
    fail('has an "@" after a "/", "?" or "#": percent-encode those characters in the user name and password')
  }
  let parsed: URL
  try {
    parsed = new URL(url.trim())
  } catch {
    return fail('is not a valid URL')
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    fail(`has unsupported scheme "${parsed.protocol}"`)
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1')
  if (host === '') fail('has no host')
  const port = parsed.port === '' ? DEFAULT_PORT : Number(parsed.port)
  if (!Number.isInteger(port) || port < 1 || port > 65_535) fail('has an invalid port')

  const path = parsed.pathname.replace(/^\//, '')
  if (!/^\d*$/.test(path)) fail(`has an invalid database "/${path}" (a non-negative integer)`)
  const db = path === '' ? 0 : Number(path)
  if (db > MAX_DB) fail('has a database number that is too large')
  if (parsed.search !== '' || parsed.hash !== '') fail('must not have a query string or fragment')

  const decode = (part: string): string | undefined => {
    if (part === '') return undefined
    try {
      return decodeURIComponent(part)
    } catch {
      return fail('has malformed percent-encoding in its user or password')
    }
  }
  const username = decode(parsed.username)
  const password = decode(parsed.password)
  const scheme = parsed.protocol.slice(0, -1)
  // A bare userinfo is hidden whole, as redactCredentials does: some people put a password there.
  const auth = password === undefined ? (username === undefined ? '' : '***@') : `${username ?? ''}:***@`
  const safeHost = host.includes(':') ? `[${host}]` : host
  return {
    host,
    port,
    db,
    username,
    password,
    tls: parsed.protocol === 'rediss:',
    safeUrl: `${scheme}://${auth}${safeHost}:${port}${db === 0 ? '' : `/${db}`}`,
  }
}
