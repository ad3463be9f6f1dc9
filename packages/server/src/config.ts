// Reads and checks the server's environment. Every error names the variable and what it accepts.
import { createHash } from 'node:crypto'

import { RateLimitError, rateLimitConfigFromEnv, type RateLimitEnvConfig } from '@universo/utils/rate-limiting'

/** A user an API token stands for. */
export interface ApiUser {
  readonly id: string
  readonly isAdmin: boolean
}

/** API users by the SHA-256 (hex) of their token: the tokens themselves are not kept. */
export type TokenTable = ReadonlyMap<string, ApiUser>

export interface ServerConfig {
  /** PORT. @default 3000 */
  readonly port: number
  /** NODE_ENV. @default 'development' */
  readonly nodeEnv: NodeEnv
  /** TRUST_PROXY: proxy hops in front of the server, or false. @default false */
  readonly trustProxy: number | false
  /** AUTH_REQUIRED. @default false */
  readonly authRequired: boolean
  /** API_TOKENS, parsed. */
  readonly tokens: TokenTable
  /** REDIS_URL and RATE_LIMIT_*, checked by the rate-limiting library. */
  readonly rateLimit: RateLimitEnvConfig
  /** RATE_LIMIT_SKIP_ADMINS: admins' requests bypass the limiters. @default true */
  readonly skipAdmins: boolean
  /** RATE_LIMIT_LOGIN_MAX and RATE_LIMIT_LOGIN_WINDOW_MS: the attempts POST /api/v1/session allows a client. */
  readonly login: LoginLimit
  /** METRICS_TOKEN, as its SHA-256 (hex): /metrics then wants it as a bearer token. @default open */
  readonly metricsTokenHash: string | undefined
  /** LOG_LEVEL. @default 'info' */
  readonly logLevel: LogLevel
}

/** How many token checks (POST /api/v1/session) one client may make per window. */
export interface LoginLimit {
  /** RATE_LIMIT_LOGIN_MAX. @default 5 */
  readonly max: number
  /** RATE_LIMIT_LOGIN_WINDOW_MS. @default 60000 (1 minute) */
  readonly windowMs: number
}

export const DEFAULT_LOGIN_LIMIT: LoginLimit = Object.freeze({ max: 5, windowMs: 60_000 })
export const MAX_LOGIN_ATTEMPTS = 10_000
export const MAX_LOGIN_WINDOW_MS = 86_400_000

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export const NODE_ENVS = ['development', 'production', 'staging', 'test'] as const
export type NodeEnv = (typeof NODE_ENVS)[number]
export const MAX_TRUST_PROXY_HOPS = 10
export const MIN_TOKEN_LENGTH = 16

/** A bad environment value. The message is the one line an operator needs; it never holds a credential. */
export class ConfigError extends Error {
  readonly code = 'ERR_SERVER_INVALID_ENV'
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message)
    this.name = new.target.name
  }
}

type Env = Readonly<Record<string, string | undefined>>

const value = (env: Env, name: string): string | undefined => {
  const raw = env[name]
  return raw === undefined || raw.trim() === '' ? undefined : raw.trim()
}

const shown = (raw: string): string => JSON.stringify(raw.length > 40 ? `${raw.slice(0, 37)}...` : raw)

/** Every variable the server reads, checked. Throws ConfigError (or the library's RateLimitError). */
export function loadConfig(env: Env = process.env): ServerConfig {
  return {
    port: port(env),
    nodeEnv: nodeEnv(env),
    trustProxy: trustProxy(env),
    authRequired: boolean(env, 'AUTH_REQUIRED', false),
    tokens: apiTokens(env),
    rateLimit: rateLimitConfigFromEnv(env),
    skipAdmins: boolean(env, 'RATE_LIMIT_SKIP_ADMINS', true),
    login: loginLimit(env),
    metricsTokenHash: metricsToken(env),
    logLevel: logLevel(env),
  }
}

const logLevel = (env: Env): LogLevel => oneOf(env, 'LOG_LEVEL', LOG_LEVELS, 'info')

/** `name`'s value if it is one of `allowed`, `fallback` when unset; anything else throws, naming it. */
function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = value(env, name)
  if (raw === undefined) return fallback
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `${name} must be one of ${allowed.join(', ')}, got ${shown(raw)}`)
  }
  return raw as T
}

/** METRICS_TOKEN's hash. The token is never shown, not even in an error: only its length is. */
function metricsToken(env: Env): string | undefined {
  const raw = value(env, 'METRICS_TOKEN')
  if (raw === undefined) return undefined
  if (raw.length < MIN_TOKEN_LENGTH || raw.length > MAX_TOKEN_LENGTH || !TOKEN.test(raw)) {
    throw new ConfigError(
      'METRICS_TOKEN',
      `METRICS_TOKEN must be ${MIN_TOKEN_LENGTH}-${MAX_TOKEN_LENGTH} characters from A-Z a-z 0-9 . _ ~ + / = -, ` +
        `got a value of ${raw.length} characters${TOKEN.test(raw) ? '' : ' with other characters'}`,
    )
  }
  return tokenHash(raw)
}

function loginLimit(env: Env): LoginLimit {
  return {
    max: boundedInteger(env, 'RATE_LIMIT_LOGIN_MAX', 1, MAX_LOGIN_ATTEMPTS, DEFAULT_LOGIN_LIMIT.max),
    windowMs: boundedInteger(
      env,
      'RATE_LIMIT_LOGIN_WINDOW_MS',
      1000,
      MAX_LOGIN_WINDOW_MS,
      DEFAULT_LOGIN_LIMIT.windowMs,
    ),
  }
}

