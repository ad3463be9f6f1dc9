// What tests and embedding hosts import from @universo/server. Re-exports only.
export { createApp } from './app.js'
export type { AppDependencies } from './app.js'
export { ConfigError, loadConfig, MIN_TOKEN_LENGTH, NODE_ENVS, tokenHash } from './config.js'
export type { ApiUser, NodeEnv, ServerConfig, TokenTable } from './config.js'
export { createEnsureAuth, createIdentify } from './auth.js'
export type { IdentifiedRequest } from './auth.js'
export { installGracefulShutdown } from './shutdown.js'
