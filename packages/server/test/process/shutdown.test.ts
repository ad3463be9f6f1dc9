// SIGTERM and SIGINT on the built server, with a request in flight and a real Redis behind it.
import { describe, expect, it } from 'vitest'

import { redisServerAvailable } from '../../../utils/test/support/redis-server.js'
import { oneRedis } from './support/fleet.js'
import { startSlowPost, waitUntilWriteCounted } from './support/slow-request.js'
import { startServer, type ServerProcess } from './support/server-process.js'

describe.runIf(redisServerAvailable())('graceful shutdown', () => {
  const fleet = oneRedis()
  const start = (): Promise<ServerProcess> => fleet.start()

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'on %s stops accepting, finishes the request in flight, closes Redis and exits 0',
    async (signal) => {
      const server = await start()
      const slow = await startSlowPost(server.port, '/api/v1/metaverses', JSON.stringify({ name: 'in flight' }))
      await waitUntilWriteCounted(server.port)
      const signalledAt = Date.now()
      server.child.kill(signal)
      await server.waitForOutput(`[Server] ${signal} received`)
      await expect(fetch(`${server.base}/health`)).rejects.toThrow()
      const response = await slow.finish()
      expect(response).toMatch(/^HTTP\/1\.1 201 Created/)
      expect(response).toContain('"name":"in flight"')
      const exit = await server.exited
      expect(exit).toEqual({ code: 0, signal: null })
      expect(Date.now() - signalledAt).toBeLessThan(10_000)
      const lines = server.lines()
      const order = [
        `[Server] ${signal} received: no new connections, finishing in-flight requests`,
        '[Redis] Closing connection...',
        '[Redis] Connection closed',
        '[Server] Shutdown complete',
      ].map((line) => lines.indexOf(line))
      expect(order.every((index) => index >= 0)).toBe(true)
      expect(order).toEqual([...order].sort((a, b) => a - b))
    },
  )

  it('exits at once on a second signal, even with a request still in flight', async () => {
    const server = await start()
    const slow = await startSlowPost(server.port, '/api/v1/metaverses', JSON.stringify({ name: 'stuck' }))
    await waitUntilWriteCounted(server.port)
    server.child.kill('SIGTERM')
    await server.waitForOutput('[Server] SIGTERM received')
    server.child.kill('SIGTERM')
    const exit = await server.exited
    expect(exit.code).toBe(143)
    expect(server.output()).toContain('[Server] SIGTERM received again: exiting now')
    slow.destroy()
  })

  it('cuts a request that never finishes and still exits 0 within 10 s', async () => {
    const server = await start()
    const slow = await startSlowPost(server.port, '/api/v1/metaverses', JSON.stringify({ name: 'never' }))
    await waitUntilWriteCounted(server.port)
    const signalledAt = Date.now()
    server.child.kill('SIGTERM')
    const exit = await server.exited
    expect(exit).toEqual({ code: 0, signal: null })
    expect(Date.now() - signalledAt).toBeLessThan(10_000)
    expect(server.output()).toContain('[Server] Requests still running after 8000 ms: closing their connections')
    expect(server.output()).toContain('[Redis] Connection closed')
    await slow.closed
  })
})

describe('graceful shutdown in memory mode', () => {
  it('finishes the request in flight and exits 0 on SIGTERM, without Redis lines', async () => {
    const server = await startServer()
    try {
      const slow = await startSlowPost(server.port, '/api/v1/metaverses', JSON.stringify({ name: 'memory' }))
      await waitUntilWriteCounted(server.port)
      server.child.kill('SIGTERM')
      await server.waitForOutput('[Server] SIGTERM received')
      expect(await slow.finish()).toMatch(/^HTTP\/1\.1 201 Created/)
      expect(await server.exited).toEqual({ code: 0, signal: null })
      expect(server.output()).toContain('[Server] Shutdown complete')
      expect(server.output()).not.toContain('[Redis]')
    } finally {
      await server.stop()
    }
  })
})
