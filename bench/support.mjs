// What the benchmarks share: free loopback ports and a throwaway redis-server.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

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
export function startRedis(port, { cpu } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-redis-'))
  const redisArgs = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]
  const [command, commandArgs] =
    cpu === undefined ? ['redis-server', redisArgs] : ['taskset', ['-c', String(cpu), 'redis-server', ...redisArgs]]
  const child = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'pipe'] })
  child.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  let output = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 10_000)
    child.stdout.on('data', (chunk) => {
      output += chunk
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer)
        resolve(child)
      }
    })
  })
}
