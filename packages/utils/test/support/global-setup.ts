// Runs once before the integration project: a missing redis-server or memcached skips loudly, or
// fails under CI.
import { MEMCACHED_INSTALL_HINT, memcachedAvailable } from './memcached-server.js'
import { INSTALL_HINT, redisServerAvailable } from './redis-server.js'

type Warn = (line: string) => void

/** What to do about a tool the tests need: nothing when present; one loud line, or under CI=true an error. */
function requireTool(available: boolean, ci: string | undefined, warn: Warn, hint: string, skipped: string): void {
  if (available) return
  if (ci === 'true') throw new Error(`${hint} Under CI=true this fails the run instead of skipping.`)
  warn(`\n!!! SKIPPING ${skipped}. ${hint}\n`)
}

/** redis-server, which the Redis integration tests need. */
export const requireRedisServer = (available: boolean, ci: string | undefined, warn: Warn): void =>
  requireTool(available, ci, warn, INSTALL_HINT, 'Redis integration tests')

/** memcached, which the custom-store tests need. */
export const requireMemcached = (available: boolean, ci: string | undefined, warn: Warn): void =>
  requireTool(available, ci, warn, MEMCACHED_INSTALL_HINT, 'the memcached store tests')

export default function setup(): void {
  requireRedisServer(redisServerAvailable(), process.env.CI, (line) => console.warn(line))
  requireMemcached(memcachedAvailable(), process.env.CI, (line) => console.warn(line))
}
