// rediss:// against a TLS-only redis-server with certificates made by openssl.
import { rmSync } from 'node:fs'

import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'

import { createRateLimiters, ERROR_CODES, RedisClientManager } from '#src/index.js'
import { createApp } from '#test/support/app.js'
import { listen } from '#test/support/http.js'
import { uniquePrefix } from '#test/support/limiter-contract.js'
import { recordingLogger } from '#test/support/logger.js'
import { redisServerAvailable } from '#test/support/redis-server.js'
import { makeCertificates, startTlsServer, type TlsFiles } from '#test/support/topologies.js'

describe.runIf(redisServerAvailable())('TLS (rediss://)', () => {
  let files: TlsFiles
  beforeAll(() => {
    files = makeCertificates()
  })
  afterAll(() => {
    rmSync(files.dir, { recursive: true, force: true })
  })
  afterEach(async () => {
    await RedisClientManager.close()
    vi.unstubAllEnvs()
  })

  async function limitersOn(port: number, env: Record<string, string>, requireRedis = true) {
    for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value)
    const logger = recordingLogger()
    const keyPrefix = uniquePrefix('tls')
    const result = await createRateLimiters({
      keyPrefix,
      redisUrl: `rediss://127.0.0.1:${port}`,
      redisRetries: 1,
      requireRedis,
      logger,
    }).catch((error: unknown) => error)
    return { result, logger, keyPrefix }
  }

  it('verifies the server against REDIS_TLS_CA and counts over TLS', async () => {
    const server = await startTlsServer(files, false)
    try {
      const { result, logger } = await limitersOn(server.port, { REDIS_TLS_CA: files.ca })
      if (result instanceof Error) throw result
      const limiters = result as Awaited<ReturnType<typeof createRateLimiters>>
      const http = await listen(createApp(limiters))
      expect((await fetch(`${http.base}/items`)).status).toBe(200)
      expect(limiters.status()).toMatchObject({ store: 'redis', topology: 'standalone', ready: true })
      expect(logger.messages()).toContain(`[Redis] Connecting (standalone): rediss://127.0.0.1:${server.port}`)
      await http.close()
      limiters.dispose()
    } finally {
      await server.stop()
    }
  })

  it('refuses a server whose certificate the CA did not sign, with a clear error', async () => {
    const server = await startTlsServer(files, false)
    try {
      const { result } = await limitersOn(server.port, { REDIS_TLS_CA: files.otherCa })
      expect(result).toMatchObject({ code: ERROR_CODES.REDIS_CONNECT_TIMEOUT })
      expect((result as Error).message).toMatch(/certificate/i)
    } finally {
      await server.stop()
    }
  })

  it('connects without verification only with REDIS_TLS_REJECT_UNAUTHORIZED=false, and warns once', async () => {
    const server = await startTlsServer(files, false)
    try {
      const { result, logger } = await limitersOn(server.port, {
        REDIS_TLS_CA: files.otherCa,
        REDIS_TLS_REJECT_UNAUTHORIZED: 'false',
      })
      if (result instanceof Error) throw result
      ;(result as { dispose(): void }).dispose()
      expect(logger.messages().filter((m) => m.includes('REDIS_TLS_REJECT_UNAUTHORIZED=false'))).toEqual([
        '[Redis] REDIS_TLS_REJECT_UNAUTHORIZED=false: the Redis server certificate is not verified',
      ])
    } finally {
      await server.stop()
    }
  })

  it('does mutual TLS with REDIS_TLS_CERT and REDIS_TLS_KEY, and is refused without them', async () => {
    const server = await startTlsServer(files, true)
    try {
      const refused = await limitersOn(server.port, { REDIS_TLS_CA: files.ca })
      expect(refused.result).toMatchObject({ code: ERROR_CODES.REDIS_CONNECT_TIMEOUT })
      await RedisClientManager.close()
      const { result } = await limitersOn(server.port, {
        REDIS_TLS_CA: files.ca,
        REDIS_TLS_CERT: files.clientCert,
        REDIS_TLS_KEY: files.clientKey,
      })
      if (result instanceof Error) throw result
      expect((result as { status(): { ready: boolean } }).status().ready).toBe(true)
      ;(result as { dispose(): void }).dispose()
    } finally {
      await server.stop()
    }
  })

  it.each([
    [
      { REDIS_TLS_CERT: '/nonexistent/client.crt', REDIS_TLS_KEY: '/nonexistent/client.key' },
      'REDIS_TLS_CERT must be a readable PEM file',
    ],
    [{ REDIS_TLS_CERT: 'CERT' }, 'REDIS_TLS_KEY must be set too'],
    [{ REDIS_TLS_REJECT_UNAUTHORIZED: 'no' }, 'REDIS_TLS_REJECT_UNAUTHORIZED must be true or false'],
  ])('refuses bad TLS settings %o with ERR_REDIS_TLS_INVALID', async (env, message) => {
    const { result } = await limitersOn(1, env)
    expect(result).toMatchObject({ code: ERROR_CODES.REDIS_TLS_INVALID })
    expect((result as Error).message).toContain(message)
  })
})
