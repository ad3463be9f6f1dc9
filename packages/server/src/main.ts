// The runnable server: check the env, initialise the limiters, build the app, listen, shut down cleanly.
import { createInMemoryDataSource, disposeRateLimiters, initializeRateLimiters } from '@universo/metaverses-srv'
import {
  createRateLimiter,
  RedisClientManager,
  redactCredentials,
  redisConfiguredInEnv,
  type RateLimitRequestHandler,
} from '@universo/utils/rate-limiting'

import { createApp } from './app.js'
import { serverRateLimitOptions } from './boot.js'
import { describeConfigError, loadConfig, type ServerConfig } from './config.js'
import { createServerLogger } from './logger.js'
import { loginLimiterOptions } from './session.js'
import { createMetricsRegistry } from './metrics.js'
import { installGracefulShutdown } from './shutdown.js'

async function main(): Promise<void> {
  let config: ServerConfig
  try {
    config = loadConfig()
  } catch (error) {
    const line = describeConfigError(error)
    if (line === undefined) throw error
    // LOG_LEVEL may be the bad value: this one line is written at the default level.
    const early = createServerLogger('info')
    early.error(`[Server] Invalid configuration: ${line}`)
    await early.flush()
    process.exit(1)
  }
  const logger = createServerLogger(config.logLevel)
  // Every exit waits for the log lines before it (they are asynchronous under PM2).
  const exit = (code: number): void => void logger.flush().then(() => process.exit(code))
  const metricsRegistry = createMetricsRegistry()

  if (config.nodeEnv === 'production' && !redisConfiguredInEnv()) {
    logger.warn(
      '[RateLimit] WARNING: NODE_ENV=production without REDIS_URL: every instance counts on its own, ' +
        'so N instances allow N times the limit. Set REDIS_URL to share one budget across the fleet.',
    )
  }

  let loginLimiter: RateLimitRequestHandler
  try {
    await initializeRateLimiters(serverRateLimitOptions(config, logger, metricsRegistry))
    loginLimiter = await createRateLimiter('login', loginLimiterOptions(config, logger, metricsRegistry))
  } catch (error) {
    logger.error(
      `[Server] Failed to start: ${redactCredentials(error instanceof Error ? error.message : String(error))}`,
    )
    await RedisClientManager.close()
    exit(1)
    return
  }

  const app = createApp({ config, dataSource: createInMemoryDataSource(), logger, metricsRegistry, loginLimiter })
  const server = app.listen(config.port)
  server.on('listening', () => {
    logger.info(`[Server] Listening on http://localhost:${config.port} (pid ${process.pid})`)
  })
  server.on('error', (error: NodeJS.ErrnoException) => {
    const why = error.code === 'EADDRINUSE' ? `PORT ${config.port} is already in use` : error.message
    logger.error(`[Server] Cannot listen: ${why}`)
    void RedisClientManager.close().finally(() => exit(1))
  })
  installGracefulShutdown(server, {
    logger,
    exit,
    release: async () => {
      loginLimiter.dispose()
      await disposeRateLimiters()
      await RedisClientManager.close()
    },
  })
}

void main()
