// `pnpm start` as the README gives it: no rebuild, several side by side, signals reach node.
import { afterEach, describe, expect, it } from 'vitest'

import { startServer, type ServerProcess } from './support/server-process.js'

const running: ServerProcess[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.stop()))
})

// pnpm runs these tests (pnpm test), so it is always there.
describe('pnpm start', () => {
  it('runs two servers side by side on their own PORTs, without building', async () => {
    const servers = await Promise.all([
      startServer({}, { command: ['pnpm', 'start'] }),
      startServer({}, { command: ['pnpm', 'start'] }),
    ])
    running.push(...servers)
    for (const server of servers) {
      expect((await fetch(`${server.base}/health`)).status).toBe(200)
      expect(server.output()).not.toMatch(/tsup|Build success|Lockfile|Already up to date/)
    }
  })

  it('passes SIGTERM sent to pnpm on to the server, which shuts down cleanly', async () => {
    const server = await startServer({}, { command: ['pnpm', 'start'] })
    running.push(server)
    server.child.kill('SIGTERM')
    await server.waitForOutput('[Server] Shutdown complete')
    expect(server.output()).toContain('[Server] SIGTERM received')
    const exit = await server.exited
    expect(exit.code).toBe(0)
    await expect(fetch(`${server.base}/health`)).rejects.toThrow()
  })
})