/** `name`'s whole number from `min` to `max`, `fallback` when unset; anything else throws, naming it. */
function boundedInteger(env: Env, name: string, min: number, max: number, fallback: number): number {
  const raw = value(env, name)
  if (raw === undefined) return fallback
  const parsed = /^\d{1,16}$/.test(raw) ? Number(raw) : Number.NaN
  if (!(parsed >= min && parsed <= max)) {
    throw new ConfigError(name, `${name} must be an integer from ${min} to ${max}, got ${shown(raw)}`)
  }
  return parsed
}

function port(env: Env): number {
  const raw = value(env, 'PORT')
  if (raw === undefined) return 3000
  const parsed = /^\d{1,5}$/.test(raw) ? Number(raw) : Number.NaN
  if (!(parsed >= 1 && parsed <= 65_535)) {
    throw new ConfigError('PORT', `PORT must be an integer from 1 to 65535, got ${shown(raw)}`)
  }
  return parsed
}

const nodeEnv = (env: Env): NodeEnv => oneOf(env, 'NODE_ENV', NODE_ENVS, 'development')

function trustProxy(env: Env): number | false {
  const raw = value(env, 'TRUST_PROXY')
  if (raw === undefined || raw.toLowerCase() === 'false' || raw === '0') return false
  const hops = /^\d{1,2}$/.test(raw) ? Number(raw) : Number.NaN
  if (!(hops >= 1 && hops <= MAX_TRUST_PROXY_HOPS)) {
    const why =
      raw.toLowerCase() === 'true' ? ' (true would let any client choose its own IP through X-Forwarded-For)' : ''
    throw new ConfigError(
      'TRUST_PROXY',
      `TRUST_PROXY must be the number of proxies in front of the server (1 to ${MAX_TRUST_PROXY_HOPS}) or false, ` +
        `got ${shown(raw)}${why}`,
    )
  }
  return hops
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = value(env, name)
  if (raw === undefined) return fallback
  const lower = raw.toLowerCase()
  if (lower === 'true' || lower === '1') return true
  if (lower === 'false' || lower === '0') return false
  throw new ConfigError(name, `${name} must be true or false, got ${shown(raw)}`)
}

const TOKEN = /^[A-Za-z0-9._~+/=-]+$/
const USER_ID = /^[A-Za-z0-9._@-]{1,64}$/
export const MAX_TOKEN_LENGTH = 512
const ENTRY_FORM =
  `token:userId or token:userId:admin, with a token of ${MIN_TOKEN_LENGTH}-${MAX_TOKEN_LENGTH} characters from ` +
  'A-Z a-z 0-9 . _ ~ + / = - and a userId of 1-64 characters from A-Z a-z 0-9 . _ @ -'

/**
 * What is wrong with one API_TOKENS entry, told without any of its fields: an operator who swapped
 * token and user id would otherwise see the token printed.
 */
function entryProblem(fields: string[]): string | undefined {
  const [token = '', userId, flag, ...rest] = fields
  if (fields.length === 1 && token === '') return 'it is empty'
  if (userId === undefined) return 'it has no userId (one field; expected token:userId)'
  if (rest.length > 0) return `it has ${fields.length} fields (at most 3)`
  if (token.length < MIN_TOKEN_LENGTH) return `its token is shorter than ${MIN_TOKEN_LENGTH} characters`
  if (token.length > MAX_TOKEN_LENGTH) return `its token is longer than ${MAX_TOKEN_LENGTH} characters`
  if (!TOKEN.test(token)) return 'its token has characters outside A-Z a-z 0-9 . _ ~ + / = -'
  if (!USER_ID.test(userId)) return 'its userId is not 1-64 characters from A-Z a-z 0-9 . _ @ -'
  if (flag !== undefined && flag !== 'admin') return 'its third field is not admin'
  return undefined
}

/** SHA-256 (hex) of a token: how tokens are looked up. */
export const tokenHash = (token: string): string => createHash('sha256').update(token).digest('hex')

function apiTokens(env: Env): TokenTable {
  const raw = value(env, 'API_TOKENS')
  const table = new Map<string, ApiUser>()
  if (raw === undefined) return table
  const seen = new Map<string, number>()
  raw.split(',').forEach((text, index) => {
    const number = index + 1
    const fields = text.trim().split(':')
    const problem = entryProblem(fields)
    if (problem !== undefined) {
      throw new ConfigError('API_TOKENS', `API_TOKENS entry ${number} must be ${ENTRY_FORM}, but ${problem}`)
    }
    const [token = '', userId = '', flag] = fields
    const hash = tokenHash(token)
    const earlier = seen.get(hash)
    if (earlier !== undefined) {
      throw new ConfigError('API_TOKENS', `API_TOKENS entries ${earlier} and ${number} have the same token`)
    }
    seen.set(hash, number)
    table.set(hash, { id: userId, isAdmin: flag === 'admin' })
  })
  return table
}

/** The one line to print for a configuration error: the message, which names the variable. */
export function describeConfigError(error: unknown): string | undefined {
  if (error instanceof ConfigError || error instanceof RateLimitError) return error.message
  return undefined
}
