import calculateSlot from 'cluster-key-slot'
import { describe, expect, it } from 'vitest'

import { probeKeyFor } from '#src/resilience/breakers.js'
import { ERROR_CODES, RateLimitError, redisTargetFromEnv } from '#src/index.js'
import { describeTarget, parseNodeList } from '#src/redis/topology.js'

function failure(env: Record<string, string>): RateLimitError {
  try {
    redisTargetFromEnv(env)
  } catch (error) {
    expect(error).toBeInstanceOf(RateLimitError)
    return error as RateLimitError
  }
  throw new Error('expected redisTargetFromEnv to throw')
}

describe('redisTargetFromEnv', () => {
  it('is undefined when no Redis is named (count in memory)', () => {
    expect(redisTargetFromEnv({})).toBeUndefined()
  })

  it('reads Sentinel', () => {
    const target = redisTargetFromEnv({
      REDIS_SENTINELS: '10.0.0.1:26379, redis_sentinel:26380,[::1]:26381',
      REDIS_SENTINEL_MASTER: 'mymaster',
      REDIS_PASSWORD: 'p@ss:word',
      REDIS_SENTINEL_PASSWORD: 'sentinel-secret',
    })
    expect(target).toMatchObject({
      kind: 'sentinel',
      masterName: 'mymaster',
      password: 'p@ss:word',
      sentinelPassword: 'sentinel-secret',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: 'redis_sentinel', port: 26380 },
        { host: '::1', port: 26381 },
      ],
    })
    expect(describeTarget(target!)).toBe('master mymaster via 10.0.0.1:26379,redis_sentinel:26380,[::1]:26381')
  })

  it('reads Cluster, and never puts a password in the description', () => {
    const target = redisTargetFromEnv({ REDIS_CLUSTER_NODES: 'a:7000,b:7001', REDIS_PASSWORD: 'hunter2' })
    expect(target).toMatchObject({
      kind: 'cluster',
      password: 'hunter2',
      nodes: [
        { host: 'a', port: 7000 },
        { host: 'b', port: 7001 },
      ],
    })
    expect(describeTarget(target!)).toBe('a:7000,b:7001')
  })

  it.each([
    [{ REDIS_URL: 'redis://h:6379', REDIS_SENTINELS: 'h:26379' }, 'REDIS_URL and REDIS_SENTINELS are both set'],
    [
      { REDIS_SENTINELS: 'h:26379', REDIS_CLUSTER_NODES: 'h:7000' },
      'REDIS_SENTINELS and REDIS_CLUSTER_NODES are both set',
    ],
    [{ REDIS_URL: 'redis://h:6379', REDIS_PASSWORD: 'x' }, 'REDIS_PASSWORD is not read with REDIS_URL'],
    [{ REDIS_URL: 'redis://h:6379', REDIS_USERNAME: 'x' }, 'REDIS_USERNAME is not read with REDIS_URL'],
    [{ REDIS_URL: 'redis://h:6379', REDIS_TLS: 'true' }, 'REDIS_TLS is not read with REDIS_URL; use a rediss://'],
  ])('refuses %o as a topology conflict', (env, message) => {
    const error = failure(env)
    expect(error.code).toBe(ERROR_CODES.REDIS_TOPOLOGY_CONFLICT)
    expect(error.message).toContain(message)
  })

  it.each([
    [{ REDIS_CLUSTER_NODES: 'a:7000,,b:7001' }, 'REDIS_CLUSTER_NODES entry 2 must be host:port'],
    [{ REDIS_CLUSTER_NODES: 'a:70000' }, 'REDIS_CLUSTER_NODES entry 1 must be host:port (port 1-65535)'],
    [{ REDIS_SENTINELS: 'h:26379' }, 'REDIS_SENTINEL_MASTER must name the monitored master'],
    [{ REDIS_SENTINELS: 'h', REDIS_SENTINEL_MASTER: 'm' }, 'REDIS_SENTINELS entry 1 must be host:port'],
  ])('refuses a malformed list %o', (env, message) => {
    const error = failure(env)
    expect(error.code).toBe(ERROR_CODES.REDIS_NODES_INVALID)
    expect(error.message).toContain(message)
  })

  it('never prints a password pasted into a node list', () => {
    const error = failure({ REDIS_CLUSTER_NODES: 'redis://admin:S3cr3tPass@10.0.0.1:6379' })
    expect(error.message).not.toContain('S3cr3tPass')
  })

  it.each([
    [
      { REDIS_URL: 'redis://h:6379', REDIS_TLS_CA: '/ca.pem' },
      'REDIS_TLS_CA is set but the connection does not use TLS',
    ],
    [
      { REDIS_URL: 'redis://h:6379', REDIS_TLS_REJECT_UNAUTHORIZED: 'false' },
      'REDIS_TLS_REJECT_UNAUTHORIZED is set but',
    ],
    [{ REDIS_CLUSTER_NODES: 'a:1', REDIS_TLS: 'yes' }, 'REDIS_TLS must be true or false'],
    [{ REDIS_URL: 'rediss://h:6379', REDIS_TLS_KEY: '/k.pem' }, 'REDIS_TLS_CERT must be set too'],
  ])('refuses TLS settings %o', (env, message) => {
    const error = failure(env)
    expect(error.code).toBe(ERROR_CODES.REDIS_TLS_INVALID)
    expect(error.message).toContain(message)
  })

  it('parses bracketed IPv6 with a zone', () => {
    expect(parseNodeList('[fe80::1%eth0]:6379', 'REDIS_CLUSTER_NODES')).toEqual([{ host: 'fe80::1%eth0', port: 6379 }])
  })
})

describe('probeKeyFor', () => {
  it.each(['metaverses-srv:read:10.0.0.1', 'x{}y{z}', '{tag}rest', 'a{b', 'user:}{'])(
    'finds a probe key in the same slot as %s',
    (key) => {
      const probe = probeKeyFor(key)
      expect(calculateSlot(probe)).toBe(calculateSlot(key))
      expect(probe).toMatch(/^universo:probe:\d+$/)
    },
  )
})
