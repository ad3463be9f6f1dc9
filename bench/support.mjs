// What the benchmarks share: free loopback ports and a throwaway redis-server.
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { launchRedis } from '../packages/utils/test/support/launch-redis.mjs'

/** A loopback port that was free a moment ago. */
export const freePort = () =>
  new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })

/**
 * A redis-server on `port` with no persistence, in a temporary directory removed when it exits.
 * With `cpu`, it runs pinned to that CPU through taskset.
 */
export async function startRedis(port, { cpu } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-redis-'))
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]
  const { child } = await launchRedis({ args, cpu }).catch((error) => {
    rmSync(dir, { recursive: true, force: true })
    throw error
  })
  child.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  return child
}
