// Runs once before the integration project: a missing redis-server skips loudly, or fails under CI.
import { INSTALL_HINT, redisServerAvailable } from './redis-server.js'

export default function setup(): void {
  if (redisServerAvailable()) return
  if (process.env.CI === 'true') {
    throw new Error(`${INSTALL_HINT} Under CI=true this fails the run instead of skipping.`)
  }
  console.warn(`\n!!! SKIPPING Redis integration tests. ${INSTALL_HINT}\n`)
}
