// What the benchmarks share: the setups users run, free loopback ports, a throwaway redis-server,
// and a delay proxy.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { launchRedis } from '../packages/utils/test/support/launch-redis.mjs'

/** Each scenario's limiter, as the tables and the chart name it (ours in bold in the tables). */
export const NAMES = {
  bare: 'bare Express (no limiter)',
  'erl-memory': 'express-rate-limit, memory',
  'ours-memory': 'ours, memory',
  'erl-redis': 'express-rate-limit + rate-limit-redis (the original)',
  'ours-redis': 'ours, Redis',
  'rlf-redis': 'rate-limiter-flexible, Redis',
  'rlf-redis-headers': 'rate-limiter-flexible, Redis + RateLimit headers',
  'rlf-redis-block': 'rate-limiter-flexible, Redis + in-memory block + insurance',
  'ours-redis-sliding': 'ours, Redis, sliding window',
  'ours-redis-bucket': 'ours, Redis, token bucket',
  'rlf-redis-bursty': 'rate-limiter-flexible BurstyRateLimiter, Redis',
}

/**
 * Who a client is, and how far Redis is. A hop setup runs only the Redis scenarios (and bare, the
 * baseline): the others do not talk to Redis.
 */
export const SETUPS = {
  'ip-proxy': { keying: 'ip', roundTripMs: 0, about: 'clients by IP behind one trusted proxy; Redis on loopback' },
  'user-key': {
    keying: 'header',
    roundTripMs: 0,
    about: 'clients by API key through keyGenerator, no proxy; Redis on loopback',
  },
  'hop-0.5ms': {
    keying: 'ip',
    roundTripMs: 0.5,
    about: 'clients by IP; Redis behind a proxy adding 0.5 ms of round trip',
  },
  'hop-2ms': { keying: 'ip', roundTripMs: 2, about: 'clients by IP; Redis behind a proxy adding 2 ms of round trip' },
}

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

/**
 * bench/delay-proxy.mjs in front of the Redis on `targetPort`, adding `roundTripMs` to each round
 * trip. Resolves once it accepts, with the child process and its port. With `cpu`, it is pinned.
 */
export async function startDelayProxy(targetPort, roundTripMs, { cpu } = {}) {
  const port = await freePort()
  const script = join(import.meta.dirname, 'delay-proxy.mjs')
  const args = [script, String(port), String(targetPort), String(roundTripMs)]
  const child =
    cpu === undefined
      ? spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
      : spawn('taskset', ['-c', String(cpu), process.execPath, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`delay-proxy exited with ${code} before listening`)))
    child.stdout.on('data', (chunk) => {
      if (chunk.toString().includes('listening')) resolve()
    })
  })
  child.port = port
  return child
}
