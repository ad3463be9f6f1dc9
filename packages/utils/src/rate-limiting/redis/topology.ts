// Which Redis to use, from the environment: one server (REDIS_URL), Sentinel, or Cluster, with TLS.
import { readFileSync } from 'node:fs'

import { envFlag, envValue, type Env } from '../config/env-values.js'
import { ERROR_CODES, RateLimitError } from '../errors.js'
import { shownValue } from '../observability/redact.js'
import { parseRedisUrl, type RedisEndpoint } from './url.js'

export interface HostPort {
  readonly host: string
  readonly port: number
}

/** TLS settings from REDIS_TLS_*: the contents of the files, and whether to verify the server. */
export interface TlsSettings {
  readonly ca?: Buffer
  readonly cert?: Buffer
  readonly key?: Buffer
  readonly rejectUnauthorized: boolean
}

export type RedisTarget =
  | { readonly kind: 'standalone'; readonly endpoint: RedisEndpoint; readonly tls: TlsSettings | undefined }
  | {
      readonly kind: 'sentinel'
      readonly sentinels: readonly HostPort[]
      readonly masterName: string
      readonly username: string | undefined
      readonly password: string | undefined
      readonly sentinelPassword: string | undefined
      readonly tls: TlsSettings | undefined
    }
  | {
      readonly kind: 'cluster'
      readonly nodes: readonly HostPort[]
      readonly username: string | undefined
      readonly password: string | undefined
      readonly tls: TlsSettings | undefined
    }

export type Topology = RedisTarget['kind']

const configError = (code: (typeof ERROR_CODES)[keyof typeof ERROR_CODES], option: string, message: string) =>
  new RateLimitError(code, message, { option })

/** `host:port,host:port`: each entry checked, the list non-empty. */
export function parseNodeList(raw: string, variable: string): HostPort[] {
  return raw.split(',').map((text, index) => {
    const entry = text.trim()
    const match = /^(\[[0-9a-fA-F:.]+(?:%[A-Za-z0-9]+)?\]|[A-Za-z0-9._-]+):(\d{1,5})$/.exec(entry)
    const port = Number(match?.[2])
    if (match === null || !(port >= 1 && port <= 65_535)) {
      throw configError(
        ERROR_CODES.REDIS_NODES_INVALID,
        variable,
        `${variable} entry ${index + 1} must be host:port (port 1-65535), got ${shownValue(entry)}; ` +
          `expected a comma-separated list such as 10.0.0.1:26379,10.0.0.2:26379`,
      )
    }
    return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port }
  })
}

/** REDIS_TLS_CA, REDIS_TLS_CERT, REDIS_TLS_KEY and REDIS_TLS_REJECT_UNAUTHORIZED, read and checked. */
export function tlsFromEnv(env: Env, wanted: boolean): TlsSettings | undefined {
  const caPath = envValue(env, 'REDIS_TLS_CA')
  const certPath = envValue(env, 'REDIS_TLS_CERT')
  const keyPath = envValue(env, 'REDIS_TLS_KEY')
  const reject = envValue(env, 'REDIS_TLS_REJECT_UNAUTHORIZED')
  if (!wanted) {
    const stray = [
      ['REDIS_TLS_CA', caPath],
      ['REDIS_TLS_CERT', certPath],
      ['REDIS_TLS_KEY', keyPath],
      ['REDIS_TLS_REJECT_UNAUTHORIZED', reject],
    ].find(([, v]) => v)
    if (stray !== undefined) {
      throw configError(
        ERROR_CODES.REDIS_TLS_INVALID,
        stray[0]!,
        `${stray[0]} is set but the connection does not use TLS; use a rediss:// URL, or REDIS_TLS=true with Sentinel or Cluster`,
      )
    }
    return undefined
  }
  if ((certPath === undefined) !== (keyPath === undefined)) {
    const missing = certPath === undefined ? 'REDIS_TLS_CERT' : 'REDIS_TLS_KEY'
    throw configError(
      ERROR_CODES.REDIS_TLS_INVALID,
      missing,
      `${missing} must be set too: a client certificate needs both REDIS_TLS_CERT and REDIS_TLS_KEY`,
    )
  }
  const read = (variable: string, path: string | undefined): Buffer | undefined => {
    if (path === undefined) return undefined
    try {
      return readFileSync(path)
    } catch (error) {
      const why = (error as NodeJS.ErrnoException).code ?? 'unreadable'
      throw configError(
        ERROR_CODES.REDIS_TLS_INVALID,
        variable,
        `${variable} must be a readable PEM file, got ${JSON.stringify(path)} (${why})`,
      )
    }
  }
  return {
    ca: read('REDIS_TLS_CA', caPath),
    cert: read('REDIS_TLS_CERT', certPath),
    key: read('REDIS_TLS_KEY', keyPath),
    rejectUnauthorized: envFlag(env, 'REDIS_TLS_REJECT_UNAUTHORIZED', ERROR_CODES.REDIS_TLS_INVALID) ?? true,
  }
}

