// Starts one redis-server and waits until it says it is ready: the one launcher of the tests
// (redis-server.ts, topologies.ts) and of bench/ (support.mjs). Plain JavaScript, so that bench
// scripts run it with node alone; launch-redis.d.mts gives its types.
import { spawn } from 'node:child_process'

/** How long a redis-server may take to say it is ready. */
const START_TIMEOUT_MS = 10_000

/**
 * Spawns `redis-server args` (under `taskset -c cpu` when `cpu` is given) in `cwd`, and resolves
 * once its output contains `ready`, with the child and everything it printed so far. A server that
 * exits first, or is not ready within 10 s (it is then killed), rejects with its output.
 */
export function launchRedis({ args, cwd, cpu, ready = 'Ready to accept connections' }) {
  const [command, commandArgs] =
    cpu === undefined ? ['redis-server', args] : ['taskset', ['-c', String(cpu), 'redis-server', ...args]]
  const child = spawn(command, commandArgs, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let printed = ''
  const output = () => printed
  const onData = (chunk) => {
    printed += chunk.toString()
  }
  child.stdout.on('data', onData)
  child.stderr.on('data', onData)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`redis-server ${args.join(' ')} did not start within ${START_TIMEOUT_MS / 1000} s:\n${printed}`))
    }, START_TIMEOUT_MS)
    const onExit = (code) => {
      clearTimeout(timer)
      reject(new Error(`redis-server ${args.join(' ')} exited with ${code} before it was ready:\n${printed}`))
    }
    const check = () => {
      if (!printed.includes(ready)) return
      clearTimeout(timer)
      child.stdout.off('data', check)
      child.off('exit', onExit)
      resolve({ child, output })
    }
    child.stdout.on('data', check)
    child.once('exit', onExit)
  })
}
