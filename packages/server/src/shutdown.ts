// Graceful shutdown on SIGTERM/SIGINT: stop accepting, drain, close Redis, exit 0 within 10 s.
import type { Server } from 'node:http'

import type { RateLimitLogger } from '@universo/utils/rate-limiting'

export interface ShutdownOptions {
  readonly logger: RateLimitLogger
  /** Releases what the server holds (limiters, Redis) once no request is left. */
  readonly release: () => Promise<void>
  /** In-flight requests get this long before their connections are cut. @default 8000 */
  readonly drainMs?: number
  readonly exit?: (code: number) => void
}

const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const

/**
 * The first SIGTERM or SIGINT stops accepting connections, lets in-flight requests finish (for
 * at most `drainMs`, then cuts them), runs `release`, and exits 0. A second signal exits at once.
 */
export function installGracefulShutdown(server: Server, options: ShutdownOptions): void {
  const { logger, release, drainMs = 8000, exit = (code: number) => process.exit(code) } = options
  let stopping = false

  const onSignal = (signal: keyof typeof SIGNAL_EXIT_CODES): void => {
    if (stopping) {
      logger.warn(`[Server] ${signal} received again: exiting now`)
      exit(SIGNAL_EXIT_CODES[signal])
      return
    }
    stopping = true
    logger.info(`[Server] ${signal} received: no new connections, finishing in-flight requests`)
    const cut = setTimeout(() => {
      logger.warn(`[Server] Requests still running after ${drainMs} ms: closing their connections`)
      server.closeAllConnections()
    }, drainMs)
    cut.unref()
    // A keep-alive connection whose request just finished would otherwise stay open until its
    // keep-alive timeout (5 s): close such connections as soon as they fall idle.
    const sweep = setInterval(() => server.closeIdleConnections(), 50)
    sweep.unref()
    server.close(() => {
      clearTimeout(cut)
      clearInterval(sweep)
      release().then(
        () => {
          logger.info('[Server] Shutdown complete')
          exit(0)
        },
        (error: unknown) => {
          logger.error(`[Server] Shutdown failed: ${error instanceof Error ? error.message : String(error)}`)
          exit(1)
        },
      )
    })
    server.closeIdleConnections()
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
}