/**
 * One server at `redisUrl`, named by `source` (REDIS_URL, or the redisUrl option). Settings that
 * only Sentinel and Cluster read would be silently ignored with it: they are refused.
 */
function standaloneTarget(env: Env, redisUrl: string, source: 'REDIS_URL' | 'redisUrl'): RedisTarget {
  const endpoint = parseRedisUrl(redisUrl, source)
  for (const [name, fix] of [
    ['REDIS_USERNAME', `put the user in ${source}: redis://user:password@host:port`],
    ['REDIS_PASSWORD', `put the password in ${source}: redis://:password@host:port`],
    ['REDIS_TLS', `use a rediss:// ${source} for TLS`],
    ['REDIS_SENTINEL_MASTER', 'it belongs with REDIS_SENTINELS'],
    ['REDIS_SENTINEL_PASSWORD', 'it belongs with REDIS_SENTINELS'],
  ] as const) {
    if (envValue(env, name) !== undefined) {
      throw configError(ERROR_CODES.REDIS_TOPOLOGY_CONFLICT, name, `${name} is not read with ${source}; ${fix}`)
    }
  }
  return { kind: 'standalone', endpoint, tls: tlsFromEnv(env, endpoint.tls) }
}

/**
 * The Redis the environment names, or undefined for none (count in memory). Exactly one of
 * REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES may be set. `url` (the redisUrl option), when
 * given, takes the place of REDIS_URL.
 */
export function redisTargetFromEnv(env: Env = process.env, url?: string): RedisTarget | undefined {
  const redisUrl = url ?? envValue(env, 'REDIS_URL')
  const sentinels = envValue(env, 'REDIS_SENTINELS')
  const clusterNodes = envValue(env, 'REDIS_CLUSTER_NODES')
  const set = [
    ['REDIS_URL', redisUrl],
    ['REDIS_SENTINELS', sentinels],
    ['REDIS_CLUSTER_NODES', clusterNodes],
  ].filter(([, v]) => v !== undefined)
  if (set.length > 1) {
    const names = set.map(([name]) => name).join(' and ')
    throw configError(
      ERROR_CODES.REDIS_TOPOLOGY_CONFLICT,
      set[1]![0]!,
      `${names} are both set; set exactly one: REDIS_URL (one server), REDIS_SENTINELS (Sentinel) or REDIS_CLUSTER_NODES (Cluster)`,
    )
  }
  const username = envValue(env, 'REDIS_USERNAME')
  const password = env.REDIS_PASSWORD === undefined || env.REDIS_PASSWORD === '' ? undefined : env.REDIS_PASSWORD
  if (redisUrl !== undefined) return standaloneTarget(env, redisUrl, url === undefined ? 'REDIS_URL' : 'redisUrl')
  const tls = tlsFromEnv(env, envFlag(env, 'REDIS_TLS', ERROR_CODES.REDIS_TLS_INVALID) ?? false)
  if (sentinels !== undefined) {
    const masterName = envValue(env, 'REDIS_SENTINEL_MASTER')
    if (masterName === undefined || !/^[A-Za-z0-9._-]{1,64}$/.test(masterName)) {
      throw configError(
        ERROR_CODES.REDIS_NODES_INVALID,
        'REDIS_SENTINEL_MASTER',
        `REDIS_SENTINEL_MASTER must name the monitored master (1-64 characters from A-Z a-z 0-9 . _ -) when REDIS_SENTINELS is set, got ${masterName === undefined ? 'nothing' : shownValue(masterName)}`,
      )
    }
    const sentinelPassword = env.REDIS_SENTINEL_PASSWORD === '' ? undefined : env.REDIS_SENTINEL_PASSWORD
    return {
      kind: 'sentinel',
      sentinels: parseNodeList(sentinels, 'REDIS_SENTINELS'),
      masterName,
      username,
      password,
      sentinelPassword,
      tls,
    }
  }
  if (clusterNodes !== undefined) {
    return { kind: 'cluster', nodes: parseNodeList(clusterNodes, 'REDIS_CLUSTER_NODES'), username, password, tls }
  }
  return undefined
}

/** The target as it may be printed: topology and addresses, never a credential. */
export function describeTarget(target: RedisTarget): string {
  const list = (nodes: readonly HostPort[]) =>
    nodes.map((n) => `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`).join(',')
  switch (target.kind) {
    case 'standalone':
      return target.endpoint.safeUrl
    case 'sentinel':
      return `master ${target.masterName} via ${list(target.sentinels)}${target.tls ? ' (TLS)' : ''}`
    case 'cluster':
      return `${list(target.nodes)}${target.tls ? ' (TLS)' : ''}`
  }
}
