// What tests and embedding hosts import from @universo/server. Re-exports only.
export { ADMIN_BODY_LIMIT_BYTES, createAdminRoutes, MAX_ADMIN_BLOCK_MS } from './admin.js'
export type { AdminRoutesOptions } from './admin.js'
export { createApp } from './app.js'
export type { AppDependencies } from './app.js'
export { serverRateLimitOptions } from './boot.js'
export {
  ConfigError,
  DEFAULT_LOGIN_LIMIT,
  LOG_LEVELS,
  loadConfig,
  MIN_TOKEN_LENGTH,
  NODE_ENVS,
  tokenHash,
} from './config.js'
export type { ApiUser, LoginLimit, LogLevel, NodeEnv, ServerConfig, TokenTable } from './config.js'
export { createSessionRoute, loginLimiterOptions, SESSION_BODY_LIMIT_BYTES } from './session.js'
export { createEnsureAuth, createIdentify, isAdmin } from './auth.js'
export { createServerLogger } from './logger.js'
export type { ServerLogger } from './logger.js'
export { createMetricsRegistry, httpMetrics, metricsEndpoint } from './metrics.js'
export type { IdentifiedRequest } from './auth.js'
export { installGracefulShutdown } from './shutdown.js'
