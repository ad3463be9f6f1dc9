// Runs once before the integration project: a missing redis-server or memcached skips loudly, or
// fails under CI.
import { MEMCACHED_INSTALL_HINT, memcachedAvailable } from './memcached-server.js'
import { INSTALL_HINT, redisServerAvailable } from './redis-server.js'

/** What to do about redis-server: nothing when present; one loud line, or under CI=true an error. */
export function requireRedisServer(available: boolean, ci: string | undefined, warn: (line: string) => void): void {
  if (available) return
  if (ci === 'true') {
    throw new Error(`${INSTALL_HINT} Under CI=true this fails the run instead of skipping.`)
  }
  warn(`\n!!! SKIPPING Redis integration tests. ${INSTALL_HINT}\n`)
}

/** The same for memcached, which the custom-store tests need. */
export function requireMemcached(available: boolean, ci: string | undefined, warn: (line: string) => void): void {
  if (available) return
  if (ci === 'true') throw new Error(`${MEMCACHED_INSTALL_HINT} Under CI=true this fails the run instead of skipping.`)
  warn(`\n!!! SKIPPING the memcached store tests. ${MEMCACHED_INSTALL_HINT}\n`)
}

export default function setup(): void {
  requireRedisServer(redisServerAvailable(), process.env.CI, (line) => console.warn(line))
  requireMemcached(memcachedAvailable(), process.env.CI, (line) => console.warn(line))
}
