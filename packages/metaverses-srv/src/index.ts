// Public surface of @universo/metaverses-srv. Re-exports only.
export { createMetaversesServiceRoutes, BODY_LIMIT_BYTES } from './routes.js'
export type { GetDataSource } from './routes.js'
export {
  disposeRateLimiters,
  getRateLimiters,
  initializeRateLimiters,
  NOT_INITIALIZED_MESSAGE,
  RateLimitersNotInitializedError,
  SERVICE_KEY_PREFIX,
  SERVICE_METRICS_NAMESPACE,
  SERVICE_RATE_LIMITS,
} from './rate-limiters.js'
export type { ServiceRateLimitOptions } from './rate-limiters.js'
export { createInMemoryDataSource, DataSourceFullError, DEFAULT_MEMORY_CAPACITY } from './data-source.js'
export type { Metaverse, MetaverseInput, MetaversesDataSource } from './data-source.js'
export { MAX_DESCRIPTION_LENGTH, MAX_NAME_LENGTH, MAX_PAGE_SIZE } from './validation.js'
export { requestErrorHandler } from './http-errors.js'
export type { ErrorBody } from './http-errors.js'
